-- Produces: resource_compliance — one row per resource of the snapshot, in scope or not
-- (resource_key for the later steps, then the lake's `resource_compliance` columns).
--
-- Inputs: snapshot, tag_checks, resource_costs, policy_info, run_info.
-- compliant is NULL for a resource no required rule applies to: "not measured", not "fine".
-- The cost columns come from resource_costs (NULL when the day has no costs).
WITH
resources_in_scope AS (
    -- A resource is in scope when at least one required rule applies to it;
    -- prohibited tags alone do not put it in scope.
    SELECT DISTINCT resource_key
    FROM tag_checks
    WHERE rule_id IS NOT NULL
),

violation_counts AS (
    SELECT
        resource_key,
        count(*) FILTER (WHERE severity = 'error') AS error_violations,
        count(*) FILTER (WHERE severity = 'warning') AS warning_violations,
        list_sort(list_distinct(list(violation_type))) AS violation_types
    FROM tag_checks
    WHERE violation_type IS NOT NULL
    GROUP BY resource_key
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
    resources_in_scope.resource_key IS NOT NULL AS in_scope,
    CASE
        WHEN resources_in_scope.resource_key IS NOT NULL
            THEN coalesce(violation_counts.error_violations, 0) = 0
    END AS compliant,
    coalesce(violation_counts.error_violations, 0) AS error_violations,
    coalesce(violation_counts.warning_violations, 0) AS warning_violations,
    coalesce(violation_counts.violation_types, []::VARCHAR[]) AS violation_types,
    snapshot.tags,
    resource_costs.cost_basis,
    resource_costs.amortized_cost,
    resource_costs.unblended_cost,
    resource_costs.cost_estimated,
    run_info.inventory_as_of,
    policy_info.policy_version
FROM snapshot
LEFT JOIN resources_in_scope USING (resource_key)
LEFT JOIN violation_counts USING (resource_key)
LEFT JOIN resource_costs USING (resource_key)
CROSS JOIN policy_info
CROSS JOIN run_info
ORDER BY
    snapshot.account_id,
    snapshot.region,
    snapshot.resource_type,
    snapshot.resource_id,
    snapshot.resource_key
