-- Produces: compliance of one snapshot ($day) per value of one dimension ($dimension), worst first.
SELECT
    dimension_value,
    resources_in_scope,
    resources_compliant,
    resources_exempt,
    compliance_pct,
    violations,
    error_violations,
    cost_in_scope,
    cost_compliant,
    cost_compliance_pct
FROM compliance_summary
WHERE dimension = $dimension
  AND snapshot_date = $day
ORDER BY compliance_pct NULLS LAST, dimension_value
