-- Produces: one row: the headline figures of one snapshot ($day); no row when the day was not scored.
WITH
overall AS (
    SELECT
        snapshot_date,
        inventory_as_of,
        policy_version,
        resources_total,
        resources_in_scope,
        resources_compliant,
        resources_exempt,
        violations,
        error_violations,
        compliance_pct,
        cost_compliance_pct,
        cost_compliant,
        targets_planned,
        targets_collected,
        collection_coverage_pct
    FROM compliance_summary
    WHERE dimension = 'overall'
      AND snapshot_date = $day
),

day_spend AS (
    -- The day's whole amortized spend, as Cost Explorer totals it per account and service.
    SELECT sum(amount) AS total_spend
    FROM costs
    WHERE usage_date = $day
      AND source = 'service'
      AND metric = 'AmortizedCost'
),

day_gap AS (
    -- Rows without a tag key partition the gap; keyed rows only break it down.
    SELECT sum(amortized_cost) AS attribution_gap
    FROM attribution_gap
    WHERE snapshot_date = $day
      AND tag_key IS NULL
),

day_inventoried AS (
    -- The part of the spend on resources of inventoried types (the rest: Support, Tax, data
    -- transfer, deleted resources, types no collector lists).
    SELECT sum(amortized_cost) AS inventoried_spend
    FROM coverage
    WHERE snapshot_date = $day
)

SELECT
    overall.*,
    day_spend.total_spend,
    day_gap.attribution_gap,
    day_inventoried.inventoried_spend,
    100 * day_inventoried.inventoried_spend::DOUBLE / nullif(day_spend.total_spend, 0)::DOUBLE AS inventoried_spend_pct
FROM overall
CROSS JOIN day_spend
CROSS JOIN day_gap
CROSS JOIN day_inventoried
