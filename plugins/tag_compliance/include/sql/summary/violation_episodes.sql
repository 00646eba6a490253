-- Produces: violation episodes by status and resolution, with the mean days to resolve.
SELECT
    status,
    coalesce(resolution, '') AS resolution,
    count(*) AS episodes,
    round(avg(days_to_resolve), 1) AS avg_days_to_resolve
FROM violation_history
GROUP BY ALL
ORDER BY status, resolution
