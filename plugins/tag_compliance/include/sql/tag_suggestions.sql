-- Produces: tag_suggestions — a value for each fixable violation, from compliant neighbours (if any).
--
-- Inputs: `violations`, `exempted_violations` and `resource_compliance`: the warehouse views, or
-- (as history.refresh runs it, at every publish) views over one scored day's files.
-- A target is a (snapshot_date, resource, tag_key) with a violation in `violations` of type
-- missing_required_tag, wrong_key_case, empty_value, invalid_value or invalid_format; a
-- resource is (account_id, region, resource_type, resource_id), taken once per snapshot_date
-- from resource_compliance (its tags as scored; listed twice, the smallest arn, then name, stands).
--
-- A carrier of key K on day D is a resource scored on D that has the exact key K and no
-- violation of K on D, neither in violations nor in exempted_violations (an exempted value may
-- be invalid). Why a suggestion always passes the policy: the outcome of K's rule on a resource
-- depends only on its resource_type (which rules apply: applies_to globs, required-over-optional)
-- and on the value under the exact key K; one policy scores a whole snapshot_date. So a carrier
-- of type T proves its value passes K's rule on every resource of type T that day. A neighbour
-- of another type proves nothing for T (its rule may allow other values, or none may apply to
-- it): its value counts only when some carrier of the target's own type, in any account, carries
-- the same value exactly. Suggested values are compared exactly (no case folding).
--
-- Evidence, strongest first; the first kind with at least one usable neighbour gives the row:
--   key_case               wrong_key_case only: the value under the other-case key (current_key)
--                          when carriers of the target's type carry it; action 'rename_key'.
--                          neighbours = agreeing = those carriers.
--   cloudformation_stack   carriers in the same stack: same account, same tag
--                          'aws:cloudformation:stack-name', same stack region (the 4th field of the
--                          'aws:cloudformation:stack-id' tag, else the resource's region: a
--                          bucket's region is 'global').
--   ecs_cluster            ecs:service carriers of the same cluster: same account and region, and
--                          resource_id up to its '/' (the collector's '<cluster>/<service>').
--   name_prefix            carriers of the same account (any type, any region) with the same name
--                          prefix. The prefix of a resource is taken from its name, or its
--                          resource_id when the name is NULL or blank: if it ends in a digit run
--                          after a non-digit, that run is cut; otherwise, if it has a '-', '_' or
--                          '.', everything from the last one is cut; then trailing '-', '_', '.'
--                          are trimmed. 'checkout-web-12' -> 'checkout-web', 'web01' -> 'web',
--                          'orders-api-blue' -> 'orders-api'. A prefix shorter than 3 characters
--                          or without a letter, or a name with no digit run or separator, gives none.
--   account_type_majority  carriers of the same account and resource_type (any region).
-- Among the kind's usable neighbours, suggested_value is the value most carry; a tie goes to
-- the smallest value (code-point order). neighbours = usable neighbours of that kind, agreeing =
-- those carrying suggested_value. confidence = round(weight * agreeing / neighbours, 4), with
-- weight 1.0 key_case, 0.9 cloudformation_stack, 0.8 ecs_cluster, 0.6 name_prefix,
-- 0.5 account_type_majority. No usable neighbour of any kind: no row, never a guess.
-- current_key: the other-case key for wrong_key_case, tag_key for the value violations, NULL
-- when missing; current_value: the resource's value under current_key.
-- Not known here (the policy is not in the warehouse): adding a missing key can push a resource
-- over the policy's max_user_tags.
WITH
scored_resources AS (
    -- Each resource once per scored snapshot, with the groups it can be a neighbour in.
    SELECT
        snapshot_date,
        account_id,
        region,
        resource_type,
        resource_id,
        arn,
        coalesce(tags, MAP {}::MAP(VARCHAR, VARCHAR)) AS tags,
        map_extract_value(tags, 'aws:cloudformation:stack-name') AS stack_name,
        coalesce(
            nullif(split_part(map_extract_value(tags, 'aws:cloudformation:stack-id'), ':', 4), ''), region
        ) AS stack_region,
        CASE
            WHEN resource_type = 'ecs:service' AND contains(resource_id, '/')
                THEN split_part(resource_id, '/', 1)
        END AS ecs_cluster,
        CASE WHEN trim(coalesce(name, '')) <> '' THEN name ELSE resource_id END AS name_basis
    FROM resource_compliance
    QUALIFY row_number() OVER (
        PARTITION BY snapshot_date, account_id, region, resource_type, resource_id
        ORDER BY arn, name
    ) = 1
),

prefixed_resources AS (
    -- The name prefix, before the length and letter checks (see the header).
    SELECT
        * EXCLUDE (name_basis),
        CASE
            WHEN regexp_matches(name_basis, '[^0-9][0-9]+$')
                THEN rtrim(regexp_replace(name_basis, '[0-9]+$', ''), '-_.')
            WHEN regexp_matches(name_basis, '[-_.]')
                THEN rtrim(regexp_replace(name_basis, '[-_.][^-_.]*$', ''), '-_.')
        END AS raw_prefix
    FROM scored_resources
),

neighbourhood AS (
    SELECT
        * EXCLUDE (raw_prefix),
        CASE
            WHEN length(raw_prefix) >= 3 AND regexp_matches(raw_prefix, '\pL') THEN raw_prefix
        END AS name_prefix
    FROM prefixed_resources
),

failed_keys AS (
    -- Keys whose value on a resource failed on a snapshot, waived or not.
    SELECT snapshot_date, account_id, region, resource_type, resource_id, tag_key
    FROM violations
    WHERE tag_key IS NOT NULL
    UNION
    SELECT snapshot_date, account_id, region, resource_type, resource_id, tag_key
    FROM exempted_violations
    WHERE tag_key IS NOT NULL
),

fixable_violations AS (
    SELECT DISTINCT
        snapshot_date,
        account_id,
        region,
        resource_type,
        resource_id,
        tag_key,
        violation_type,
        CASE
            WHEN violation_type = 'wrong_key_case' THEN current_value
            WHEN violation_type IN ('empty_value', 'invalid_value', 'invalid_format') THEN tag_key
        END AS current_key
    FROM violations
    WHERE violation_type IN (
        'missing_required_tag', 'wrong_key_case', 'empty_value', 'invalid_value', 'invalid_format'
    )
),

targets AS MATERIALIZED (
    -- Each fixable violation with its resource's value and neighbourhoods (numbered once).
    SELECT
        row_number() OVER () AS target_id,
        fixable_violations.*,
        map_extract_value(neighbourhood.tags, fixable_violations.current_key) AS current_value,
        neighbourhood.arn,
        neighbourhood.stack_name,
        neighbourhood.stack_region,
        neighbourhood.ecs_cluster,
        neighbourhood.name_prefix
    FROM fixable_violations
    JOIN neighbourhood USING (snapshot_date, account_id, region, resource_type, resource_id)
),

carrier_profiles AS (
    -- Resources carrying a target key exactly, with a value that passed (see the header),
    -- counted per value and per every neighbourhood they belong to: the groups are joined to
    -- the targets by these counts, never carrier by carrier (a group can hold thousands).
    SELECT
        neighbourhood.snapshot_date,
        target_keys.tag_key,
        map_extract_value(neighbourhood.tags, target_keys.tag_key) AS value,
        neighbourhood.account_id,
        neighbourhood.region,
        neighbourhood.resource_type,
        neighbourhood.stack_name,
        neighbourhood.stack_region,
        neighbourhood.ecs_cluster,
        neighbourhood.name_prefix,
        count(*) AS carriers
    FROM neighbourhood
    JOIN (SELECT DISTINCT snapshot_date, tag_key FROM targets) AS target_keys USING (snapshot_date)
    ANTI JOIN failed_keys
        ON failed_keys.snapshot_date = neighbourhood.snapshot_date
        AND failed_keys.account_id = neighbourhood.account_id
        AND failed_keys.region = neighbourhood.region
        AND failed_keys.resource_type = neighbourhood.resource_type
        AND failed_keys.resource_id = neighbourhood.resource_id
        AND failed_keys.tag_key = target_keys.tag_key
    WHERE map_contains(neighbourhood.tags, target_keys.tag_key)
    GROUP BY ALL
),

type_values AS (
    -- Values carriers of each type carry: each passes the key's rule on every resource of the type.
    SELECT snapshot_date, tag_key, resource_type, value, sum(carriers) AS carriers
    FROM carrier_profiles
    GROUP BY ALL
),

key_case_values AS (
    -- The other-case key's value, when carriers of the target's type prove it passes.
    SELECT
        targets.target_id,
        1 AS evidence_rank,
        'key_case' AS evidence,
        NULL::VARCHAR AS group_label,
        type_values.value,
        type_values.carriers AS agreeing,
        type_values.carriers AS neighbours
    FROM targets
    JOIN type_values
        ON type_values.snapshot_date = targets.snapshot_date
        AND type_values.tag_key = targets.tag_key
        AND type_values.resource_type = targets.resource_type
        AND type_values.value = targets.current_value
    WHERE targets.violation_type = 'wrong_key_case'
),

neighbour_values AS (
    -- Carriers counted per kind of neighbourhood (evidence_rank), group and value; a group is
    -- its key fields as a list, NULL when one of them is (no such group).
    SELECT
        carrier_profiles.snapshot_date,
        carrier_profiles.tag_key,
        memberships.evidence_rank,
        memberships.group_key,
        carrier_profiles.value,
        sum(carrier_profiles.carriers) AS carriers
    FROM carrier_profiles,
        LATERAL (
            VALUES
                (2, CASE WHEN stack_name IS NOT NULL AND stack_region IS NOT NULL
                    THEN [account_id, stack_region, stack_name] END),
                (3, CASE WHEN ecs_cluster IS NOT NULL AND region IS NOT NULL
                    THEN [account_id, region, ecs_cluster] END),
                (4, CASE WHEN name_prefix IS NOT NULL THEN [account_id, name_prefix] END),
                (5, CASE WHEN resource_type IS NOT NULL THEN [account_id, resource_type] END)
        ) AS memberships (evidence_rank, group_key)
    WHERE memberships.group_key IS NOT NULL
    GROUP BY ALL
),

target_memberships AS (
    -- The same groups of each target, with their labels.
    SELECT
        targets.target_id,
        targets.snapshot_date,
        targets.tag_key,
        targets.resource_type,
        memberships.*
    FROM targets,
        LATERAL (
            VALUES
                (2, 'cloudformation_stack', 'stack ' || stack_name,
                    CASE WHEN stack_name IS NOT NULL AND stack_region IS NOT NULL
                        THEN [account_id, stack_region, stack_name] END),
                (3, 'ecs_cluster', 'ECS cluster ' || ecs_cluster,
                    CASE WHEN ecs_cluster IS NOT NULL AND region IS NOT NULL
                        THEN [account_id, region, ecs_cluster] END),
                (4, 'name_prefix', 'name prefix ' || name_prefix,
                    CASE WHEN name_prefix IS NOT NULL THEN [account_id, name_prefix] END),
                (5, 'account_type_majority', resource_type || ' in account ' || account_id,
                    CASE WHEN resource_type IS NOT NULL THEN [account_id, resource_type] END)
        ) AS memberships (evidence_rank, evidence, group_label, group_key)
    WHERE memberships.group_key IS NOT NULL
),

needed_groups AS (
    SELECT DISTINCT snapshot_date, tag_key, resource_type, evidence_rank, group_key
    FROM target_memberships
),

usable_group_values AS (
    -- Per group and target type, only values a carrier of that type has: valid for the target too.
    SELECT needed_groups.*, neighbour_values.value, neighbour_values.carriers
    FROM needed_groups
    JOIN neighbour_values USING (snapshot_date, tag_key, evidence_rank, group_key)
    SEMI JOIN type_values
        ON type_values.snapshot_date = needed_groups.snapshot_date
        AND type_values.tag_key = needed_groups.tag_key
        AND type_values.resource_type = needed_groups.resource_type
        AND type_values.value = neighbour_values.value
),

group_winners AS (
    -- The usable value most carry (ties to the smallest value), and how many carry a usable one.
    SELECT
        snapshot_date,
        tag_key,
        resource_type,
        evidence_rank,
        group_key,
        value,
        carriers AS agreeing,
        sum(carriers) OVER per_group AS neighbours
    FROM usable_group_values
    WINDOW per_group AS (PARTITION BY snapshot_date, tag_key, resource_type, evidence_rank, group_key)
    QUALIFY row_number() OVER (per_group ORDER BY carriers DESC, value) = 1
),

best_values AS (
    -- The strongest kind with evidence.
    SELECT *
    FROM (
        SELECT * FROM key_case_values
        UNION ALL
        SELECT
            target_memberships.target_id,
            target_memberships.evidence_rank,
            target_memberships.evidence,
            target_memberships.group_label,
            group_winners.value,
            group_winners.agreeing,
            group_winners.neighbours
        FROM target_memberships
        JOIN group_winners USING (snapshot_date, tag_key, resource_type, evidence_rank, group_key)
    )
    QUALIFY row_number() OVER (PARTITION BY target_id ORDER BY evidence_rank) = 1
),

suggestions AS (
    SELECT
        targets.*,
        best_values.value AS suggested_value,
        best_values.evidence,
        best_values.evidence_rank,
        best_values.group_label,
        best_values.neighbours,
        best_values.agreeing,
        round(
            CASE best_values.evidence
                WHEN 'key_case' THEN 1.0
                WHEN 'cloudformation_stack' THEN 0.9
                WHEN 'ecs_cluster' THEN 0.8
                WHEN 'name_prefix' THEN 0.6
                WHEN 'account_type_majority' THEN 0.5
            END::DOUBLE * best_values.agreeing / best_values.neighbours,
            4
        ) AS confidence
    FROM targets
    JOIN best_values USING (target_id)
)

SELECT
    snapshot_date,
    account_id,
    region,
    resource_type,
    resource_id,
    arn,
    tag_key,
    violation_type,
    current_key,
    current_value,
    suggested_value,
    CASE WHEN evidence = 'key_case' THEN 'rename_key' ELSE 'set_value' END AS action,
    confidence,
    evidence,
    CASE
        WHEN evidence = 'key_case'
            THEN format(
                '{} -> {}: carried by {} passing {} resource{}',
                current_key, tag_key, agreeing, resource_type, CASE WHEN agreeing = 1 THEN '' ELSE 's' END
            )
        ELSE format(
            '{}: {} of {} resource{}',
            group_label, agreeing, neighbours, CASE WHEN neighbours = 1 THEN '' ELSE 's' END
        )
    END AS evidence_detail,
    neighbours,
    agreeing
FROM suggestions
QUALIFY row_number() OVER (
    PARTITION BY snapshot_date, account_id, region, resource_type, resource_id, tag_key
    ORDER BY evidence_rank, confidence DESC, suggested_value, arn
) = 1
ORDER BY snapshot_date, account_id, region, resource_type, resource_id, tag_key
