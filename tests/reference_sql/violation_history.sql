-- Reference for tests only: the view as one query over every day, before the history was precomputed
-- per day (plugins/tag_compliance/history.py). tests/test_history_refresh.py checks the two agree.
--
-- Produces: violation_history — one row per violation episode, from first seen to resolved or still open.
--
-- Inputs: the warehouse views `violations` and `resource_compliance`. The scored dates are the
-- distinct snapshot_dates of resource_compliance, in order (calendar days without a scored snapshot
-- do not break an episode). A violation is (account_id, region, resource_type, resource_id,
-- tag_key, violation_type); an episode is a maximal run of consecutive scored dates on which it
-- appears, so a resource deleted and recreated with the same id and violation has two episodes.
-- arn and severity: as on last_seen (the more severe if the resource is listed twice that day).
-- days_open = last_seen - first_seen + 1 (calendar days).
-- status: 'open' when last_seen is the latest scored date, else 'resolved'; then resolved_on is
-- the first scored date after last_seen and resolution says why the violation is gone: 'fixed'
-- (the resource is in resource_compliance on resolved_on) or 'resource_deleted' (it is not);
-- days_to_resolve = resolved_on - first_seen. All three are NULL for an open episode.
WITH
scored_dates AS (
    SELECT
        snapshot_date,
        row_number() OVER (ORDER BY snapshot_date) AS date_position,
        lead(snapshot_date) OVER (ORDER BY snapshot_date) AS next_scored_date
    FROM (SELECT DISTINCT snapshot_date FROM resource_compliance)
),

scored_resources AS (
    -- Which resources each scored date holds.
    SELECT DISTINCT snapshot_date, account_id, region, resource_type, resource_id
    FROM resource_compliance
),

violation_sightings AS (
    -- Each violation once per scored date it appears on.
    SELECT
        violations.account_id,
        violations.region,
        violations.resource_type,
        violations.resource_id,
        violations.tag_key,
        violations.violation_type,
        violations.snapshot_date,
        scored_dates.date_position,
        min(violations.arn) AS arn,
        min(violations.severity) AS severity  -- 'error' < 'warning'
    FROM violations
    JOIN scored_dates USING (snapshot_date)
    GROUP BY ALL
),

episode_sightings AS (
    -- Consecutive scored dates of one violation share date_position - (its n-th sighting).
    SELECT
        *,
        date_position - row_number() OVER (
            PARTITION BY account_id, region, resource_type, resource_id, tag_key, violation_type
            ORDER BY snapshot_date
        ) AS episode
    FROM violation_sightings
),

episodes AS (
    SELECT
        account_id,
        region,
        resource_type,
        resource_id,
        tag_key,
        violation_type,
        arg_max(arn, snapshot_date) AS arn,
        arg_max(severity, snapshot_date) AS severity,
        min(snapshot_date) AS first_seen,
        max(snapshot_date) AS last_seen,
        count(*) AS snapshots_seen
    FROM episode_sightings
    GROUP BY account_id, region, resource_type, resource_id, tag_key, violation_type, episode
),

resolved_episodes AS (
    -- Each episode with the scored date after its last: NULL when it is still open.
    SELECT
        episodes.*,
        scored_dates.next_scored_date AS resolved_on
    FROM episodes
    JOIN scored_dates ON scored_dates.snapshot_date = episodes.last_seen
)

SELECT
    resolved_episodes.account_id,
    resolved_episodes.region,
    resolved_episodes.resource_type,
    resolved_episodes.resource_id,
    resolved_episodes.arn,
    resolved_episodes.tag_key,
    resolved_episodes.violation_type,
    resolved_episodes.severity,
    resolved_episodes.first_seen,
    resolved_episodes.last_seen,
    resolved_episodes.snapshots_seen,
    resolved_episodes.last_seen - resolved_episodes.first_seen + 1 AS days_open,
    CASE WHEN resolved_episodes.resolved_on IS NULL THEN 'open' ELSE 'resolved' END AS status,
    resolved_episodes.resolved_on,
    CASE
        WHEN resolved_episodes.resolved_on IS NULL THEN NULL
        WHEN scored_resources.snapshot_date IS NOT NULL THEN 'fixed'
        ELSE 'resource_deleted'
    END AS resolution,
    resolved_episodes.resolved_on - resolved_episodes.first_seen AS days_to_resolve
FROM resolved_episodes
LEFT JOIN scored_resources
    ON scored_resources.snapshot_date = resolved_episodes.resolved_on
    AND scored_resources.account_id = resolved_episodes.account_id
    AND scored_resources.region = resolved_episodes.region
    AND scored_resources.resource_type = resolved_episodes.resource_type
    AND scored_resources.resource_id = resolved_episodes.resource_id
ORDER BY
    resolved_episodes.account_id,
    resolved_episodes.region,
    resolved_episodes.resource_type,
    resolved_episodes.resource_id,
    resolved_episodes.tag_key,
    resolved_episodes.violation_type,
    resolved_episodes.first_seen
