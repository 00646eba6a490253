-- Produces: the $limit costliest non-compliant resources of one snapshot ($day), with their violations.
WITH
costliest AS (
    SELECT
        account_id,
        region,
        resource_type,
        resource_id,
        name,
        error_violations,
        warning_violations,
        violation_types,
        amortized_cost,
        cost_basis
    FROM resource_compliance
    WHERE snapshot_date = $day
      AND compliance_status = 'non_compliant'
    ORDER BY amortized_cost DESC NULLS LAST, account_id, resource_type, resource_id
    LIMIT $limit
),

findings AS (
    -- What is wrong with each of them, errors first: the key, the check and the value found.
    SELECT
        violations.account_id,
        violations.region,
        violations.resource_type,
        violations.resource_id,
        list(
            {
                'tag_key': violations.tag_key,
                'violation_type': violations.violation_type,
                'severity': violations.severity,
                'current_value': violations.current_value
            }
            ORDER BY violations.severity, violations.tag_key NULLS LAST, violations.violation_type
        ) AS findings
    FROM violations
    SEMI JOIN costliest
        ON violations.account_id = costliest.account_id
        AND violations.region = costliest.region
        AND violations.resource_type = costliest.resource_type
        AND violations.resource_id = costliest.resource_id
    WHERE violations.snapshot_date = $day
    GROUP BY ALL
)

SELECT
    costliest.*,
    coalesce(account_names.name || ' (' || account_id || ')', account_id) AS account_label,
    coalesce(findings.findings, []) AS findings
FROM costliest
LEFT JOIN findings USING (account_id, region, resource_type, resource_id)
LEFT JOIN account_names USING (account_id)
ORDER BY costliest.amortized_cost DESC NULLS LAST, account_id, resource_type, resource_id
