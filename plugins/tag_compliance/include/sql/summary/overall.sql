-- Produces: the overall compliance row of one snapshot ($day), for the demo's headline.
SELECT
    snapshot_date,
    resources_total,
    resources_in_scope,
    resources_compliant,
    round(compliance_pct, 1) AS compliance_pct,
    policy_version,
    targets_planned,
    targets_collected,
    round(collection_coverage_pct, 1) AS collection_coverage_pct
FROM compliance_summary
WHERE dimension = 'overall'
  AND snapshot_date = $day
