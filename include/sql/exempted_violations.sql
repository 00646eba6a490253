-- Produces: exempted_violations — one row per resource × failed check an exemption waives on the
-- scored day, with the exemption's reason and expiry (the lake's `exempted_violations` columns).
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
WHERE failed.exempt
ORDER BY
    snapshot.account_id,
    snapshot.region,
    snapshot.resource_type,
    snapshot.resource_id,
    failed.resource_key,
    failed.rule_id NULLS LAST,
    failed.tag_key NULLS LAST
