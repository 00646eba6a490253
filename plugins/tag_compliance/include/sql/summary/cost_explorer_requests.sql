-- Produces: one row: the Cost Explorer requests of one run ($day) and what AWS would charge.
SELECT
    coalesce(sum(pages), 0) AS requests,
    coalesce(sum(request_cost_usd), 0)::DECIMAL(18, 2) AS request_cost
FROM api_calls
WHERE snapshot_date = $day
  AND service = 'ce'
