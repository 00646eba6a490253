"""Collection tasks' logic: plan the (account, region) targets, collect one service, store it,
and commit the snapshot with the status of every planned target.

Nothing is written until a whole (service, account, region) has been collected, and what is
written stays invisible to readers until ``commit_snapshot`` commits the collected targets' files
together with ``collection_status``: a target that failed is named there, and its resources are
neither read from an older snapshot nor taken as absent.
"""

from __future__ import annotations

import heapq
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
from tag_compliance.aws.errors import AwsCollectionError
from tag_compliance.collection_status import (
    COLLECTED,
    FAILED,
    NOT_ENABLED,
    STATUS_COLUMNS,
    TASK_FAILED,
    describe_failure,
    earlier_attempts,
    outcome,
)
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
    inventory (``TAG_COMPLIANCE_ACCOUNTS``, else the organisation's ACTIVE ones from AWS
    Organizations, else the own account alone) and the configured regions each has not enabled
    (AWS Account Management), which are never called. Its requests are accounted like every task's."""
    from tag_compliance.aws.organization import (
        OrganisationAccounts,
        OrganizationAccount,
        discover_organisation_accounts,
    )
    from tag_compliance.aws.regions import regions_not_enabled

    settings = settings or get_settings()
    recorder = ApiCallRecorder(task="discover_organisation")
    accounts: list[str] = []
    not_enabled: dict[str, dict[str, str]] = {}
    accounts_file = None
    try:
        hook = make_hook(settings, recorder)
        caller = hook.own_account_id
        if live:
            if settings.accounts:
                configured = [OrganizationAccount(account, inventoried=True) for account in settings.accounts]
                found = OrganisationAccounts(list(settings.accounts), configured)
            else:
                found = discover_organisation_accounts(hook, settings.org_units, settings.exclude_accounts)
            accounts = found.chosen
            accounts_file = stage_accounts(settings, snapshot_date, found.listed).to_json()
            regional = [
                service for service in settings.services or services() if not is_global_service(service)
            ]
            if settings.region_discovery and regional:
                not_enabled = regions_not_enabled(hook, accounts, settings.regions, settings.collect_threads)
    finally:
        recorder.write(settings.lake, snapshot_date, "discover-organisation")
    return {
        "caller_account": caller,
        "accounts": accounts,
        "regions_not_enabled": not_enabled,
        "accounts_file": accounts_file,
    }


def stage_accounts(settings: Settings, snapshot_date: date, listed: Iterable[Any]) -> lake.DataFile:
    """Write the run's ``accounts`` rows, invisible until ``commit_snapshot`` commits them with
    the inventory (what an earlier, killed attempt of the organisation task left goes)."""
    partition = {"snapshot_date": snapshot_date}
    table = pa.Table.from_pylist([asdict(account) for account in listed], schema=lake.ACCOUNTS.schema)
    lake.discard_uncommitted(settings.lake, lake.SNAPSHOT, snapshot_date, [(lake.ACCOUNTS, partition)])
    return lake.write_data_file(settings.lake, lake.ACCOUNTS, partition, table, lake.new_run_id())


