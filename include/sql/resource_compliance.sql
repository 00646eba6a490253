-- Produces: resource_compliance — one row per resource of the snapshot, in scope or not
-- (resource_key for the later steps, then the lake's `resource_compliance` columns but the tags,
-- which resource_compliance_rows adds when it writes them out: kept narrow and unsorted here).
--
-- Inputs: snapshot, tag_checks, failed_checks, resource_costs, policy_info, run_info.
-- compliance_status: 'out_of_scope' when no tag rule applies ("not measured", not "fine"; then
-- compliant is NULL); else 'non_compliant' with an error-severity violation, 'exempt' with none
-- but an exempted error-severity one, 'compliant' otherwise. The violation counts and types
-- are of the violations exemptions leave; exempted_violations counts the others.
-- The cost columns come from resource_costs (NULL when the day has no costs).
WITH
resources_in_scope AS (
    -- A resource is in scope when at least one tag rule applies to it; prohibited tags
    -- and the tag limit alone do not put it in scope.
    SELECT DISTINCT resource_key
    FROM tag_checks
    WHERE rule_id IS NOT NULL
),

violation_counts AS (
    SELECT
        resource_key,
        count(*) FILTER (WHERE NOT exempt AND severity = 'error') AS error_violations,
        count(*) FILTER (WHERE NOT exempt AND severity = 'warning') AS warning_violations,
        count(*) FILTER (WHERE exempt) AS exempted_violations,
        count(*) FILTER (WHERE exempt AND severity = 'error') AS exempted_error_violations,
        list_sort(list_distinct(list(violation_type) FILTER (WHERE NOT exempt))) AS violation_types
    FROM failed_checks
    GROUP BY resource_key
),

statuses AS (
    SELECT
        snapshot.resource_key,
        resources_in_scope.resource_key IS NOT NULL AS in_scope,
        coalesce(violation_counts.error_violations, 0) AS error_violations,
        coalesce(violation_counts.warning_violations, 0) AS warning_violations,
        coalesce(violation_counts.exempted_violations, 0) AS exempted_violations,
        coalesce(violation_counts.violation_types, []::VARCHAR[]) AS violation_types,
        CASE
            WHEN resources_in_scope.resource_key IS NULL THEN 'out_of_scope'
            WHEN coalesce(violation_counts.error_violations, 0) > 0 THEN 'non_compliant'
            WHEN coalesce(violation_counts.exempted_error_violations, 0) > 0 THEN 'exempt'
            ELSE 'compliant'
        END AS compliance_status
    FROM snapshot
    LEFT JOIN resources_in_scope USING (resource_key)
    LEFT JOIN violation_counts USING (resource_key)
)

SELECT
    snapshot.resource_key,
    snapshot.account_id,
    snapshot.region,
    snapshot.service,
    snapshot.resource_type,
    snapshot.resource_id,
    snapshot.arn,
    snapshot.name,
    statuses.in_scope,
    CASE WHEN statuses.in_scope THEN statuses.compliance_status = 'compliant' END AS compliant,
    statuses.compliance_status,
    statuses.error_violations,
    statuses.warning_violations,
    statuses.exempted_violations,
    statuses.violation_types,
    resource_costs.cost_basis,
    resource_costs.amortized_cost,
    resource_costs.unblended_cost,
    resource_costs.cost_estimated,
    run_info.inventory_as_of,
    policy_info.policy_version
FROM snapshot
JOIN statuses USING (resource_key)
LEFT JOIN resource_costs USING (resource_key)
CROSS JOIN policy_info
CROSS JOIN run_info
