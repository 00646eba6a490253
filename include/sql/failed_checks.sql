-- Produces: failed_checks — every failed check (by resource_key) and the exemption that waives
-- it on the scored day, if any (violations and exempted_violations are its two halves, with the
-- resource's identity added there: kept narrow here, as it is one row per failure).
--
-- Inputs: tag_checks, snapshot, policy_exemptions, policy_exemption_resources,
-- policy_exemption_keys, run_info (scored_date: the day exemptions are judged on;
-- inventory_as_of: the date of the resources scored).
-- An exemption waives a check while scored_date <= expires, when one of its resource globs
-- matches the resource's ARN or id (case-sensitive) and it either names no keys or one of its
-- key globs matches the check's tag key ignoring case (the tag limit has no key: only an
-- exemption without keys waives it). The first such exemption in policy order is reported.
WITH
failed AS MATERIALIZED (
    -- check_id: any unique id of a failed check (nothing is ordered by it).
    SELECT
        row_number() OVER () AS check_id,
        *
    FROM tag_checks
),

exemptions_in_force AS (
    SELECT policy_exemptions.*
    FROM policy_exemptions
    CROSS JOIN run_info
    WHERE run_info.scored_date <= policy_exemptions.expires
),

waivers AS (
    -- Every exemption in force that covers a failed check.
    SELECT
        failed.check_id,
        exemptions.exemption_id,
        exemptions.reason,
        exemptions.expires
    FROM failed
    JOIN snapshot USING (resource_key)
    JOIN exemptions_in_force AS exemptions
        ON EXISTS (
            SELECT 1
            FROM policy_exemption_resources AS covered
            WHERE covered.exemption_id = exemptions.exemption_id
              AND (
                  snapshot.arn LIKE covered.like_pattern ESCAPE '\'
                  OR snapshot.resource_id LIKE covered.like_pattern ESCAPE '\'
              )
        )
        AND (
            exemptions.all_keys
            OR EXISTS (
                SELECT 1
                FROM policy_exemption_keys AS waived
                WHERE waived.exemption_id = exemptions.exemption_id
                  AND lower(failed.tag_key) LIKE lower(waived.like_pattern) ESCAPE '\'
            )
        )
),

first_waivers AS (
    SELECT DISTINCT ON (check_id)
        check_id,
        reason AS exemption_reason,
        expires AS exemption_expires
    FROM waivers
    ORDER BY check_id, exemption_id
)

SELECT
    failed.check_id,
    failed.resource_key,
    failed.rule_id,
    failed.tag_key,
    failed.violation_type,
    failed.severity,
    failed.current_value,
    failed.expected,
    first_waivers.exemption_reason,
    first_waivers.exemption_expires,
    first_waivers.check_id IS NOT NULL AS exempt
FROM failed
LEFT JOIN first_waivers USING (check_id)
