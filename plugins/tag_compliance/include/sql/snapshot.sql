-- Produces: snapshot — every resource of the snapshot once, with a surrogate resource_key.
--
-- Input: keyed_resources (the columns of the lake's `resources` dataset and resource_key, a
-- unique, stable BIGINT: from the file and row a resource is stored at when read from the lake).
-- Every later step joins on resource_key, so even two identical rows in a snapshot stay two
-- resources and no count depends on the natural key being unique. A view: every step reads
-- only the columns it needs, straight from the files, and the tag maps are never copied.
SELECT
    resource_key,
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
FROM keyed_resources
