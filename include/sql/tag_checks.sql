-- Produces: tag_checks — one row per (resource, tag rule that applies to it), with the rule's
-- outcome, plus one row per prohibited tag found and one per resource over the tag limit.
-- violation_type is NULL when the check passes.
--
-- Inputs: snapshot, policy_rules, policy_rule_applies_to, policy_allowed_values,
-- policy_prohibited_keys, policy_info (the policy registered as data, never as SQL text).
-- Columns: check_id, resource_key, rule_id (NULL for prohibited tags and the tag limit),
-- tag_key (NULL for the tag limit), violation_type, severity, current_value, expected.
-- Globs arrive as LIKE patterns escaped with '\'; "ignoring case" means comparing lower().
WITH
matching_rules AS (
    -- Rules whose applies_to globs match the resource type, or that have no applies_to.
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
              AND snapshot.resource_type LIKE applies_to.like_pattern ESCAPE '\'
        )
),

applicable_rules AS (
    -- An optional rule gives way where a required rule with the same key applies.
    SELECT *
    FROM matching_rules AS matched
    WHERE matched.required
       OR NOT EXISTS (
           SELECT 1
           FROM matching_rules AS required_match
           WHERE required_match.resource_key = matched.resource_key
             AND required_match.required
             AND required_match.tag_key = matched.tag_key
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

rule_outcomes AS (
    -- At most one violation per rule, in this order of precedence; an optional rule
    -- has nothing to say about a resource without its key.
    SELECT
        resource_key,
        rule_id,
        required,
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
            WHEN required THEN 'missing_required_tag'
        END AS violation_type
    FROM rule_value_checks
),

rule_checks AS (
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
    FROM rule_outcomes
),

resource_tags AS (
    -- One row per tag of each resource; keys starting with 'aws:' (any case) are AWS's own.
    SELECT
        resource_key,
        tag.key AS tag_key,
        tag.value AS tag_value,
        starts_with(lower(tag.key), 'aws:') AS is_aws_key
    FROM (SELECT resource_key, unnest(map_entries(tags)) AS tag FROM snapshot)
),

prohibited_tag_checks AS (
    -- One violation per tag key matching any prohibited glob, ignoring case;
    -- keys AWS sets itself are never the owner's doing.
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
    WHERE NOT resource_tags.is_aws_key
      AND EXISTS (
          SELECT 1
          FROM policy_prohibited_keys AS prohibited
          WHERE lower(resource_tags.tag_key) LIKE lower(prohibited.like_pattern) ESCAPE '\'
      )
),

user_tag_counts AS (
    SELECT
        resource_key,
        count(*) FILTER (WHERE NOT is_aws_key) AS user_tags
    FROM resource_tags
    GROUP BY resource_key
),

tag_limit_checks AS (
    -- One violation per resource with more user tags than the policy allows.
    SELECT
        user_tag_counts.resource_key,
        NULL::INTEGER AS rule_id,
        NULL::VARCHAR AS tag_key,
        'too_many_tags' AS violation_type,
        policy_info.max_user_tags_severity AS severity,
        user_tag_counts.user_tags::VARCHAR AS current_value,
        policy_info.expected_max_tags AS expected
    FROM user_tag_counts
    CROSS JOIN policy_info
    WHERE user_tag_counts.user_tags > policy_info.max_user_tags
),

all_checks AS (
    SELECT * FROM rule_checks
    UNION ALL
    SELECT * FROM prohibited_tag_checks
    UNION ALL
    SELECT * FROM tag_limit_checks
)

SELECT
    row_number() OVER (ORDER BY resource_key, rule_id NULLS LAST, tag_key NULLS LAST) AS check_id,
    *
FROM all_checks
