-- Produces: failed_check_rows — every failed check with the resource it is on, the inventory date
-- and the policy version (violations and exempted_violations are its two halves, in order).
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
