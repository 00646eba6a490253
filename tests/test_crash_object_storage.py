"""The crash tests of ``test_crash.py`` on a lake in S3 (moto), where there is no rename: a writer
(collection, scoring) is SIGKILLed before its changes to the store and at random moments;
readers then see the state before or the clean state, never a partial or mixed one, and a rerun
gives the clean run's rows and leaves no stray object. Writers of different partitions of one
dataset from several processes at once all get committed."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyarrow.fs import FileSelector, FileType

from tag_compliance import lake, storage
from tag_compliance.config import environment
from tag_compliance.scoring import latest_snapshot_on_or_before
from tag_compliance.warehouse import VIEW_COLUMNS, connect_read_only, publish_warehouse
from tests.conftest import LAKE_BUCKET, OWN_ACCOUNT, ObjectStore
from tests.crash_harness import run_step
from tests.sql_fixtures import COSTS_WITH_RESOURCES, POLICY_DATA, SNAPSHOT, write_costs, write_snapshot
from tests.test_crash import (
    AUDITED_KILLS,
    REGIONS,
    SCORE_VIEWS,
    Harness,
    change_estate,
    crash_everywhere,
    seed_estate,
    write_policy,
)

# Scoring is killed at least 20 times; a collection, whose every kill costs a re-collection and a
# publish, before each of 10 evenly spread changes to the store (and the first and last).
MIN_KILLS = {"score": 20, "collect": AUDITED_KILLS}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    running = Harness(tmp_path_factory.mktemp("harness") / "harness.log")
    yield running
    running.close()


def objects(store: ObjectStore, prefix: str) -> dict[str, Any]:
    """Every object below ``s3://<bucket>/<prefix>``, by path below it."""
    selector = FileSelector(f"{LAKE_BUCKET}/{prefix}", recursive=True, allow_not_found=True)
    base = f"{LAKE_BUCKET}/{prefix}/"
    return {
        info.path.removeprefix(base): info
        for info in store.arrow().get_file_info(selector)
        if info.type == FileType.File
    }


def restore(store: ObjectStore, saved: str, target: str) -> None:
    """``target`` becomes an object-for-object copy of ``saved`` (server-side copies)."""
    filesystem = store.arrow()
    filesystem.delete_dir_contents(f"{LAKE_BUCKET}/{target}", missing_dir_ok=True)
    for relative in objects(store, saved):
        filesystem.copy_file(f"{LAKE_BUCKET}/{saved}/{relative}", f"{LAKE_BUCKET}/{target}/{relative}")


def stray_objects(store: ObjectStore, prefix: str) -> list[str]:
    """Objects no reader will ever read: data files no commit lists, temporaries."""
    root = store.root(prefix)
    listed = {
        file.path
        for unit in lake.COMMIT_UNITS
        for key in lake.committed_keys(root, unit)
        for file in lake.read_commit(root, unit, key).files
    }
    return sorted(
        relative
        for relative in objects(store, prefix)
        if relative.endswith(lake.TEMPORARY_SUFFIX)
        or (relative.split("/")[0] in lake.COMMITTED_DATASETS and relative not in listed)
    )


