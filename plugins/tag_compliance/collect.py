"""Collection tasks' logic: plan the (account, region) targets, collect one service, store it,
and commit the snapshot once every planned target is in.

Nothing is written until a whole (service, account, region) has been collected, and what is
written stays invisible to readers until ``commit_snapshot`` finds every planned target's file
and commits them together: a snapshot missing a target is never read as the day's inventory.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
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


def make_hook(settings: Settings, recorder: ApiCallRecorder, caller_account: str | None = None):
    """The hook every AWS call goes through; ``caller_account``: the connection's own account as
    the run's first task found it, so this task does not ask STS again."""
    from tag_compliance.aws.hook import TagComplianceAwsHook  # heavy: boto3 and the provider
    from tag_compliance.aws.ratelimit import RateLimit

    return TagComplianceAwsHook(
        settings.aws_conn_id,
        role_name=settings.role_name,
        recorder=recorder,
        rate_limits={"ce": RateLimit(rate=settings.cost_requests_per_second, burst=5)},
        own_account_id=caller_account,
    )


def discover_organisation(
    snapshot_date: date, live: bool, settings: Settings | None = None
) -> dict[str, Any]:
    """Once per run: the connection's own account (STS) and, for a live inventory, the accounts to
    inventory: ``TAG_COMPLIANCE_ACCOUNTS``, else the organisation's ACTIVE ones (AWS Organizations),
    else the own account alone. Its requests are accounted like every task's."""
    from tag_compliance.aws.organization import discover_accounts

    settings = settings or get_settings()
    recorder = ApiCallRecorder(task="discover_organisation")
    try:
        hook = make_hook(settings, recorder)
        caller = hook.own_account_id
        accounts: list[str] = []
        if live:
            accounts = list(settings.accounts) or discover_accounts(
                hook, settings.org_units, settings.exclude_accounts
            )
    finally:
        recorder.write(settings.lake, snapshot_date, "discover-organisation")
    return {"caller_account": caller, "accounts": accounts}


def plan_targets(
    settings: Settings | None = None, accounts: list[str] | None = None
) -> dict[str, list[dict[str, str]]]:
    """Per service, the (account, region) pairs to collect: global services once per account.
    ``accounts``: as the run discovered them (default: ``TAG_COMPLIANCE_ACCOUNTS``, else the
    connection's own account)."""
    settings = settings or get_settings()
    accounts = accounts or settings.accounts
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


def chunks(targets: list[dict[str, str]], per_chunk: int, most: int) -> list[list[dict[str, str]]]:
    """``targets`` dealt round-robin into as many chunks as it takes to give each ``per_chunk`` of
    them (a task instance's threads), but never more than ``most``."""
    count = min(math.ceil(len(targets) / per_chunk), most)
    return [targets[start::count] for start in range(count)]


def plan_collection(
    settings: Settings | None = None, accounts: list[str] | None = None
) -> dict[str, list[list[dict[str, str]]]]:
    """Per service, its targets in chunks: one collection task instance per chunk, each with
    ``collect_threads`` targets or more, at most ``collect_task_instances`` of them whatever the
    size of the organisation."""
    settings = settings or get_settings()
    return {
        service: chunks(targets, settings.collect_threads, settings.collect_task_instances)
        for service, targets in plan_targets(settings, accounts).items()
    }


def collect_chunk(
    service: str,
    targets: Iterable[Mapping[str, str]],
    snapshot_date: date,
    settings: Settings | None = None,
    caller_account: str | None = None,
) -> list[dict[str, Any]]:
    """Collect one chunk of a service's targets, ``collect_threads`` at a time (each target is
    written on its own, so a retry redoes only what it must and never duplicates a partition)."""
    settings = settings or get_settings()
    targets = list(targets)
    if not targets:
        return []
    with ThreadPoolExecutor(
        min(settings.collect_threads, len(targets)), thread_name_prefix="collect"
    ) as pool:
        return list(
            pool.map(
                lambda target: collect_service(
                    service, target["account_id"], target["region"], snapshot_date, settings, caller_account
                ),
                targets,
            )
        )


