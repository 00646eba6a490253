"""What each task of the ``tag_compliance`` DAG does, callable without a running Airflow."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from tag_compliance.collect import collect_service, plan_targets
from tag_compliance.config import Settings, get_settings

log = logging.getLogger(__name__)


def snapshot_date_for(context: Mapping[str, Any]) -> date:
    """The day a run covers: its one-day data interval's start (UTC).

    Manual and asset-triggered runs may have no logical date and so no data interval:
    they score the current UTC day.
    """
    start = context.get("data_interval_start")
    if start is None:
        return datetime.now(UTC).date()
    return start.astimezone(UTC).date()


def plan(context: Mapping[str, Any], settings: Settings | None = None) -> str:
    """Validate the policy before any AWS call is spent; return the snapshot date (ISO)."""
    from tag_compliance.policy import load_policy

    settings = settings or get_settings()
    policy = load_policy(settings.policy)
    snapshot = snapshot_date_for(context)
    log.info("snapshot %s, policy %s version %s", snapshot, settings.policy, policy.version)
    return snapshot.isoformat()


def targets(service: str, settings: Settings | None = None) -> list[dict[str, str]]:
    """The (account, region) pairs one service's mapped collection task runs over."""
    return plan_targets(settings or get_settings())[service]


def collect(service: str, target: Mapping[str, str], snapshot_date: str) -> dict[str, Any]:
    return collect_service(service, target["account_id"], target["region"], date.fromisoformat(snapshot_date))


def extract_costs(snapshot_date: str, settings: Settings | None = None) -> dict[str, Any]:
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
        return extract(date.fromisoformat(snapshot_date), keys, settings)
    except CostExplorerBudgetError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        # A retry would spend the same budget again: fail for good, with the reason.
        raise AirflowFailException(str(exc)) from exc


def score(
    snapshot_date: str, costs: Mapping[str, Any] | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Score the run's snapshot, and rescore earlier snapshots whose costs were just re-extracted
    (their Estimated figures became final)."""
    from tag_compliance.policy import load_policy
    from tag_compliance.scoring import score_snapshot, snapshot_files

    settings = settings or get_settings()
    policy = load_policy(settings.policy)
    rescored = sorted(
        day
        for day in {date.fromisoformat(d) for d in (costs or {}).get("days", [])}
        if day.isoformat() != snapshot_date and snapshot_files(settings.lake, day)
    )
    for day in rescored:
        score_snapshot(settings.lake, day, policy)
    result = score_snapshot(settings.lake, date.fromisoformat(snapshot_date), policy)
    return {
        "snapshot_date": snapshot_date,
        "policy_version": result.policy_version,
        "resources": result.resources,
        "violations": result.violations,
        "rescored": [day.isoformat() for day in rescored],
    }


def publish(settings: Settings | None = None) -> str:
    from tag_compliance.warehouse import publish_warehouse

    settings = settings or get_settings()
    publish_warehouse(settings.lake, settings.warehouse)
    return str(settings.warehouse)
