-- Produces: every scored snapshot_date (the overall rows of compliance_summary), oldest first.
SELECT DISTINCT snapshot_date
FROM compliance_summary
WHERE dimension = 'overall'
ORDER BY snapshot_date
