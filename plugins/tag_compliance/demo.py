"""``make demo``: seed the local AWS sandbox, run the real DAG against it, show the results.

Nothing here talks to real AWS: the sandbox's moto server on 127.0.0.1 is the only
endpoint, with moto's fake credentials. The DAG's daily runs are ``dag.test()`` runs in one child
Airflow process (:mod:`.demo_runs`) whose log goes to ``data/demo-airflow.log``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import duckdb
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tag_compliance.config import POOLS_FILE, REPO_ROOT, SQL_DIR, get_settings
from tag_compliance.output import escape_controls
from tag_compliance.report import default_report_path, write_report
from tag_compliance.sandbox import Sandbox
from tag_compliance.scoring import load_sql
from tag_compliance.warehouse import connect_read_only

DATA_DIR = REPO_ROOT / "data"
DEMO_SEED = 42
HISTORY_DAYS = 7  # daily runs replayed while the sandbox estate changes from day to day


def _airflow(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    output = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "airflow", *args], env=env, stdout=output, stderr=output)


def _run_airflow(*args: str, env: dict[str, str], log: Path) -> None:
    process = _airflow(*args, env=env, log=log)
    if process.wait() != 0:
        raise SystemExit(f"`airflow {' '.join(args)}` failed (exit {process.returncode}); see {log}")


def _run_day(runner: subprocess.Popen, status: Path, run_at: datetime) -> str:
    """Ask the runner for the run at ``run_at`` and wait for its state (``error`` if it died)."""
    assert runner.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # it died: said below, with its exit code
        runner.stdin.write(f"{run_at.isoformat()}\n")
        runner.stdin.flush()
    prefix = f"{run_at.isoformat()} "
    while True:
        done = status.read_text(encoding="utf-8").splitlines() if status.exists() else []
        for line in done:
            if line.startswith(prefix):
                return line.removeprefix(prefix)
        if runner.poll() is not None:
            return f"error (the Airflow process exited with {runner.returncode})"
        time.sleep(0.3)


def _stop(runner: subprocess.Popen) -> None:
    if runner.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            runner.stdin.close()  # end of input: the runner returns once its run is over
    try:
        runner.wait(timeout=30)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.wait()


SUMMARY_SQL_DIR = SQL_DIR / "summary"


def _query(con: duckdb.DuckDBPyConnection, name: str, **params: object) -> duckdb.DuckDBPyConnection:
    """Run ``include/sql/summary/<name>.sql`` with its named parameters."""
    return con.execute(load_sql(name, SUMMARY_SQL_DIR), params)


def _table(title: str, con: duckdb.DuckDBPyConnection, name: str, **params: object) -> Table:
    result = _query(con, name, **params)
    columns = [description[0] for description in result.description]
    rows = result.fetchall()
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        # Text, escaped: data is shown as itself, never as rich markup or terminal controls.
        table.add_row(*(Text("" if value is None else escape_controls(str(value))) for value in row))
    return table


def run_demo(console: Console) -> Path:
    """Run the whole demo and return the warehouse path."""
    DATA_DIR.mkdir(exist_ok=True)
    log = DATA_DIR / "demo-airflow.log"
    log.unlink(missing_ok=True)
    settings = get_settings()
    sandbox = Sandbox(seed=DEMO_SEED, data_dir=DATA_DIR / "sandbox", history_days=HISTORY_DAYS)
    with (
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as progress,
        contextlib.ExitStack() as cleanup,
    ):
        cleanup.callback(sandbox.stop)  # the moto server stops however the demo ends
        step = progress.add_task("Starting the AWS sandbox (moto on 127.0.0.1) and seeding the estate")
        sandbox.start()
        progress.update(step, description=f"Sandbox seeded at {sandbox.endpoint_url}", completed=1, total=1)

        env = {**os.environ, **sandbox.env()}
        step = progress.add_task("Preparing Airflow: metadata database and pools")
        _run_airflow("db", "migrate", env=env, log=log)
        _run_airflow("pools", "import", str(POOLS_FILE), env=env, log=log)
        progress.update(step, completed=1, total=1)

        status = DATA_DIR / "demo-runs.status"
        status.unlink(missing_ok=True)
        runner = subprocess.Popen(
            [sys.executable, "-m", "tag_compliance.demo_runs", str(status)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=cleanup.enter_context(log.open("ab")),
            stderr=subprocess.STDOUT,
            text=True,
        )
        cleanup.callback(_stop, runner)
        for day in sandbox.history:
            # The estate as it was at the end of `day`, scored by the daily run of the next morning.
            # The demo clock makes that morning 'now' for the pipeline (live inventory, Cost Explorer's
            # view of the time); it is only honoured against the sandbox's 127.0.0.1 endpoints.
            sandbox.advance_to(day)
            run_at = datetime.combine(day + timedelta(days=1), dt_time(6), tzinfo=UTC)
            sandbox.cost_explorer.today = run_at.date()
            step = progress.add_task(f"Daily run for {day} (demo clock {run_at:%Y-%m-%d %H:%M} UTC)")
            state = _run_day(runner, status, run_at)
            if state != "success":
                raise SystemExit(f"the DAG run for {day} ended {state}; see {log}")
            progress.update(step, description=f"Daily run for {day} succeeded", completed=1, total=1)
    return settings.warehouse


def print_summary(console: Console, warehouse: Path) -> None:
    with connect_read_only(warehouse) as con:
        day = con.execute("select max(snapshot_date) from compliance_summary").fetchall()[0][0]
        (snapshot, total, in_scope, compliant, pct, version, planned, collected, coverage) = _query(
            con, "overall", day=day
        ).fetchall()[0]
        console.rule(f"Tag compliance on {snapshot} (policy {version})")
        console.print(
            f"[bold]{pct}%[/bold] of in-scope resources comply: {compliant} of {in_scope} "
            f"({total} inventoried)"
        )
        if planned is not None:
            style = "bold" if collected == planned else "bold red"
            console.print(
                f"[{style}]{coverage}%[/{style}] collection coverage: {collected} of {planned} planned "
                "(service, account, region) targets collected (view collection_status)"
            )
        console.print()
        console.print(_table("By account", con, "by_dimension", day=day, dimension="account"))
        console.print(_table("By resource type", con, "by_dimension", day=day, dimension="resource_type"))
        console.print(_table("Violations by type", con, "violations_by_type", day=day))
        print_costs(console, con, day)
        print_history(console, con)
        console.print(_table("AWS requests made (api_calls)", con, "api_requests", day=day))
    console.print(f"Warehouse: [bold]{warehouse}[/bold]")
    console.print(f"Lake:      {get_settings().lake}")
    console.print("Ask it anything, for example:")
    console.print(
        '  [green].venv/bin/tag-compliance query "select violation_type, count(*) from violations group by 1"'
        "[/green]"
    )
    print_report(console, warehouse, day)


def print_report(console: Console, warehouse: Path, day: date) -> None:
    """Where the day's HTML report is: the one the DAG's write_report task wrote, else a new one
    (a warehouse published without that task, e.g. by an older DAG)."""
    path = default_report_path(warehouse, day)
    how = "written by the DAG's write_report task"
    if not path.is_file():
        path = write_report(warehouse, day)
        how = "generated now: the DAG run wrote none"
    console.print(f"Report:    [bold]{path}[/bold] ({how}; open it in a browser, it works offline)")


def print_costs(console: Console, con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Cost-weighted compliance, the attribution gap and what Cost Explorer cost us."""
    spend, cost_pct, cost_compliant, gap = _query(con, "cost_headline", day=day).fetchall()[0]
    if spend is None:
        console.print("No Cost Explorer data for this day (TAG_COMPLIANCE_COST_EXPLORER off?).\n")
        return
    console.print(
        f"[bold]{cost_pct}%[/bold] of in-scope spend is on compliant resources (amortized cost). "
        f"Of ${spend:,.2f} spent that day, ${cost_compliant:,.2f} is attributable to compliant resources: "
        f"the attribution gap is [bold red]${gap:,.2f}[/bold red].\n"
    )
    _, inventoried, inventoried_pct = _query(con, "coverage_share", day=day).fetchall()[0]
    console.print(
        f"[bold]{inventoried_pct}%[/bold] of the day's spend (${inventoried or 0:,.2f}) is on resources of "
        "the types inventoried; the rest is Support, Tax, data transfer, deleted resources and types no "
        "collector lists or Cost Explorer bills under no service mapped to one (view coverage).\n"
    )
    console.print(_table("Five largest attribution gaps", con, "largest_gaps", day=day))
    console.print(
        _table(
            "Untagged spend by required key (Cost Explorer's own tag grouping)",
            con,
            "untagged_by_key",
            day=day,
        )
    )
    requests, request_cost = _query(con, "cost_explorer_requests", day=day).fetchall()[0]
    console.print(f"Cost Explorer: {requests} requests this run, which would cost ${request_cost} on AWS.\n")


def print_history(console: Console, con: duckdb.DuckDBPyConnection) -> None:
    """The trend over the replayed days, what changed, and how violations got resolved."""
    console.print(_table(f"{HISTORY_DAYS}-day trend (compliance_trend, overall)", con, "overall_trend"))
    console.print(_table("What changed from day to day (tag_drift)", con, "drift_per_day"))
    console.print(_table("Violation episodes (violation_history)", con, "violation_episodes"))


def main() -> None:
    console = Console()
    if not console.is_terminal:
        console.width = 120  # piped or logged: room for the tables instead of 80 columns
    warehouse = run_demo(console)
    print_summary(console, warehouse)


if __name__ == "__main__":
    main()
