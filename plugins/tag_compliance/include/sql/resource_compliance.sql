-- Produces: resource_compliance — one row per resource of the snapshot, in scope or not, with
-- resource_key for the later steps and the lake's `resource_compliance` columns. A view: each
-- reader reads only the columns it needs (the rollups never touch the tags), unsorted
-- (resource_compliance_rows puts the rows in order as they are written).
--
-- Inputs: snapshot, applicable_rules, resource_violations, resource_costs, policy_info, run_info.
-- in_scope: at least one tag rule applies to the resource's type.
-- compliance_status: 'out_of_scope' when no tag rule applies ("not measured", not "fine"; then
-- compliant is NULL); else 'non_compliant' with an error-severity violation, 'exempt' with none
-- but an exempted error-severity one, 'compliant' otherwise. The violation counts and types
-- are of the violations exemptions leave; exempted_violations counts the others.
-- The cost columns come from resource_costs (NULL when the day has no costs).
WITH
scoped_types AS (
    SELECT DISTINCT resource_type
    FROM applicable_rules
),

statuses AS (
    SELECT
        snapshot.*,
        scoped_types.resource_type IS NOT NULL AS in_scope,
        coalesce(counts.error_violations, 0) AS error_violations,
        coalesce(counts.warning_violations, 0) AS warning_violations,
        coalesce(counts.exempted_violations, 0) AS exempted_violations,
        coalesce(counts.exempted_error_violations, 0) AS exempted_error_violations,
        coalesce(counts.violation_types, []::VARCHAR[]) AS violation_types
    FROM snapshot
    LEFT JOIN scoped_types
        ON scoped_types.resource_type IS NOT DISTINCT FROM snapshot.resource_type
    LEFT JOIN resource_violations AS counts USING (resource_key)
)

SELECT
    statuses.resource_key,
    statuses.account_id,
    statuses.region,
    statuses.service,
    statuses.resource_type,
    statuses.resource_id,
    statuses.arn,
    statuses.name,
    statuses.in_scope,
    CASE WHEN statuses.in_scope THEN statuses.error_violations = 0 AND statuses.exempted_error_violations = 0 END
        AS compliant,
    CASE
        WHEN NOT statuses.in_scope THEN 'out_of_scope'
        WHEN statuses.error_violations > 0 THEN 'non_compliant'
        WHEN statuses.exempted_error_violations > 0 THEN 'exempt'
        ELSE 'compliant'
    END AS compliance_status,
    statuses.error_violations,
    statuses.warning_violations,
    statuses.exempted_violations,
    statuses.violation_types,
    resource_costs.cost_basis,
    resource_costs.amortized_cost,
    resource_costs.unblended_cost,
    resource_costs.cost_estimated,
    run_info.inventory_as_of,
    policy_info.policy_version,
    statuses.tags
FROM statuses
LEFT JOIN resource_costs USING (resource_key)
CROSS JOIN policy_info
CROSS JOIN run_info
