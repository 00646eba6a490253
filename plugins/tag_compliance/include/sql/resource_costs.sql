-- Produces: resource_costs — each snapshot resource's cost of the day, one row per resource_key.
--
-- Columns: resource_key, cost_basis, amortized_cost, unblended_cost, cost_estimated.
--
-- Inputs: snapshot, snapshot_costs (the day's Cost Explorer rows with their `source`),
-- cost_service_map (resource_type -> Cost Explorer SERVICE value), cost_usage_types (for a
-- SERVICE several types share: usage type prefix -> resource_type), cost_coverage.
-- cost_basis:
--   'resource'         the day has resource-level rows: the sum of the rows of the resource's
--                      account and Cost Explorer service whose resource_id is its id or its ARN
--                      (0 when there are none); each row goes to one resource at most.
--   'service_average'  otherwise: the spend of the resource's (account, type) split equally over
--                      the snapshot's resources of that account and type. A type's spend is
--                      its Cost Explorer service's total, or, for a service several types
--                      share ("EC2 - Other": volumes, snapshots, NAT gateways, ...), the spend
--                      of the usage types that are the type's (source 'usage_type'; a usage
--                      type's prefix after the region code, 'USE1-EBS:VolumeUsage.gp3'; usage
--                      types of no type stay unattributed). Exactly: in units of 1e-10, the remainder units handed out one
--                      each (of the total's sign) to the first resources by resource_id, arn,
--                      region, so the shares add up to the total to the last digit.
--   NULL               the day has no costs, or Cost Explorer has no service for the type;
--                      then the costs and cost_estimated are NULL too.
-- cost_estimated: whether the rows used were Cost Explorer estimates; for a resource with no
-- rows of its own (or no service total), the day's flag from its service rows.
WITH
costed_resources AS (
    -- Resources whose type Cost Explorer reports under a SERVICE value, on a day with costs.
    SELECT
        snapshot.resource_key,
        snapshot.account_id,
        snapshot.region,
        snapshot.resource_type,
        snapshot.resource_id,
        snapshot.arn,
        service_map.cost_explorer_service,
        cost_coverage.has_resource_costs
    FROM snapshot
    JOIN cost_service_map AS service_map ON service_map.resource_type = snapshot.resource_type
    CROSS JOIN cost_coverage
    WHERE cost_coverage.has_costs
),

day_estimated AS (
    -- Cost Explorer flags a whole day as estimated; read it from the day's service rows.
    SELECT coalesce(bool_or(estimated), false) AS estimated
    FROM snapshot_costs
    WHERE source = 'service'
),

service_totals AS (
    -- The day's spend per (account, Cost Explorer service), both metrics side by side.
    SELECT
        account_id,
        service AS cost_explorer_service,
        coalesce(sum(amount) FILTER (WHERE metric = 'AmortizedCost'), 0) AS amortized_cost,
        coalesce(sum(amount) FILTER (WHERE metric = 'UnblendedCost'), 0) AS unblended_cost,
        bool_or(estimated) AS estimated
    FROM snapshot_costs
    WHERE source = 'service'
    GROUP BY account_id, service
),

resource_cost_groups AS (
    -- Resource-level rows, one per (account, Cost Explorer service, reported resource id).
    SELECT
        account_id,
        service AS cost_explorer_service,
        resource_id AS reported_id,
        coalesce(sum(amount) FILTER (WHERE metric = 'AmortizedCost'), 0) AS amortized_cost,
        coalesce(sum(amount) FILTER (WHERE metric = 'UnblendedCost'), 0) AS unblended_cost,
        bool_or(estimated) AS estimated
    FROM snapshot_costs
    WHERE source = 'resource'
    GROUP BY account_id, service, resource_id
),

resource_cost_candidates AS (
    -- Every resource a reported id could belong to, ranked: a match on resource_id wins over a
    -- match on the ARN, then the first resource; only rank 1 gets the cost.
    SELECT
        groups.*,
        resources.resource_key,
        row_number() OVER (
            PARTITION BY groups.account_id, groups.cost_explorer_service, groups.reported_id
            ORDER BY (resources.resource_id = groups.reported_id) DESC, resources.resource_key
        ) AS candidate_rank
    FROM resource_cost_groups AS groups
    JOIN costed_resources AS resources
        ON resources.account_id = groups.account_id
        AND resources.cost_explorer_service = groups.cost_explorer_service
        AND groups.reported_id IN (resources.resource_id, resources.arn)
    WHERE resources.has_resource_costs
),

resource_matched_costs AS (
    -- A resource may be reported under its id and under its ARN: both rows are its cost.
    SELECT
        resource_key,
        sum(amortized_cost) AS amortized_cost,
        sum(unblended_cost) AS unblended_cost,
        bool_or(estimated) AS estimated
    FROM resource_cost_candidates
    WHERE candidate_rank = 1
    GROUP BY resource_key
),

resource_basis_costs AS (
    SELECT
        resources.resource_key,
        'resource' AS cost_basis,
        coalesce(matched.amortized_cost, 0) AS amortized_cost,
        coalesce(matched.unblended_cost, 0) AS unblended_cost,
        coalesce(matched.estimated, day_estimated.estimated) AS cost_estimated
    FROM costed_resources AS resources
    LEFT JOIN resource_matched_costs AS matched USING (resource_key)
    CROSS JOIN day_estimated
    WHERE resources.has_resource_costs
),

usage_type_owners AS (
    -- Each distinct usage type of a shared service, and the resource type it is (a usage type
    -- belongs to one type at most: the collectors' prefixes of one service never overlap).
    SELECT
        usage.cost_explorer_service,
        usage.usage_type,
        min(owners.resource_type) AS resource_type
    FROM (
        SELECT DISTINCT service AS cost_explorer_service, usage_type
        FROM snapshot_costs
        WHERE source = 'usage_type'
    ) AS usage
    JOIN cost_usage_types AS owners
        ON owners.cost_explorer_service = usage.cost_explorer_service
        AND (
            starts_with(usage.usage_type, owners.usage_type_prefix)
            OR starts_with(substr(usage.usage_type, strpos(usage.usage_type, '-') + 1), owners.usage_type_prefix)
        )
    GROUP BY usage.cost_explorer_service, usage.usage_type
),

type_totals AS (
    -- The day's spend per (account, resource type): the service total of a type that is its
    -- service's only one, the spend of its own usage types for a type of a shared service.
    SELECT
        totals.account_id,
        service_map.resource_type,
        totals.amortized_cost,
        totals.unblended_cost,
        totals.estimated
    FROM service_totals AS totals
    JOIN cost_service_map AS service_map USING (cost_explorer_service)
    WHERE service_map.cost_explorer_service NOT IN (SELECT cost_explorer_service FROM cost_usage_types)
    UNION ALL
    SELECT
        costs.account_id,
        owners.resource_type,
        coalesce(sum(costs.amount) FILTER (WHERE costs.metric = 'AmortizedCost'), 0),
        coalesce(sum(costs.amount) FILTER (WHERE costs.metric = 'UnblendedCost'), 0),
        bool_or(costs.estimated)
    FROM snapshot_costs AS costs
    JOIN usage_type_owners AS owners
        ON owners.cost_explorer_service = costs.service
        AND owners.usage_type = costs.usage_type
    WHERE costs.source = 'usage_type'
    GROUP BY costs.account_id, owners.resource_type
),

service_share_positions AS (
    -- Each resource's place among those sharing its (account, type) spend, and that spend in
    -- units of 1e-10 (exact integers: DECIMAL(38,10) scaled by 10^10).
    SELECT
        resources.resource_key,
        count(*) OVER sharing AS sharers,
        row_number() OVER (
            sharing
            ORDER BY resources.resource_id, resources.arn, resources.region, resources.resource_key
        ) AS share_position,
        CAST(coalesce(totals.amortized_cost, 0) * 10000000000 AS HUGEINT) AS amortized_units,
        CAST(coalesce(totals.unblended_cost, 0) * 10000000000 AS HUGEINT) AS unblended_units,
        coalesce(totals.estimated, day_estimated.estimated) AS cost_estimated
    FROM costed_resources AS resources
    LEFT JOIN type_totals AS totals
        ON totals.account_id = resources.account_id
        AND totals.resource_type = resources.resource_type
    CROSS JOIN day_estimated
    WHERE NOT resources.has_resource_costs
    WINDOW sharing AS (PARTITION BY resources.account_id, resources.resource_type)
),

service_share_units AS (
    -- Equal share truncated toward zero, plus one unit of the remainder's sign for the first
    -- |remainder| resources: the shares sum to the total exactly.
    SELECT
        resource_key,
        cost_estimated,
        amortized_units // sharers
        + CASE WHEN share_position <= abs(amortized_units % sharers) THEN sign(amortized_units) ELSE 0 END
            AS amortized_share_units,
        unblended_units // sharers
        + CASE WHEN share_position <= abs(unblended_units % sharers) THEN sign(unblended_units) ELSE 0 END
            AS unblended_share_units
    FROM service_share_positions
),

service_average_costs AS (
    SELECT
        resource_key,
        'service_average' AS cost_basis,
        CAST(amortized_share_units AS DECIMAL(38, 0)) * CAST(0.0000000001 AS DECIMAL(38, 10)) AS amortized_cost,
        CAST(unblended_share_units AS DECIMAL(38, 0)) * CAST(0.0000000001 AS DECIMAL(38, 10)) AS unblended_cost,
        cost_estimated
    FROM service_share_units
),

costed AS (
    SELECT * FROM resource_basis_costs
    UNION ALL
    SELECT * FROM service_average_costs
)

SELECT
    snapshot.resource_key,
    costed.cost_basis,
    CAST(costed.amortized_cost AS DECIMAL(38, 10)) AS amortized_cost,
    CAST(costed.unblended_cost AS DECIMAL(38, 10)) AS unblended_cost,
    costed.cost_estimated
FROM snapshot
LEFT JOIN costed USING (resource_key)
ORDER BY snapshot.resource_key
