"""An organisation past Airflow's max_map_length: 300 accounts x 4 regions discovered through AWS
Organizations, run through the real DAG (dag.test) against moto.

More regional targets than ``[core] max_map_length`` (1024) allows task instances: the run
succeeds because each mapped collection task expands to at most ``collect_task_instances``
chunks. Only SQS is inventoried (``TAG_COMPLIANCE_SERVICES``), one queue per account, so the
test stays about the fan-out, not about moto's speed.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from rich.console import Console

from tag_compliance.aws.hook import forget_process_cache
from tag_compliance.config import Settings, environment
from tag_compliance.demo import print_summary
from tag_compliance.report import default_report_path
from tests.conftest import OWN_ACCOUNT, Aws, connection_json
from tests.test_end_to_end import run_at, run_dag
from tests.test_report import parse, table_rows

pytestmark = pytest.mark.e2e

CREATED_ACCOUNTS = 303  # and the management account: 304 accounts
SUSPENDED = 3
REGIONS = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"]
SERVICE = "sqs"
DAY = datetime.now(UTC).date() - timedelta(days=1)  # the daily run's day: a live inventory
MAX_MAP_LENGTH = 1024  # Airflow's default [core] max_map_length


def queue_region(index: int) -> str:
    return REGIONS[index % len(REGIONS)]


@pytest.fixture(scope="module")
def organisation(moto_endpoint: str) -> dict[str, Any]:
    """A fresh moto with an organisation: the connection's (management) account, 303 member
    accounts of which 3 are closed (SUSPENDED), each account holding one tagged queue."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    forget_process_cache()
    aws = Aws(moto_endpoint)
    client = aws.client("organizations")
    client.create_organization(FeatureSet="ALL")
    members = [
        client.create_account(AccountName=f"workload-{n:03d}", Email=f"workload-{n:03d}@example.com")[
            "CreateAccountStatus"
        ]["AccountId"]
        for n in range(CREATED_ACCOUNTS)
    ]
    suspended = members[:SUSPENDED]
    for account in suspended:
        client.close_account(AccountId=account)
    queues = {}
    for index, account in enumerate([OWN_ACCOUNT, *members]):
        region = queue_region(index)
        name = f"orders-{account}"
        aws.client(SERVICE, region, account).create_queue(QueueName=name, tags={"Owner": "payments"})
        queues[account] = (region, name)
    active = sorted(set(queues) - set(suspended))
    return {"active": active, "suspended": suspended, "queues": queues}


@pytest.fixture(scope="module")
def run(airflow_db, moto_endpoint: str, organisation, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("organisation")
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": connection_json(moto_endpoint),
        "TAG_COMPLIANCE_LAKE": str(root / "lake"),
        "TAG_COMPLIANCE_WAREHOUSE": str(root / "warehouse.duckdb"),
        "TAG_COMPLIANCE_REGIONS": ",".join(REGIONS),
        "TAG_COMPLIANCE_SERVICES": SERVICE,
        "TAG_COMPLIANCE_COST_EXPLORER": "false",
        "TAG_COMPLIANCE_ACCOUNTS": "",  # discovered through Organizations
    }
    with environment(env):
        cap = Settings().collect_task_instances
        dag_run = run_dag(run_at(DAY))
        instances = Counter(ti.task_id for ti in dag_run.get_task_instances() if ti.map_index >= 0)
        states = {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}
    return {"state": dag_run.state, "instances": instances, "states": states, "cap": cap, "root": root}


