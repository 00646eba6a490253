-- Produces: one snapshot's ($day) attribution gap per reason, with each reason's share of the gap.
WITH
by_reason AS (
    -- Rows without a tag key partition the gap; tag_violation rows (keyed) overlap and are left out.
    SELECT
        gap_reason,
        sum(resources) AS resources,
        sum(amortized_cost) AS amortized_cost,
        sum(unblended_cost) AS unblended_cost
    FROM attribution_gap
    WHERE snapshot_date = $day
      AND tag_key IS NULL
    GROUP BY gap_reason
)

SELECT
    gap_reason,
    resources,
    amortized_cost,
    unblended_cost,
    100 * amortized_cost / nullif(sum(amortized_cost) OVER (), 0) AS share_pct
FROM by_reason
ORDER BY amortized_cost DESC, gap_reason
