-- Produces: one scored day's violation_changes rows — violations opened, resolved or updated since the scored day before.
--
-- Inputs (views over the two committed scored days' files): `current_violations` and
-- `previous_violations` (rows of the lake's violations dataset; the previous one has no rows
-- on the first scored day), and `current_resources` (resource_compliance of the day). Parameters:
-- $snapshot_date and $previous_snapshot_date. A violation is (account_id, region, resource_type,
-- resource_id, tag_key, violation_type), tag_key NULL for too_many_tags; its arn and severity on
-- a day are the smallest listed that day ('error' < 'warning').
-- change:
--   opened    on this day, not on the previous one; arn and severity as on this day;
--   resolved  on the previous day, not on this one; arn and severity as on the previous day
--             (the episode's last), resolution 'fixed' when the resource is scored on this day,
--             else 'resource_deleted';
--   updated   on both, with another arn or severity: as on this day.
-- Unordered: the view sorts.
WITH
current_sightings AS (
    SELECT
        account_id, region, resource_type, resource_id, tag_key, violation_type,
        min(arn) AS arn,
        min(severity) AS severity
    FROM current_violations
    GROUP BY ALL
),

previous_sightings AS (
    SELECT
        account_id, region, resource_type, resource_id, tag_key, violation_type,
        min(arn) AS arn,
        min(severity) AS severity
    FROM previous_violations
    GROUP BY ALL
),

paired_sightings AS (
    SELECT
        coalesce(current_sightings.account_id, previous_sightings.account_id) AS account_id,
        coalesce(current_sightings.region, previous_sightings.region) AS region,
        coalesce(current_sightings.resource_type, previous_sightings.resource_type) AS resource_type,
        coalesce(current_sightings.resource_id, previous_sightings.resource_id) AS resource_id,
        coalesce(current_sightings.tag_key, previous_sightings.tag_key) AS tag_key,
        coalesce(current_sightings.violation_type, previous_sightings.violation_type) AS violation_type,
        current_sightings.violation_type IS NOT NULL AS seen_now,
        previous_sightings.violation_type IS NOT NULL AS seen_before,
        current_sightings.arn AS current_arn,
        current_sightings.severity AS current_severity,
        previous_sightings.arn AS previous_arn,
        previous_sightings.severity AS previous_severity
    FROM current_sightings
    FULL JOIN previous_sightings
        ON previous_sightings.account_id = current_sightings.account_id
        AND previous_sightings.region = current_sightings.region
        AND previous_sightings.resource_type = current_sightings.resource_type
        AND previous_sightings.resource_id = current_sightings.resource_id
        AND previous_sightings.tag_key IS NOT DISTINCT FROM current_sightings.tag_key
        AND previous_sightings.violation_type = current_sightings.violation_type
),

changes AS (
    SELECT
        account_id, region, resource_type, resource_id, tag_key, violation_type,
        CASE WHEN seen_now THEN current_arn ELSE previous_arn END AS arn,
        CASE WHEN seen_now THEN current_severity ELSE previous_severity END AS severity,
        CASE
            WHEN NOT seen_before THEN 'opened'
            WHEN NOT seen_now THEN 'resolved'
            ELSE 'updated'
        END AS change
    FROM paired_sightings
    WHERE NOT (seen_now AND seen_before)
       OR current_arn IS DISTINCT FROM previous_arn
       OR current_severity IS DISTINCT FROM previous_severity
),

resources_still_there AS (
    SELECT DISTINCT account_id, region, resource_type, resource_id
    FROM current_resources
)

SELECT
    $snapshot_date::DATE AS snapshot_date,
    $previous_snapshot_date::DATE AS previous_snapshot_date,
    changes.account_id,
    changes.region,
    changes.resource_type,
    changes.resource_id,
    changes.arn,
    changes.tag_key,
    changes.violation_type,
    changes.severity,
    changes.change,
    CASE
        WHEN changes.change <> 'resolved' THEN NULL
        WHEN resources_still_there.resource_id IS NOT NULL THEN 'fixed'
        ELSE 'resource_deleted'
    END AS resolution
FROM changes
LEFT JOIN resources_still_there
    ON changes.change = 'resolved'
    AND resources_still_there.account_id = changes.account_id
    AND resources_still_there.region = changes.region
    AND resources_still_there.resource_type = changes.resource_type
    AND resources_still_there.resource_id = changes.resource_id
