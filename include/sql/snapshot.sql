-- Produces: snapshot — every resource of the snapshot once, with a surrogate resource_key.
--
-- Input: snapshot_resources (the columns of the lake's `resources` dataset).
-- Every later step joins on resource_key, so even two identical rows in a snapshot stay two
-- resources and no count depends on the natural key being unique.
SELECT
    row_number() OVER () AS resource_key,
    account_id,
    region,
    service,
    resource_type,
    resource_id,
    arn,
    name,
    state,
    created_at,
    tags,
    source,
    collected_at
FROM snapshot_resources
