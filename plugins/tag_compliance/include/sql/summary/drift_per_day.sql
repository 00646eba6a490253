-- Produces: per inventory snapshot, how many resources and tags changed since the previous one.
SELECT
    snapshot_date,
    count(*) FILTER (WHERE change = 'resource_created') AS created,
    count(*) FILTER (WHERE change = 'resource_deleted') AS deleted,
    count(*) FILTER (WHERE change = 'tag_added') AS tags_added,
    count(*) FILTER (WHERE change = 'tag_removed') AS tags_removed,
    count(*) FILTER (WHERE change = 'tag_value_changed') AS values_changed
FROM tag_drift
GROUP BY ALL
ORDER BY snapshot_date
