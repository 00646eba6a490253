"""The demo's summary, printed from a hand-built warehouse: every query it runs works."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from rich.console import Console

from tag_compliance.demo import print_summary
from tag_compliance.warehouse import publish_warehouse
from tests.history_fixtures import D5, D6, SCORED_DATES, write_history_lake


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("demo")
    write_history_lake(root / "lake")
    publish_warehouse(root / "lake", root / "warehouse.duckdb")
    console = Console(record=True, width=160)
    print_summary(console, root / "warehouse.duckdb")
    return console.export_text()


def test_the_summary_is_of_the_latest_scored_day(printed):
    assert f"Tag compliance on {D6.isoformat()} (policy history-1)" in printed


def test_the_trend_has_a_row_per_scored_day_with_its_inventory(printed):
    trend = printed.split("trend (compliance_trend, overall)", 1)[1].split("What changed", 1)[0]
    for day in SCORED_DATES:
        assert day.isoformat() in trend
    assert re.search(rf"{D6.isoformat()}\s+│ {D5.isoformat()}", trend)  # scored from the previous inventory


def test_cost_figures_and_requests_are_printed_without_blanks(printed):
    assert "of in-scope spend is on compliant resources" in printed
    assert "Cost Explorer: 0 requests this run, which would cost $0.00 on AWS." in printed
    assert "None" not in printed


def _runner(script: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, text=True)


def test_a_day_is_asked_of_the_runner_and_its_state_read_back(tmp_path):
    from tag_compliance.demo import _run_day, _stop

    status = tmp_path / "status"
    # the runner's protocol: a run time per line in, "<time> <state>" appended to the status file
    echo = (
        "import sys\n"
        "for line in sys.stdin:\n"
        f"    open({str(status)!r}, 'a').write(line.strip() + ' success\\n')\n"
    )
    runner = _runner(echo)
    try:
        assert _run_day(runner, status, datetime(2026, 3, 2, 6, tzinfo=UTC)) == "success"
        assert _run_day(runner, status, datetime(2026, 3, 3, 6, tzinfo=UTC)) == "success"
    finally:
        _stop(runner)
    assert runner.returncode == 0  # closing its input ends it


def test_a_runner_that_dies_is_a_failed_day_not_a_hang(tmp_path):
    from tag_compliance.demo import _run_day, _stop

    runner = _runner("import sys; sys.exit(3)")
    try:
        assert _run_day(runner, tmp_path / "status", datetime(2026, 3, 2, 6, tzinfo=UTC)) == (
            "error (the Airflow process exited with 3)"
        )
    finally:
        _stop(runner)
