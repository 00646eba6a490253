-- Produces: untagged_spend — per day, account and required key, the spend Cost Explorer reports untagged.
--
-- Input: the warehouse view `costs`, its TAG rows (LINKED_ACCOUNT x TAG:key; tag_value '' is
-- Cost Explorer's "key$" group: spend without the key). This is Cost Explorer's own answer to
-- "how much spend is untagged by key", independent of our inventory and matching.
-- total_* are all values of the key: the account's total as that request saw it.
-- untagged_pct = 100 * untagged / total amortized, NULL when the total is 0.
WITH
tag_key_spend AS (
    SELECT
        usage_date,
        account_id,
        tag_key,
        coalesce(sum(amount) FILTER (WHERE tag_value = '' AND metric = 'AmortizedCost'), 0)
            AS untagged_amortized_cost,
        coalesce(sum(amount) FILTER (WHERE tag_value = '' AND metric = 'UnblendedCost'), 0)
            AS untagged_unblended_cost,
        coalesce(sum(amount) FILTER (WHERE metric = 'AmortizedCost'), 0) AS total_amortized_cost,
        coalesce(sum(amount) FILTER (WHERE metric = 'UnblendedCost'), 0) AS total_unblended_cost,
        bool_or(estimated) AS estimated
    FROM costs
    WHERE group_type = 'TAG'
    GROUP BY usage_date, account_id, tag_key
)

SELECT
    usage_date,
    account_id,
    tag_key,
    CAST(untagged_amortized_cost AS DECIMAL(38, 10)) AS untagged_amortized_cost,
    CAST(untagged_unblended_cost AS DECIMAL(38, 10)) AS untagged_unblended_cost,
    CAST(total_amortized_cost AS DECIMAL(38, 10)) AS total_amortized_cost,
    CAST(total_unblended_cost AS DECIMAL(38, 10)) AS total_unblended_cost,
    100 * untagged_amortized_cost::DOUBLE / nullif(total_amortized_cost, 0)::DOUBLE AS untagged_pct,
    estimated
FROM tag_key_spend
ORDER BY usage_date, account_id, tag_key
