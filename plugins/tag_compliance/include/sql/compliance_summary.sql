-- Produces: compliance_summary — rollups overall and by account, region, service,
-- resource_type and required tag key (the lake's `compliance_summary` columns).
--
-- Inputs: resource_compliance (this snapshot's, from resource_compliance.sql), applicable_rules,
-- failed_checks, resource_costs, policy_rules, policy_info, run_info, cost_coverage.
-- compliance_pct = 100 * compliant / in scope, NULL when nothing is in scope; exempt resources
-- are in scope and not compliant (resources_exempt counts them). violations and
-- error_violations count the violations exemptions leave.
-- cost_total, cost_in_scope, cost_compliant: sums of amortized cost over the same resources
-- as the counts (a resource without a cost counts 0); cost_compliance_pct = 100 *
-- cost_compliant / cost_in_scope, NULL when cost_in_scope is 0. All four are NULL when the
-- day has no costs. targets_planned, targets_collected, collection_coverage_pct: how much of
-- its plan the scored inventory collected (run_info; the same on every row, NULL when the
-- inventory does not say); the resources of targets not collected are in no rollup.
WITH
resource_groups AS (
    -- The resources rolled up once, at the finest grain any dimension needs; every rollup
    -- below adds these few rows up instead of reading every resource again.
    SELECT
        account_id,
        region,
        service,
        resource_type,
        count(*) AS resources_total,
        count(*) FILTER (WHERE in_scope) AS resources_in_scope,
        count(*) FILTER (WHERE compliant) AS resources_compliant,
        count(*) FILTER (WHERE compliance_status = 'exempt') AS resources_exempt,
        sum(error_violations + warning_violations)::BIGINT AS violations,
        sum(error_violations)::BIGINT AS error_violations,
        coalesce(sum(amortized_cost), 0) AS cost_total,
        coalesce(sum(amortized_cost) FILTER (WHERE in_scope), 0) AS cost_in_scope,
        coalesce(sum(amortized_cost) FILTER (WHERE compliant), 0) AS cost_compliant
    FROM resource_compliance
    GROUP BY ALL
),

resource_dimensions AS (
    -- Each group once under every dimension it rolls up into.
    SELECT
        dimensions.dimension,
        dimensions.dimension_value,
        dimensions.dimension_order,
        resource_groups.*
    FROM resource_groups,
        LATERAL (
            VALUES
                ('overall', 'all', 1),
                ('account', resource_groups.account_id, 2),
                ('region', resource_groups.region, 3),
                ('service', resource_groups.service, 4),
                ('resource_type', resource_groups.resource_type, 5)
        ) AS dimensions (dimension, dimension_value, dimension_order)
),

resource_rollups AS (
    SELECT
        dimension,
        dimension_value,
        dimension_order,
        sum(resources_total)::BIGINT AS resources_total,
        sum(resources_in_scope)::BIGINT AS resources_in_scope,
        sum(resources_compliant)::BIGINT AS resources_compliant,
        sum(resources_exempt)::BIGINT AS resources_exempt,
        sum(violations)::BIGINT AS violations,
        sum(error_violations)::BIGINT AS error_violations,
        sum(cost_total) AS cost_total,
        sum(cost_in_scope) AS cost_in_scope,
        sum(cost_compliant) AS cost_compliant
    FROM resource_dimensions
    GROUP BY dimension, dimension_value, dimension_order
),

type_populations AS (
    SELECT
        resource_type,
        sum(resources_total) AS resources,
        sum(cost_total) AS cost
    FROM resource_groups
    GROUP BY resource_type
),

rule_populations AS (
    -- The resources each rule applies to: the populations of the types it applies to.
    SELECT
        applicable.rule_id,
        sum(types.resources) AS resources,
        sum(types.cost) AS cost
    FROM applicable_rules AS applicable
    JOIN type_populations AS types
        ON types.resource_type IS NOT DISTINCT FROM applicable.resource_type
    GROUP BY applicable.rule_id
),

rule_failures AS (
    -- A resource fails a rule at most once; the rest of a rule's population passes it.
    SELECT
        failed.rule_id,
        count(*) AS resources_failing,
        count(*) FILTER (WHERE failed.exempt) AS resources_exempt,
        count(*) FILTER (WHERE NOT failed.exempt) AS violations,
        count(*) FILTER (WHERE NOT failed.exempt AND failed.severity = 'error') AS error_violations,
        coalesce(sum(resource_costs.amortized_cost), 0) AS cost_failing
    FROM failed_checks AS failed
    LEFT JOIN resource_costs USING (resource_key)
    WHERE failed.rule_id IS NOT NULL
    GROUP BY failed.rule_id
),

tag_key_rollups AS (
    -- One row per tag rule (required, then optional), even when it applies to nothing: the
    -- resources a rule applies to are its in-scope population; compliant ones pass it,
    -- exempt ones fail it under an exemption.
    SELECT
        'tag_key' AS dimension,
        rules.tag_key AS dimension_value,
        6 AS dimension_order,
        coalesce(populations.resources, 0)::BIGINT AS resources_total,
        coalesce(populations.resources, 0)::BIGINT AS resources_in_scope,
        (coalesce(populations.resources, 0) - coalesce(failures.resources_failing, 0))::BIGINT
            AS resources_compliant,
        coalesce(failures.resources_exempt, 0) AS resources_exempt,
        coalesce(failures.violations, 0) AS violations,
        coalesce(failures.error_violations, 0) AS error_violations,
        coalesce(populations.cost, 0) AS cost_total,
        coalesce(populations.cost, 0) AS cost_in_scope,
        coalesce(populations.cost, 0) - coalesce(failures.cost_failing, 0) AS cost_compliant
    FROM policy_rules AS rules
    LEFT JOIN rule_populations AS populations USING (rule_id)
    LEFT JOIN rule_failures AS failures USING (rule_id)
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
    run_info.targets_planned,
    run_info.targets_collected,
    100 * run_info.targets_collected::DOUBLE / nullif(run_info.targets_planned, 0) AS collection_coverage_pct,
    run_info.inventory_as_of,
    policy_info.policy_version
FROM all_rollups
CROSS JOIN policy_info
CROSS JOIN run_info
CROSS JOIN cost_coverage
ORDER BY dimension_order, dimension_value
