"""A member account whose role cannot be assumed, and a region another member opted out of: the
other targets are collected and scored exactly as in a clean run, the failure is named in
``collection_status``, the opted-out region is never called, the coverage figure says so
everywhere, the run ends failed after publishing, and a retry of the run collects only what is
missing.

One sandbox, one clean dag.test() run of a day into one lake (with an opt-in region enabled in one
member and holding a queue), then the same day into a second lake with a member's role deleted and
that region disabled, then the same run again there once both are back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from rich.console import Console

from tag_compliance import lake
from tag_compliance.aws.collectors import is_global_service, services
from tag_compliance.config import environment
from tag_compliance.demo import print_summary
from tag_compliance.report import default_report_path
from tag_compliance.sandbox import Sandbox
from tag_compliance.sandbox.estate import MANAGEMENT_ACCOUNT, MEMBER_ACCOUNTS
from tests.test_end_to_end import RUN_DAY, lake_env, run_at, run_dag
from tests.test_report import figures, parse

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(seed=17, data_dir=tmp_path_factory.mktemp("sandbox"), scale=0.1) as running:
        running.enable_region(OPTED_IN, OPT_IN)
        running.client(OPTED_IN, "sqs", OPT_IN).create_queue(
            QueueName="opted-in-orders", tags={"Owner": "payments", "CostCenter": "cc-1234"}
        )
        yield running


def regions(sandbox: Sandbox) -> list[str]:
    return [*sandbox.regions, OPT_IN]


def run_in(root: Path, sandbox: Sandbox) -> dict[str, str]:
    """The daily run of RUN_DAY (live inventory) into ``root``; the state of each task. Each call
    is the same Airflow run (one run id), as when a failed run is cleared in the UI."""
    with environment({**lake_env(sandbox.env(), root), "TAG_COMPLIANCE_REGIONS": ",".join(regions(sandbox))}):
        dag_run = run_dag(run_at(RUN_DAY), sandbox_clock=run_at(RUN_DAY), run_after=run_at(RUN_DAY))
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        return {"run": dag_run.state, **{task: str(state) for task, state in states.items()}}


def rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, [RUN_DAY]).fetchall()


RESOURCE_ROWS = (
    "SELECT account_id, region, service, resource_type, resource_id, arn, name, state, created_at, "
    "tags, source FROM resources WHERE snapshot_date = $1 ORDER BY ALL"
)
VIOLATION_ROWS = "SELECT * FROM violations WHERE snapshot_date = $1 ORDER BY ALL"
COMPLIANCE_ROWS = "SELECT * FROM resource_compliance WHERE snapshot_date = $1 ORDER BY ALL"
STATUS_ROWS = (
    "SELECT service, account_id, region, status, error_code, attempts, message FROM collection_status "
    "WHERE snapshot_date = $1"
)
OPT_IN = "eu-south-1"  # an opt-in region, disabled in a new account
OPTED_IN = MEMBER_ACCOUNTS[0]  # enabled it for the clean run, disables it for the broken one
CALLED_IN_OPT_IN_REGION = (
    f"SELECT DISTINCT account_id FROM api_calls WHERE snapshot_date = $1 AND region = '{OPT_IN}' ORDER BY ALL"
)
COVERAGE_ROWS = (
    "SELECT DISTINCT targets_planned, targets_collected, collection_coverage_pct FROM compliance_summary "
    "WHERE snapshot_date = $1"
)
BROKEN = MEMBER_ACCOUNTS[1]


def without(found: list[tuple[Any, ...]], account: str) -> list[tuple[Any, ...]]:
    """The rows of every other account, and none of the region OPTED_IN opted out of."""
    return [row for row in found if account not in row and not (OPTED_IN in row and OPT_IN in row)]


def committed_files(root: Path) -> dict[str, str]:
    snapshot = lake.read_commit(root / "lake", lake.SNAPSHOT, RUN_DAY)
    assert snapshot is not None
    return {file.partition: file.path for file in snapshot.files_of(lake.RESOURCES)}


@pytest.fixture(scope="module")
def runs(airflow_db, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert (
        BROKEN in sandbox.accounts
        and BROKEN != MANAGEMENT_ACCOUNT
        and OPTED_IN not in (BROKEN, MANAGEMENT_ACCOUNT)
    )
    clean_root, broken_root = tmp_path_factory.mktemp("clean"), tmp_path_factory.mktemp("broken")
    clean = run_in(clean_root, sandbox)
    clean_calls = rows(clean_root, CALLED_IN_OPT_IN_REGION)
    sandbox.delete_member_role(BROKEN)
    sandbox.disable_region(OPTED_IN, OPT_IN)
    try:
        broken = run_in(broken_root, sandbox)
        # what the failed run left, read before the retry replaces it
        broken_rows = {
            sql: rows(broken_root, sql)
            for sql in (
                RESOURCE_ROWS,
                VIOLATION_ROWS,
                COMPLIANCE_ROWS,
                STATUS_ROWS,
                COVERAGE_ROWS,
                CALLED_IN_OPT_IN_REGION,
            )
        }
        report = default_report_path(broken_root / "warehouse.duckdb", RUN_DAY).read_text(encoding="utf-8")
        broken_files = committed_files(broken_root)
        console = Console(record=True, width=200)
        with environment(lake_env(sandbox.env(), broken_root)):
            print_summary(console, broken_root / "warehouse.duckdb")
        summary = console.export_text()
    finally:
        sandbox.restore_member_role(BROKEN)
        sandbox.enable_region(OPTED_IN, OPT_IN)
    retried = run_in(broken_root, sandbox)
    return {
        "clean": (clean_root, clean, clean_calls),
        "broken": (broken_root, broken, broken_rows, broken_files, summary, report),
        "retried": (broken_root, retried),
    }


def test_the_clean_run_succeeds_and_collects_every_target_of_the_enabled_regions(runs):
    root, states, called = runs["clean"]
    assert states["run"] == "success"
    assert rows(
        root,
        f"SELECT DISTINCT status, region = '{OPT_IN}' FROM collection_status "
        "WHERE snapshot_date = $1 ORDER BY ALL",
    ) == [("collected", False), ("collected", True), ("not_enabled", True)]
    # the opt-in region is called only in the account that enabled it
    assert called == [(OPTED_IN,)]


def test_the_run_with_a_broken_role_publishes_then_ends_failed(runs):
    _, states, *_ = runs["broken"]
    assert states["run"] == "failed"
    assert states["check_coverage"] == "failed"
    for task in ("commit_snapshot", "score", "publish_warehouse", "write_report"):
        assert states[task] == "success", task
    # the failure is the targets', not the collection tasks'
    assert {state for task, state in states.items() if task.startswith("collect_")} == {"success"}


def test_collection_status_names_every_target_of_the_broken_account_with_its_error(runs, sandbox):
    _, _, broken_rows, *_ = runs["broken"]
    planned = {
        (service, account, region)
        for service in services()
        for account in sandbox.accounts
        for region in (["global"] if is_global_service(service) else sandbox.regions)
    }
    status = broken_rows[STATUS_ROWS]
    not_enabled = [row for row in status if row[3] == "not_enabled"]
    assert {(service, account, region) for service, account, region, *_ in status} - planned == {
        (service, account, OPT_IN) for service, account, *_ in not_enabled
    }
    assert {(service, account, region) for service, account, region, *_ in not_enabled} == {
        (service, account, OPT_IN)
        for service in services()
        if not is_global_service(service)
        for account in sandbox.accounts
    }
    assert {(row[4], row[5]) for row in not_enabled} == {("DISABLED", 0)}
    assert broken_rows[CALLED_IN_OPT_IN_REGION] == []  # never called, in any account
    status = [row for row in status if row[3] != "not_enabled"]
    assert {(service, account, region) for service, account, region, *_ in status} == planned
    failed = [row for row in status if row[3] == "failed"]
    assert {(service, account, region) for service, account, region, *_ in failed} == {
        target for target in planned if target[1] == BROKEN
    }
    assert {(row[4], row[5]) for row in failed} == {("AccessDenied", 1)}
    assert all(f"arn:aws:iam::{BROKEN}:role/" in row[6] for row in failed)


def test_every_other_target_is_stored_and_scored_exactly_as_without_the_failure(runs):
    clean_root, *_ = runs["clean"]
    _, _, broken_rows, *_ = runs["broken"]
    for sql in (RESOURCE_ROWS, VIOLATION_ROWS, COMPLIANCE_ROWS):
        clean = rows(clean_root, sql)
        assert any(BROKEN in row for row in clean), sql  # the broken account has resources to lose
        assert any(OPTED_IN in row and OPT_IN in row for row in clean), sql  # and the opted-out region
        assert broken_rows[sql] == without(clean, BROKEN), sql  # the others' exactly; none of its own


def test_the_coverage_figure_is_below_100_in_the_summary_view_report_and_demo_summary(runs):
    _, _, broken_rows, _, summary, report = runs["broken"]
    ((planned, collected, pct),) = broken_rows[COVERAGE_ROWS]
    failed = [row for row in broken_rows[STATUS_ROWS] if row[3] == "failed"]
    assert failed and collected == planned - len(failed) and pct == pytest.approx(100 * collected / planned)
    assert pct < 100
    value, shown = figures(parse(report))["collection_coverage_pct"]
    assert float(value) == pct and shown == f"{pct:.1f}%"
    assert f"{round(pct, 1)}% collection coverage: {collected} of {planned} planned" in summary


def test_a_retry_of_the_run_collects_only_the_missing_targets_and_equals_the_clean_run(runs):
    clean_root, *_ = runs["clean"]
    root, _, _, broken_files, *_ = runs["broken"]
    _, states = runs["retried"]
    assert states["run"] == "success"
    for sql in (RESOURCE_ROWS, VIOLATION_ROWS, COMPLIANCE_ROWS):
        assert rows(root, sql) == rows(clean_root, sql), sql
    files = committed_files(root)
    kept = {
        partition: path
        for partition, path in files.items()
        if f"account_id={BROKEN}" not in partition
        and not (f"account_id={OPTED_IN}" in partition and f"region={OPT_IN}" in partition)
    }
    assert kept == broken_files  # every target collected before is the very same file: not collected again
    assert len(files) > len(broken_files)
    status = rows(
        root, "SELECT account_id, region, status, attempts FROM collection_status WHERE snapshot_date = $1"
    )
    assert {(account == BROKEN, state, attempts) for account, _, state, attempts in status} == {
        (True, "collected", 2),
        (False, "collected", 1),
        (True, "not_enabled", 0),  # the opt-in region the other accounts never enabled
        (False, "not_enabled", 0),
    }
    # the region opted into again: collected (a first attempt), never marked not enabled
    assert {
        (state, attempts)
        for account, region, state, attempts in status
        if (account, region) == (OPTED_IN, OPT_IN)
    } == {("collected", 1)}
    ((pct,),) = rows(
        root, "SELECT DISTINCT collection_coverage_pct FROM compliance_summary WHERE snapshot_date = $1"
    )
    assert pct == 100
