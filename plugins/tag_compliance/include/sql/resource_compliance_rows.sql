-- Produces: resource_compliance_rows — the lake's `resource_compliance` rows in (account, region,
-- type, id) order, as they are written.
--
-- Inputs: resource_compliance.
SELECT *
FROM resource_compliance
ORDER BY account_id, region, resource_type, resource_id, resource_key
