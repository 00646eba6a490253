"""Which accounts to inventory when none are listed: the organisation's, from AWS Organizations.

Asked once per run, from the connection's account (the management account or a delegated
administrator): every ACTIVE account, or those under the organisational units named (recursively),
minus an exclude list. Suspended and closing accounts are skipped and logged, never called.

The organisation is walked from its root, so each account comes with its organisational-unit path
(``Root/workloads/prod``), its name, email domain and the day it joined: the ``accounts`` dataset.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from tag_compliance.aws.errors import AwsCollectionError

if TYPE_CHECKING:
    from tag_compliance.aws.hook import TagComplianceAwsHook

log = logging.getLogger(__name__)

ORGANIZATIONS = "organizations"
ORGANIZATIONS_REGION = "us-east-1"  # Organizations has one endpoint
# MaxResults is 1-20 for ListRoots, ListAccountsForParent and ListOrganizationalUnitsForParent.
ORGANIZATIONS_PAGE = 20
NOT_IN_AN_ORGANIZATION = "AWSOrganizationsNotInUseException"
UNKNOWN_PARENT = frozenset({"ParentNotFoundException", "OrganizationalUnitNotFoundException"})
NOT_ALLOWED = frozenset({"AccessDeniedException", "AccessDenied"})


class AccountDiscoveryError(ValueError):
    """The organisation's accounts cannot be listed as configured; the message says how to fix it."""


@dataclass(frozen=True)
class OrganizationAccount:
    """One account as the organisation lists it (a row of the ``accounts`` dataset)."""

    account_id: str
    name: str | None = None
    email_domain: str | None = None  # the part after @: who owns it, without the mailbox
    ou_path: str | None = None  # Root/workloads/prod: the units from the root down to the account
    status: str | None = None  # ACTIVE, SUSPENDED, PENDING_CLOSURE (Organizations' State, else Status)
    joined_at: datetime | None = None
    inventoried: bool = False


@dataclass(frozen=True)
class OrganisationAccounts:
    """The accounts to inventory (sorted ids) and every account the organisation listed."""

    chosen: list[str]
    listed: list[OrganizationAccount]


def discover_accounts(
    hook: TagComplianceAwsHook, org_units: Iterable[str] = (), exclude: Iterable[str] = ()
) -> list[str]:
    """The ACTIVE accounts to inventory, sorted; the connection's own account alone when it is in
    no organisation."""
    return discover_organisation_accounts(hook, org_units, exclude).chosen


def discover_organisation_accounts(
    hook: TagComplianceAwsHook, org_units: Iterable[str] = (), exclude: Iterable[str] = ()
) -> OrganisationAccounts:
    """:func:`discover_accounts`, with every account the walk saw and what the organisation says of it."""
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
        if own in excluded:
            _nothing_left(org_units, excluded)
        return OrganisationAccounts([own], [OrganizationAccount(own, inventoried=True)])
    inactive = sorted(f"{a.account_id} ({a.name}, {a.status})" for a in accounts if a.status != "ACTIVE")
    if inactive:
        log.warning("not inventoried, not ACTIVE: %s", ", ".join(inactive))
    chosen = sorted({a.account_id for a in accounts if a.status == "ACTIVE" and a.account_id not in excluded})
    if not chosen:
        _nothing_left(org_units, excluded)
    log.info("inventorying %d ACTIVE accounts of the organisation (%d excluded)", len(chosen), len(excluded))
    listed = sorted(
        (dataclasses.replace(a, inventoried=a.account_id in chosen) for a in accounts),
        key=lambda a: a.account_id,
    )
    return OrganisationAccounts(chosen, listed)


def _listed(hook: TagComplianceAwsHook, own: str, org_units: list[str]) -> Iterator[OrganizationAccount]:
    """Every account from the root(s) down, with its unit path; only those under ``org_units``
    when named (each must be in the tree)."""
    client = hook.client_for(own, ORGANIZATIONS_REGION, ORGANIZATIONS)

    def items(operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        pages = hook.paginate(
            client, operation, account_id=own, region="global", page_size=ORGANIZATIONS_PAGE, **kwargs
        )
        for page in pages:
            yield from page.get(key, [])

    def under(parent: str, path: str, wanted: bool) -> Iterator[OrganizationAccount]:
        wanted = wanted or parent in org_units
        found.add(parent)
        if wanted:
            for item in items("list_accounts_for_parent", "Accounts", ParentId=parent):
                yield _account(item, path)
        for unit in items("list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent):
            yield from under(unit["Id"], f"{path}/{unit.get('Name', unit['Id'])}", wanted)

    found: set[str] = set()
    for root in items("list_roots", "Roots"):
        yield from under(root["Id"], root.get("Name") or "Root", not org_units)
    unknown = sorted(set(org_units) - found)
    if unknown:
        raise AccountDiscoveryError(
            f"TAG_COMPLIANCE_ORG_UNITS names an organisational unit or root the organisation does not "
            f"have: {', '.join(unknown)}"
        )


def _account(item: dict[str, Any], ou_path: str) -> OrganizationAccount:
    email = item.get("Email") or ""
    return OrganizationAccount(
        item["Id"],
        name=item.get("Name"),
        email_domain=email.rsplit("@", 1)[-1].lower() if "@" in email else None,
        ou_path=ou_path,
        status=item.get("State") or item.get("Status"),
        joined_at=item.get("JoinedTimestamp"),
    )


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


def _nothing_left(org_units: list[str], excluded: set[str]) -> NoReturn:
    where = f"under {', '.join(org_units)}" if org_units else "in the organisation"
    raise AccountDiscoveryError(
        f"no ACTIVE account {where} is left to inventory once TAG_COMPLIANCE_EXCLUDE_ACCOUNTS "
        f"({', '.join(sorted(excluded)) or 'empty'}) is applied"
    )
