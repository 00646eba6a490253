"""Collection tasks' logic: plan the (account, region) targets, collect one service, store it.

Nothing is written until a whole (service, account, region) has been collected, so a
failure part-way never leaves a partial ``resources`` partition behind.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from tag_compliance import lake
from tag_compliance.aws.accounting import ApiCallRecorder
from tag_compliance.aws.collectors import collectors_for, is_global_service, services
from tag_compliance.aws.collectors.base import GLOBAL_REGION, CollectionContext
from tag_compliance.config import Settings, get_settings

log = logging.getLogger(__name__)


def make_hook(settings: Settings, recorder: ApiCallRecorder):  # -> TagComplianceAwsHook
    from tag_compliance.aws.hook import TagComplianceAwsHook  # heavy: boto3 and the provider
    from tag_compliance.aws.ratelimit import RateLimit

    return TagComplianceAwsHook(
        settings.aws_conn_id,
        role_name=settings.role_name,
        recorder=recorder,
        rate_limits={"ce": RateLimit(rate=settings.cost_requests_per_second, burst=5)},
    )


def plan_targets(settings: Settings | None = None) -> dict[str, list[dict[str, str]]]:
    """Per service, the (account, region) pairs to collect: global services once per account."""
    settings = settings or get_settings()
    accounts = settings.accounts
    if not accounts:
        hook = make_hook(settings, ApiCallRecorder(task="plan"))
        accounts = [hook.own_account_id]
    plan: dict[str, list[dict[str, str]]] = {}
    for service in services():
        regions = [GLOBAL_REGION] if is_global_service(service) else settings.regions
        plan[service] = [
            {"account_id": account, "region": region} for account in accounts for region in regions
        ]
    return plan


def collect_service(
    service: str,
    account_id: str,
    region: str,
    snapshot_date: date,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Inventory every resource type of ``service`` in one (account, region) into the lake."""
    settings = settings or get_settings()
    recorder = ApiCallRecorder(task=f"collect_{service}")
    hook = make_hook(settings, recorder)
    client_region = settings.home_region if region == GLOBAL_REGION else region
    collected_at = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    try:
        for collector in collectors_for(service):
            ctx = CollectionContext(
                hook=hook,
                account_id=account_id,
                region=region,
                client_region=client_region,
                page_size=settings.page_size,
                regions=tuple(settings.regions),
            )
            for record in collector.collect(ctx):
                row = asdict(record)
                row["tags"] = list(record.tags.items())
                rows.append({"collected_at": collected_at, "resource_type": collector.resource_type, **row})
        table = pa.Table.from_pylist(rows, schema=lake.RESOURCES.schema)
        _check_unique(table, service, account_id, region)
        partition = {
            "snapshot_date": snapshot_date,
            "account_id": account_id,
            "region": region,
            "service": service,
        }
        path = lake.write_partition(settings.lake, lake.RESOURCES, partition, table)
    finally:
        # Accounting is kept even when collection fails: that is when it matters most.
        lake.write_partition(
            settings.lake,
            lake.API_CALLS,
            {"snapshot_date": snapshot_date},
            recorder.to_table(),
            part=f"collect-{service}-{account_id}-{region}",
        )
    counts = Counter(row["resource_type"] for row in rows)
    log.info("collected %s resources of %s in %s/%s -> %s", len(rows), service, account_id, region, path)
    return {"service": service, "account_id": account_id, "region": region, "resources": dict(counts)}


def _check_unique(table: pa.Table, service: str, account_id: str, region: str) -> None:
    keys = Counter(zip(table["resource_type"].to_pylist(), table["resource_id"].to_pylist(), strict=True))
    duplicates = [key for key, count in keys.items() if count > 1]
    if duplicates:
        raise ValueError(
            f"{service} in {account_id}/{region}: resource ids seen twice {duplicates[:5]}; "
            "refusing to store an inventory that double counts"
        )
