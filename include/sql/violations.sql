-- Produces: violations — one row per resource × failed check that no exemption waives
-- (the lake's `violations` columns are taken from it).
--
-- Inputs: failed_checks, snapshot, policy_info, run_info.
SELECT
    snapshot.account_id,
    snapshot.region,
    snapshot.resource_type,
    snapshot.resource_id,
    snapshot.arn,
    failed.*,
    run_info.inventory_as_of,
    policy_info.policy_version
FROM failed_checks AS failed
JOIN snapshot USING (resource_key)
CROSS JOIN policy_info
CROSS JOIN run_info
WHERE NOT failed.exempt
ORDER BY
    snapshot.account_id,
    snapshot.region,
    snapshot.resource_type,
    snapshot.resource_id,
    failed.resource_key,
    failed.rule_id NULLS LAST,
    failed.tag_key NULLS LAST
