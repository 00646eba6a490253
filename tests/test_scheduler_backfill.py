"""Backfills through Airflow's own mechanism, on a real scheduler (LocalExecutor, API server, DAG processor).

One scenario, run once for the module against a small sandbox:

1. ``airflow dags test`` (in its own Airflow home) with the sandbox clock on D0 + 1, D0 = today - 5,
   stores the inventory snapshot of D0 (its last "live" day), while the scheduler starts;
2. ``airflow backfill create`` of D1..D3 (today - 4 .. today - 2), reprocess ``none``: three runs, scored
   from D0's snapshot, with no inventory of their own;
3. the same range with ``completed``: every run is cleared and rerun, the lake ends up identical;
4. the same range again with ``none`` and with ``failed``: no run is created or rerun.

Every process started on the way (the services, their task runners, the sandbox's moto server) is
gone afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import duckdb
import psutil
import pytest

from tag_compliance.clock import SANDBOX_CLOCK_ENV
from tag_compliance.local_airflow import BackfillStatus, DagRunStatus, LocalAirflow, day_start
from tag_compliance.sandbox import Sandbox
from tests.postgres_server import TemporaryPostgres

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
D0 = TODAY - timedelta(days=5)
DAYS = [TODAY - timedelta(days=n) for n in (4, 3, 2)]
SCORED_DATASETS = ("violations", "resource_compliance", "compliance_summary", "attribution_gap")
DATASETS = ("resources", "costs", *SCORED_DATASETS, "api_calls")
RUN_TIMEOUT = 240


class ProcessWatcher:
    """Samples every descendant of this process in a thread, to check later that all of them are gone;
    ``existing`` ones (started before, such as a session's object-store server) are not its business."""

    def __init__(self, existing: set[int], interval: float = 0.2) -> None:
        self.existing = existing
        self.interval = interval
        self.seen: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-watcher", daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                for child in me.children(recursive=True):
                    if child.pid not in self.existing:
                        self.seen.setdefault(child.pid, child)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> ProcessWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def alive(self) -> list[str]:
        """Processes seen that still run (``is_running`` also rules out a reused pid)."""
        survivors = []
        for process in self.seen.values():
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    survivors.append(f"{process.pid} {' '.join(process.cmdline())[:200]}")
            except psutil.NoSuchProcess:
                continue
        return survivors


@dataclass
class Scenario:
    lake: Path
    home: Path
    jwt_secret: str
    first_runs: list[DagRunStatus]
    counts_after_first: dict[str, tuple[int, int]]
    completed: BackfillStatus
    completed_runs: list[DagRunStatus]
    counts_after_completed: dict[str, tuple[int, int]]
    runs_before_repeats: list[DagRunStatus]
    repeats: dict[str, tuple[BackfillStatus, list[DagRunStatus]]]
    runs_after_repeats: list[DagRunStatus]
    service_pids: dict[str, int]
    watcher: ProcessWatcher
    children_before: set[int]
    timings: dict[str, float] = field(default_factory=dict)


def lake_counts(lake: Path) -> dict[str, tuple[int, int]]:
    """Per dataset: (rows, distinct rows), partition keys included.

    ``api_calls`` holds one file per task, and tasks of one snapshot make identical calls (each
    collection task's ``sts:GetCallerIdentity``, say): there a row is distinct per file.
    """
    con = duckdb.connect()
    counts = {}
    for dataset in DATASETS:
        per_file = "true" if dataset == "api_calls" else "false"
        files = f"'{lake}/{dataset}/**/*.parquet'"
        rows = f"read_parquet({files}, hive_partitioning = true, filename = {per_file})"
        counts[dataset] = con.execute(
            f"select (select count(*) from {rows}), (select count(*) from (select distinct * from {rows}))"
        ).fetchone()
    return counts


def store_live_snapshot(airflow: LocalAirflow) -> None:
    """D0's inventory: ``airflow dags test`` as if it ran on D0 + 1 at 06:00 (the sandbox clock).

    In an Airflow home of its own (``dags test`` needs a migrated database, not the scheduler's).
    """
    clock = datetime.combine(D0 + timedelta(days=1), dt_time(6), tzinfo=UTC)
    airflow.run_airflow("db", "migrate", log_name="db-migrate")
    airflow.run_airflow(
        "dags",
        "test",
        "tag_compliance",
        clock.isoformat(),
        log_name="dags-test",
        env={SANDBOX_CLOCK_ENV: clock.isoformat()},
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("scheduler-backfill")
    children_before = {child.pid for child in psutil.Process().children(recursive=True)}
    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(step: str) -> None:
        timings[step] = round(time.monotonic() - started, 1)

    with (
        ProcessWatcher(existing=children_before) as watcher,
        TemporaryPostgres() as database,
        Sandbox(seed=11, data_dir=root / "sandbox", scale=0.1) as sandbox,
        ThreadPoolExecutor(max_workers=1) as background,
    ):
        mark("sandbox")
        env = {
            **sandbox.env(),
            "TAG_COMPLIANCE_LAKE": str(root / "lake"),
            "TAG_COMPLIANCE_WAREHOUSE": str(root / "warehouse.duckdb"),
        }
        snapshot = background.submit(store_live_snapshot, LocalAirflow(root / "airflow-dags-test", env))
        # The scheduler's database is PostgreSQL: on SQLite, `backfill create` clearing runs while the
        # scheduler writes can fail with "database is locked" (tests/postgres_server.py).
        airflow = LocalAirflow(root / "airflow", env, database_url=database.url)
        with airflow:  # starts while `dags test` runs
            mark("start")
            service_pids = airflow.pids
            snapshot.result(timeout=RUN_TIMEOUT)
            mark("dags test D0")

            # three runs at a time (quicker; the one-slot pools still serialise the costs and the writes)
            first = airflow.backfill(DAYS[0], DAYS[-1], "none", max_active_runs=3)
            first_runs = airflow.wait_for_runs(backfill_id=first.id, timeout=RUN_TIMEOUT)
            counts_after_first = lake_counts(root / "lake")
            mark("backfill none")

            completed = airflow.backfill(DAYS[0], DAYS[-1], "completed", max_active_runs=3)
            completed_runs = airflow.wait_for_runs(backfill_id=completed.id, timeout=RUN_TIMEOUT)
            completed = airflow.backfill_status(completed.id)
            counts_after_completed = lake_counts(root / "lake")
            mark("backfill completed")

            runs_before_repeats = airflow.dag_runs()
            repeats = {}
            repeat = airflow.backfill(DAYS[0], DAYS[-1], "none")
            runs = airflow.wait_for_runs(backfill_id=repeat.id, timeout=RUN_TIMEOUT)
            repeats["none"] = (airflow.backfill_status(repeat.id), runs)
            mark("backfill none again")
            # the last one: no need to wait for the scheduler to mark it completed
            repeat = airflow.backfill(DAYS[0], DAYS[-1], "failed")
            runs = airflow.wait_for_runs(logical_dates=[day_start(day) for day in DAYS], timeout=RUN_TIMEOUT)
            repeats["failed"] = (repeat, runs)
            runs_after_repeats = airflow.dag_runs()
            mark("backfill failed again")
            jwt_secret = airflow.env["AIRFLOW__API_AUTH__JWT_SECRET"]
        mark("stop")
    mark("sandbox stop")
    print(f"timings (s since start): {timings}")  # shown with pytest -s
    yield Scenario(
        lake=root / "lake",
        home=root / "airflow",
        jwt_secret=jwt_secret,
        first_runs=first_runs,
        counts_after_first=counts_after_first,
        completed=completed,
        completed_runs=completed_runs,
        counts_after_completed=counts_after_completed,
        runs_before_repeats=runs_before_repeats,
        repeats=repeats,
        runs_after_repeats=runs_after_repeats,
        service_pids=service_pids,
        watcher=watcher,
        children_before=children_before,
        timings=timings,
    )


def partitions(lake: Path, dataset: str, *keys: str) -> bool:
    directory = lake / dataset
    for key in keys:
        directory /= key
    return directory.is_dir() and any(directory.rglob("*.parquet"))


def test_a_backfill_creates_one_successful_run_per_day(scenario):
    runs = scenario.first_runs
    assert [run.logical_date for run in runs] == [day_start(day) for day in DAYS]
    assert {(run.run_type, run.state) for run in runs} == {("backfill", "success")}


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_each_backfilled_day_has_its_costs_and_its_scores(scenario, day: date):
    for source in ("service", "tag", "resource"):
        assert partitions(scenario.lake, "costs", f"usage_date={day}", f"source={source}"), source
    for dataset in SCORED_DATASETS:
        assert partitions(scenario.lake, dataset, f"snapshot_date={day}"), dataset


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_a_backfilled_day_is_scored_from_the_last_live_snapshot_not_from_live_inventory(scenario, day: date):
    # The contract of backfills (DESIGN.md section 8): a past day never gets live inventory labelled
    # with its date; it is scored with the nearest earlier snapshot, recorded in inventory_as_of.
    assert partitions(scenario.lake, "resources", f"snapshot_date={D0}")
    assert not (scenario.lake / "resources" / f"snapshot_date={day}").exists()
    as_of = (
        duckdb.connect()
        .execute(
            f"select distinct inventory_as_of from read_parquet('{scenario.lake}/resource_compliance/"
            f"snapshot_date={day}/*.parquet')"
        )
        .fetchall()
    )
    assert as_of == [(D0,)]


def test_reprocess_completed_clears_and_reruns_the_same_runs(scenario):
    # Airflow 3.3 clears each finished run of the range and queues it again: same run ids, no new run.
    assert scenario.completed.reprocess_behavior == "completed"
    assert scenario.completed.completed_at is not None
    first = {run.run_id: run for run in scenario.first_runs}
    rerun = {run.run_id: run for run in scenario.completed_runs}
    assert rerun.keys() == first.keys()
    for run_id, run in rerun.items():
        assert (run.run_type, run.state) == ("backfill", "success")
        assert run.start_date is not None and first[run_id].end_date is not None
        assert run.start_date > first[run_id].end_date, run_id
    assert [run.run_id for run in scenario.runs_before_repeats] == list(first)


def test_reprocess_none_and_failed_create_and_rerun_nothing(scenario):
    # Airflow 3.3 creates the backfill but no run: each day with a finished run is recorded as
    # "already exists" (`failed` would rerun a failed one). The scheduler then marks the empty
    # backfill completed.
    none, none_runs = scenario.repeats["none"]
    assert none.reprocess_behavior == "none"
    assert none.completed_at is not None
    failed, failed_runs = scenario.repeats["failed"]
    assert failed.reprocess_behavior == "failed"
    for runs in (none_runs, failed_runs):
        assert runs == scenario.completed_runs  # same runs, same states, same start and end
    assert scenario.runs_after_repeats == scenario.runs_before_repeats


def test_rerunning_a_backfill_leaves_the_lake_identical(scenario):
    assert scenario.counts_after_completed == scenario.counts_after_first
    for dataset, (rows, distinct) in scenario.counts_after_completed.items():
        assert rows == distinct, f"{dataset} holds duplicate rows"
        if dataset != "resources":
            assert rows > 0, dataset


def test_no_process_is_left_behind(scenario):
    assert set(scenario.service_pids) == {"api-server", "dag-processor", "scheduler"}
    assert set(scenario.service_pids.values()) <= set(scenario.watcher.seen)
    assert len(scenario.watcher.seen) > len(scenario.service_pids)  # task runners were seen too
    assert scenario.watcher.alive() == []
    children_now = {child.pid for child in psutil.Process().children(recursive=True)}
    assert children_now <= scenario.children_before


def test_the_jwt_secret_is_in_no_file(scenario):
    assert len(scenario.jwt_secret) >= 32
    for path in scenario.home.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert scenario.jwt_secret not in path.read_text(errors="replace"), path
