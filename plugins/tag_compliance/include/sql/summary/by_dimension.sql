-- Produces: compliance of one snapshot ($day) per value of one dimension ($dimension), worst first.
-- Accounts are labelled with their name where AWS Organizations gave one: "name (id)".
SELECT
    CASE
        WHEN $dimension = 'account' AND account_names.name IS NOT NULL
            THEN account_names.name || ' (' || dimension_value || ')'
        ELSE dimension_value
    END AS dimension_value,
    resources_in_scope AS in_scope,
    resources_compliant AS compliant,
    round(compliance_pct, 1) AS compliance_pct,
    violations
FROM compliance_summary
LEFT JOIN account_names
    ON $dimension = 'account'
    AND account_names.account_id = compliance_summary.dimension_value
WHERE dimension = $dimension
  AND snapshot_date = $day
ORDER BY compliance_pct, compliance_summary.dimension_value
