-- Produces: the overall daily trend up to one snapshot ($day): compliance and cost-weighted compliance.
SELECT
    snapshot_date,
    resources_in_scope,
    resources_compliant,
    compliance_pct,
    compliance_pct_change,
    cost_compliance_pct,
    cost_compliance_pct_change
FROM compliance_trend
WHERE dimension = 'overall'
  AND snapshot_date <= $day
ORDER BY snapshot_date
