-- Produces: one day's ($day) untagged spend per required key, as Cost Explorer groups it.
SELECT
    tag_key,
    '$' || sum(untagged_amortized_cost)::DECIMAL(18, 2) AS untagged,
    round(100 * sum(untagged_amortized_cost) / sum(total_amortized_cost), 1) AS untagged_pct
FROM untagged_spend
WHERE usage_date = $day
GROUP BY ALL
ORDER BY tag_key
