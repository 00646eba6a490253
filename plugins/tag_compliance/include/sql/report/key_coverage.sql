-- Produces: per tag rule key, one snapshot's ($day) coverage and the spend on resources failing it.
WITH
coverage AS (
    SELECT
        dimension_value AS tag_key,
        resources_in_scope,
        resources_compliant,
        resources_exempt,
        compliance_pct,
        violations
    FROM compliance_summary
    WHERE dimension = 'tag_key'
      AND snapshot_date = $day
),

failing_spend AS (
    SELECT
        tag_key,
        sum(amortized_cost) AS failing_cost
    FROM attribution_gap
    WHERE snapshot_date = $day
      AND gap_reason = 'tag_violation'
    GROUP BY tag_key
)

SELECT
    coverage.*,
    failing_spend.failing_cost
FROM coverage
LEFT JOIN failing_spend USING (tag_key)
ORDER BY coverage.compliance_pct NULLS LAST, coverage.tag_key
