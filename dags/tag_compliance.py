"""Daily AWS tag compliance: inventory every account and region, extract costs, score, publish,
and write the day's HTML report.

Wiring only: each task calls one function of ``tag_compliance.pipeline``. Every service
gets one mapped collection task over chunks of (account, region) targets in its own pool, so
AWS API families are throttled independently; Cost Explorer (global, paid per request) runs as
one task in a one-slot pool, alongside the inventory.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, get_current_context, task

from tag_compliance.aws.collectors import services

WAREHOUSE = Asset(name="tag_compliance_warehouse", uri="file:///tag_compliance/warehouse")


@dag(
    dag_id="tag_compliance",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": pendulum.duration(minutes=2),
        "retry_exponential_backoff": True,
        # A hung AWS call or a stuck scan fails the task instead of holding its pool slot forever.
        # Every timeout stays below lake.STRAY_FILE_GRACE (a killed writer's files are swept after it).
        "execution_timeout": pendulum.duration(minutes=30),
    },
    tags=["finops", "aws", "tagging"],
    doc_md=__doc__,
)
def tag_compliance():
    @task
    def plan() -> str:
        from tag_compliance import pipeline

        return pipeline.plan(get_current_context())

    # Once per run: who the connection is (STS), which accounts to inventory (Organizations) and
    # which regions each has enabled (Account Management).
    @task
    def organisation(snapshot_date: str) -> dict:
        from tag_compliance import pipeline

        return pipeline.organisation(snapshot_date)

    # A service's (account, region) targets in chunks: one collection task instance per chunk.
    @task
    def targets(service: str, snapshot_date: str, organisation: dict) -> list[list[dict]]:
        from tag_compliance import pipeline

        return pipeline.targets(service, snapshot_date, organisation=organisation)

    @task(execution_timeout=pendulum.duration(hours=2), map_index_template="{{ collection_targets }}")
    def collect(service: str, targets: list[dict], snapshot_date: str, organisation: dict) -> list[dict]:
        from tag_compliance import pipeline

        context = get_current_context()
        context["collection_targets"] = pipeline.describe_targets(targets)
        return pipeline.collect(service, targets, snapshot_date, organisation, run_id=context["run_id"])

    # Waits for every collection task, whatever its outcome, and commits what was collected with
    # the status of every planned target (those of a failed task count as failed).
    @task(trigger_rule="all_done")
    def commit_snapshot(snapshot_date: str, planned: dict, collected: list, organisation: dict) -> dict:
        from tag_compliance import pipeline

        run_id = get_current_context()["run_id"]
        return pipeline.commit_snapshot(
            snapshot_date, planned, collected, run_id=run_id, organisation=organisation
        )

    @task(pool="aws_cost_explorer", execution_timeout=pendulum.duration(hours=1))
    def extract_costs(snapshot_date: str, organisation: dict) -> dict:
        from tag_compliance import pipeline

        return pipeline.extract_costs(snapshot_date, organisation=organisation)

    # none_failed: a past day's collection tasks expand to nothing (skipped), and it is scored
    # from the stored snapshot on or before it.
    @task(pool="warehouse_writes", trigger_rule="none_failed", execution_timeout=pendulum.duration(hours=2))
    def score(snapshot_date: str, costs: dict) -> dict:
        from tag_compliance import pipeline

        return pipeline.score(snapshot_date, costs)

    # Publishing first brings the per-day history up to date: after an upgrade, every day's.
    @task(pool="warehouse_writes", outlets=[WAREHOUSE], execution_timeout=pendulum.duration(hours=2))
    def publish_warehouse(scores: dict) -> str:
        from tag_compliance import pipeline

        return pipeline.publish()

    # In the one-slot warehouse_writes pool: the report reads the lake that score rewrites, so it
    # never sees another run's half-scored day.
    @task(pool="warehouse_writes")
    def write_report(snapshot_date: str) -> str:
        from tag_compliance import pipeline

        return pipeline.write_report(snapshot_date)

    snapshot_date = plan()
    accounts = organisation(snapshot_date)
    planned = {
        service: targets.override(task_id=f"targets_{service}")(service, snapshot_date, accounts)
        for service in services()
    }
    collected = [
        collect.override(task_id=f"collect_{service}", pool=f"aws_{service}")
        .partial(service=service, snapshot_date=snapshot_date, organisation=accounts)
        .expand(targets=planned[service])
        for service in services()
    ]

    # Last: the run ends failed when the scored inventory missed too many targets, once what it
    # has is scored, published and reported.
    @task
    def check_coverage(scores: dict) -> dict:
        from tag_compliance import pipeline

        return pipeline.check_coverage(scores)

    snapshot = commit_snapshot(snapshot_date, planned, collected, accounts)
    scores = score(snapshot_date, extract_costs(snapshot_date, accounts))
    snapshot >> scores
    publish_warehouse(scores) >> write_report(snapshot_date) >> check_coverage(scores)


tag_compliance()
