-- Produces: tag_checks — one row per failed check: each (resource, tag rule that applies to it)
-- the resource fails, each prohibited tag found, each resource over the tag limit. Passing
-- checks are not rows: what a rule applies to is applicable_rules, by resource type.
--
-- Inputs: snapshot, applicable_rules, policy_rules, policy_allowed_values,
-- policy_prohibited_keys, policy_info (the policy registered as data, never as SQL text).
-- Columns: resource_key, rule_id (NULL for prohibited tags and the tag limit),
-- tag_key (NULL for the tag limit), violation_type, severity, current_value, expected.
-- Globs arrive as LIKE patterns escaped with '\'; "ignoring case" means comparing lower().
WITH
rule_key_lookups AS (
    -- What the resource carries for each applying rule: the value under the exact key, or
    -- else the smallest key that equals the rule's key ignoring case (searched for only when
    -- the exact key is absent). Read once, streaming: one row per (resource, rule) is never
    -- stored.
    SELECT
        snapshot.resource_key,
        rules.rule_id,
        coalesce(map_contains(snapshot.tags, rules.tag_key), false) AS has_exact_key,
        map_extract_value(snapshot.tags, rules.tag_key) AS exact_value,
        CASE
            WHEN NOT coalesce(map_contains(snapshot.tags, rules.tag_key), false)
                THEN list_min(
                    list_filter(map_keys(snapshot.tags), lambda key: lower(key) = lower(rules.tag_key))
                )
        END AS key_in_other_case
    FROM snapshot
    JOIN applicable_rules AS applicable
        ON applicable.resource_type IS NOT DISTINCT FROM snapshot.resource_type
    JOIN policy_rules AS rules
        ON rules.rule_id = applicable.rule_id
),

distinct_rule_values AS (
    -- The values the rules' keys carry, each (rule, value) once: a pass of its own over the
    -- exact lookups, cheaper than storing rule_key_lookups to read it twice.
    SELECT DISTINCT
        rules.rule_id,
        map_extract_value(snapshot.tags, rules.tag_key) AS exact_value
    FROM snapshot
    JOIN applicable_rules AS applicable
        ON applicable.resource_type IS NOT DISTINCT FROM snapshot.resource_type
    JOIN policy_rules AS rules
        ON rules.rule_id = applicable.rule_id
    WHERE map_contains(snapshot.tags, rules.tag_key)
),

value_checks AS (
    -- The value tests, once per distinct (rule, value): a million resources carry a few
    -- thousand distinct values, and a pattern held in a column is compiled per row.
    -- Values are checked as stored: ' prod' is not 'prod'.
    SELECT
        rule_values.rule_id,
        rule_values.exact_value,
        regexp_full_match(coalesce(rule_values.exact_value, ''), '[ \t\n\v\f\r]*') AS value_is_blank,
        EXISTS (
            SELECT 1
            FROM policy_allowed_values AS allowed
            WHERE allowed.rule_id = rule_values.rule_id
              AND CASE
                  WHEN rules.case_sensitive_values
                      THEN rule_values.exact_value LIKE allowed.like_pattern ESCAPE '\'
                  ELSE lower(rule_values.exact_value) LIKE lower(allowed.like_pattern) ESCAPE '\'
              END
        ) AS value_is_allowed,
        regexp_full_match(rule_values.exact_value, rules.pattern) AS value_matches_pattern
    FROM distinct_rule_values AS rule_values
    JOIN policy_rules AS rules
        ON rules.rule_id = rule_values.rule_id
),

rule_value_checks AS (
    SELECT
        lookups.*,
        value_checks.value_is_blank,
        value_checks.value_is_allowed,
        value_checks.value_matches_pattern
    FROM rule_key_lookups AS lookups
    LEFT JOIN value_checks
        ON value_checks.rule_id = lookups.rule_id
        AND value_checks.exact_value IS NOT DISTINCT FROM lookups.exact_value
        AND lookups.has_exact_key
),

rule_outcomes AS (
    -- At most one violation per rule, in this order of precedence; an optional rule
    -- has nothing to say about a resource without its key.
    SELECT
        checked.resource_key,
        checked.rule_id,
        rules.tag_key,
        rules.severity,
        checked.exact_value,
        checked.key_in_other_case,
        rules.expected_key,
        rules.expected_non_empty,
        rules.expected_allowed,
        rules.expected_format,
        CASE
            WHEN checked.has_exact_key AND checked.value_is_blank THEN 'empty_value'
            WHEN checked.has_exact_key AND rules.has_allowed_values AND NOT checked.value_is_allowed
                THEN 'invalid_value'
            WHEN checked.has_exact_key AND rules.pattern IS NOT NULL AND NOT checked.value_matches_pattern
                THEN 'invalid_format'
            WHEN checked.has_exact_key THEN NULL
            WHEN checked.key_in_other_case IS NOT NULL THEN 'wrong_key_case'
            WHEN rules.required THEN 'missing_required_tag'
        END AS violation_type
    FROM rule_value_checks AS checked
    JOIN policy_rules AS rules
        ON rules.rule_id = checked.rule_id
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
    WHERE violation_type IS NOT NULL
),

resource_tags AS (
    -- One row per tag of each resource, only when the policy has prohibited keys (nothing
    -- else needs every tag); keys starting with 'aws:' (any case) are AWS's own.
    SELECT
        resource_key,
        tag.key AS tag_key,
        tag.value AS tag_value,
        starts_with(lower(tag.key), 'aws:') AS is_aws_key
    FROM (
        SELECT resource_key, unnest(map_entries(tags)) AS tag
        FROM snapshot
        WHERE EXISTS (SELECT 1 FROM policy_prohibited_keys)
    )
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
    -- Only when the policy has a tag limit: the tags whose keys are not AWS's own.
    SELECT
        snapshot.resource_key,
        len(list_filter(map_keys(snapshot.tags), lambda key: NOT starts_with(lower(key), 'aws:'))) AS user_tags,
        policy_info.max_user_tags,
        policy_info.max_user_tags_severity,
        policy_info.expected_max_tags
    FROM snapshot
    CROSS JOIN policy_info
    WHERE policy_info.max_user_tags IS NOT NULL
),

tag_limit_checks AS (
    -- One violation per resource with more user tags than the policy allows.
    SELECT
        resource_key,
        NULL::INTEGER AS rule_id,
        NULL::VARCHAR AS tag_key,
        'too_many_tags' AS violation_type,
        max_user_tags_severity AS severity,
        user_tags::VARCHAR AS current_value,
        expected_max_tags AS expected
    FROM user_tag_counts
    WHERE user_tags > max_user_tags
),

all_checks AS (
    SELECT * FROM rule_checks
    UNION ALL
    SELECT * FROM prohibited_tag_checks
    UNION ALL
    SELECT * FROM tag_limit_checks
)

SELECT *
FROM all_checks