def plan_targets(
    settings: Settings | None = None,
    accounts: list[str] | None = None,
    regions_not_enabled: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Per service, the (account, region) pairs to collect: global services once per account, none
    for a service ``TAG_COMPLIANCE_SERVICES`` leaves out. ``accounts``: as the run discovered them
    (default: ``TAG_COMPLIANCE_ACCOUNTS``, else the connection's own account);
    ``regions_not_enabled``: per account, the configured regions it has not enabled, which are
    not planned."""
    settings = settings or get_settings()
    accounts = accounts or settings.accounts
    if not accounts:
        hook = make_hook(settings, ApiCallRecorder(task="plan"))
        accounts = [hook.own_account_id]
    skipped = regions_not_enabled or {}
    plan: dict[str, list[dict[str, str]]] = {}
    for service in services():
        if settings.services and service not in settings.services:
            plan[service] = []
        elif is_global_service(service):
            plan[service] = [{"account_id": account, "region": GLOBAL_REGION} for account in accounts]
        else:
            plan[service] = [
                {"account_id": account, "region": region}
                for account in accounts
                for region in settings.regions
                if region not in skipped.get(account, {})
            ]
    return plan


def not_enabled_outcomes(
    planned_services: Iterable[str], regions_not_enabled: Mapping[str, Mapping[str, str]]
) -> list[dict[str, Any]]:
    """The ``collection_status`` rows of the regional targets left out of the plan because the
    account has not enabled the region: never called, and outside the coverage figure."""
    return [
        outcome(
            (service, account, region),
            NOT_ENABLED,
            0,
            error_code=status,
            message=f"region {region} not enabled in account {account} (opt-in status {status}): not called",
        )
        for service in sorted(planned_services)
        if not is_global_service(service)
        for account, skipped in sorted(regions_not_enabled.items())
        for region, status in sorted(skipped.items())
    ]


def chunks(targets: list[dict[str, str]], per_chunk: int, most: int) -> list[list[dict[str, str]]]:
    """``targets`` in as many chunks as it takes to give each ``per_chunk`` of them (a task
    instance's threads), but never more than ``most``: an account's targets stay together, so
    its role is assumed by one task instance (one ``AssumeRole`` per account and run, not one per
    region), each account going to the chunk with the fewest targets so far."""
    count = min(math.ceil(len(targets) / per_chunk), most)
    by_account: dict[str, list[dict[str, str]]] = {}
    for target in targets:
        by_account.setdefault(target["account_id"], []).append(target)
    dealt: list[list[dict[str, str]]] = [[] for _ in range(count)]
    smallest = [(0, index) for index in range(count)]  # (targets so far, chunk): a heap
    for account_targets in by_account.values():
        size, index = heapq.heappop(smallest)
        dealt[index].extend(account_targets)
        heapq.heappush(smallest, (size + len(account_targets), index))
    return [chunk for chunk in dealt if chunk]


def plan_collection(
    settings: Settings | None = None,
    accounts: list[str] | None = None,
    regions_not_enabled: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[list[dict[str, str]]]]:
    """Per service, its targets in chunks: one collection task instance per chunk, each with
    ``collect_threads`` targets or more, at most ``collect_task_instances`` of them whatever the
    size of the organisation."""
    settings = settings or get_settings()
    return {
        service: chunks(targets, settings.collect_threads, settings.collect_task_instances)
        for service, targets in plan_targets(settings, accounts, regions_not_enabled).items()
    }


def collect_chunk(
    service: str,
    targets: Iterable[Mapping[str, str]],
    snapshot_date: date,
    settings: Settings | None = None,
    caller_account: str | None = None,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Collect one chunk of a service's targets, ``collect_threads`` at a time, and say how each
    ended: a target that fails (after the hook's retries) is reported ``failed`` with its error
    and never stops the others, which are all written.

    ``run_id``: the Airflow run. When the day's snapshot was committed incomplete by this same
    run (a retry of a run that ended failed), the targets it collected are kept as they are and
    only the others are collected.
    """
    settings = settings or get_settings()
    targets = list(targets)
    if not targets:
        return []
    earlier = earlier_attempts(settings.lake, snapshot_date, run_id)

    def collect_target(target: Mapping[str, str]) -> dict[str, Any]:
        key = (service, target["account_id"], target["region"])
        before = earlier.get(key)
        if before is not None and before["status"] == COLLECTED:
            return before
        attempts = (before["attempts"] if before else 0) + 1
        try:
            result = collect_service(service, key[1], key[2], snapshot_date, settings, caller_account)
        except Exception as exc:  # any failure of one target is that target's, reported below
            code = getattr(exc, "code", None) or type(exc).__name__
            if isinstance(exc, AwsCollectionError):
                log.error("not collected: %s in %s/%s: %s", service, key[1], key[2], exc)
            else:
                log.exception("not collected: %s in %s/%s", service, key[1], key[2])
            return outcome(key, FAILED, attempts, error_code=code, message=str(exc))
        return {**result, **outcome(key, COLLECTED, attempts, resources=sum(result["resources"].values()))}

    with ThreadPoolExecutor(
        min(settings.collect_threads, len(targets)), thread_name_prefix="collect"
    ) as pool:
        outcomes = list(pool.map(collect_target, targets))
    failed = [outcome for outcome in outcomes if outcome["status"] == FAILED]
    if failed:
        log.warning(
            "%s: %d of %d targets not collected (see collection_status): %s",
            service,
            len(failed),
            len(outcomes),
            ", ".join(f"{row['account_id']}/{row['region']} {row['error_code']}" for row in failed[:10]),
        )
    return outcomes


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
    """No planned target was collected, or the results do not match the plan: nothing committed."""


def commit_snapshot(
    snapshot_date: date,
    planned: Mapping[str, Iterable[Mapping[str, str]]],
    collected: Iterable[Mapping[str, Any]],
    settings: Settings | None = None,
    run_id: str | None = None,
    regions_not_enabled: Mapping[str, Mapping[str, str]] | None = None,
    accounts_file: Mapping[str, Any] | None = None,
) -> lake.Commit:
    """Commit the day's inventory: every collected target's file, and every planned target's
    status in ``collection_status``, in one step (with a ``not_enabled`` row for each region an
    account has not enabled, which was not planned), and the run's ``accounts`` file if staged.

    ``planned``: the targets per service (the ``targets_<service>`` tasks' lists); ``collected``:
    what the collection tasks reported of each target (a target of a task that ended without a
    report counts as failed, ``TaskFailed``). A snapshot with failed targets is committed all the
    same, saying so: readers see what was collected and how much of the plan that is, never an
    older inventory in place of the missing targets. Nothing is committed when no target at all
    was collected (a good earlier commit of the day is not replaced by an empty one).
    """
    settings = settings or get_settings()
    reported: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for result in collected:
        reported[(str(result["service"]), str(result["account_id"]), str(result["region"]))] = result
    wanted = [
        (service, target["account_id"], target["region"])
        for service, targets in sorted(planned.items())
        for target in targets
    ]
    unplanned = sorted(set(reported) - set(wanted))
    if unplanned:
        raise IncompleteSnapshotError(
            f"snapshot {snapshot_date}: collected targets that were not planned: {unplanned[:10]}"
        )
    statuses = [
        reported.get(target)
        or outcome(
            target,
            FAILED,
            1,
            error_code=TASK_FAILED,
            message="its collection task ended without reporting this target (see that task's log)",
        )
        for target in wanted
    ]
    files = [
        lake.DataFile.from_json(status["file"])  # type: ignore[arg-type]
        for status in statuses
        if status["status"] == COLLECTED
    ]
    if wanted and not files:
        shown = ", ".join("/".join(target) for target in wanted[:10])
        raise IncompleteSnapshotError(
            f"snapshot {snapshot_date}: none of the {len(wanted)} planned targets was collected ({shown}"
            f"{', ...' if len(wanted) > 10 else ''}); not committed (see the collection tasks' logs)"
        )
    run = lake.new_run_id()
    chosen = [service for service in planned if not settings.services or service in settings.services]
    table = pa.Table.from_pylist(
        [
            {column: status[column] for column in STATUS_COLUMNS}
            for status in [*statuses, *not_enabled_outcomes(chosen, regions_not_enabled or {})]
        ],
        schema=lake.COLLECTION_STATUS.schema,
    )
    status_partition = {"snapshot_date": snapshot_date}
    lake.discard_uncommitted(
        settings.lake, lake.SNAPSHOT, snapshot_date, [(lake.COLLECTION_STATUS, status_partition)]
    )
    status_file = lake.write_data_file(settings.lake, lake.COLLECTION_STATUS, status_partition, table, run)
    not_collected = [status for status in statuses if status["status"] != COLLECTED]
    if not_collected:
        log.warning(
            "snapshot %s committed with %d of %d planned targets collected; not collected: %s",
            snapshot_date,
            len(files),
            len(wanted),
            ", ".join(describe_failure(status) for status in not_collected[:10]),
        )
    return lake.commit(
        settings.lake,
        lake.SNAPSHOT,
        snapshot_date,
        [*files, status_file, *([lake.DataFile.from_json(accounts_file)] if accounts_file else [])],
        run,
        meta={"targets": len(wanted), "collected": len(files), "airflow_run_id": run_id},
    )


def _check_unique(table: pa.Table, service: str, account_id: str, region: str) -> None:
    keys = Counter(zip(table["resource_type"].to_pylist(), table["resource_id"].to_pylist(), strict=True))
    duplicates = [key for key, count in keys.items() if count > 1]
    if duplicates:
        raise ValueError(
            f"{service} in {account_id}/{region}: resource ids seen twice {duplicates[:5]}; "
            "refusing to store an inventory that double counts"
        )
