-- Produces: one row: the day's spend ($day), cost-weighted compliance, compliant spend and the gap.
WITH
day_spend AS (
    SELECT sum(amount) AS spend
    FROM costs
    WHERE usage_date = $day
      AND source = 'service'
      AND metric = 'AmortizedCost'
),

day_gap AS (
    -- Rows without a tag key partition the gap; keyed rows only break it down.
    SELECT sum(amortized_cost) AS gap
    FROM attribution_gap
    WHERE snapshot_date = $day
      AND tag_key IS NULL
)

SELECT
    day_spend.spend,
    round(summary.cost_compliance_pct, 1) AS cost_compliance_pct,
    summary.cost_compliant,
    day_gap.gap
FROM compliance_summary AS summary
CROSS JOIN day_spend
CROSS JOIN day_gap
WHERE summary.dimension = 'overall'
  AND summary.snapshot_date = $day
