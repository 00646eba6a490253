-- Produces: compliance_summary — rollups overall and by account, region, service,
-- resource_type and required tag key (the lake's `compliance_summary` columns).
--
-- Inputs: resource_compliance (this snapshot's, from resource_compliance.sql), tag_checks,
-- failed_checks, policy_rules, policy_info, run_info, cost_coverage.
-- compliance_pct = 100 * compliant / in scope, NULL when nothing is in scope; exempt resources
-- are in scope and not compliant (resources_exempt counts them). violations and
-- error_violations count the violations exemptions leave.
-- cost_total, cost_in_scope, cost_compliant: sums of amortized cost over the same resources
-- as the counts (a resource without a cost counts 0); cost_compliance_pct = 100 *
-- cost_compliant / cost_in_scope, NULL when cost_in_scope is 0. All four are NULL when the
-- day has no costs.
WITH
resource_dimensions AS (
    -- Each resource once under every dimension it rolls up into.
    SELECT
        dimensions.dimension,
        dimensions.dimension_value,
        dimensions.dimension_order,
        resource_compliance.*
    FROM resource_compliance,
        LATERAL (
            VALUES
                ('overall', 'all', 1),
                ('account', resource_compliance.account_id, 2),
                ('region', resource_compliance.region, 3),
                ('service', resource_compliance.service, 4),
                ('resource_type', resource_compliance.resource_type, 5)
        ) AS dimensions (dimension, dimension_value, dimension_order)
),

resource_rollups AS (
    SELECT
        dimension,
        dimension_value,
        dimension_order,
        count(*) AS resources_total,
        count(*) FILTER (WHERE in_scope) AS resources_in_scope,
        count(*) FILTER (WHERE compliant) AS resources_compliant,
        count(*) FILTER (WHERE compliance_status = 'exempt') AS resources_exempt,
        sum(error_violations + warning_violations)::BIGINT AS violations,
        sum(error_violations)::BIGINT AS error_violations,
        coalesce(sum(amortized_cost), 0) AS cost_total,
        coalesce(sum(amortized_cost) FILTER (WHERE in_scope), 0) AS cost_in_scope,
        coalesce(sum(amortized_cost) FILTER (WHERE compliant), 0) AS cost_compliant
    FROM resource_dimensions
    GROUP BY dimension, dimension_value, dimension_order
),

tag_key_rollups AS (
    -- One row per tag rule (required, then optional), even when it applies to nothing: the
    -- resources a rule applies to are its in-scope population; compliant ones pass it,
    -- exempt ones fail it under an exemption.
    SELECT
        'tag_key' AS dimension,
        rules.tag_key AS dimension_value,
        6 AS dimension_order,
        count(checks.resource_key) AS resources_total,
        count(checks.resource_key) AS resources_in_scope,
        count(checks.resource_key) FILTER (WHERE checks.violation_type IS NULL) AS resources_compliant,
        count(checks.resource_key) FILTER (WHERE failed.exempt) AS resources_exempt,
        count(failed.check_id) FILTER (WHERE NOT failed.exempt) AS violations,
        count(failed.check_id) FILTER (WHERE NOT failed.exempt AND failed.severity = 'error')
            AS error_violations,
        coalesce(sum(resources.amortized_cost), 0) AS cost_total,
        coalesce(sum(resources.amortized_cost), 0) AS cost_in_scope,
        coalesce(sum(resources.amortized_cost) FILTER (WHERE checks.violation_type IS NULL), 0)
            AS cost_compliant
    FROM policy_rules AS rules
    LEFT JOIN tag_checks AS checks ON checks.rule_id = rules.rule_id
    LEFT JOIN failed_checks AS failed  -- a resource has one check per rule
        ON failed.resource_key = checks.resource_key
        AND failed.rule_id = checks.rule_id
    LEFT JOIN resource_compliance AS resources ON resources.resource_key = checks.resource_key
    GROUP BY rules.rule_id, rules.tag_key
),

all_rollups AS (
    SELECT * FROM resource_rollups
    UNION ALL
    SELECT * FROM tag_key_rollups
)

SELECT
    dimension,
    dimension_value,
    resources_total,
    resources_in_scope,
    resources_compliant,
    resources_exempt,
    100 * resources_compliant::DOUBLE / nullif(resources_in_scope, 0) AS compliance_pct,
    violations,
    error_violations,
    CASE WHEN cost_coverage.has_costs THEN cost_total END AS cost_total,
    CASE WHEN cost_coverage.has_costs THEN cost_in_scope END AS cost_in_scope,
    CASE WHEN cost_coverage.has_costs THEN cost_compliant END AS cost_compliant,
    CASE
        WHEN cost_coverage.has_costs
            THEN 100 * cost_compliant::DOUBLE / nullif(cost_in_scope, 0)::DOUBLE
    END AS cost_compliance_pct,
    run_info.inventory_as_of,
    policy_info.policy_version
FROM all_rollups
CROSS JOIN policy_info
CROSS JOIN run_info
CROSS JOIN cost_coverage
ORDER BY dimension_order, dimension_value
