-- Produces: one row: the day's spend ($day), the part of it on resources of inventoried types, and its share.
WITH
day_spend AS (
    SELECT sum(amount) AS spend
    FROM costs
    WHERE usage_date = $day
      AND source = 'service'
      AND metric = 'AmortizedCost'
),

inventoried AS (
    SELECT sum(amortized_cost) AS spend
    FROM coverage
    WHERE snapshot_date = $day
)

SELECT
    day_spend.spend,
    inventoried.spend AS inventoried_spend,
    round(100 * inventoried.spend::DOUBLE / nullif(day_spend.spend, 0)::DOUBLE, 1) AS inventoried_pct
FROM day_spend
CROSS JOIN inventoried
