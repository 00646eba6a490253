"""What each task of the ``tag_compliance`` DAG does, callable without a running Airflow."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, date
from typing import Any

from tag_compliance import clock, lake
from tag_compliance.collect import (
    IncompleteSnapshotError,
    collect_chunk,
    discover_organisation,
    plan_collection,
)
from tag_compliance.collection_status import describe_failure, snapshot_coverage
from tag_compliance.config import Settings, SettingsError, get_settings

log = logging.getLogger(__name__)


def snapshot_date_for(context: Mapping[str, Any], settings: Settings | None = None) -> date:
    """The day a run covers: its one-day data interval's start (UTC).

    Manual and asset-triggered runs may have no logical date and so no data interval:
    they score the current UTC day.
    """
    start = context.get("data_interval_start")
    if start is None:
        return clock.today(settings or get_settings())
    return start.astimezone(UTC).date()


def _valid_settings() -> Settings:
    """The settings, or a task failure naming every bad variable (a retry would not fix it)."""
    try:
        return get_settings()
    except SettingsError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from None


def plan(context: Mapping[str, Any], settings: Settings | None = None) -> str:
    """Validate the policy (and a sandbox clock) before any AWS call, tidy the lake; return the
    snapshot date.

    Tidying: a lake written before commits existed has its files adopted as committed, and files
    of writers killed long enough ago (``lake.STRAY_FILE_GRACE``) are deleted.
    """
    from tag_compliance.policy import load_policy

    settings = settings or _valid_settings()
    policy = load_policy(settings.policy)
    lake.adopt_files_without_commits(settings.lake)
    lake.sweep(settings.lake)
    snapshot = snapshot_date_for(context, settings)
    live = clock.inventory_is_live(snapshot, settings)
    log.info(
        "snapshot %s (%s), policy %s version %s",
        snapshot,
        "live inventory" if live else "a past day: scored from the stored snapshot on or before it",
        settings.policy,
        policy.version,
    )
    return snapshot.isoformat()


def organisation(snapshot_date: str, settings: Settings | None = None) -> dict[str, Any]:
    """The run's caller account (asked of STS once, here) and, for a live inventory, the accounts
    to inventory (``TAG_COMPLIANCE_ACCOUNTS`` or the organisation's ACTIVE ones) and the regions
    each has not enabled. A configuration AWS Organizations or Account Management cannot answer
    fails the run here, before any collection."""
    from tag_compliance.aws.organization import AccountDiscoveryError
    from tag_compliance.aws.regions import RegionDiscoveryError

    settings = settings or get_settings()
    day = date.fromisoformat(snapshot_date)
    try:
        return discover_organisation(day, clock.inventory_is_live(day, settings), settings)
    except (AccountDiscoveryError, RegionDiscoveryError) as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc  # a retry would find the same


def targets(
    service: str,
    snapshot_date: str,
    settings: Settings | None = None,
    *,
    organisation: Mapping[str, Any] | None = None,
) -> list[list[dict[str, str]]]:
    """The chunks of (account, region) targets one service's mapped collection task runs over,
    for the accounts the run discovered (``organisation``).

    None for a past day: its inventory can only come from a stored snapshot, so the mapped
    collection task expands to nothing and shows as skipped.
    """
    settings = settings or get_settings()
    if not clock.inventory_is_live(date.fromisoformat(snapshot_date), settings):
        log.info("%s is a past day: no live inventory of %s is collected for it", snapshot_date, service)
        return []
    organisation = organisation or {}
    return plan_collection(
        settings, list(organisation.get("accounts") or []), organisation.get("regions_not_enabled")
    )[service]


def collect(
    service: str,
    targets: Iterable[Mapping[str, str]],
    snapshot_date: str,
    organisation: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """How each target of the chunk ended (``collection_status`` rows, with the collected ones'
    files); a failed target fails the run at its end, not this task."""
    caller = (organisation or {}).get("caller_account")
    return collect_chunk(
        service, targets, date.fromisoformat(snapshot_date), caller_account=caller, run_id=run_id
    )


def describe_targets(targets: Iterable[Mapping[str, str]]) -> str:
    """What one collection task instance covers, as Airflow's UI names it (``map_index_template``)."""
    targets = list(targets)
    first = f"{targets[0]['account_id']}/{targets[0]['region']}" if targets else "nothing"
    return first if len(targets) <= 1 else f"{first} and {len(targets) - 1} more"


def commit_snapshot(
    snapshot_date: str,
    planned: Mapping[str, Iterable[Iterable[Mapping[str, str]]]],
    collected: Iterable[Iterable[Iterable[Mapping[str, Any]]]],
    settings: Settings | None = None,
    run_id: str | None = None,
    organisation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Make the day's inventory visible: every collected target, and the status of every
    planned one (a chunk whose task failed has no results: its targets count as failed), and of
    every region an account has not enabled (``organisation``), which was not called.

    ``planned``: the chunks of targets of each service; ``collected``: per service, each task
    instance's results. A past day plans no targets and commits nothing: it is scored from a
    stored snapshot.
    """
    from tag_compliance.collect import commit_snapshot as commit

    settings = settings or get_settings()
    targets = {
        service: [target for chunk in service_chunks or () for target in chunk]
        for service, service_chunks in planned.items()
    }
    if not any(targets.values()):
        log.info("%s: no live inventory planned, nothing to commit", snapshot_date)
        return {"snapshot_date": snapshot_date, "committed": False, "files": 0}
    results = [
        result for service_results in collected for chunk in service_results or () for result in chunk or ()
    ]
    try:
        snapshot = commit(
            date.fromisoformat(snapshot_date),
            targets,
            results,
            settings,
            run_id,
            (organisation or {}).get("regions_not_enabled"),
            (organisation or {}).get("accounts_file"),
        )
    except IncompleteSnapshotError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from None  # a retry of this task would find the same
    return {
        "snapshot_date": snapshot_date,
        "committed": True,
        "targets": snapshot.meta["targets"],
        "collected": snapshot.meta["collected"],
    }


def extract_costs(
    snapshot_date: str, settings: Settings | None = None, *, organisation: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The run's Cost Explorer data (one task in the one-slot ``aws_cost_explorer`` pool)."""
    from tag_compliance.costs.extract import CostExplorerBudgetError
    from tag_compliance.costs.extract import extract_costs as extract
    from tag_compliance.policy import load_policy

    settings = settings or get_settings()
    if not settings.cost_explorer:
        log.info("TAG_COMPLIANCE_COST_EXPLORER is off: no cost data extracted")
        return {"days": [], "resource_days": [], "requests": 0, "request_cost_usd": "0.00", "rows": {}}
    policy = load_policy(settings.policy)
    keys = [rule.key for rule in policy.required_tags]
    try:
        return extract(
            date.fromisoformat(snapshot_date),
            keys,
            settings,
            today=clock.today(settings),
            caller_account=(organisation or {}).get("caller_account"),
        )
    except CostExplorerBudgetError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        # A retry would spend the same budget again: fail for good, with the reason.
        raise AirflowFailException(str(exc)) from exc


def inventory_for(day: date, settings: Settings) -> date:
    """The inventory snapshot a day is scored with: its own, else the nearest earlier one."""
    from tag_compliance.scoring import latest_snapshot_on_or_before

    as_of = latest_snapshot_on_or_before(settings.lake, day)
    if as_of is None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"nothing scored for {day.isoformat()}: the lake {settings.lake} holds no inventory snapshot on "
            "or before that day, and the inventory of a past day can only come from a stored snapshot "
            "(the pipeline never labels today's resources with a past date). Its costs were extracted; "
            "days from the first daily run onwards can be scored."
        )
    return as_of


def score(
    snapshot_date: str, costs: Mapping[str, Any] | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Score the run's day, and rescore earlier scored days whose costs were just re-extracted
    (their Estimated figures became final). Always with the current policy."""
    from tag_compliance.policy import load_policy
    from tag_compliance.scoring import EngineLimits, score_snapshot

    settings = settings or get_settings()
    policy = load_policy(settings.policy)
    limits = EngineLimits.of(settings)
    day = date.fromisoformat(snapshot_date)
    scored = set(lake.committed_keys(settings.lake, lake.SCORES))
    rescored = sorted(
        earlier
        for earlier in {date.fromisoformat(d) for d in (costs or {}).get("days", [])}
        if earlier != day and earlier in scored
    )
    for earlier in rescored:
        score_snapshot(
            settings.lake, earlier, policy, inventory_as_of=inventory_for(earlier, settings), limits=limits
        )
    result = score_snapshot(
        settings.lake, day, policy, inventory_as_of=inventory_for(day, settings), limits=limits
    )
    log.info(
        "scored %s with the inventory of %s and policy version %s",
        snapshot_date,
        result.inventory_as_of,
        result.policy_version,
    )
    return {
        "snapshot_date": snapshot_date,
        "inventory_as_of": result.inventory_as_of.isoformat(),
        "policy_version": result.policy_version,
        "resources": result.resources,
        "violations": result.violations,
        "rescored": [d.isoformat() for d in rescored],
    }


def publish(settings: Settings | None = None) -> str:
    from tag_compliance.scoring import EngineLimits
    from tag_compliance.warehouse import WarehouseCoverageError, publish_warehouse

    settings = settings or get_settings()
    limits = EngineLimits.of(settings)
    try:
        publish_warehouse(settings.lake, settings.warehouse, settings.publish_allow_missing_days, limits)
    except WarehouseCoverageError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from None
    return str(settings.warehouse)


def write_report(snapshot_date: str, settings: Settings | None = None) -> str:
    """Write the run's day's HTML report into ``reports/`` next to the warehouse; return its path.

    Runs after the publish, so the report shows exactly what the warehouse now holds.
    """
    from tag_compliance.report import write_report as write

    settings = settings or get_settings()
    return str(write(settings.warehouse, date.fromisoformat(snapshot_date)))


def check_coverage(scores: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The run's last word: fail it when the inventory it scored collected less of its plan than
    ``TAG_COMPLIANCE_MIN_COVERAGE`` (what was collected is scored and published by then)."""
    settings = settings or get_settings()
    inventory = date.fromisoformat(scores["inventory_as_of"])
    coverage = snapshot_coverage(settings.lake, inventory)
    figure = "not recorded" if coverage.pct is None else f"{coverage.pct:.2f}%"
    log.info(
        "inventory %s: %s of %s planned targets collected (coverage %s, at least %s%% required)",
        inventory,
        coverage.collected,
        coverage.planned,
        figure,
        settings.min_coverage_pct,
    )
    if coverage.pct is not None and coverage.pct < settings.min_coverage_pct:
        from airflow.sdk.exceptions import AirflowFailException

        missing = coverage.not_collected
        shown = "; ".join(describe_failure(status) for status in missing[:10])
        raise AirflowFailException(
            f"inventory {inventory}: coverage {figure} is below TAG_COMPLIANCE_MIN_COVERAGE="
            f"{settings.min_coverage_pct:g}: {len(missing)} of {coverage.planned} planned targets were not "
            f"collected ({shown}{'; ...' if len(missing) > 10 else ''}; every one with its error in the "
            "collection_status view). What was collected is scored and published. Fix the cause and clear "
            "this run: it collects only the missing targets."
        )
    return {"inventory_as_of": inventory.isoformat(), "coverage_pct": coverage.pct}
