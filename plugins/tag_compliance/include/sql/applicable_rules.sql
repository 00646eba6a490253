-- Produces: applicable_rules — one row per (resource type of the snapshot, tag rule that applies
-- to that type): the policy's scope, decided once per distinct type, never once per resource.
--
-- Inputs: snapshot, policy_rules, policy_rule_applies_to.
-- A rule applies to a type when it has no applies_to or one of its globs matches the type; an
-- optional rule gives way where a required rule with the same key applies. A resource is in
-- scope when its type has at least one row here (prohibited tags and the tag limit alone do
-- not put it in scope). Globs arrive as LIKE patterns escaped with '\'.
WITH
resource_types AS (
    SELECT DISTINCT resource_type
    FROM snapshot
),

type_rules AS (
    SELECT
        types.resource_type,
        rules.rule_id,
        rules.required,
        rules.tag_key
    FROM resource_types AS types
    JOIN policy_rules AS rules
        ON rules.applies_to_all
        OR EXISTS (
            SELECT 1
            FROM policy_rule_applies_to AS applies_to
            WHERE applies_to.rule_id = rules.rule_id
              AND types.resource_type LIKE applies_to.like_pattern ESCAPE '\'
        )
)

SELECT
    matched.resource_type,
    matched.rule_id
FROM type_rules AS matched
WHERE matched.required
   OR NOT EXISTS (
       SELECT 1
       FROM type_rules AS required_match
       WHERE required_match.resource_type IS NOT DISTINCT FROM matched.resource_type
         AND required_match.required
         AND required_match.tag_key = matched.tag_key
   )
