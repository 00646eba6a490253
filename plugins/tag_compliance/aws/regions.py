"""Which of the configured Regions each account has enabled: a Region an account has not opted
into is never called there.

Asked once per run, only when an opt-in Region is configured (the older ones are enabled in every
account), from the connection's account, of AWS Account Management (``ListRegions``: every Region
with its opt-in status in one request, at most 5 requests a second, its quota): for the
connection's own account without ``AccountId``, for every other account with it. Naming another
account needs the management account or a delegated administrator, with trusted access for
Account Management enabled in Organizations; ``TAG_COMPLIANCE_REGION_DISCOVERY=false`` plans every
configured Region in every account instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tag_compliance.aws.errors import AwsCollectionError

if TYPE_CHECKING:
    from tag_compliance.aws.hook import TagComplianceAwsHook

log = logging.getLogger(__name__)

ACCOUNT_MANAGEMENT = "account"
ACCOUNT_MANAGEMENT_REGION = "us-east-1"  # Account Management has one endpoint
LIST_REGIONS_PAGE = 50  # MaxResults 1-50: every Region in one request
# The Regions AWS launched before 20 March 2019 are enabled in every account and cannot be
# disabled; every later one is opt-in. Only an opt-in Region needs asking about.
ENABLED_BY_DEFAULT = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "sa-east-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
    }
)
USABLE = frozenset({"ENABLED", "ENABLED_BY_DEFAULT"})
NOT_LISTED = "NOT_LISTED"  # a configured Region ListRegions does not know in that account
NOT_ALLOWED = frozenset({"AccessDeniedException", "AccessDenied"})


class RegionDiscoveryError(ValueError):
    """The accounts' enabled Regions cannot be listed as configured; the message says how to fix it."""


def regions_not_enabled(
    hook: TagComplianceAwsHook, accounts: Iterable[str], regions: Iterable[str], threads: int = 8
) -> dict[str, dict[str, str]]:
    """Per account, the configured ``regions`` it has not enabled, with their opt-in status
    (``DISABLED``, ``ENABLING``...); accounts that have every one of them enabled are left out.
    No request at all when every configured Region is one AWS enables by default."""
    accounts = list(accounts)
    regions = [region for region in regions if region not in ENABLED_BY_DEFAULT]
    if not accounts or not regions:
        return {}
    own = hook.own_account_id
    client = hook.client_for(own, ACCOUNT_MANAGEMENT_REGION, ACCOUNT_MANAGEMENT)

    def statuses(account: str) -> dict[str, str]:
        named = {} if account == own else {"AccountId": account}
        try:
            pages = hook.paginate(
                client,
                "list_regions",
                account_id=own,
                region="global",
                page_size=LIST_REGIONS_PAGE,
                **named,
            )
            return {item["RegionName"]: item["RegionOptStatus"] for page in pages for item in page["Regions"]}
        except AwsCollectionError as exc:
            raise _explained(exc, own, account) from exc

    with ThreadPoolExecutor(min(threads, len(accounts)), thread_name_prefix="regions") as pool:
        listed = dict(zip(accounts, pool.map(statuses, accounts), strict=True))
    not_enabled = {
        account: {
            region: found.get(region, NOT_LISTED) for region in regions if found.get(region) not in USABLE
        }
        for account, found in listed.items()
    }
    not_enabled = {account: skipped for account, skipped in not_enabled.items() if skipped}
    if not_enabled:
        log.warning(
            "not called, Region not enabled in the account: %s",
            "; ".join(
                f"{account} {', '.join(f'{region} ({status})' for region, status in sorted(skipped.items()))}"
                for account, skipped in sorted(not_enabled.items())[:20]
            )
            + ("; ..." if len(not_enabled) > 20 else ""),
        )
    return not_enabled


def _explained(exc: AwsCollectionError, own: str, account: str) -> Exception:
    if exc.code in NOT_ALLOWED and account != own:
        return RegionDiscoveryError(
            f"account {own} may not list the Regions of account {account} ({exc.code}): enable trusted "
            "access for AWS Account Management in Organizations and run from the management account or "
            "a delegated administrator (see include/iam/), or set TAG_COMPLIANCE_REGION_DISCOVERY=false "
            "to inventory every configured Region of every account"
        )
    if exc.code in NOT_ALLOWED:
        return RegionDiscoveryError(
            f"account {own} may not list its own Regions ({exc.code}): grant account:ListRegions (see "
            "include/iam/caller-policy.json), or set TAG_COMPLIANCE_REGION_DISCOVERY=false"
        )
    return exc
