-- Produces: resource_compliance_rows — the lake's `resource_compliance` rows: each resource's
-- compliance with its tags, in (account, region, type, id) order.
--
-- Inputs: resource_compliance, snapshot.
SELECT
    compliance.*,
    snapshot.tags
FROM resource_compliance AS compliance
JOIN snapshot USING (resource_key)
ORDER BY
    compliance.account_id,
    compliance.region,
    compliance.resource_type,
    compliance.resource_id,
    compliance.resource_key
