-- Produces: exempted_violations — one row per resource × failed check an exemption waives on the
-- scored day, with the exemption's reason and expiry (the lake's `exempted_violations` columns).
--
-- Inputs: failed_check_rows.
SELECT *
FROM failed_check_rows
WHERE exempt
ORDER BY account_id, region, resource_type, resource_id, resource_key, rule_id NULLS LAST, tag_key NULLS LAST
