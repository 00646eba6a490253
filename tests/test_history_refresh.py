"""The precomputed history (``history.refresh``) against the full-history SQL it replaced.

``tag_drift`` and ``violation_history`` used to be one query over every day of the lake; they
now read per-day partitions that each publish brings up to date. Hypothesis builds random lakes
the way the pipeline changes them: inventories written in any order (a late one lands between
days already scored), days scored out of order (a backfill), days rescored under another policy
(severities and rule sets change mid-episode), inventories that found nothing, days scored from
an earlier inventory, publishes in between. After every publish the views must equal the old
queries (``tests/reference_sql``) row for row. Deterministic tests below pin the work a refresh
does: only the days whose inputs changed.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tag_compliance import history, lake
from tag_compliance.policy import TaggingPolicy
from tag_compliance.scoring import latest_snapshot_on_or_before, score_snapshot
from tag_compliance.warehouse import publish_warehouse
from tests.sql_fixtures import ACCOUNT_1, ACCOUNT_2, query, resource, resources_table, write_snapshot

REFERENCE_SQL = Path(__file__).parent / "reference_sql"
FIRST_DAY = date(2026, 5, 1)
DAYS = tuple(FIRST_DAY + timedelta(days=offset) for offset in range(5))

# Two policies, so a rescore changes which violations exist and their severity.
POLICIES = (
    TaggingPolicy.model_validate(
        {
            "version": "strict",
            "required_tags": [
                {"key": "Owner", "allowed_values": ["ana", "bob"]},
                {"key": "Env", "severity": "warning", "applies_to": ["ec2:*"]},
            ],
            "max_user_tags": 2,
        }
    ),
    TaggingPolicy.model_validate(
        {
            "version": "lenient",
            "required_tags": [{"key": "Owner", "severity": "warning"}, {"key": "Env"}],
        }
    ),
)

RESOURCES = (  # names are their ids: 'i-web01' and 'i-web02' share the prefix 'i-web'
    (ACCOUNT_1, "us-east-1", "ec2:instance", "i-web01"),
    (ACCOUNT_1, "us-east-1", "ec2:instance", "i-web02"),
    (ACCOUNT_1, "global", "s3:bucket", "bucket-1"),
    (ACCOUNT_1, "us-east-1", "ecs:service", "shop/api-1"),  # ECS cluster 'shop'
    (ACCOUNT_1, "us-east-1", "ecs:service", "shop/api-2"),
    (ACCOUNT_2, "us-east-1", "ec2:instance", "i-web01"),  # same id, other account
)
STACK = "aws:cloudformation:stack-name"
TAG_CHOICES = st.dictionaries(
    st.sampled_from(["Owner", "owner", "Env", "Team", STACK]),
    st.sampled_from(["ana", "bob", "eve", "", "prod"]),
    max_size=4,
)


def inventory(present: dict[int, dict[str, str]], arn_suffix: str) -> list[dict[str, Any]]:
    rows = []
    for index, tags in sorted(present.items()):
        row = resource(*RESOURCES[index], tags or None)
        row["arn"] += arn_suffix  # an ARN can change while the resource stays (drift keeps the id)
        rows.append(row)
    return rows


INVENTORIES = st.dictionaries(
    st.sampled_from(DAYS),
    st.tuples(
        st.dictionaries(st.integers(0, len(RESOURCES) - 1), TAG_CHOICES, min_size=2),
        st.sampled_from(["", "/v2"]),
    ),
    min_size=1,
)
# One step of the pipeline: ("inventory", day), ("score", day, policy index) or ("publish",).
STEP = st.one_of(
    st.tuples(st.just("inventory"), st.sampled_from(DAYS)),
    st.tuples(st.just("score"), st.sampled_from(DAYS), st.integers(0, len(POLICIES) - 1)),
    st.just(("publish",)),
)


def write_inventory(lake_root: Path, day: date, rows: list[dict[str, Any]]) -> None:
    """A committed inventory; one that found nothing has a file of no rows, as a collection writes."""
    if rows:
        write_snapshot(lake_root, rows, day)
        return
    partition = {"snapshot_date": day, "account_id": ACCOUNT_1, "region": "us-east-1", "service": "ec2"}
    lake.write_and_commit(lake_root, lake.SNAPSHOT, day, [(lake.RESOURCES, partition, resources_table([]))])


def reference(warehouse: Path, name: str) -> list[tuple[Any, ...]]:
    return query(warehouse, (REFERENCE_SQL / f"{name}.sql").read_text(encoding="utf-8"))


def check_views_equal_the_full_history_queries(warehouse: Path) -> None:
    assert query(warehouse, "SELECT * FROM tag_drift") == reference(warehouse, "tag_drift")
    assert query(warehouse, "SELECT * FROM violation_history") == reference(warehouse, "violation_history")
    assert query(warehouse, "SELECT * FROM tag_suggestions") == reference(warehouse, "tag_suggestions")


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(inventories=INVENTORIES, steps=st.lists(STEP, min_size=1, max_size=12))
@example(  # an open episode whose severity changes (a rescore under the other policy): 'updated'
    inventories={DAYS[0]: ({0: {"Env": "prod"}}, ""), DAYS[1]: ({0: {"Env": "prod"}}, "")},
    steps=[("inventory", DAYS[0]), ("inventory", DAYS[1]), ("score", DAYS[0], 0), ("score", DAYS[1], 1)],
)
@example(  # the same, resolved on a third day, so the resolved row carries the later severity
    inventories={
        day: ({0: {"Env": "prod", "Owner": "ana" if day == DAYS[2] else ""}}, "") for day in DAYS[:3]
    },
    steps=[
        *[("inventory", day) for day in DAYS[:3]],
        ("score", DAYS[0], 0),
        ("score", DAYS[1], 1),
        ("score", DAYS[2], 1),
    ],
)
@example(  # suggestions from a name prefix, then from the ECS cluster, kept through a rescore
    inventories={
        DAYS[0]: (
            {0: {"Owner": "ana", "Env": "prod"}, 1: {}, 3: {"Owner": "bob", STACK: "s"}, 4: {STACK: "s"}},
            "",
        ),
        DAYS[1]: ({0: {"Owner": "ana"}, 1: {"owner": "ana"}, 3: {"Owner": "bob"}, 4: {"Owner": "eve"}}, "/2"),
    },
    steps=[("inventory", DAYS[0]), ("score", DAYS[0], 0), ("inventory", DAYS[1]), ("score", DAYS[1], 0)],
)
def test_precomputed_history_equals_the_full_history_queries(
    tmp_path_factory: pytest.TempPathFactory,
    inventories: dict[date, tuple[dict[int, dict[str, str]], str]],
    steps: list[tuple[Any, ...]],
) -> None:
    root = tmp_path_factory.mktemp("lake")
    lake_root, warehouse = root / "lake", root / "warehouse.duckdb"
    for step in [*steps, ("publish",)]:
        if step[0] == "inventory" and step[1] in inventories:
            present, arn_suffix = inventories[step[1]]
            write_inventory(lake_root, step[1], inventory(present, arn_suffix))
        elif step[0] == "score":
            as_of = latest_snapshot_on_or_before(lake_root, step[1])
            if as_of is not None:
                score_snapshot(lake_root, step[1], POLICIES[step[2]], inventory_as_of=as_of)
        elif step[0] == "publish":
            publish_warehouse(lake_root, warehouse, allow_missing_days=True)
            check_views_equal_the_full_history_queries(warehouse)
    assert history.refresh(lake_root).computed == {}  # everything was up to date


# --- the work a refresh does ----------------------------------------------------------------------


def build(lake_root: Path, days: tuple[date, ...]) -> None:
    for offset, day in enumerate(days):
        tags = {"Owner": "ana" if offset % 2 else "eve", "Env": "prod"}
        write_snapshot(lake_root, inventory({0: tags, 1: {}, 2: {"Owner": "bob"}}, ""), day)
        score_snapshot(lake_root, day, POLICIES[0])


def test_a_daily_run_computes_its_own_day_only(tmp_path: Path) -> None:
    build(tmp_path, DAYS[:3])
    first = history.refresh(tmp_path)
    every = ("tag_drift", "violation_changes", "tag_suggestions")
    assert first.computed == {name: list(DAYS[:3]) for name in every}
    build(tmp_path, DAYS[3:4])
    assert history.refresh(tmp_path).computed == {name: [DAYS[3]] for name in every}
    assert history.refresh(tmp_path).computed == {}


def test_a_rescore_or_a_backfilled_day_recomputes_that_day_and_the_next(tmp_path: Path) -> None:
    build(tmp_path, (DAYS[0], DAYS[2], DAYS[4]))
    history.refresh(tmp_path)
    score_snapshot(tmp_path, DAYS[2], POLICIES[1])  # a rescore in the middle
    assert history.refresh(tmp_path).computed == {
        "violation_changes": [DAYS[2], DAYS[4]],
        "tag_suggestions": [DAYS[2]],  # a day's suggestions need that day only
    }
    # A backfilled day between two scored ones, from the inventory before it: only the scores.
    score_snapshot(tmp_path, DAYS[1], POLICIES[0], inventory_as_of=DAYS[0])
    assert history.refresh(tmp_path).computed == {
        "violation_changes": [DAYS[1], DAYS[2]],
        "tag_suggestions": [DAYS[1]],
    }
    # A late inventory lands between two others: its drift and the next inventory's.
    write_snapshot(tmp_path, inventory({0: {"Owner": "bob"}}, ""), DAYS[3])
    assert history.refresh(tmp_path).computed == {"tag_drift": [DAYS[3], DAYS[4]]}


def test_a_day_that_stops_being_an_inventory_loses_its_drift(tmp_path: Path) -> None:
    build(tmp_path, DAYS[:2])
    history.refresh(tmp_path)
    assert lake.read_commit(tmp_path, lake.DRIFT, DAYS[1]).files
    write_inventory(tmp_path, DAYS[1], [])  # collected again: found nothing
    refreshed = history.refresh(tmp_path)
    assert refreshed.emptied == {"tag_drift": [DAYS[1]]}
    assert lake.read_commit(tmp_path, lake.DRIFT, DAYS[1]).files == ()


def test_a_new_release_of_the_sql_recomputes_every_day(tmp_path: Path) -> None:
    build(tmp_path, DAYS[:2])
    history.refresh(tmp_path)
    changed = tmp_path / "sql"
    for daily in history.HISTORIES:
        source = (history.SQL_DIR / f"{daily.sql}.sql").read_text(encoding="utf-8")
        (changed / daily.sql).parent.mkdir(parents=True, exist_ok=True)
        (changed / f"{daily.sql}.sql").write_text(source + "\n-- changed\n", encoding="utf-8")
    computed = history.refresh(tmp_path, sql_dir=changed).computed
    assert computed == {daily.dataset.name: list(DAYS[:2]) for daily in history.HISTORIES}
