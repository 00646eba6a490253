"""The DAG folder imports cleanly, fast, and only names pools that setup creates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import CronDataIntervalTimetable
from airflow.timetables.interval import CronDataIntervalTimetable as CoreCronDataIntervalTimetable

from tag_compliance.aws.collectors import services
from tag_compliance.config import POOLS_FILE
from tests.conftest import REPO_ROOT

POOLS: dict[str, dict] = json.loads(POOLS_FILE.read_text())


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=REPO_ROOT / "dags", known_pools=set(POOLS) | {"default_pool"})


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "tag_compliance" in dagbag.dags


def test_every_task_uses_a_pool_from_pools_json(dagbag):
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert task.pool == "default_pool" or task.pool in POOLS, (
                f"{dag.dag_id}.{task.task_id}: {task.pool}"
            )


def test_one_mapped_collection_task_per_service_in_its_own_pool(dagbag):
    dag = dagbag.dags["tag_compliance"]
    for service in services():
        task = dag.get_task(f"collect_{service}")
        assert task.pool == f"aws_{service}"
        assert task.is_mapped
    assert dag.get_task("score").pool == dag.get_task("publish_warehouse").pool == "warehouse_writes"


def test_cost_explorer_runs_once_in_its_one_slot_pool_before_scoring(dagbag):
    dag = dagbag.dags["tag_compliance"]
    costs = dag.get_task("extract_costs")
    assert costs.pool == "aws_cost_explorer" and POOLS["aws_cost_explorer"]["slots"] == 1
    assert "score" in costs.downstream_task_ids


def test_the_organisation_is_asked_once_before_any_collection_or_cost_request(dagbag):
    dag = dagbag.dags["tag_compliance"]
    organisation = dag.get_task("organisation")
    assert not organisation.is_mapped and organisation.upstream_task_ids == {"plan"}
    expected = {f"targets_{s}" for s in services()} | {f"collect_{s}" for s in services()} | {"extract_costs"}
    assert expected <= organisation.downstream_task_ids


def test_the_report_is_written_after_the_warehouse_is_published(dagbag):
    dag = dagbag.dags["tag_compliance"]
    report = dag.get_task("write_report")
    assert report.upstream_task_ids == {"publish_warehouse", "plan"}
    assert report.downstream_task_ids == {"check_coverage"}
    # Serialised with score and publish: it reads the lake they rewrite.
    assert report.pool == "warehouse_writes"


def test_daily_utc_schedule_with_a_one_day_data_interval(dagbag):
    timetable = dagbag.dags["tag_compliance"].timetable
    assert isinstance(timetable, CronDataIntervalTimetable)
    core = CoreCronDataIntervalTimetable(timetable.expression, timetable.timezone)
    interval = core.infer_manual_data_interval(run_after=pendulum.datetime(2026, 11, 24, 15, tz="UTC"))
    assert interval.end - interval.start == pendulum.duration(days=1)
    assert interval.start.tzinfo is not None and interval.start.utcoffset().total_seconds() == 0


# What would make parsing slow: AWS SDKs, DuckDB, Arrow, pandas, moto, and the pipeline's own modules
# that load them. Asserted on what the DAG file imports, not on seconds (the machine may be busy).
HEAVY_MODULES = (
    "boto3",
    "botocore",
    "duckdb",
    "pyarrow",
    "pandas",
    "moto",
    "tag_compliance.pipeline",
    "tag_compliance.lake",
    "tag_compliance.collect",
    "tag_compliance.scoring",
)


def test_dag_files_parse_fast_importing_nothing_heavy(dagbag):
    assert dagbag.dagbag_stats, "no parse statistics recorded"
    probe = (
        "import importlib.util, json, sys\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        "for path in sys.argv[1:]:\n"
        "    spec = importlib.util.spec_from_file_location('dag_file', path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    files = [
        str(stat.file if Path(stat.file).is_absolute() else REPO_ROOT / "dags" / stat.file.lstrip("/"))
        for stat in dagbag.dagbag_stats
    ]
    done = subprocess.run([sys.executable, "-c", probe, *files], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    heavy = [name for name in loaded if name.split(".")[0] in HEAVY_MODULES or name in HEAVY_MODULES]
    assert heavy == [], f"parsing the DAG files imports {heavy}"


def test_every_task_has_a_timeout_shorter_than_the_stray_file_grace(dagbag):
    from tag_compliance.lake import STRAY_FILE_GRACE

    for task in dagbag.dags["tag_compliance"].tasks:
        assert task.execution_timeout is not None, task.task_id
        assert task.execution_timeout < STRAY_FILE_GRACE, task.task_id


def test_the_snapshot_is_committed_after_every_collection_and_before_scoring(dagbag):
    dag = dagbag.dags["tag_compliance"]
    commit = dag.get_task("commit_snapshot")
    assert {f"collect_{service}" for service in services()} <= commit.upstream_task_ids
    assert {f"targets_{service}" for service in services()} <= commit.upstream_task_ids
    assert "score" in commit.downstream_task_ids
    # A collection task that failed as a whole leaves its targets failed, not the others uncommitted.
    assert commit.trigger_rule == "all_done"


def test_the_run_checks_coverage_last_after_publishing_and_reporting(dagbag):
    dag = dagbag.dags["tag_compliance"]
    check = dag.get_task("check_coverage")
    assert check.downstream_task_ids == set()
    assert {"write_report", "score"} <= check.upstream_task_ids
    assert "publish_warehouse" in dag.get_task("write_report").upstream_task_ids
    assert [task.task_id for task in dag.leaves] == ["check_coverage"]
