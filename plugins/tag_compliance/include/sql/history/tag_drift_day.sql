-- Produces: one inventory snapshot's tag_drift rows — what changed since the inventory before it.
--
-- Inputs (views over the two committed snapshots' files): `current_inventory` and
-- `previous_inventory`, rows of the lake's resources dataset with snapshot_date. Parameters:
-- $snapshot_date and $previous_snapshot_date. The semantics are the tag_drift view's (see
-- plugins/tag_compliance/warehouse.py VIEW_COLUMNS): a resource is (account_id, region,
-- resource_type, resource_id); listed twice in an inventory, its service_api row, then the latest
-- collected, then the smallest ARN stands for it. Keys compare exactly. Unordered: the view sorts.
WITH
current_resources AS (
    -- Each side deduplicated on its own (not one CTE over both read twice), so DuckDB streams
    -- the two inventories into the join instead of storing both with their tag maps.
    SELECT account_id, region, resource_type, resource_id, arn, tags
    FROM current_inventory
    QUALIFY row_number() OVER (
        PARTITION BY account_id, region, resource_type, resource_id
        ORDER BY source = 'service_api' DESC, collected_at DESC NULLS LAST, arn
    ) = 1
),

previous_resources AS (
    SELECT account_id, region, resource_type, resource_id, arn, tags
    FROM previous_inventory
    QUALIFY row_number() OVER (
        PARTITION BY account_id, region, resource_type, resource_id
        ORDER BY source = 'service_api' DESC, collected_at DESC NULLS LAST, arn
    ) = 1
),

consecutive_pairs AS (
    -- Each resource next to itself in the previous inventory: a side is NULL for a resource
    -- created (no previous) or deleted (no current).
    SELECT
        coalesce(current_resources.account_id, previous_resources.account_id) AS account_id,
        coalesce(current_resources.region, previous_resources.region) AS region,
        coalesce(current_resources.resource_type, previous_resources.resource_type) AS resource_type,
        coalesce(current_resources.resource_id, previous_resources.resource_id) AS resource_id,
        CASE
            WHEN current_resources.resource_id IS NOT NULL THEN current_resources.arn
            ELSE previous_resources.arn
        END AS arn,
        current_resources.resource_id IS NOT NULL AS in_current,
        previous_resources.resource_id IS NOT NULL AS in_previous,
        coalesce(previous_resources.tags, MAP {}::MAP(VARCHAR, VARCHAR)) AS previous_tags,
        coalesce(current_resources.tags, MAP {}::MAP(VARCHAR, VARCHAR)) AS current_tags
    FROM current_resources
    FULL JOIN previous_resources
        ON previous_resources.account_id = current_resources.account_id
        AND previous_resources.region = current_resources.region
        AND previous_resources.resource_type = current_resources.resource_type
        AND previous_resources.resource_id = current_resources.resource_id
),

resource_changes AS (
    SELECT
        account_id,
        region,
        resource_type,
        resource_id,
        arn,
        CASE WHEN in_current THEN 'resource_created' ELSE 'resource_deleted' END AS change,
        NULL::VARCHAR AS tag_key,
        NULL::VARCHAR AS previous_value,
        NULL::VARCHAR AS value
    FROM consecutive_pairs
    WHERE NOT (in_current AND in_previous)
),

tag_keys_of_retagged_resources AS (
    -- Resources in both inventories whose tags differ at all (most do not): every key either
    -- inventory has, once. Equal maps list the same keys and values in the same order.
    SELECT
        account_id,
        region,
        resource_type,
        resource_id,
        arn,
        previous_tags,
        current_tags,
        unnest(list_distinct(list_concat(map_keys(previous_tags), map_keys(current_tags)))) AS tag_key
    FROM consecutive_pairs
    WHERE in_current AND in_previous AND previous_tags IS DISTINCT FROM current_tags
),

tag_changes AS (
    SELECT
        account_id,
        region,
        resource_type,
        resource_id,
        arn,
        CASE
            WHEN NOT map_contains(previous_tags, tag_key) THEN 'tag_added'
            WHEN NOT map_contains(current_tags, tag_key) THEN 'tag_removed'
            ELSE 'tag_value_changed'
        END AS change,
        tag_key,
        map_extract_value(previous_tags, tag_key) AS previous_value,
        map_extract_value(current_tags, tag_key) AS value
    FROM tag_keys_of_retagged_resources
    WHERE NOT map_contains(previous_tags, tag_key)
       OR NOT map_contains(current_tags, tag_key)
       OR map_extract_value(previous_tags, tag_key) IS DISTINCT FROM map_extract_value(current_tags, tag_key)
)

SELECT $snapshot_date::DATE AS snapshot_date, $previous_snapshot_date::DATE AS previous_snapshot_date, *
FROM (
    SELECT * FROM resource_changes
    UNION ALL
    SELECT * FROM tag_changes
)
