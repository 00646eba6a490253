-- Produces: violations — one row per resource × failed check that no exemption waives
-- (the lake's `violations` columns are taken from it).
--
-- Inputs: failed_check_rows.
SELECT *
FROM failed_check_rows
WHERE NOT exempt
ORDER BY account_id, region, resource_type, resource_id, resource_key, rule_id NULLS LAST, tag_key NULLS LAST
