"""The whole DAG on a lake in S3 (a moto server of its own, through an Airflow connection) gives
exactly the rows of the same runs on a local lake, in every view, and reads only what it needs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tag_compliance import lake, storage
from tag_compliance.config import environment
from tag_compliance.sandbox import Sandbox
from tag_compliance.scoring import score_snapshot
from tag_compliance.warehouse import DERIVED_VIEWS, connect_read_only, lake_roots, publish_warehouse
from tests.conftest import ObjectStore
from tests.sql_fixtures import SNAPSHOT, fixture_policy, write_snapshot
from tests.test_end_to_end import RUN_DAY, lake_env, run_at, run_dag

pytestmark = pytest.mark.e2e

PREFIX = "dag-runs"
DAYS = (RUN_DAY - timedelta(days=1), RUN_DAY)  # two daily runs: history views have a day before
# Columns that say when a run ran, not what it found.
RUN_TIME_COLUMNS = {"collected_at", "extracted_at", "committed_at", "published_at"}
# dag.test() runs every task in one process, where the first task to need a member role assumes
# it for all: which task's api_calls count an AssumeRole depends on the order tasks ran in.
STS = "sts"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(seed=23, data_dir=tmp_path_factory.mktemp("sandbox"), scale=0.1) as running:
        yield running


def s3_lake_env(env: dict[str, str], root: Path, store: ObjectStore) -> dict[str, str]:
    """``lake_env`` with the lake in the object store, reached through its own connection."""
    return {**lake_env(env, root), **store.env, "TAG_COMPLIANCE_LAKE": store.root(PREFIX)}


def view_rows(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every view's rows, in order, without the columns that say when a run ran."""
    found = {}
    with connect_read_only(warehouse) as con:
        for view in [*lake.DATASETS, *DERIVED_VIEWS]:
            columns = [row[0] for row in con.execute(f"DESCRIBE {view}").fetchall()]
            kept = ", ".join(f'"{column}"' for column in columns if column not in RUN_TIME_COLUMNS)
            where = f"WHERE service <> '{STS}'" if view == lake.API_CALLS.name else ""
            found[view] = con.execute(f"SELECT {kept} FROM {view} {where} ORDER BY ALL").fetchall()
    return found


@pytest.fixture(scope="module")
def runs(airflow_db, sandbox: Sandbox, object_store: ObjectStore, tmp_path_factory: pytest.TempPathFactory):
    local_root, s3_root = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("s3")
    states = {}
    for name, env in (
        ("local", lake_env(sandbox.env(), local_root)),
        ("s3", s3_lake_env(sandbox.env(), s3_root, object_store)),
    ):
        with environment(env):
            for day in DAYS:
                started = time.monotonic()
                dag_run = run_dag(run_at(day), sandbox_clock=run_at(day))
                states[name, day] = dag_run.state
                print(f"{name} lake, {day}: {dag_run.state} in {time.monotonic() - started:.0f} s")
    with environment(s3_lake_env(sandbox.env(), s3_root, object_store)):
        s3_rows = view_rows(s3_root / "warehouse.duckdb")
        location = storage.locate(object_store.root(PREFIX))
    return {
        "states": states,
        "local": view_rows(local_root / "warehouse.duckdb"),
        "s3": s3_rows,
        "s3_root": s3_root,
        "local_root": local_root,
        "location": location,
        "env": s3_lake_env(sandbox.env(), s3_root, object_store),
    }


def test_every_run_succeeds_on_both_lakes(runs):
    assert set(runs["states"].values()) == {"success"}, runs["states"]


def test_nothing_of_the_lake_is_on_the_local_disk_and_the_warehouse_names_the_s3_lake(runs):
    assert not (runs["s3_root"] / "lake").exists()
    objects = runs["location"].fs.find(runs["location"].root)
    assert any("/_commits/snapshot/" in path for path in objects)
    assert any("/resources/snapshot_date=" in path for path in objects)
    with environment(runs["env"]), connect_read_only(runs["s3_root"] / "warehouse.duckdb") as con:
        assert lake_roots(con) == [runs["location"].root]


def test_every_view_has_exactly_the_rows_of_the_local_lake_run(runs):
    local, s3 = runs["local"], runs["s3"]
    assert local.keys() == s3.keys()
    assert all(local["resources"]) and local["violations"] and local["tag_drift"] is not None
    for view in local:
        assert s3[view] == local[view], view


def test_a_one_day_query_opens_that_days_files_not_the_whole_lake(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    """Partition pruning on object storage: of ten scored days, a one-day query opens that day's
    file and at most one other (the first, whose schema DuckDB binds the view with), never all."""
    days = [SNAPSHOT + timedelta(days=offset) for offset in range(10)]
    root = object_store.root("pruning")
    with environment({**object_store.env, "TAG_COMPLIANCE_LAKE": root}):
        for day in days:
            write_snapshot(root, snapshot_date=day)
            score_snapshot(root, day, fixture_policy())
        publish_warehouse(root, tmp_path / "warehouse.duckdb")
        location = storage.locate(root)
        committed = {
            day: lake.read_commit(root, lake.SCORES, day).paths(root, lake.VIOLATIONS)[0] for day in days
        }
        with connect_read_only(tmp_path / "warehouse.duckdb") as con:
            location.fs.opened.clear()
            count = con.execute(
                "SELECT count(*) FROM violations WHERE snapshot_date = $1", [days[5]]
            ).fetchone()
    opened = {f"s3://{path}" for path in location.fs.opened if "/violations/" in path}
    assert count[0] > 0
    assert committed[days[5]] in opened
    assert opened <= {committed[days[5]], committed[days[0]]}, opened
    assert len(opened) <= 2 < len(committed)
