-- Produces: attribution_gap — the day's spend that no compliant resource accounts for.
--
-- Columns: the lake's `attribution_gap` columns.
--
-- Inputs: snapshot, resource_compliance, resource_costs, failed_checks, snapshot_costs,
-- cost_service_map, cost_coverage, policy_info, run_info. No rows when the day has no costs.
-- gap_reason, with tag_key NULL (these rows add up to the day's total amortized cost minus
-- the cost of compliant resources):
--   non_compliant  in-scope resources with a violation of severity error, per account,
--                  service, type;
--   exempt         in-scope resources not compliant only because of exempted violations;
--   out_of_scope   resources no rule applies to, per account, service, type;
--   no_resource    per account and Cost Explorer service: the service total minus what
--                  resource_costs gave the snapshot's resources of that account and service
--                  (deleted resources, unmatched resource rows, services without a collector
--                  or without inventoried resources); only when non-zero (negative when the
--                  resources were given more than the service total).
-- and with tag_key set (a breakdown, not part of the sum: a resource failing two keys is in
-- both):
--   tag_violation  resources failing the key's tag rule (any violation type, either severity,
--                  not exempted; prohibited tags are not a key's rule), per account, service,
--                  type.
-- Costs of resources without one (a type Cost Explorer has no service for) count 0.
WITH
resource_gaps AS (
    -- Resources whose spend is not a compliant resource's: not compliant, or not measured.
    SELECT
        account_id,
        service,
        resource_type,
        NULL::VARCHAR AS tag_key,
        CASE compliance_status
            WHEN 'non_compliant' THEN 'non_compliant'
            WHEN 'exempt' THEN 'exempt'
            ELSE 'out_of_scope'
        END AS gap_reason,
        CASE compliance_status WHEN 'non_compliant' THEN 1 WHEN 'exempt' THEN 2 ELSE 3 END AS reason_order,
        NULL::VARCHAR AS severity,
        NULL::INTEGER AS rule_id,
        amortized_cost,
        unblended_cost,
        cost_basis
    FROM resource_compliance
    JOIN cost_coverage ON cost_coverage.has_costs  -- a day without costs reads no resource
    WHERE NOT coalesce(compliant, false)
),

tag_violation_gaps AS (
    -- One row per resource and tag rule it fails (exemptions aside).
    SELECT
        resources.account_id,
        resources.service,
        resources.resource_type,
        checks.tag_key,
        'tag_violation' AS gap_reason,
        5 AS reason_order,
        checks.severity,
        checks.rule_id,
        resource_costs.amortized_cost,
        resource_costs.unblended_cost,
        resource_costs.cost_basis
    FROM failed_checks AS checks
    JOIN cost_coverage ON cost_coverage.has_costs
    JOIN snapshot AS resources USING (resource_key)
    LEFT JOIN resource_costs USING (resource_key)
    WHERE checks.rule_id IS NOT NULL
      AND NOT checks.exempt
),

resource_gap_rows AS (
    SELECT
        gaps.account_id,
        gaps.service,
        service_map.cost_explorer_service,
        gaps.resource_type,
        gaps.tag_key,
        gaps.gap_reason,
        gaps.reason_order,
        gaps.severity,
        gaps.rule_id,
        count(*) AS resources,
        coalesce(sum(gaps.amortized_cost), 0) AS amortized_cost,
        coalesce(sum(gaps.unblended_cost), 0) AS unblended_cost,
        gaps.cost_basis
    FROM (SELECT * FROM resource_gaps UNION ALL SELECT * FROM tag_violation_gaps) AS gaps
    LEFT JOIN cost_service_map AS service_map ON service_map.resource_type = gaps.resource_type
    GROUP BY ALL
),

service_totals AS (
    -- The day's spend per (account, Cost Explorer service): every service, mapped or not.
    SELECT
        account_id,
        service AS cost_explorer_service,
        coalesce(sum(amount) FILTER (WHERE metric = 'AmortizedCost'), 0) AS amortized_cost,
        coalesce(sum(amount) FILTER (WHERE metric = 'UnblendedCost'), 0) AS unblended_cost
    FROM snapshot_costs
    WHERE source = 'service'
    GROUP BY account_id, service
),