def collect_service(
    service: str,
    account_id: str,
    region: str,
    snapshot_date: date,
    settings: Settings | None = None,
    caller_account: str | None = None,
) -> dict[str, Any]:
    """Inventory every resource type of ``service`` in one (account, region) into the lake."""
    settings = settings or get_settings()
    recorder = ApiCallRecorder(task=f"collect_{service}")
    hook = make_hook(settings, recorder, caller_account)
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
                row["resource_type"] = record.resource_type or collector.resource_type
                rows.append({"collected_at": collected_at, **row})
        table = pa.Table.from_pylist(rows, schema=lake.RESOURCES.schema)
        _check_unique(table, service, account_id, region)
        partition = target_partition(snapshot_date, service, account_id, region)
        # This task is the partition's only writer: what an earlier, killed attempt left goes.
        lake.discard_uncommitted(settings.lake, lake.SNAPSHOT, snapshot_date, [(lake.RESOURCES, partition)])
        written = lake.write_data_file(settings.lake, lake.RESOURCES, partition, table, lake.new_run_id())
    finally:
        # Accounting is kept even when collection fails: that is when it matters most.
        recorder.write(settings.lake, snapshot_date, f"collect-{service}-{account_id}-{region}")
    counts = Counter(row["resource_type"] for row in rows)
    log.info(
        "collected %s resources of %s in %s/%s -> %s (visible once the snapshot is committed)",
        len(rows),
        service,
        account_id,
        region,
        written.path,
    )
    return {
        "service": service,
        "account_id": account_id,
        "region": region,
        "resources": dict(counts),
        "file": written.to_json(),
    }


def target_partition(snapshot_date: date, service: str, account_id: str, region: str) -> dict[str, object]:
    return {"snapshot_date": snapshot_date, "account_id": account_id, "region": region, "service": service}


class IncompleteSnapshotError(RuntimeError):
    """Some planned targets have no collected file: the snapshot is not committed."""


def commit_snapshot(
    snapshot_date: date,
    planned: Mapping[str, Iterable[Mapping[str, str]]],
    collected: Iterable[Mapping[str, object]],
    settings: Settings | None = None,
) -> lake.Commit:
    """Commit the day's inventory once every planned (service, account, region) has its file.

    ``planned``: the targets per service (the ``targets_<service>`` tasks' lists); ``collected``:
    what the collection tasks returned. Until this commit, readers keep seeing the previous
    commit of the day (a rerun) or no snapshot at all for it.
    """
    settings = settings or get_settings()
    files = {}
    for result in collected:
        file = lake.DataFile.from_json(result["file"])  # type: ignore[arg-type]
        files[(str(result["service"]), str(result["account_id"]), str(result["region"]))] = file
    wanted = [
        (service, target["account_id"], target["region"])
        for service, targets in sorted(planned.items())
        for target in targets
    ]
    missing = [target for target in wanted if target not in files]
    if missing:
        shown = ", ".join("/".join(target) for target in missing[:10])
        raise IncompleteSnapshotError(
            f"snapshot {snapshot_date}: {len(missing)} of {len(wanted)} planned targets have no collected "
            f"inventory ({shown}{', ...' if len(missing) > 10 else ''}); not committed, so no reader takes "
            "it for the day's inventory"
        )
    unplanned = sorted(set(files) - set(wanted))
    if unplanned:
        raise IncompleteSnapshotError(
            f"snapshot {snapshot_date}: collected targets that were not planned: {unplanned[:10]}"
        )
    return lake.commit(
        settings.lake,
        lake.SNAPSHOT,
        snapshot_date,
        [files[target] for target in wanted],
        lake.new_run_id(),
        meta={"targets": len(wanted)},
    )


def _check_unique(table: pa.Table, service: str, account_id: str, region: str) -> None:
    keys = Counter(zip(table["resource_type"].to_pylist(), table["resource_id"].to_pylist(), strict=True))
    duplicates = [key for key, count in keys.items() if count > 1]
    if duplicates:
        raise ValueError(
            f"{service} in {account_id}/{region}: resource ids seen twice {duplicates[:5]}; "
            "refusing to store an inventory that double counts"
        )
