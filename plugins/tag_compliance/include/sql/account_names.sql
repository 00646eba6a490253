-- Produces: account_names — each account's latest name in AWS Organizations, for labelling ids.
--
-- Inputs: the warehouse view accounts (per inventory snapshot, the accounts its run knew of).
-- Configured accounts (TAG_COMPLIANCE_ACCOUNTS) have no name and are not listed here. The latest
-- snapshot that named an account wins: an account renamed shows its new name on every day.
SELECT
    account_id,
    name,
    snapshot_date AS named_as_of
FROM accounts
WHERE name IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY snapshot_date DESC) = 1
