"""The DAG's task callables: time semantics and failing fast on a bad policy."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pendulum
import pyarrow.parquet as pq
import pytest

from tag_compliance import pipeline
from tag_compliance.policy import PolicyError
from tests.sql_fixtures import (
    COSTS_SERVICE_ONLY,
    COSTS_WITH_RESOURCES,
    POLICY_DATA,
    SNAPSHOT,
    write_costs,
    write_snapshot,
)


def test_the_snapshot_is_the_data_interval_day():
    start = pendulum.datetime(2026, 11, 20, tz="UTC")
    assert pipeline.snapshot_date_for({"data_interval_start": start}) == date(2026, 11, 20)


def test_a_run_without_data_interval_scores_the_current_utc_day():
    assert pipeline.snapshot_date_for({"data_interval_start": None}) == datetime.now(UTC).date()


def test_a_malformed_policy_fails_the_first_task_naming_file_and_field(tmp_path, settings):
    policy = tmp_path / "team-policy.yaml"
    policy.write_text('version: "1"\nrequired_tags:\n  - key: CostCenter\n    severity: critical\n')
    with pytest.raises(PolicyError, match=r"team-policy\.yaml: required_tags\[0\]\.severity.*'critical'"):
        pipeline.plan({}, settings.model_copy(update={"policy": policy}))


def test_scoring_also_rescores_earlier_snapshots_whose_costs_were_re_extracted(settings):
    day_before = SNAPSHOT - timedelta(days=1)
    for day in (day_before, SNAPSHOT):
        write_snapshot(settings.lake, snapshot_date=day)
    write_costs(settings.lake, COSTS_SERVICE_ONLY, usage_date=day_before)
    policy = settings.model_copy(update={"policy": write_fixture_policy(settings.lake.parent)})
    pipeline.score(day_before.isoformat(), {"days": []}, policy)
    assert resource_costs_of(settings.lake, day_before) == {"service_average", None}  # None: sqs, uncosted

    # final figures for the day before arrive with the next run, with resource-level data
    write_costs(settings.lake, COSTS_WITH_RESOURCES, usage_date=day_before)
    costs = {"days": [day_before.isoformat(), SNAPSHOT.isoformat(), "2026-03-12"]}  # 12th: no snapshot
    result = pipeline.score(SNAPSHOT.isoformat(), costs, policy)

    assert result["rescored"] == [day_before.isoformat()]
    assert resource_costs_of(settings.lake, day_before) == {"resource", None}
    assert resource_costs_of(settings.lake, SNAPSHOT) == {None}  # no costs stored for that day


def write_fixture_policy(directory: Path) -> Path:
    path = directory / "fixture-policy.json"
    path.write_text(json.dumps(POLICY_DATA), encoding="utf-8")
    return path


def resource_costs_of(lake_root: Path, day: date) -> set[str | None]:
    table = pq.read_table(lake_root / "resource_compliance" / f"snapshot_date={day.isoformat()}")
    return set(table["cost_basis"].to_pylist())
