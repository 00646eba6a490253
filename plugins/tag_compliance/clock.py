"""What time it is for the pipeline, and which days get live inventory.

The pipeline asks "now" to decide three things: the day a run without a data interval
covers, whether a run's day is recent enough to label live inventory with it, and which days
Cost Explorer still has resource-level data for. In production "now" is the wall clock.

``TAG_COMPLIANCE_SANDBOX_CLOCK`` replaces it so the demo and tests can replay past days
against the local sandbox as if they were today. It is refused unless every client a run creates
sends its requests to a loopback address: a fake clock can never label real AWS inventory with a
past date. "Every client" is resolved as the hook resolves it (see
``TagComplianceAwsHook.client_endpoints``): each service the run calls, in the connection's own and
member accounts' sessions, plus the STS client that assumes a ``role_arn`` of the extra.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from tag_compliance.config import Settings

SANDBOX_CLOCK_ENV = "TAG_COMPLIANCE_SANDBOX_CLOCK"


class SandboxClockError(RuntimeError):
    """The sandbox clock is set while the AWS connection points beyond this machine."""


def _is_loopback(url: str | None) -> bool:
    host = urlsplit(url or "").hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def services_called() -> list[str]:
    """Every AWS service a run's clients call: the collectors' own and the ones they read tags
    from, STS (the connection's account, member roles), Organizations (the accounts), Account
    Management (their regions) and Cost Explorer."""
    from tag_compliance.aws.collectors import all_collectors
    from tag_compliance.aws.hook import STS
    from tag_compliance.aws.organization import ORGANIZATIONS
    from tag_compliance.aws.regions import ACCOUNT_MANAGEMENT
    from tag_compliance.costs.extract import COST_EXPLORER_SERVICE

    collected = {name for collector in all_collectors() for name in collector.client_services}
    return sorted({*collected, STS, ORGANIZATIONS, ACCOUNT_MANAGEMENT, COST_EXPLORER_SERVICE})


def client_endpoints(settings: Settings) -> dict[str, str]:
    """Where each client a run creates sends its requests (client name -> URL), without a network call."""
    from tag_compliance.aws.hook import TagComplianceAwsHook

    hook = TagComplianceAwsHook(settings.aws_conn_id, role_name=settings.role_name)
    return hook.client_endpoints(services_called(), settings.home_region)


def ensure_sandbox(settings: Settings) -> None:
    """Refuse the sandbox clock unless every client of the run only reaches this machine."""
    from botocore.exceptions import BotoCoreError

    from tag_compliance.aws.hook import is_aws_endpoint

    conn_id = settings.aws_conn_id
    try:
        endpoints = client_endpoints(settings)
    except (BotoCoreError, ValueError) as exc:  # botocore: invalid endpoint URL, unknown profile
        raise SandboxClockError(
            f"{SANDBOX_CLOCK_ENV} is set, but where connection {conn_id!r} sends requests cannot be "
            f"resolved: {exc}"
        ) from None
    remote = {client: url for client, url in endpoints.items() if not _is_loopback(url)}
    if not remote:
        return
    groups: dict[str, list[str]] = {"AWS's own endpoints": [], "other hosts": []}
    for client, url in remote.items():
        groups["AWS's own endpoints" if is_aws_endpoint(url) else "other hosts"].append(f"{client} at {url}")
    where = "; ".join(f"{group}: {', '.join(clients)}" for group, clients in groups.items() if clients)
    raise SandboxClockError(
        f"{SANDBOX_CLOCK_ENV} is set, but connection {conn_id!r} sends requests beyond this machine, to "
        f"{where}. The sandbox clock only works against a local sandbox: every endpoint on a loopback "
        "address (127.0.0.1, ::1, localhost), through the extra's endpoint_url or "
        "service_config.<service>.endpoint_url (service_config.sts.endpoint_url for a role_arn). Unset "
        "it to run against AWS."
    )


def now(settings: Settings) -> datetime:
    """The pipeline's 'now' (UTC): the wall clock, or the sandbox clock against a local sandbox."""
    if settings.sandbox_clock is None:
        return datetime.now(UTC)
    ensure_sandbox(settings)
    clock = settings.sandbox_clock
    return (clock if clock.tzinfo else clock.replace(tzinfo=UTC)).astimezone(UTC)


def today(settings: Settings) -> date:
    return now(settings).date()


def inventory_is_live(snapshot_date: date, settings: Settings) -> bool:
    """Whether what the APIs list now may be labelled with ``snapshot_date``.

    Only for the day that just ended (the daily run's interval) or the current day. An older
    day (a backfill, a catch-up after an outage) is scored from stored snapshots instead: live
    inventory would claim resources existed on a day nobody looked.
    """
    return snapshot_date >= today(settings) - timedelta(days=1)
