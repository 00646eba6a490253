"""``make bench-organisation``: an organisation of 2,000 accounts x 2 regions through the real DAG
under a real scheduler (LocalExecutor), and what it says about 5,000 accounts x 17 regions.

The sandbox's moto (with its Organizations, STS and Account Management answers, see
``tag_compliance.sandbox.moto_main``) holds an organisation of ``BENCH_ORG_ACCOUNTS`` member
accounts (default 2,000) and the management account. Each member has the pipeline's role, made
through ``OrganizationAccountAccessRole`` as on AWS, but ``BENCH_ORG_BROKEN`` of them (default 10)
never got it: assuming it is refused. Every (account, region) holds ``QUEUES`` tagged SQS queues.
The run inventories SQS alone (``TAG_COMPLIANCE_SERVICES``: the fan-out is measured, not moto's
speed at 40 services) in us-east-1 and eu-west-1, and eu-south-1 is configured too: an opt-in
region no account enabled, which must never be called.

Printed: targets planned, task instances created, requests per operation against the fewest, wall
time, peak memory of the task processes, coverage, and an extrapolation to 5,000 x 17 from the
measured per-target cost and AWS's published quotas. The run ends failed by design: the broken
accounts put coverage below ``TAG_COMPLIANCE_MIN_COVERAGE`` (100), after it published.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ACCOUNTS = int(os.environ.get("BENCH_ORG_ACCOUNTS", "2000"))
BROKEN = int(os.environ.get("BENCH_ORG_BROKEN", "10"))
QUEUES = 2
REGIONS = ("us-east-1", "eu-west-1")
OPT_IN = "eu-south-1"  # configured, enabled in no account
SERVICE = "sqs"
PARALLELISM = 4  # task instances at once: the machine has 2 cores, the tasks mostly wait on moto
TARGET_ACCOUNTS, TARGET_REGIONS = 5_000, 17
FAKE = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's, never real ones


@dataclass
class Seeded:
    management: str
    members: list[str]
    broken: list[str]
    seconds: float


def seed(endpoint: str, accounts: int = ACCOUNTS, broken_accounts: int = BROKEN) -> Seeded:
    """The organisation, its members' roles and their queues, through the public APIs."""
    import boto3
    from botocore.config import Config

    from tag_compliance.sandbox.moto_main import ORGANIZATION_ACCESS_ROLE
    from tag_compliance.sandbox.seed import install_member_role

    started = time.perf_counter()
    session = boto3.session.Session(**FAKE)
    lock = threading.Lock()  # a botocore session makes clients one at a time
    config = Config(retries={"max_attempts": 10, "mode": "standard"})

    def client(service: str, region: str = "us-east-1", **credentials: str) -> Any:
        with lock:
            return session.client(
                service, region_name=region, endpoint_url=endpoint, config=config, **(credentials or FAKE)
            )

    organizations, sts = client("organizations"), client("sts")
    organizations.create_organization(FeatureSet="ALL")
    management = sts.get_caller_identity()["Account"]
    members = [
        organizations.create_account(AccountName=f"workload-{n:04d}", Email=f"workload-{n:04d}@example.com")[
            "CreateAccountStatus"
        ]["AccountId"]
        for n in range(accounts)
    ]
    broken = members[:: max(1, accounts // broken_accounts)][:broken_accounts] if broken_accounts else []

    def as_admin(account: str) -> dict[str, str]:
        answer = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{ORGANIZATION_ACCESS_ROLE}", RoleSessionName="bench"
        )["Credentials"]
        return {
            "aws_access_key_id": answer["AccessKeyId"],
            "aws_secret_access_key": answer["SecretAccessKey"],
            "aws_session_token": answer["SessionToken"],
        }

    def prepare(account: str) -> None:
        credentials = FAKE if account == management else as_admin(account)
        if account not in broken and account != management:
            install_member_role(client("iam", **credentials), management)
        for region in REGIONS:
            sqs = client("sqs", region, **credentials)
            for n in range(QUEUES):
                sqs.create_queue(QueueName=f"orders-{n}", tags={"Owner": "payments", "CostCenter": f"cc-{n}"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(prepare, [management, *members]))
    return Seeded(management, members, broken, time.perf_counter() - started)


@dataclass
class MemoryWatch:
    """The largest resident set of any task process (a descendant that is not one of the
    Airflow services nor moto), sampled every ``interval`` seconds."""

    exclude: set[int]
    interval: float = 0.5
    peak_bytes: int = 0
    peak_process: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            for process in me.children(recursive=True):
                if process.pid in self.exclude:
                    continue
                try:
                    rss = process.memory_info().rss
                    if rss > self.peak_bytes:
                        self.peak_bytes, self.peak_process = rss, " ".join(process.cmdline())[:80]
                except psutil.Error:
                    continue
            self._stop.wait(self.interval)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="memory-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def measure(accounts: int = ACCOUNTS, broken_accounts: int = BROKEN) -> dict[str, Any]:
    """Seed, run one daily run under LocalAirflow, and read back what it did."""
    import duckdb

    from bench.collection import requests_against_fewest
    from tag_compliance.collection_status import snapshot_coverage
    from tag_compliance.config import Settings
    from tag_compliance.local_airflow import DAG_ID, LocalAirflow
    from tag_compliance.sandbox.server import MotoServer

    day = datetime.now(UTC).date() - timedelta(days=1)  # the daily run's day: a live inventory
    with tempfile.TemporaryDirectory(prefix="bench-organisation-") as scratch:
        root = Path(scratch)
        moto = MotoServer(log_path=root / "moto.log")
        endpoint = moto.start()
        try:
            seeded = seed(endpoint, accounts, broken_accounts)
            lake_root, warehouse = root / "lake", root / "warehouse.duckdb"
            connection = {
                "conn_type": "aws",
                "login": FAKE["aws_access_key_id"],
                "password": FAKE["aws_secret_access_key"],
            }
            env = {
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                    {**connection, "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
                ),
                "TAG_COMPLIANCE_LAKE": str(lake_root),
                "TAG_COMPLIANCE_WAREHOUSE": str(warehouse),
                "TAG_COMPLIANCE_REGIONS": ",".join([*REGIONS, OPT_IN]),
                "TAG_COMPLIANCE_SERVICES": SERVICE,
                "TAG_COMPLIANCE_COST_EXPLORER": "false",
            }
            settings = Settings(**{"lake": lake_root, "regions": [*REGIONS, OPT_IN]})
            with LocalAirflow(root / "airflow", env=env, parallelism=PARALLELISM) as airflow:
                watch = MemoryWatch(exclude={*airflow.pids.values(), moto.pid or 0})
                watch.start()
                started = time.perf_counter()
                backfill = airflow.backfill(day, day)
                (run,) = airflow.wait_for_runs(DAG_ID, backfill_id=backfill.id, timeout=3600)
                wall = time.perf_counter() - started
                watch.stop()
                instances = airflow.task_instances(run.run_id)
        finally:
            moto.stop()
        with duckdb.connect(str(warehouse), read_only=True) as con:
            statuses = dict(
                con.execute(
                    "SELECT status, count(*) FROM collection_status WHERE snapshot_date = $1 GROUP BY ALL",
                    [day],
                ).fetchall()
            )
            opt_in_calls = con.execute(
                "SELECT count(*) FROM api_calls WHERE snapshot_date = $1 AND region = $2", [day, OPT_IN]
            ).fetchone()[0]
        coverage = snapshot_coverage(lake_root, day)
        operations = requests_against_fewest(lake_root)
    collect = [ti for ti in instances if ti["task_id"] == f"collect_{SERVICE}"]
    collect_window = _seconds(
        min(ti["start_date"] for ti in collect if ti["start_date"]),
        max(ti["end_date"] for ti in collect if ti["end_date"]),
    )
    mapped = {}
    for ti in instances:
        if ti["map_index"] >= 0:
            mapped[ti["task_id"]] = mapped.get(ti["task_id"], 0) + 1
    return {
        "seeded": seeded,
        "run_state": run.state,
        "wall_seconds": wall,
        "task_instances": len(instances),
        "collect_instances": len(collect),
        "mapped": mapped,
        "collect_seconds": collect_window,
        "collect_task_seconds": sum(_seconds(ti["start_date"], ti["end_date"]) for ti in collect),
        "statuses": statuses,
        "opt_in_calls": opt_in_calls,
        "coverage": coverage,
        "operations": operations,
        "peak_task_rss": watch.peak_bytes,
        "peak_task_process": watch.peak_process,
        "threads": settings.collect_threads,
        "cap": settings.collect_task_instances,
    }


def tables(measured: dict[str, Any]) -> list[Any]:
    from rich.table import Table

    from bench.collection import collection_table

    seeded: Seeded = measured["seeded"]
    coverage = measured["coverage"]
    statuses = measured["statuses"]
    planned = int(coverage.planned or 0)
    collected = int(coverage.collected or 0)
    requests = sum(int(row["requests"]) for row in measured["operations"])
    organisation = Table(
        title=f"Organisation: {len(seeded.members):,} member accounts x {len(REGIONS)} regions, "
        "real scheduler"
    )
    organisation.add_column("measure", justify="left")
    organisation.add_column("value", justify="right")
    for name, value in (
        ("accounts (members + management)", f"{len(seeded.members) + 1:,}"),
        ("accounts with no role (broken)", f"{len(seeded.broken):,}"),
        (f"targets planned ({SERVICE})", f"{planned:,}"),
        (f"targets not enabled ({OPT_IN}: never called)", f"{statuses.get('not_enabled', 0):,}"),
        (f"requests to {OPT_IN}", f"{measured['opt_in_calls']:,}"),
        ("targets collected / failed", f"{collected:,} / {statuses.get('failed', 0):,}"),
        ("coverage", f"{coverage.pct:.2f}%" if coverage.pct is not None else "n/a"),
        ("run state (failed by design: coverage < 100)", measured["run_state"]),
        ("task instances created (whole run)", f"{measured['task_instances']:,}"),
        (
            f"task instances of collect_{SERVICE} (cap {measured['cap']})",
            f"{measured['collect_instances']:,}",
        ),
        ("most instances of any mapped task", f"{max(measured['mapped'].values(), default=0):,}"),
        ("AWS requests (all operations)", f"{requests:,}"),
        ("requests per target", f"{requests / planned:.2f}" if planned else ""),
        ("seeding (s)", f"{seeded.seconds:.0f}"),
        ("run wall time, backfill created to run finished (s)", f"{measured['wall_seconds']:.0f}"),
        (f"collect_{SERVICE}: first start to last end (s)", f"{measured['collect_seconds']:.0f}"),
        ("peak RSS of one task process (MiB)", f"{measured['peak_task_rss'] / 2**20:.0f}"),
    ):
        organisation.add_row(name, value)
    return [
        organisation,
        collection_table(measured["operations"], title="Requests per operation, against the fewest"),
        extrapolation(measured),
    ]


def extrapolation(measured: dict[str, Any]):
    """5,000 accounts x 17 regions from the measured per-target cost and AWS's published quotas."""
    from rich.table import Table

    planned = int(measured["coverage"].planned or 0)
    requests = sum(int(row["requests"]) for row in measured["operations"])
    # target-seconds: the collection tasks' time x the targets each ran at once
    per_target = measured["collect_task_seconds"] * measured["threads"] / planned if planned else 0.0
    targets = TARGET_ACCOUNTS * TARGET_REGIONS
    at_once = min(measured["cap"], PARALLELISM) * measured["threads"]
    table = Table(
        title=f"Extrapolation: {TARGET_ACCOUNTS:,} accounts x {TARGET_REGIONS} regions, one regional service"
    )
    table.add_column("measure", justify="left")
    table.add_column("value", justify="right")
    for name, value in (
        ("targets", f"{targets:,}"),
        ("task instances (capped)", f"{measured['cap']:,}"),
        ("measured cost per target (thread-seconds, against moto here)", f"{per_target:.3f}"),
        (
            f"targets at once ({min(measured['cap'], PARALLELISM)} instances x {measured['threads']} each)",
            f"{at_once:,}",
        ),
        ("collection time at that cost (min)", f"{targets * per_target / at_once / 60:.0f}"),
        (
            "AWS requests at the measured requests per target",
            f"{targets * requests / planned:,.0f}" if planned else "",
        ),
        (
            "of them AssumeRole: one per account (its targets share a task instance)",
            f"{TARGET_ACCOUNTS:,}",
        ),
        ("region discovery with an opt-in region: ListRegions at 5/s (s)", f"{TARGET_ACCOUNTS / 5:.0f}"),
    ):
        table.add_row(name, value)
    return table


def main() -> None:
    from rich.console import Console

    console = Console(width=140)
    console.print(
        f"[bold]bench-organisation[/]: {ACCOUNTS:,} accounts x {len(REGIONS)} regions, seeding moto ..."
    )
    for table in tables(measure()):
        console.print(table)


if __name__ == "__main__":
    main()
