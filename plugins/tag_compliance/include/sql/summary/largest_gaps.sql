-- Produces: the five largest parts of one snapshot's ($day) attribution gap: by tag key or no resource.
SELECT
    coalesce(account_names.name || ' (' || attribution_gap.account_id || ')', attribution_gap.account_id)
        AS account,
    coalesce(resource_type, cost_explorer_service) AS spend_on,
    coalesce('bad ' || tag_key, 'no resource') AS why,
    '$' || amortized_cost::DECIMAL(18, 2) AS amortized_cost
FROM attribution_gap
LEFT JOIN account_names USING (account_id)
WHERE snapshot_date = $day
  AND gap_reason IN ('tag_violation', 'no_resource')
ORDER BY attribution_gap.amortized_cost DESC
LIMIT 5
