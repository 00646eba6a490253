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
-- A check is identified by (resource_key, rule_id, tag_key, violation_type): at most one
-- violation per rule, one per prohibited key, one tag-limit violation per resource.
WITH
failed AS MATERIALIZED (
    SELECT *
    FROM tag_checks
),

exemptions_in_force AS (
    SELECT policy_exemptions.*
    FROM policy_exemptions
    CROSS JOIN run_info
    WHERE run_info.scored_date <= policy_exemptions.expires
),

exempted_resources AS (
    -- Every (resource, exemption in force) whose resource globs cover the resource: decided per
    -- resource, so a policy without exemptions costs one pass over nothing.
    SELECT
        snapshot.resource_key,
        exemptions.exemption_id,
        exemptions.all_keys,
        exemptions.reason,
        exemptions.expires
    FROM snapshot
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
),

waivers AS (
    -- Every exemption in force that covers a failed check.
    SELECT
        failed.resource_key,
        failed.rule_id,
        failed.tag_key,
        failed.violation_type,
        exempted.exemption_id,
        exempted.reason,
        exempted.expires
    FROM failed
    JOIN exempted_resources AS exempted USING (resource_key)
    WHERE exempted.all_keys
       OR EXISTS (
           SELECT 1
           FROM policy_exemption_keys AS waived
           WHERE waived.exemption_id = exempted.exemption_id
             AND lower(failed.tag_key) LIKE lower(waived.like_pattern) ESCAPE '\'
       )
),

first_waivers AS (
    SELECT DISTINCT ON (resource_key, rule_id, tag_key, violation_type)
        resource_key,
        rule_id,
        tag_key,
        violation_type,
        reason AS exemption_reason,
        expires AS exemption_expires
    FROM waivers
    ORDER BY resource_key, rule_id, tag_key, violation_type, exemption_id
)

SELECT
    failed.resource_key,
    failed.rule_id,
    failed.tag_key,
    failed.violation_type,
    failed.severity,
    failed.current_value,
    failed.expected,
    first_waivers.exemption_reason,
    first_waivers.exemption_expires,
    first_waivers.resource_key IS NOT NULL AS exempt
FROM failed
LEFT JOIN first_waivers
    ON first_waivers.resource_key = failed.resource_key
    AND first_waivers.rule_id IS NOT DISTINCT FROM failed.rule_id
    AND first_waivers.tag_key IS NOT DISTINCT FROM failed.tag_key
    AND first_waivers.violation_type = failed.violation_type
