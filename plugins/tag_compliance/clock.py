"""What time it is for the pipeline, and which days get live inventory.

The pipeline asks "now" to decide three things: the day a run without a data interval
covers, whether a run's day is recent enough to label live inventory with it, and which days
Cost Explorer still has resource-level data for. In production "now" is the wall clock.

``TAG_COMPLIANCE_SANDBOX_CLOCK`` replaces it so the demo and tests can replay past days
against the local sandbox as if they were today. It is refused unless every endpoint of the
AWS connection is a loopback address: a fake clock can never label real AWS inventory with a
past date.
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


def connection_endpoints(aws_conn_id: str) -> list[str | None]:
    """Every endpoint the connection sends requests to: its own and each service's override."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    conn = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="sts").conn_config
    overrides = [config.get("endpoint_url") for config in conn.service_config.values()]
    return [conn.endpoint_url, *[url for url in overrides if url is not None]]


def ensure_sandbox(settings: Settings) -> None:
    """Refuse the sandbox clock unless the connection only reaches this machine."""
    endpoints = connection_endpoints(settings.aws_conn_id)
    remote = [url or "(AWS's own endpoints)" for url in endpoints if not _is_loopback(url)]
    if remote:
        raise SandboxClockError(
            f"{SANDBOX_CLOCK_ENV} is set, but connection {settings.aws_conn_id!r} reaches {remote}: the "
            "sandbox clock only works against a local sandbox (endpoints on 127.0.0.1). Unset it to run "
            "against AWS."
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
