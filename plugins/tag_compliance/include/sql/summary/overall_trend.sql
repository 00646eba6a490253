-- Produces: the overall daily trend of compliance and cost-weighted compliance.
SELECT
    snapshot_date,
    inventory_as_of AS inventory,
    resources_in_scope AS in_scope,
    round(compliance_pct, 1) AS compliance_pct,
    round(compliance_pct_change, 1) AS change_pp,
    round(cost_compliance_pct, 1) AS cost_compliance_pct,
    round(cost_compliance_pct_change, 1) AS cost_change_pp,
    violations
FROM compliance_trend
WHERE dimension = 'overall'
ORDER BY snapshot_date
