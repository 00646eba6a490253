-- Reference for tests only: the view as one query over every day, before the history was precomputed
-- per day (plugins/tag_compliance/history.py). tests/test_history_refresh.py checks the two agree.
--
-- Produces: tag_drift — per resource, what changed since the previous inventory snapshot.
--
-- Input: the warehouse view `resources`. Each inventory snapshot (a distinct snapshot_date of
-- `resources`) is compared with the one before it; the first yields no rows. A resource is
-- (account_id, region, resource_type, resource_id); should an inventory hold one twice, its
-- service_api row, then the latest collected, then the smallest ARN stands for it.
-- change:
--   resource_created   absent from the previous inventory (tag_key NULL; its tags are not drift,
--                      so no tag_added rows);
--   resource_deleted   absent from this inventory: one row at the first inventory without it,
--                      with the ARN it had (tag_key NULL);
--   tag_added, tag_removed, tag_value_changed   per key of a resource in both inventories. Keys
--                      compare exactly: a key whose case changed is one removed plus one added.
-- previous_value / value: the key's value in the previous / this inventory (NULL when absent).
-- An account or region missing from one inventory (a failed collection) shows as deleted and
-- then created again.
WITH
inventory_dates AS (
    SELECT
        snapshot_date,
        lag(snapshot_date) OVER (ORDER BY snapshot_date) AS previous_snapshot_date,
        lead(snapshot_date) OVER (ORDER BY snapshot_date) AS next_snapshot_date
    FROM (SELECT DISTINCT snapshot_date FROM resources)
),

inventoried_resources AS (
    -- Each resource once per inventory, with the inventories before and after it.
    SELECT
        resources.snapshot_date,
        inventory_dates.previous_snapshot_date,
        inventory_dates.next_snapshot_date,
        resources.account_id,
        resources.region,
        resources.resource_type,
        resources.resource_id,
        resources.arn,
        coalesce(resources.tags, MAP {}::MAP(VARCHAR, VARCHAR)) AS tags
    FROM resources
    JOIN inventory_dates USING (snapshot_date)
    QUALIFY row_number() OVER (
        PARTITION BY
            resources.snapshot_date,
            resources.account_id,
            resources.region,
            resources.resource_type,
            resources.resource_id
        ORDER BY
            resources.source = 'service_api' DESC,
            resources.collected_at DESC NULLS LAST,
            resources.arn
    ) = 1
),

consecutive_pairs AS (
    -- Every resource of an inventory next to itself in the previous one: full join, so a side
    -- is NULL for a resource created (no previous) or deleted (no current).
    SELECT
        coalesce(current_inventory.snapshot_date, previous_inventory.next_snapshot_date) AS snapshot_date,
        coalesce(current_inventory.previous_snapshot_date, previous_inventory.snapshot_date)
            AS previous_snapshot_date,
        coalesce(current_inventory.account_id, previous_inventory.account_id) AS account_id,
        coalesce(current_inventory.region, previous_inventory.region) AS region,
        coalesce(current_inventory.resource_type, previous_inventory.resource_type) AS resource_type,
        coalesce(current_inventory.resource_id, previous_inventory.resource_id) AS resource_id,
        CASE
            WHEN current_inventory.snapshot_date IS NOT NULL THEN current_inventory.arn
            ELSE previous_inventory.arn
        END AS arn,
        current_inventory.snapshot_date IS NOT NULL AS in_current,
        previous_inventory.snapshot_date IS NOT NULL AS in_previous,
        previous_inventory.tags AS previous_tags,
        current_inventory.tags AS current_tags
    FROM (SELECT * FROM inventoried_resources WHERE previous_snapshot_date IS NOT NULL) AS current_inventory
    FULL JOIN (SELECT * FROM inventoried_resources WHERE next_snapshot_date IS NOT NULL) AS previous_inventory
        ON previous_inventory.snapshot_date = current_inventory.previous_snapshot_date
        AND previous_inventory.account_id = current_inventory.account_id
        AND previous_inventory.region = current_inventory.region
        AND previous_inventory.resource_type = current_inventory.resource_type
        AND previous_inventory.resource_id = current_inventory.resource_id
),

resource_changes AS (
    SELECT
        snapshot_date,
        previous_snapshot_date,
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

tag_keys_of_kept_resources AS (
    -- Resources in both inventories: every key either inventory has, once.
    SELECT
        * EXCLUDE (in_current, in_previous),
        unnest(list_distinct(list_concat(map_keys(previous_tags), map_keys(current_tags)))) AS tag_key
    FROM consecutive_pairs
    WHERE in_current AND in_previous
),

tag_changes AS (
    SELECT
        snapshot_date,
        previous_snapshot_date,
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
    FROM tag_keys_of_kept_resources
    WHERE NOT map_contains(previous_tags, tag_key)
       OR NOT map_contains(current_tags, tag_key)
       OR map_extract_value(previous_tags, tag_key) IS DISTINCT FROM map_extract_value(current_tags, tag_key)
)

SELECT * FROM resource_changes
UNION ALL
SELECT * FROM tag_changes
ORDER BY
    snapshot_date,
    account_id,
    region,
    resource_type,
    resource_id,
    tag_key NULLS FIRST,
    change
