-- Produces: resource_violations — one row per resource with at least one failed check: its
-- violation counts and the sorted list of the violation types exemptions leave.
--
-- Inputs: failed_checks.
-- error_violations and warning_violations count the violations exemptions leave;
-- exempted_violations the others; exempted_error_violations those of severity error.
WITH
violation_type_bits AS (
    -- The few violation types found, each numbered as a bit: a resource's set of types is then
    -- an integer, turned into a sorted list once per distinct set rather than once per resource.
    SELECT
        violation_type,
        (row_number() OVER (ORDER BY violation_type) - 1)::INTEGER AS bit
    FROM (SELECT DISTINCT violation_type FROM failed_checks)
),

violation_counts AS (
    SELECT
        failed.resource_key,
        count(*) FILTER (WHERE NOT failed.exempt AND failed.severity = 'error') AS error_violations,
        count(*) FILTER (WHERE NOT failed.exempt AND failed.severity = 'warning') AS warning_violations,
        count(*) FILTER (WHERE failed.exempt) AS exempted_violations,
        count(*) FILTER (WHERE failed.exempt AND failed.severity = 'error') AS exempted_error_violations,
        coalesce(bit_or(1::BIGINT << bits.bit) FILTER (WHERE NOT failed.exempt), 0) AS violation_type_set
    FROM failed_checks AS failed
    JOIN violation_type_bits AS bits USING (violation_type)
    GROUP BY failed.resource_key
),

violation_type_lists AS (
    SELECT
        sets.violation_type_set,
        coalesce(
            list(bits.violation_type ORDER BY bits.violation_type) FILTER (WHERE bits.violation_type IS NOT NULL),
            []::VARCHAR[]
        ) AS violation_types
    FROM (SELECT DISTINCT violation_type_set FROM violation_counts) AS sets
    LEFT JOIN violation_type_bits AS bits
        ON (sets.violation_type_set >> bits.bit) & 1 = 1
    GROUP BY sets.violation_type_set
)

SELECT
    counts.resource_key,
    counts.error_violations,
    counts.warning_violations,
    counts.exempted_violations,
    counts.exempted_error_violations,
    type_lists.violation_types
FROM violation_counts AS counts
JOIN violation_type_lists AS type_lists USING (violation_type_set)
