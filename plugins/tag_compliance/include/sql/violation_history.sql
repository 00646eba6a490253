-- Produces: violation_history — one row per violation episode, from first seen to resolved or still open.
--
-- Inputs: the warehouse views `violation_changes` (each scored day's violations opened, resolved
-- and updated against the scored day before: the episode bookkeeping, refreshed at every publish)
-- and `compliance_summary` (which days are scored). The scored dates are the snapshot_dates with
-- scored resources (an 'overall' summary row), in order; calendar days without a scored snapshot
-- do not break an episode. A violation is (account_id, region, resource_type, resource_id,
-- tag_key, violation_type); an episode is a maximal run of consecutive scored dates on which it
-- appears: it starts with an 'opened' change and ends with the next 'resolved' one, so a resource
-- deleted and recreated with the same id and violation has two episodes.
-- arn and severity: as on last_seen (the more severe if the resource is listed twice that day):
-- the episode's latest change carries them (a resolved change carries the values of the day before).
-- days_open = last_seen - first_seen + 1 (calendar days); snapshots_seen = scored dates from
-- first_seen to last_seen.
-- status: 'open' when last_seen is the latest scored date, else 'resolved'; then resolved_on is
-- the first scored date after last_seen and resolution says why the violation is gone: 'fixed'
-- (the resource is in resource_compliance on resolved_on) or 'resource_deleted' (it is not);
-- days_to_resolve = resolved_on - first_seen. All three are NULL for an open episode.
WITH
scored_dates AS (
    SELECT snapshot_date, row_number() OVER (ORDER BY snapshot_date) AS date_position
    FROM (SELECT DISTINCT snapshot_date FROM compliance_summary WHERE dimension = 'overall')
),

numbered_changes AS (
    -- Each change with its episode's number: the 'opened' changes of its violation up to it.
    SELECT
        *,
        sum(CASE WHEN change = 'opened' THEN 1 ELSE 0 END) OVER (
            PARTITION BY account_id, region, resource_type, resource_id, tag_key, violation_type
            ORDER BY snapshot_date
            ROWS UNBOUNDED PRECEDING
        ) AS episode
    FROM violation_changes
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
        max(snapshot_date) FILTER (WHERE change = 'resolved') AS resolved_on,
        max(previous_snapshot_date) FILTER (WHERE change = 'resolved') AS resolved_after,
        max(resolution) FILTER (WHERE change = 'resolved') AS resolution
    FROM numbered_changes
    GROUP BY account_id, region, resource_type, resource_id, tag_key, violation_type, episode
),

bounded_episodes AS (
    -- An open episode lasts to the latest scored date.
    SELECT
        episodes.*,
        coalesce(episodes.resolved_after, (SELECT max(snapshot_date) FROM scored_dates)) AS last_seen
    FROM episodes
)

SELECT
    bounded_episodes.account_id,
    bounded_episodes.region,
    bounded_episodes.resource_type,
    bounded_episodes.resource_id,
    bounded_episodes.arn,
    bounded_episodes.tag_key,
    bounded_episodes.violation_type,
    bounded_episodes.severity,
    bounded_episodes.first_seen,
    bounded_episodes.last_seen,
    last_scored.date_position - first_scored.date_position + 1 AS snapshots_seen,
    bounded_episodes.last_seen - bounded_episodes.first_seen + 1 AS days_open,
    CASE WHEN bounded_episodes.resolved_on IS NULL THEN 'open' ELSE 'resolved' END AS status,
    bounded_episodes.resolved_on,
    bounded_episodes.resolution,
    bounded_episodes.resolved_on - bounded_episodes.first_seen AS days_to_resolve
FROM bounded_episodes
JOIN scored_dates AS first_scored ON first_scored.snapshot_date = bounded_episodes.first_seen
JOIN scored_dates AS last_scored ON last_scored.snapshot_date = bounded_episodes.last_seen
ORDER BY
    bounded_episodes.account_id,
    bounded_episodes.region,
    bounded_episodes.resource_type,
    bounded_episodes.resource_id,
    bounded_episodes.tag_key,
    bounded_episodes.violation_type,
    bounded_episodes.first_seen
