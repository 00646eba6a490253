-- Produces: coverage — per scored snapshot, account, region and resource type: the resources each source saw, whether never-tagged ones of the type are visible, and the type's spend.
--
-- Inputs: the warehouse views resource_compliance (every scored resource, with its cost) and
-- resources (the inventory it was scored from, with the source that saw each resource).
-- A type a service's own API lists ('service_api') shows its never-tagged resources too; a type
-- only the Tagging API's breadth listing sees ('tagging_api') shows tagged (or once-tagged) ones
-- only: its never-tagged resources are missing from every other view as well.
-- The costs are the resources' (NULL when the day has no costs or Cost Explorer bills the type
-- under no service mapped to it).
WITH
resource_sources AS (
    -- The source of each resource of each inventory (identical rows once: a count per resource
    -- comes from resource_compliance, which keeps them apart).
    SELECT DISTINCT
        snapshot_date AS inventory_as_of,
        account_id,
        region,
        resource_type,
        arn,
        source
    FROM resources
),

scored_resources AS (
    SELECT
        scored.snapshot_date,
        scored.inventory_as_of,
        scored.account_id,
        scored.region,
        scored.resource_type,
        sources.source,
        scored.amortized_cost,
        scored.unblended_cost
    FROM resource_compliance AS scored
    LEFT JOIN resource_sources AS sources
        ON sources.inventory_as_of = scored.inventory_as_of
        AND sources.account_id = scored.account_id
        AND sources.region = scored.region
        AND sources.resource_type = scored.resource_type
        AND sources.arn = scored.arn
)

SELECT
    snapshot_date,
    account_id,
    region,
    resource_type,
    count(*) AS resources,
    count(*) FILTER (WHERE source = 'service_api') AS service_api_resources,
    count(*) FILTER (WHERE source = 'tagging_api') AS tagging_api_resources,
    count(*) FILTER (WHERE source = 'service_api') > 0 AS never_tagged_visible,
    CAST(sum(amortized_cost) AS DECIMAL(38, 10)) AS amortized_cost,
    CAST(sum(unblended_cost) AS DECIMAL(38, 10)) AS unblended_cost,
    any_value(inventory_as_of) AS inventory_as_of
FROM scored_resources
GROUP BY snapshot_date, account_id, region, resource_type
