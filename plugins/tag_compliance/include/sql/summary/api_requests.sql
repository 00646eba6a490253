-- Produces: the AWS requests of one run ($day) per service and operation.
SELECT
    service,
    operation,
    sum(calls) AS calls,
    sum(pages) AS requests,
    sum(items) AS items,
    sum(retries) AS retries,
    sum(throttles) AS throttles,
    '$' || sum(request_cost_usd)::DECIMAL(18, 2) AS request_cost
FROM api_calls
WHERE snapshot_date = $day
GROUP BY ALL
ORDER BY service, operation
