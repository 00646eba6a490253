-- Produces: violations of one snapshot ($day) per type and severity, most frequent first.
SELECT
    violation_type,
    severity,
    count(*) AS violations,
    count(DISTINCT arn) AS resources
FROM violations
WHERE snapshot_date = $day
GROUP BY ALL
ORDER BY violations DESC