def sql(run: dict[str, Any], query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(Path(run["root"]) / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(query, [DAY]).fetchall()


def test_more_targets_than_max_map_length_run_in_capped_task_instances(run, organisation):
    assert run["state"] == "success"
    assert {state for state in run["states"].values()} <= {"success", "skipped"}
    ((targets,),) = sql(
        run, f"SELECT count(*) FROM collection_status WHERE snapshot_date = $1 AND service = '{SERVICE}'"
    )
    assert targets == len(organisation["active"]) * len(REGIONS) > MAX_MAP_LENGTH
    assert 1 < run["instances"][f"collect_{SERVICE}"] <= run["cap"]
    assert all(count <= run["cap"] for count in run["instances"].values())


def test_every_active_account_is_collected_in_every_region(run, organisation):
    status = sql(
        run,
        "SELECT account_id, region, status FROM collection_status WHERE snapshot_date = $1 ORDER BY ALL",
    )
    assert status == sorted(
        (account, region, "collected") for account in organisation["active"] for region in REGIONS
    )
    found = sql(
        run,
        "SELECT account_id, region, split_part(arn, ':', 6) FROM resources "
        "WHERE snapshot_date = $1 AND resource_type = 'sqs:queue'",
    )
    assert sorted(found) == sorted(
        (account, *organisation["queues"][account]) for account in organisation["active"]
    )
    ((planned, collected, pct),) = sql(
        run,
        "SELECT DISTINCT targets_planned, targets_collected, collection_coverage_pct FROM compliance_summary "
        "WHERE snapshot_date = $1",
    )
    assert planned == collected == len(status) and pct == 100


def test_no_suspended_account_is_called(run, organisation):
    called = {
        account
        for (account,) in sql(run, "SELECT DISTINCT account_id FROM api_calls WHERE snapshot_date = $1")
    }
    assert called  # the accounting is there to look at
    assert called.isdisjoint(organisation["suspended"])


def test_the_caller_identity_is_asked_once_per_run(run):
    assert sql(
        run,
        "SELECT task, sum(pages) FROM api_calls WHERE snapshot_date = $1 AND operation = 'GetCallerIdentity' "
        "GROUP BY ALL",
    ) == [("discover_organisation", 1)]


def test_regions_enabled_by_default_are_not_asked_about(run):
    # the four regions are older than AWS's opt-in regions: enabled in every account, no request
    assert sql(
        run, "SELECT count(*) FROM api_calls WHERE snapshot_date = $1 AND operation = 'ListRegions'"
    ) == [(0,)]


def test_the_accounts_view_lists_every_account_with_its_name_and_whether_it_was_inventoried(
    run, organisation
):
    accounts = sql(
        run,
        "SELECT account_id, name, email_domain, ou_path, status, inventoried, joined_at IS NOT NULL "
        "FROM accounts WHERE snapshot_date = $1 ORDER BY account_id",
    )
    assert [account for account, *_ in accounts] == sorted(
        [*organisation["active"], *organisation["suspended"]]
    )
    members = [row for row in accounts if row[0] != OWN_ACCOUNT]
    assert all(name.startswith("workload-") and domain == "example.com" for _, name, domain, *_ in members)
    assert {
        (path, status, inventoried, joined) for _, _, _, path, status, inventoried, joined in accounts
    } == {
        ("Root", "ACTIVE", True, True),
        ("Root", "SUSPENDED", False, True),
    }
    assert {account for account, *_, inventoried, _ in accounts if not inventoried} == set(
        organisation["suspended"]
    )


def test_the_report_and_the_summary_name_each_account_next_to_its_id(run, organisation):
    named = dict(sql(run, "SELECT account_id, name FROM account_names WHERE named_as_of = $1"))
    member = organisation["active"][-1]
    assert named[member].startswith("workload-")
    report = default_report_path(Path(run["root"]) / "warehouse.duckdb", DAY).read_text(encoding="utf-8")
    accounts = [row[0] for row in table_rows(parse(report), "table-account")]
    assert sorted(accounts) == sorted(f"{named[account]} ({account})" for account in organisation["active"])
    console = Console(record=True, width=200)
    with environment({"TAG_COMPLIANCE_LAKE": str(Path(run["root"]) / "lake")}):
        print_summary(console, Path(run["root"]) / "warehouse.duckdb")
    assert f"{named[member]} ({member})" in console.export_text()
