-- Produces: compliance of one snapshot ($day) per value of one dimension ($dimension), worst first.
SELECT
    dimension_value,
    resources_in_scope AS in_scope,
    resources_compliant AS compliant,
    round(compliance_pct, 1) AS compliance_pct,
    violations
FROM compliance_summary
WHERE dimension = $dimension
  AND snapshot_date = $day
ORDER BY compliance_pct, dimension_value
