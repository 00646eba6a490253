-- Produces: violations — one row per resource × failed rule (the lake's `violations` columns).
--
-- Inputs: tag_checks, snapshot, policy_info, run_info (inventory_as_of: the date of the
-- resources scored).
SELECT
    snapshot.account_id,
    snapshot.region,
    snapshot.resource_type,
    snapshot.resource_id,
    snapshot.arn,
    tag_checks.tag_key,
    tag_checks.violation_type,
    tag_checks.severity,
    tag_checks.current_value,
    tag_checks.expected,
    run_info.inventory_as_of,
    policy_info.policy_version
FROM tag_checks
JOIN snapshot USING (resource_key)
CROSS JOIN policy_info
CROSS JOIN run_info
WHERE tag_checks.violation_type IS NOT NULL
ORDER BY
    snapshot.account_id,
    snapshot.region,
    snapshot.resource_type,
    snapshot.resource_id,
    snapshot.resource_key,
    tag_checks.rule_id NULLS LAST,
    tag_checks.tag_key
