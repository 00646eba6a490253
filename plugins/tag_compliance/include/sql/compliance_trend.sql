-- Produces: compliance_trend — each compliance_summary row with its change since the group's previous one.
--
-- Input: the warehouse view `compliance_summary`. One row per (snapshot_date, dimension,
-- dimension_value). previous_snapshot_date is the latest earlier snapshot_date at which the same
-- (dimension, dimension_value) has a row (NULL for its first): a group missing from some snapshots
-- (an account not collected, a key added to the policy) compares with its own last row.
-- *_change = current - previous, in percentage points for the percentages; NULL when either side
-- is NULL (first row, nothing in scope, a day without costs).
WITH
summary_with_previous AS (
    SELECT
        snapshot_date,
        dimension,
        dimension_value,
        resources_in_scope,
        resources_compliant,
        resources_exempt,
        compliance_pct,
        violations,
        cost_in_scope,
        cost_compliant,
        cost_compliance_pct,
        lag(snapshot_date) OVER group_history AS previous_snapshot_date,
        lag(compliance_pct) OVER group_history AS previous_compliance_pct,
        lag(cost_compliance_pct) OVER group_history AS previous_cost_compliance_pct,
        lag(violations) OVER group_history AS previous_violations,
        inventory_as_of,
        policy_version
    FROM compliance_summary
    WINDOW group_history AS (PARTITION BY dimension, dimension_value ORDER BY snapshot_date)
)

SELECT
    snapshot_date,
    dimension,
    dimension_value,
    resources_in_scope,
    resources_compliant,
    resources_exempt,
    compliance_pct,
    violations,
    cost_in_scope,
    cost_compliant,
    cost_compliance_pct,
    previous_snapshot_date,
    previous_compliance_pct,
    compliance_pct - previous_compliance_pct AS compliance_pct_change,
    previous_cost_compliance_pct,
    cost_compliance_pct - previous_cost_compliance_pct AS cost_compliance_pct_change,
    violations - previous_violations AS violations_change,
    inventory_as_of,
    policy_version
FROM summary_with_previous
ORDER BY
    snapshot_date,
    CASE dimension
        WHEN 'overall' THEN 1
        WHEN 'account' THEN 2
        WHEN 'region' THEN 3
        WHEN 'service' THEN 4
        WHEN 'resource_type' THEN 5
        WHEN 'tag_key' THEN 6
    END,
    dimension_value
