"""kill -9 at every point where score, a collection and publish touch the lake or the warehouse.

Each step runs in a process of its own (``tests/crash_harness.py``) that is killed just before
one of its file operations (every one, or at least ten spread over them), plus a few times at a
random moment. After each kill, the published warehouse's views must show the previous complete
state or the new complete state of the day, never a mix of two runs or a partial snapshot; then
the step is rerun and must give the clean run's rows exactly, leaving no stray file behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tag_compliance import lake
from tag_compliance.scoring import latest_snapshot_on_or_before
from tag_compliance.warehouse import VIEW_COLUMNS, publish_warehouse
from tests.conftest import OWN_ACCOUNT, REPO_ROOT
from tests.crash_harness import run_step
from tests.sql_fixtures import COSTS_WITH_RESOURCES, POLICY_DATA, SNAPSHOT, write_costs, write_snapshot

SCORE_VIEWS = (
    "violations",
    "exempted_violations",
    "resource_compliance",
    "compliance_summary",
    "attribution_gap",
)
AUDITED_KILLS = 10  # at least this many kill points per step (all of them when it has fewer)
RANDOM_KILLS = 3
REGIONS = ["us-east-1"]


# --- running a step in a process of its own ----------------------------------------------------


class Harness:
    """``tests/crash_harness.py`` in a process of its own: forks one child per step it is asked to run."""

    def __init__(self, log_path: Path) -> None:
        self._log = log_path.open("w")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_harness"],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self._read() == {"ready": True}

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line, f"the crash harness died; see {self._log.name}"
        return json.loads(line)

    def run(self, step: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(step) + "\n")
        self._process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(timeout=60)
        self._log.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    running = Harness(tmp_path_factory.mktemp("harness") / "harness.log")
    yield running
    running.close()


def count_operations(harness: Harness, step: dict[str, Any]) -> int:
    """Run the step to the end in a process of its own; how many file operations it made."""
    answer = harness.run(step)
    assert answer["exit_code"] == 0 and "operations" in answer, answer
    return answer["operations"]


def kill_before_operation(harness: Harness, step: dict[str, Any], kill_at: int) -> None:
    """Run the step and SIGKILL it just before its ``kill_at``-th file operation."""
    answer = harness.run({**step, "kill_at": kill_at})
    assert answer["signal"] == signal.SIGKILL, f"not killed at operation {kill_at}: {answer}"


def kill_at_random_moment(harness: Harness, step: dict[str, Any], delay: float) -> None:
    """Run the step and SIGKILL it ``delay`` seconds after it started (it may have finished)."""
    answer = harness.run({**step, "kill_after": delay})
    assert answer["signal"] == signal.SIGKILL or answer["exit_code"] == 0, answer


def kill_points(operations: int, rng: random.Random) -> list[int]:
    """Every operation when there are few; else the first, the last and evenly spread ones."""
    if operations <= AUDITED_KILLS:
        return list(range(1, operations + 1))
    spread = {
        1,
        operations,
        *(round(1 + i * (operations - 1) / (AUDITED_KILLS - 1)) for i in range(AUDITED_KILLS)),
    }
    return sorted(spread | {rng.randint(1, operations)})


def crash_everywhere(
    harness: Harness,
    step: dict[str, Any],
    restore: Any,
    check_after_kill: Any,
    rerun_and_check: Any,
    seed: int,
    random_kills: int = RANDOM_KILLS,
) -> int:
    """Kill the step at every chosen point; after each kill check, rerun, check again. Returns kills."""
    rng = random.Random(seed)
    restore()
    started = time.monotonic()
    operations = count_operations(harness, step)
    clean_seconds = time.monotonic() - started
    assert operations > 0
    kills = 0
    plan = [("operation", point) for point in kill_points(operations, rng)]
    plan += [("moment", rng.uniform(0, clean_seconds)) for _ in range(random_kills)]
    for kind, where in plan:
        restore()
        if kind == "operation":
            kill_before_operation(harness, step, int(where))
        else:
            kill_at_random_moment(harness, step, float(where))
        check_after_kill(f"killed at {kind} {where}")
        rerun_and_check(f"rerun after a kill at {kind} {where}")
        kills += 1
    return kills


# --- what readers see -------------------------------------------------------------------------------


def view_rows(warehouse: Path, view: str, where: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(f"SELECT * FROM {view} WHERE {where}", params).fetchall()
    return sorted(rows, key=repr)


def stray_files(lake_root: Path) -> list[Path]:
    """Files no reader will ever read: data files no commit lists, temporaries."""
    listed = {
        file.path
        for unit in lake.COMMIT_UNITS
        for key in lake.committed_keys(lake_root, unit)
        for file in lake.read_commit(lake_root, unit, key).files
    }
    strays = []
    for path in lake_root.rglob("*"):
        relative = path.relative_to(lake_root).as_posix()
        temporary = path.name.endswith(lake.TEMPORARY_SUFFIX)
        uncommitted = relative.split("/")[0] in lake.COMMITTED_DATASETS and relative not in listed
        if path.is_file() and (temporary or uncommitted):
            strays.append(path)
    return strays


def restore_copy(saved: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(saved, target)


def crash_a_lake_step(
    harness: Harness,
    name: str,
    step: dict[str, Any],
    saved: Path,
    lake_root: Path,
    state: Callable[[], Any],
    before: Any,
    clean: Any,
    seed: int,
) -> None:
    """Kill a step writing the lake everywhere: after each kill readers see ``before`` or
    ``clean``, never a mix; a rerun gives ``clean`` exactly and leaves no stray file."""

    def check_after_kill(what: str) -> None:
        assert state() in (before, clean), f"{what}: readers see a mix of two runs or a partial one"

    def rerun_and_check(what: str) -> None:
        run_step(name, step)
        assert state() == clean, what
        assert stray_files(lake_root) == [], what

    kills = crash_everywhere(
        harness, step, lambda: restore_copy(saved, lake_root), check_after_kill, rerun_and_check, seed
    )
    assert kills >= AUDITED_KILLS


# --- score ------------------------------------------------------------------------------------------


def write_policy(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_killing_score_shows_the_previous_or_the_new_scores_of_the_day_never_a_mix(
    harness: Harness, tmp_path: Path
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
    saved, lake_root, warehouse = tmp_path / "saved", tmp_path / "lake", tmp_path / "warehouse.duckdb"
    write_snapshot(saved)
    write_costs(saved, COSTS_WITH_RESOURCES)
    run_step("score", {"lake": str(saved), "day": SNAPSHOT.isoformat(), "policy": str(policy_a)})
    restore_copy(saved, lake_root)
    publish_warehouse(lake_root, warehouse)  # views read the lake live: publish once

    def scores() -> dict[str, list[tuple[Any, ...]]]:
        return {view: view_rows(warehouse, view, "snapshot_date = ?", [SNAPSHOT]) for view in SCORE_VIEWS}

    step = {"op": "score", "lake": str(lake_root), "watch": str(lake_root), "day": SNAPSHOT.isoformat()}
    step["policy"] = str(policy_b)
    clean_a = scores()
    run_step("score", step)
    clean_b = scores()
    assert clean_a != clean_b
    # the fixture policies have no exemptions: every other output has rows on both sides
    assert all(
        clean[view] for clean in (clean_a, clean_b) for view in SCORE_VIEWS if view != "exempted_violations"
    )
    versions = {
        view: {row[-1] for row in rows} for view, rows in clean_b.items() if view != "exempted_violations"
    }
    assert set().union(*versions.values()) == {"crash-B"}

    crash_a_lake_step(harness, "score", step, saved, lake_root, scores, before=clean_a, clean=clean_b, seed=1)


# --- a collection -----------------------------------------------------------------------------------


def seed_estate(aws: Any) -> None:
    for region, count in (("us-east-1", 3),):
        ec2 = aws.client("ec2", region)
        for number in range(count):
            ec2.run_instances(
                ImageId="ami-12345678",
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": "CostCenter", "Value": f"CC-{number}000"}]}
                ],
            )
    s3 = aws.client("s3")
    for name in ("crash-bucket-a", "crash-bucket-b"):
        s3.create_bucket(Bucket=name)
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "Owner", "Value": "team-a"}]})


def change_estate(aws: Any) -> None:
    """A day later: one instance gone, one new, a bucket retagged."""
    ec2 = aws.client("ec2")
    first = ec2.describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[first])
    ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    aws.client("s3").put_bucket_tagging(
        Bucket="crash-bucket-b", Tagging={"TagSet": [{"Key": "Owner", "Value": "team-b"}]}
    )


def test_killing_a_collection_never_shows_a_partial_snapshot(
    harness: Harness, aws: Any, tmp_path: Path
) -> None:
    day_1, day_2 = date(2026, 3, 14), date(2026, 3, 15)
    saved, lake_root, warehouse = tmp_path / "saved", tmp_path / "lake", tmp_path / "warehouse.duckdb"
    seed_estate(aws)
    connection = {"AIRFLOW_CONN_AWS_DEFAULT": os.environ["AIRFLOW_CONN_AWS_DEFAULT"]}
    collect = {"op": "collect", "accounts": [OWN_ACCOUNT], "regions": REGIONS, "env": connection}
    run_step("collect", {**collect, "lake": str(saved), "day": day_1.isoformat()})
    change_estate(aws)
    restore_copy(saved, lake_root)
    publish_warehouse(lake_root, warehouse)
    step = {**collect, "lake": str(lake_root), "watch": str(lake_root), "day": day_2.isoformat()}

    columns = ", ".join(name for name in VIEW_COLUMNS["resources"] if name != "collected_at")

    def day_2_state() -> tuple[date | None, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        # tag_drift is computed when the warehouse is published (the DAG's next step): publish
        # what the lake now holds, so a kill at any moment shows the old state or the new one (the
        # harness restores the lake of before between kills: days may go).
        publish_warehouse(lake_root, warehouse, allow_missing_days=True)
        resources = view_rows(warehouse, f"(SELECT {columns} FROM resources)", "snapshot_date = ?", [day_2])
        drift = view_rows(warehouse, "tag_drift", "snapshot_date = ?", [day_2])
        return latest_snapshot_on_or_before(lake_root, day_2), resources, drift

    before = day_2_state()
    assert before == (day_1, [], [])
    run_step("collect", step)
    clean = day_2_state()
    assert clean[0] == day_2 and clean[1] and clean[2]
    change = list(VIEW_COLUMNS["tag_drift"]).index("change")
    changes = {row[change] for row in clean[2]}
    assert {"resource_created", "resource_deleted", "tag_value_changed"} <= changes

    crash_a_lake_step(
        harness, "collect", step, saved, lake_root, day_2_state, before=before, clean=clean, seed=2
    )


# --- publish ----------------------------------------------------------------------------------------


def test_killing_publish_leaves_a_warehouse_that_opens_and_answers(harness: Harness, tmp_path: Path) -> None:
    lake_root, warehouse = tmp_path / "lake", tmp_path / "out" / "warehouse.duckdb"
    write_snapshot(lake_root)
    run_step(
        "score",
        {
            "lake": str(lake_root),
            "day": SNAPSHOT.isoformat(),
            "policy": str(write_policy(tmp_path / "policy.json", POLICY_DATA)),
        },
    )
    publish_warehouse(lake_root, warehouse)  # before any costs: its costs view is empty
    saved_warehouse = tmp_path / "saved-warehouse.duckdb"
    shutil.copy(warehouse, saved_warehouse)
    write_costs(lake_root, COSTS_WITH_RESOURCES)
    cost_rows = len(COSTS_WITH_RESOURCES)

    def restore() -> None:
        for path in warehouse.parent.iterdir():
            path.unlink()
        shutil.copy(saved_warehouse, warehouse)

    def costs_seen() -> int:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            for view in VIEW_COLUMNS:
                con.execute(f"SELECT count(*) FROM {view}").fetchone()  # every view answers
            return con.execute("SELECT count(*) FROM costs").fetchone()[0]

    step = {
        "op": "publish",
        "lake": str(lake_root),
        "warehouse": str(warehouse),
        "watch": str(warehouse.parent),
    }

    def check_after_kill(what: str) -> None:
        assert costs_seen() in (0, cost_rows), what

    def rerun_and_check(what: str) -> None:
        run_step("publish", step)
        assert costs_seen() == cost_rows, what
        assert sorted(path.name for path in warehouse.parent.iterdir()) == [warehouse.name], what

    kills = crash_everywhere(harness, step, restore, check_after_kill, rerun_and_check, seed=3)
    assert kills >= AUDITED_KILLS or kills >= 5 + RANDOM_KILLS


# --- the sweep of what killed writers left elsewhere -------------------------------------------------


def test_the_sweep_removes_old_strays_and_keeps_young_ones_and_committed_files(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    day = tmp_path / "resources" / f"snapshot_date={SNAPSHOT.isoformat()}"
    committed = sorted(day.rglob("*.parquet"))
    partition = committed[0].parent
    old_stray, young_stray = partition / "part-killed.parquet", partition / "part-running.parquet"
    old_temporary = partition / ".part-killed.parquet.0123.tmp"
    for path in (old_stray, young_stray, old_temporary):
        shutil.copy(committed[0], path)
    an_hour_ago = time.time() - 3600
    for path in (old_stray, old_temporary):
        os.utime(path, (an_hour_ago, an_hour_ago))
    deleted = lake.sweep(tmp_path, older_than=timedelta(minutes=30))
    assert sorted(deleted) == sorted(str(path) for path in (old_stray, old_temporary))
    assert sorted(day.rglob("*.parquet")) == sorted([*committed, young_stray])
    assert lake.sweep(tmp_path) == []  # the default grace: far longer than any task may run
