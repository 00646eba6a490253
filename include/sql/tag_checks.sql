-- Produces: tag_checks — one row per (resource, required rule that applies to it), with the
-- rule's outcome, plus one row per prohibited tag found. violation_type is NULL when it passes.
--
-- Inputs: snapshot, policy_rules, policy_rule_applies_to, policy_allowed_values,
-- policy_prohibited_keys, policy_info (the policy registered as data, never as SQL text).
-- Columns: resource_key, rule_id (NULL for prohibited tags), tag_key, violation_type,
-- severity, current_value, expected.
WITH
applicable_rules AS (
    -- A rule applies when one of its applies_to globs matches the resource type,
    -- or when it has no applies_to at all.
    SELECT
        snapshot.resource_key,
        snapshot.tags,
        rules.*
    FROM snapshot
    JOIN policy_rules AS rules
        ON rules.applies_to_all
        OR EXISTS (
            SELECT 1
            FROM policy_rule_applies_to AS applies_to
            WHERE applies_to.rule_id = rules.rule_id
              AND snapshot.resource_type GLOB applies_to.resource_type_glob
        )
),

rule_key_lookups AS (
    -- What the resource carries for each applying rule: the value under the exact key,
    -- or else the smallest key that equals the rule's key ignoring case.
    SELECT
        *,
        coalesce(map_contains(tags, tag_key), false) AS has_exact_key,
        map_extract_value(tags, tag_key) AS exact_value,
        list_min(list_filter(map_keys(tags), lambda key: lower(key) = lower(tag_key))) AS key_in_other_case
    FROM applicable_rules
),

rule_value_checks AS (
    -- The value tests, computed once so the outcome below reads as the precedence it is.
    -- Values are checked as stored: ' prod' is not 'prod'.
    SELECT
        *,
        regexp_full_match(coalesce(exact_value, ''), '[ \t\n\v\f\r]*') AS value_is_blank,
        EXISTS (
            SELECT 1
            FROM policy_allowed_values AS allowed
            WHERE allowed.rule_id = rule_key_lookups.rule_id
              AND CASE
                  WHEN case_sensitive_values
                      THEN exact_value LIKE allowed.like_pattern ESCAPE '\'
                  ELSE lower(exact_value) LIKE lower(allowed.like_pattern) ESCAPE '\'
              END
        ) AS value_is_allowed,
        regexp_full_match(exact_value, pattern) AS value_matches_pattern
    FROM rule_key_lookups
),

required_tag_outcomes AS (
    -- At most one violation per rule, in this order of precedence.
    SELECT
        resource_key,
        rule_id,
        tag_key,
        severity,
        exact_value,
        key_in_other_case,
        expected_key,
        expected_non_empty,
        expected_allowed,
        expected_format,
        CASE
            WHEN has_exact_key AND value_is_blank THEN 'empty_value'
            WHEN has_exact_key AND has_allowed_values AND NOT value_is_allowed THEN 'invalid_value'
            WHEN has_exact_key AND pattern IS NOT NULL AND NOT value_matches_pattern THEN 'invalid_format'
            WHEN has_exact_key THEN NULL
            WHEN key_in_other_case IS NOT NULL THEN 'wrong_key_case'
            ELSE 'missing_required_tag'
        END AS violation_type
    FROM rule_value_checks
),

required_tag_checks AS (
    SELECT
        resource_key,
        rule_id,
        tag_key,
        violation_type,
        severity,
        CASE
            WHEN violation_type IN ('empty_value', 'invalid_value', 'invalid_format') THEN exact_value
            WHEN violation_type = 'wrong_key_case' THEN key_in_other_case
        END AS current_value,
        CASE violation_type
            WHEN 'missing_required_tag' THEN expected_key
            WHEN 'wrong_key_case' THEN expected_key
            WHEN 'empty_value' THEN expected_non_empty
            WHEN 'invalid_value' THEN expected_allowed
            WHEN 'invalid_format' THEN expected_format
        END AS expected
    FROM required_tag_outcomes
),

resource_tags AS (
    -- One row per tag of each resource.
    SELECT
        resource_key,
        tag.key AS tag_key,
        tag.value AS tag_value
    FROM (SELECT resource_key, unnest(map_entries(tags)) AS tag FROM snapshot)
),

prohibited_tag_checks AS (
    -- One violation per tag key matching any prohibited glob, ignoring case;
    -- keys AWS sets itself ('aws:...') are never the owner's doing.
    SELECT
        resource_tags.resource_key,
        NULL::INTEGER AS rule_id,
        resource_tags.tag_key,
        'prohibited_tag' AS violation_type,
        policy_info.prohibited_severity AS severity,
        resource_tags.tag_value AS current_value,
        'key not present' AS expected
    FROM resource_tags
    CROSS JOIN policy_info
    WHERE NOT starts_with(resource_tags.tag_key, 'aws:')
      AND EXISTS (
          SELECT 1
          FROM policy_prohibited_keys AS prohibited
          WHERE lower(resource_tags.tag_key) GLOB lower(prohibited.key_glob)
      )
)

SELECT * FROM required_tag_checks
UNION ALL
SELECT * FROM prohibited_tag_checks