def view_rows(warehouse: Path, view: str, where: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connect_read_only(warehouse) as con:
        return sorted(con.execute(f"SELECT * FROM {view} WHERE {where}", params).fetchall(), key=repr)


def crash_on_object_storage(
    harness: Any, store: ObjectStore, name: str, step: dict[str, Any], state: Any, before: Any, clean: Any
) -> None:
    def check_after_kill(what: str) -> None:
        assert state() in (before, clean), f"{what}: readers see a mix of two runs or a partial one"

    def rerun_and_check(what: str) -> None:
        run_step(name, step)
        assert state() == clean, what
        assert stray_objects(store, "lake") == [], what

    kills = crash_everywhere(
        harness,
        step,
        lambda: restore(store, "saved", "lake"),
        check_after_kill,
        rerun_and_check,
        seed=3,
        random_kills=max(0, MIN_KILLS[name] - AUDITED_KILLS - 1),
    )
    assert kills >= MIN_KILLS[name]


@pytest.fixture
def s3_env(object_store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for variable, value in object_store.env.items():
        monkeypatch.setenv(variable, value)
    return object_store.env


def test_killing_score_on_object_storage_never_shows_a_mix(
    harness: Any, object_store: ObjectStore, s3_env: dict[str, str], tmp_path: Path
) -> None:
    policy_a = write_policy(tmp_path / "policy-a.json", POLICY_DATA)
    policy_b = write_policy(
        tmp_path / "policy-b.json",
        {
            **POLICY_DATA,
            "version": "crash-B",
            "required_tags": [*POLICY_DATA["required_tags"], {"key": "Owner"}],
        },
    )
    saved, lake_root, warehouse = object_store.root("saved"), object_store.root("lake"), tmp_path / "w.duckdb"
    restore(object_store, "empty", "saved")
    write_snapshot(saved)
    write_costs(saved, COSTS_WITH_RESOURCES)
    run_step("score", {"lake": saved, "day": SNAPSHOT.isoformat(), "policy": str(policy_a)})
    restore(object_store, "saved", "lake")
    publish_warehouse(lake_root, warehouse)

    def scores() -> dict[str, list[tuple[Any, ...]]]:
        return {view: view_rows(warehouse, view, "snapshot_date = ?", [SNAPSHOT]) for view in SCORE_VIEWS}

    step = {"op": "score", "lake": lake_root, "watch": lake_root, "day": SNAPSHOT.isoformat()}
    step |= {"policy": str(policy_b), "env": s3_env}
    clean_a = scores()
    run_step("score", step)
    clean_b = scores()
    assert clean_a != clean_b and all(clean_b[view] for view in SCORE_VIEWS if view != "exempted_violations")
    crash_on_object_storage(harness, object_store, "score", step, scores, before=clean_a, clean=clean_b)


def test_killing_a_collection_on_object_storage_never_shows_a_partial_snapshot(
    harness: Any, aws: Any, object_store: ObjectStore, s3_env: dict[str, str], tmp_path: Path
) -> None:
    day_1, day_2 = date(2026, 3, 14), date(2026, 3, 15)
    saved, lake_root, warehouse = object_store.root("saved"), object_store.root("lake"), tmp_path / "w.duckdb"
    restore(object_store, "empty", "saved")
    seed_estate(aws)
    env = {"AIRFLOW_CONN_AWS_DEFAULT": os.environ["AIRFLOW_CONN_AWS_DEFAULT"], **s3_env}
    collect = {"op": "collect", "accounts": [OWN_ACCOUNT], "regions": REGIONS, "env": env}
    run_step("collect", {**collect, "lake": saved, "day": day_1.isoformat()})
    change_estate(aws)
    restore(object_store, "saved", "lake")
    step = {**collect, "lake": lake_root, "watch": lake_root, "day": day_2.isoformat()}
    columns = ", ".join(name for name in VIEW_COLUMNS["resources"] if name != "collected_at")

    def day_2_state() -> tuple[date | None, list[tuple[Any, ...]]]:
        publish_warehouse(lake_root, warehouse, allow_missing_days=True)
        resources = view_rows(warehouse, f"(SELECT {columns} FROM resources)", "snapshot_date = ?", [day_2])
        return latest_snapshot_on_or_before(lake_root, day_2), resources

    before = day_2_state()
    assert before == (day_1, [])
    run_step("collect", step)
    clean = day_2_state()
    assert clean[0] == day_2 and clean[1]
    crash_on_object_storage(harness, object_store, "collect", step, day_2_state, before=before, clean=clean)


# --- several writers at once --------------------------------------------------------------------------

WRITERS = 6


def _write_one_partition(root: str, env: dict[str, str], account: str) -> dict[str, Any]:
    """In a process of its own: one collection target's file of a snapshot, as a collect task writes it."""
    with environment(env):
        partition = {
            "snapshot_date": SNAPSHOT,
            "account_id": account,
            "region": "us-east-1",
            "service": "ec2",
        }
        rows = [
            {"resource_type": "ec2:instance", "resource_id": f"i-{account}", "tags": [("Owner", account)]}
        ]
        table = pa.Table.from_pylist(rows, schema=lake.RESOURCES.schema)
        return lake.write_data_file(root, lake.RESOURCES, partition, table, lake.new_run_id()).to_json()


def _commit_one_day(root: str, env: dict[str, str], day: str) -> int:
    """In a process of its own: a whole cost day written and committed, as extract_costs does."""
    with environment(env):
        usage_date = date.fromisoformat(day)
        rows = [{**row, "usage_date": usage_date} for row in COSTS_WITH_RESOURCES]
        write_costs(root, rows, usage_date)
        return len(lake.read_commit(root, lake.DAY_COSTS, usage_date).files)


def test_writers_in_several_processes_at_once_lose_nothing(
    object_store: ObjectStore, s3_env: dict[str, str]
) -> None:
    """Six processes write different partitions of one dataset at the same moment (the targets of
    one snapshot; six days of costs, each committed by its own writer): every file is there, and
    every commit lists what its writer wrote."""
    root = object_store.root("concurrent")
    restore(object_store, "empty", "concurrent")
    accounts = [f"{number:012d}" for number in range(1, WRITERS + 1)]
    days = [(SNAPSHOT + timedelta(days=offset)).isoformat() for offset in range(WRITERS)]
    context = multiprocessing.get_context("spawn")  # no S3 client state shared with this process
    with context.Pool(WRITERS) as pool:
        files = pool.starmap(_write_one_partition, [(root, s3_env, account) for account in accounts])
        committed = pool.starmap(_commit_one_day, [(root, s3_env, day) for day in days])
    snapshot = lake.commit(
        root, lake.SNAPSHOT, SNAPSHOT, [lake.DataFile.from_json(file) for file in files], "all"
    )
    assert sorted(file.partition.split("/")[1] for file in snapshot.files) == [
        f"account_id={a}" for a in accounts
    ]
    assert all(storage.locate(root).is_file(file.path) for file in snapshot.files)
    assert lake.committed_keys(root, lake.DAY_COSTS) == [date.fromisoformat(day) for day in days]
    assert committed == [len({row["source"] for row in COSTS_WITH_RESOURCES})] * WRITERS
    assert stray_objects(object_store, "concurrent") == []