allocated_costs AS (
    -- What resource_costs gave the snapshot's resources, per (account, Cost Explorer service).
    SELECT
        snapshot.account_id,
        service_map.cost_explorer_service,
        coalesce(sum(resource_costs.amortized_cost), 0) AS amortized_cost,
        coalesce(sum(resource_costs.unblended_cost), 0) AS unblended_cost
    FROM snapshot
    JOIN cost_coverage ON cost_coverage.has_costs
    JOIN resource_costs USING (resource_key)
    JOIN cost_service_map AS service_map ON service_map.resource_type = snapshot.resource_type
    GROUP BY snapshot.account_id, service_map.cost_explorer_service
),

unallocated_costs AS (
    -- Full join: a service total nobody got, and an allocation beyond any total, both count.
    SELECT
        coalesce(totals.account_id, allocated.account_id) AS account_id,
        coalesce(totals.cost_explorer_service, allocated.cost_explorer_service) AS cost_explorer_service,
        coalesce(totals.amortized_cost, 0) - coalesce(allocated.amortized_cost, 0) AS amortized_cost,
        coalesce(totals.unblended_cost, 0) - coalesce(allocated.unblended_cost, 0) AS unblended_cost
    FROM service_totals AS totals
    FULL JOIN allocated_costs AS allocated
        ON allocated.account_id = totals.account_id
        AND allocated.cost_explorer_service = totals.cost_explorer_service
),

collected_services AS (
    -- Our service of each mapped Cost Explorer service: one, or NULL when types of several of
    -- ours share it (AmazonCloudWatch bills log groups and alarms).
    SELECT
        cost_explorer_service,
        CASE WHEN count(DISTINCT service) = 1 THEN min(service) END AS service
    FROM cost_service_map
    GROUP BY cost_explorer_service
),

no_resource_rows AS (
    SELECT
        unallocated.account_id,
        collected.service,
        unallocated.cost_explorer_service,
        NULL::VARCHAR AS resource_type,
        NULL::VARCHAR AS tag_key,
        'no_resource' AS gap_reason,
        4 AS reason_order,
        NULL::VARCHAR AS severity,
        NULL::INTEGER AS rule_id,
        0 AS resources,
        unallocated.amortized_cost,
        unallocated.unblended_cost,
        'service' AS cost_basis
    FROM unallocated_costs AS unallocated
    LEFT JOIN collected_services AS collected
        ON collected.cost_explorer_service = unallocated.cost_explorer_service
    WHERE unallocated.amortized_cost <> 0
       OR unallocated.unblended_cost <> 0
),

gap_rows AS (
    SELECT * FROM resource_gap_rows
    UNION ALL BY NAME
    SELECT * FROM no_resource_rows
)

SELECT
    gap_rows.account_id,
    gap_rows.service,
    gap_rows.cost_explorer_service,
    gap_rows.resource_type,
    gap_rows.tag_key,
    gap_rows.gap_reason,
    gap_rows.severity,
    gap_rows.resources::BIGINT AS resources,
    CAST(gap_rows.amortized_cost AS DECIMAL(38, 10)) AS amortized_cost,
    CAST(gap_rows.unblended_cost AS DECIMAL(38, 10)) AS unblended_cost,
    gap_rows.cost_basis,
    run_info.inventory_as_of,
    policy_info.policy_version
FROM gap_rows
CROSS JOIN cost_coverage
CROSS JOIN policy_info
CROSS JOIN run_info
WHERE cost_coverage.has_costs
ORDER BY
    gap_rows.account_id,
    gap_rows.reason_order,
    gap_rows.resource_type NULLS LAST,
    gap_rows.cost_explorer_service NULLS LAST,
    gap_rows.service NULLS LAST,
    gap_rows.rule_id
