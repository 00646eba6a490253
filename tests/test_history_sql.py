"""History views over a multi-day lake: exact rows of compliance_trend, tag_drift and
violation_history through the published warehouse (the story is in ``tests/history_fixtures.py``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tag_compliance.policy import TaggingPolicy
from tag_compliance.scoring import latest_snapshot_on_or_before, score_snapshot
from tag_compliance.warehouse import VIEW_COLUMNS, publish_warehouse
from tests.history_fixtures import (
    D1,
    D2,
    D4,
    D5,
    D6,
    EC2,
    GLOBAL,
    HISTORY_VERSION,
    LAMBDA,
    S3,
    SCORED_DATES,
    US,
    write_history_lake,
)
from tests.sql_fixtures import ACCOUNT_1, ACCOUNT_2, arn, query, resource, write_snapshot

V = HISTORY_VERSION
A1, A2 = ACCOUNT_1, ACCOUNT_2


def pct(part: str, whole: str) -> float:
    """100 * part / whole in doubles, as the SQL computes it."""
    return 100 * float(Decimal(part)) / float(Decimal(whole))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("history")
    results = write_history_lake(root / "lake")
    assert {day: result.inventory_as_of for day, result in results.items()} == {
        D1: D1,
        D2: D2,
        D4: D4,
        D5: D5,
        D6: D5,  # no inventory on 03-06: the nearest earlier one
    }
    assert [results[day].violations for day in SCORED_DATES] == [5, 4, 4, 3, 3]
    path = root / "warehouse.duckdb"
    publish_warehouse(root / "lake", path)
    return path


# --- compliance_trend ---------------------------------------------------------------------------

TREND_COLUMNS = list(VIEW_COLUMNS["compliance_trend"])


def trend(warehouse: Path, dimension: str, value: str) -> list[tuple[Any, ...]]:
    return query(
        warehouse,
        "SELECT * FROM compliance_trend WHERE dimension = ? AND dimension_value = ? ORDER BY snapshot_date",
        [dimension, value],
    )


def money(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


# (snapshot_date, in_scope, compliant, pct, violations, cost_in_scope, cost_compliant, cost_pct,
#  previous_snapshot_date, previous_pct, pct_change, previous_cost_pct, cost_pct_change,
#  violations_change, inventory_as_of); 03-01 to 03-04 have no costs.
EXPECTED_OVERALL = [
    (D1, 6, 2, 200 / 6, 5, None, None, None, None, None, None, None, None, None, D1),
    (D2, 5, 2, 40.0, 4, None, None, None, D1, 200 / 6, 40 - 200 / 6, None, None, -1, D2),
    (D4, 6, 3, 50.0, 4, None, None, None, D2, 40.0, 10.0, None, None, 0, D4),
    (D5, 6, 4, 400 / 6, 3, "9.5", "8", pct("8", "9.5"), D4, 50.0, 400 / 6 - 50, None, None, -1, D5),
    # The backfilled day: the 03-05 inventory with 03-06's costs (account 2's EC2 spend moved
    # from the compliant i-env to the non-compliant bucket-new).
    (D6, 6, 4, 400 / 6, 3, "9.5", "6", pct("6", "9.5"), D5, 400 / 6, 0.0, pct("8", "9.5"),
     pct("6", "9.5") - pct("8", "9.5"), 0, D5),
]  # fmt: skip

EXPECTED_ACCOUNT_2 = [
    (D1, 3, 1, 100 / 3, 2, None, None, None, None, None, None, None, None, None, D1),
    (D2, 2, 0, 0.0, 2, None, None, None, D1, 100 / 3, -100 / 3, None, None, 0, D2),
    (D4, 3, 0, 0.0, 3, None, None, None, D2, 0.0, 0.0, None, None, 1, D4),
    (D5, 3, 1, 100 / 3, 2, "4.5", "3", pct("3", "4.5"), D4, 0.0, 100 / 3, None, None, -1, D5),
    (D6, 3, 1, 100 / 3, 2, "4.5", "1", pct("1", "4.5"), D5, 100 / 3, 0.0, pct("3", "4.5"),
     pct("1", "4.5") - pct("3", "4.5"), 0, D5),
]  # fmt: skip

EXPECTED_COST_CENTER = [
    (D1, 6, 2, 200 / 6, 4, None, None, None, None, None, None, None, None, None, D1),
    (D2, 5, 3, 60.0, 2, None, None, None, D1, 200 / 6, 60 - 200 / 6, None, None, -2, D2),
    (D4, 6, 5, 500 / 6, 1, None, None, None, D2, 60.0, 500 / 6 - 60, None, None, -1, D4),
    (D5, 6, 5, 500 / 6, 1, "9.5", "9", pct("9", "9.5"), D4, 500 / 6, 0.0, None, None, 0, D5),
    (D6, 6, 5, 500 / 6, 1, "9.5", "9", pct("9", "9.5"), D5, 500 / 6, 0.0, pct("9", "9.5"), 0.0, 0, D5),
]  # fmt: skip

# fn-reborn is the only Lambda function, and it is absent on 03-02: 03-04 compares with 03-01.
EXPECTED_LAMBDA = [
    (D1, 1, 0, 0.0, 1, None, None, None, None, None, None, None, None, None, D1),
    (D4, 1, 0, 0.0, 1, None, None, None, D1, 0.0, 0.0, None, None, 0, D4),
    (D5, 1, 0, 0.0, 1, "0.5", "0", 0.0, D4, 0.0, 0.0, None, None, 0, D5),
    (D6, 1, 0, 0.0, 1, "0.5", "0", 0.0, D5, 0.0, 0.0, 0.0, 0.0, 0, D5),
]


def expected_trend(dimension: str, value: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # resources_exempt is 0 throughout: the history policy has no exemptions.
    return [
        (row[0], dimension, value, *row[1:3], 0, *row[3:5], money(row[5]), money(row[6]), *row[7:], V)
        for row in rows
    ]


@pytest.mark.parametrize(
    ("dimension", "value", "rows"),
    [
        ("overall", "all", EXPECTED_OVERALL),
        ("account", ACCOUNT_2, EXPECTED_ACCOUNT_2),
        ("tag_key", "CostCenter", EXPECTED_COST_CENTER),
        ("resource_type", LAMBDA, EXPECTED_LAMBDA),
    ],
)
def test_compliance_trend_series(
    warehouse: Path, dimension: str, value: str, rows: list[tuple[Any, ...]]
) -> None:
    assert trend(warehouse, dimension, value) == expected_trend(dimension, value, rows)


def test_compliance_trend_has_a_row_per_summary_row(warehouse: Path) -> None:
    assert TREND_COLUMNS[:3] == ["snapshot_date", "dimension", "dimension_value"]
    per_day = query(warehouse, "SELECT snapshot_date, count(*) FROM compliance_trend GROUP BY 1 ORDER BY 1")
    # overall + 2 accounts + 2 regions + services and types (2 on 03-02, else 3) + 3 keys.
    assert per_day == [(D1, 14), (D2, 12), (D4, 14), (D5, 14), (D6, 14)]
    assert query(
        warehouse,
        "SELECT count(*) FROM compliance_summary FULL JOIN compliance_trend "
        "USING (snapshot_date, dimension, dimension_value) "
        "WHERE compliance_summary.violations IS DISTINCT FROM compliance_trend.violations",
    ) == [(0,)]
    # A day's rows in compliance_summary's order (no Lambda on 03-02).
    assert query(
        warehouse,
        "SELECT dimension, dimension_value FROM compliance_trend WHERE snapshot_date = ?",
        [D2],
    ) == [
        ("overall", "all"),
        ("account", A1),
        ("account", A2),
        ("region", GLOBAL),
        ("region", US),
        ("service", "ec2"),
        ("service", "s3"),
        ("resource_type", EC2),
        ("resource_type", S3),
        ("tag_key", "CostCenter"),
        ("tag_key", "Environment"),
        ("tag_key", "Owner"),
    ]


# --- tag_drift ----------------------------------------------------------------------------------


def drift(
    day: date,
    previous: date,
    account: str,
    region: str,
    resource_type: str,
    resource_id: str,
    change: str,
    key: str | None = None,
    old: str | None = None,
    new: str | None = None,
) -> tuple[Any, ...]:
    return (
        day,
        previous,
        account,
        region,
        resource_type,
        resource_id,
        arn(account, region, resource_type, resource_id),
        change,
        key,
        old,
        new,
    )


EXPECTED_DRIFT = [
    # 03-01 is the first inventory: no rows. The key renamed in case: one added, one removed.
    drift(D2, D1, A1, GLOBAL, S3, "bucket-case", "tag_added", "CostCenter", None, "CC-3000"),
    drift(D2, D1, A1, GLOBAL, S3, "bucket-case", "tag_removed", "costcenter", "CC-3000", None),
    drift(D2, D1, A1, US, EC2, "i-stable", "tag_value_changed", "Owner", "ana", "bob"),
    drift(D2, D1, A2, US, EC2, "i-env", "tag_removed", "Environment", "prod", None),
    drift(D2, D1, A2, US, LAMBDA, "fn-reborn", "resource_deleted"),
    # 03-03 has no inventory: 03-04 compares with 03-02.
    drift(D4, D2, A1, US, EC2, "i-fixed", "tag_value_changed", "CostCenter", "cc-2000", "CC-2000"),
    drift(D4, D2, A1, US, EC2, "i-stable", "tag_added", "Project", None, "apollo"),
    # Created resources' tags are not drift.
    drift(D4, D2, A2, GLOBAL, S3, "bucket-new", "resource_created"),
    drift(D4, D2, A2, US, EC2, "i-deleted", "resource_deleted"),
    drift(D4, D2, A2, US, LAMBDA, "fn-reborn", "resource_created"),
    drift(D5, D4, A2, US, EC2, "i-env", "tag_added", "Environment", None, "dev"),
    # 03-06 was scored from the 03-05 inventory: not an inventory of its own, no rows.
]  # fmt: skip


def test_tag_drift_exact(warehouse: Path) -> None:
    assert query(warehouse, "SELECT * FROM tag_drift") == EXPECTED_DRIFT


def test_tag_drift_duplicate_rows_and_null_tags(tmp_path: Path) -> None:
    """A resource listed twice in one inventory counts once (its service_api row); NULL tags are
    no tags; the ARN of a deleted resource is the one it had."""
    first = resource(A1, US, EC2, "i-1", None)
    listed_twice = resource(A1, US, EC2, "i-1", {"Owner": "a"})
    other_source = {**listed_twice, "source": "tagging_api", "tags": {"Owner": "stale"}}
    gone = {**resource(A1, US, EC2, "i-2", {}), "arn": "arn:old"}
    write_snapshot(tmp_path / "lake", [first, gone], snapshot_date=D1)
    write_snapshot(tmp_path / "lake", [other_source, listed_twice], snapshot_date=D2)
    publish_warehouse(tmp_path / "lake", tmp_path / "warehouse.duckdb")
    assert query(tmp_path / "warehouse.duckdb", "SELECT change, tag_key, value, arn FROM tag_drift") == [
        ("tag_added", "Owner", "a", arn(A1, US, EC2, "i-1")),
        ("resource_deleted", None, None, "arn:old"),
    ]


# --- violation_history --------------------------------------------------------------------------

CC, ENV, OWNER = "CostCenter", "Environment", "Owner"
MISSING, FORMAT, CASE, VALUE = "missing_required_tag", "invalid_format", "wrong_key_case", "invalid_value"


def episode(
    account: str,
    region: str,
    resource_type: str,
    resource_id: str,
    key: str,
    kind: str,
    severity: str,
    first: date,
    last: date,
    seen: int,
    days_open: int,
    resolved_on: date | None = None,
    resolution: str | None = None,
    days_to_resolve: int | None = None,
) -> tuple[Any, ...]:
    status = "open" if resolved_on is None else "resolved"
    resource_arn = arn(account, region, resource_type, resource_id)
    return (
        *(account, region, resource_type, resource_id, resource_arn, key, kind, severity),
        *(first, last, seen, days_open, status, resolved_on, resolution, days_to_resolve),
    )


EXPECTED_EPISODES = [
    episode(A1, GLOBAL, S3, "bucket-case", CC, CASE, "error", D1, D1, 1, 1, D2, "fixed", 1),
    # Resolved on 03-04, the scored date after 03-02 (03-03 was not scored).
    episode(A1, US, EC2, "i-fixed", CC, FORMAT, "error", D1, D2, 2, 2, D4, "fixed", 3),
    # Open through the backfilled 03-06 (scored from the 03-05 inventory).
    episode(A1, US, EC2, "i-fixed", OWNER, MISSING, "warning", D1, D6, 5, 6),
    episode(A2, GLOBAL, S3, "bucket-new", ENV, VALUE, "error", D4, D6, 3, 3),
    episode(A2, US, EC2, "i-deleted", CC, MISSING, "error", D1, D2, 2, 2, D4, "resource_deleted", 3),
    episode(A2, US, EC2, "i-env", ENV, MISSING, "error", D2, D4, 2, 3, D5, "fixed", 3),
    # Deleted on 03-02 and recreated with the same id on 03-04: two episodes.
    episode(A2, US, LAMBDA, "fn-reborn", CC, MISSING, "error", D1, D1, 1, 1, D2, "resource_deleted", 1),
    episode(A2, US, LAMBDA, "fn-reborn", CC, MISSING, "error", D4, D6, 3, 3),
]  # fmt: skip


def test_violation_history_exact(warehouse: Path) -> None:
    assert query(warehouse, "SELECT * FROM violation_history") == EXPECTED_EPISODES


def test_every_violation_row_belongs_to_one_episode(warehouse: Path) -> None:
    assert query(warehouse, "SELECT sum(snapshots_seen) FROM violation_history") == query(
        warehouse, "SELECT count(*) FROM violations"
    )


def test_a_violation_changing_severity_reports_the_last(tmp_path: Path) -> None:
    lake_root = tmp_path / "lake"
    write_snapshot(lake_root, [resource(A1, US, EC2, "i-1", {})], snapshot_date=D1)
    write_snapshot(lake_root, [resource(A1, US, EC2, "i-1", {})], snapshot_date=D2)
    for day, severity in ((D1, "error"), (D2, "warning")):
        policy = TaggingPolicy.model_validate(
            {"version": severity, "required_tags": [{"key": "Owner", "severity": severity}]}
        )
        score_snapshot(lake_root, day, policy)
    publish_warehouse(lake_root, tmp_path / "warehouse.duckdb")
    assert query(
        tmp_path / "warehouse.duckdb", "SELECT severity, first_seen, last_seen, status FROM violation_history"
    ) == [("warning", D1, D2, "open")]


def test_backfilled_day_reuses_the_nearest_earlier_inventory(warehouse: Path) -> None:
    assert query(warehouse, "SELECT DISTINCT snapshot_date, inventory_as_of FROM violations ORDER BY 1") == [
        (D1, D1),
        (D2, D2),
        (D4, D4),
        (D5, D5),
        (D6, D5),
    ]
    assert query(warehouse, "SELECT DISTINCT snapshot_date FROM resources ORDER BY 1") == [
        (D1,),
        (D2,),
        (D4,),
        (D5,),
    ]
    # The same resources and verdicts as 03-05, with 03-06's costs.
    same_as_the_inventory_day = (
        "SELECT count(*) FROM (SELECT account_id, region, resource_id, compliant FROM resource_compliance "
        "WHERE snapshot_date = ? EXCEPT SELECT account_id, region, resource_id, compliant "
        "FROM resource_compliance WHERE snapshot_date = ?)"
    )
    assert query(warehouse, same_as_the_inventory_day, [D6, D5]) == [(0,)]
    assert query(
        warehouse,
        "SELECT DISTINCT inventory_as_of, policy_version FROM compliance_trend WHERE snapshot_date = ?",
        [D6],
    ) == [(D5, V)]


def test_nearest_inventory_of_each_day(tmp_path: Path) -> None:
    write_history_lake(tmp_path)
    days = [date(2026, 2, 28), D1, D2, date(2026, 3, 3), D4, D5, D6, date(2026, 12, 31)]
    assert [latest_snapshot_on_or_before(tmp_path, day) for day in days] == [None, D1, D2, D2, D4, D5, D5, D5]
