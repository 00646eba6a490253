"""Which accounts to inventory when none are listed: the organisation's, from AWS Organizations.

Asked once per run, from the connection's account (the management account or a delegated
administrator): every ACTIVE account, or those under the organisational units named (recursively),
minus an exclude list. Suspended and closing accounts are skipped and logged, never called.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tag_compliance.aws.errors import AwsCollectionError

if TYPE_CHECKING:
    from tag_compliance.aws.hook import TagComplianceAwsHook

log = logging.getLogger(__name__)

ORGANIZATIONS = "organizations"
ORGANIZATIONS_REGION = "us-east-1"  # Organizations has one endpoint
NOT_IN_AN_ORGANIZATION = "AWSOrganizationsNotInUseException"
UNKNOWN_PARENT = frozenset({"ParentNotFoundException", "OrganizationalUnitNotFoundException"})
NOT_ALLOWED = frozenset({"AccessDeniedException", "AccessDenied"})


class AccountDiscoveryError(ValueError):
    """The organisation's accounts cannot be listed as configured; the message says how to fix it."""


@dataclass(frozen=True)
class OrganizationAccount:
    account_id: str
    name: str
    status: str  # ACTIVE, SUSPENDED, PENDING_CLOSURE (Organizations' Status; State when newer)


def discover_accounts(
    hook: TagComplianceAwsHook, org_units: Iterable[str] = (), exclude: Iterable[str] = ()
) -> list[str]:
    """The ACTIVE accounts to inventory, sorted; the connection's own account alone when it is in
    no organisation."""
    own = hook.own_account_id
    org_units, excluded = list(org_units), set(exclude)
    try:
        accounts = list(_listed(hook, own, org_units))
    except AwsCollectionError as exc:
        if exc.code != NOT_IN_AN_ORGANIZATION or org_units:
            raise _explained(exc, own, org_units) from exc
        accounts = []
    if not accounts and not org_units:  # an organisation lists its management account at least
        log.info("account %s is in no organisation: inventorying it alone", own)
        return [own] if own not in excluded else _nothing_left(org_units, excluded)
    inactive = sorted(f"{a.account_id} ({a.name}, {a.status})" for a in accounts if a.status != "ACTIVE")
    if inactive:
        log.warning("not inventoried, not ACTIVE: %s", ", ".join(inactive))
    chosen = sorted({a.account_id for a in accounts if a.status == "ACTIVE" and a.account_id not in excluded})
    if not chosen:
        return _nothing_left(org_units, excluded)
    log.info("inventorying %d ACTIVE accounts of the organisation (%d excluded)", len(chosen), len(excluded))
    return chosen


def _listed(hook: TagComplianceAwsHook, own: str, org_units: list[str]) -> Iterator[OrganizationAccount]:
    client = hook.client_for(own, ORGANIZATIONS_REGION, ORGANIZATIONS)

    def pages(operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return hook.paginate(client, operation, account_id=own, region="global", **kwargs)

    def accounts_of(parent: str) -> Iterator[OrganizationAccount]:
        for page in pages("list_accounts_for_parent", ParentId=parent):
            yield from map(_account, page.get("Accounts", []))
        for page in pages("list_organizational_units_for_parent", ParentId=parent):
            for unit in page.get("OrganizationalUnits", []):
                yield from accounts_of(unit["Id"])

    if not org_units:
        for page in pages("list_accounts"):
            yield from map(_account, page.get("Accounts", []))
        return
    for unit in org_units:
        yield from accounts_of(unit)


def _account(item: dict[str, Any]) -> OrganizationAccount:
    return OrganizationAccount(item["Id"], item.get("Name", ""), item.get("State") or item.get("Status", ""))


def _explained(exc: AwsCollectionError, own: str, org_units: list[str]) -> AccountDiscoveryError:
    if exc.code in UNKNOWN_PARENT:
        return AccountDiscoveryError(
            f"TAG_COMPLIANCE_ORG_UNITS names an organisational unit or root the organisation does not "
            f"have (one of {', '.join(org_units)}): {exc}"
        )
    if exc.code == NOT_IN_AN_ORGANIZATION:
        return AccountDiscoveryError(
            f"TAG_COMPLIANCE_ORG_UNITS is set ({', '.join(org_units)}) but account {own} is in no "
            "organisation: unset it, or set TAG_COMPLIANCE_ACCOUNTS"
        )
    if exc.code in NOT_ALLOWED:
        return AccountDiscoveryError(
            f"account {own} may not list the organisation's accounts ({exc.code}): run with a connection "
            "in the management account or a delegated administrator of AWS Organizations (see "
            "include/iam/), or list the accounts in TAG_COMPLIANCE_ACCOUNTS"
        )
    return AccountDiscoveryError(f"the organisation's accounts could not be listed: {exc}")


def _nothing_left(org_units: list[str], excluded: set[str]) -> list[str]:
    where = f"under {', '.join(org_units)}" if org_units else "in the organisation"
    raise AccountDiscoveryError(
        f"no ACTIVE account {where} is left to inventory once TAG_COMPLIANCE_EXCLUDE_ACCOUNTS "
        f"({', '.join(sorted(excluded)) or 'empty'}) is applied"
    )
