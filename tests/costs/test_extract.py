"""Cost Explorer extraction against the sandbox's Cost Explorer emulator over a hand-built ledger."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tag_compliance import lake
from tag_compliance.costs.extract import CostExplorerBudgetError, extract_costs
from tag_compliance.sandbox.cost_explorer import CostExplorerEmulator
from tag_compliance.sandbox.ledger import LEDGER_SCHEMA
from tests.conftest import connection_json

TODAY = datetime.now(UTC).date()
EC2 = "Amazon Elastic Compute Cloud - Compute"
S3 = "Amazon Simple Storage Service"
TAX = "Tax"
ACCOUNTS = ("123456789012", "111111111111")
KEYS = ("CostCenter", "Owner")
TWO_BOTOCORE_ATTEMPTS = {"config_kwargs": {"retries": {"mode": "standard", "total_max_attempts": 2}}}


def money(text: str) -> Decimal:
    return Decimal(text).quantize(Decimal("1e-10"))


def ledger_table(days: int = 30) -> pa.Table:
    """Two accounts; EC2 instances and buckets, tagged, untagged and wrong-case; and Tax."""
    resources = [
        (EC2, "us-east-1", "ec2:instance", "i-0001", {"CostCenter": "CC-0001", "Owner": "a@example.com"}),
        (EC2, "us-east-1", "ec2:instance", "i-0002", {"costcenter": "CC-0002"}),
        (EC2, "eu-west-1", "ec2:instance", "i-0003", {}),
        (S3, "us-east-1", "s3:bucket", "bucket-one", {"CostCenter": "CC-0001"}),
        (S3, "us-east-1", "s3:bucket", "bucket-two", {"CostCenter": ""}),
    ]
    rows = []
    for offset in range(days):
        day = TODAY - timedelta(days=offset)
        for n, account in enumerate(ACCOUNTS):
            for i, (service, region, resource_type, resource_id, tags) in enumerate(resources):
                unblended = money(f"{1 + i}.{offset:02d}{n}3456789") + money("0.0000000001") * offset
                rows.append(
                    {
                        "usage_date": day,
                        "account_id": account,
                        "service": service,
                        "region": region,
                        "resource_type": resource_type,
                        "resource_id": f"{resource_id}-{account[:3]}",
                        "inventoried": True,
                        "tags": list(tags.items()),
                        "amortized_cost": money(str(unblended * Decimal("0.62"))) if i == 0 else unblended,
                        "unblended_cost": unblended,
                        "estimated_amortized_cost": money(str(unblended * Decimal("0.9"))),
                        "estimated_unblended_cost": money(str(unblended * Decimal("0.9"))),
                    }
                )
            tax = money(f"0.{offset:02d}77777777")
            rows.append(
                {
                    "usage_date": day,
                    "account_id": account,
                    "service": TAX,
                    "region": None,
                    "resource_type": None,
                    "resource_id": None,
                    "inventoried": False,
                    "tags": [],
                    "amortized_cost": tax,
                    "unblended_cost": tax,
                    "estimated_amortized_cost": money(str(tax * Decimal("0.9"))),
                    "estimated_unblended_cost": money(str(tax * Decimal("0.9"))),
                }
            )
    return pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA)


@pytest.fixture(scope="module")
def ledger() -> pa.Table:
    return ledger_table()


@pytest.fixture
def emulator(ledger):
    with CostExplorerEmulator(ledger, TODAY, page_size=4) as running:
        yield running


@pytest.fixture
def cost_settings(aws, emulator, settings, monkeypatch):
    """The connection reaches Cost Explorer through ``service_config`` (STS stays on moto)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        connection_json(
            aws.endpoint_url,
            service_config={"ce": {"endpoint_url": emulator.endpoint_url}},
            **TWO_BOTOCORE_ATTEMPTS,
        ),
    )
    return settings.model_copy(
        update={"cost_resource_level": True, "cost_request_budget": 500, "cost_requests_per_second": 50}
    )


def stored(lake_root: Path, sql: str, **params) -> list[tuple]:
    with duckdb.connect() as con:
        glob = lake.dataset_glob(lake_root, lake.COSTS).replace("'", "''")
        con.execute(  # a view cannot take parameters; the path is the test's own tmp dir
            f"CREATE VIEW costs AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, "
            "hive_types = {'usage_date': DATE, 'source': VARCHAR})"
        )
        return con.execute(sql, params).fetchall()


def ledger_sums(
    ledger: pa.Table, day: date, column: str = "amortized_cost"
) -> dict[tuple[str, str], Decimal]:
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in ledger.to_pylist():
        if row["usage_date"] == day:
            sums[(row["account_id"], row["service"])] += row[column]
    return dict(sums)


def api_calls(lake_root: Path, day: date) -> list[dict]:
    """The Cost Explorer rows of the task's ``api_calls`` (STS is in there too, free)."""
    path = lake_root / "api_calls" / f"snapshot_date={day.isoformat()}" / "extract-costs.parquet"
    return [row for row in pq.read_table(path).to_pylist() if row["service"] == "ce"]


def test_multi_page_answers_are_stored_exactly_and_every_request_is_counted(cost_settings, emulator, ledger):
    day = TODAY - timedelta(days=5)
    result = extract_costs(day, KEYS, cost_settings)

    # nothing stored yet: the whole three-day window, in one range per query
    assert result["days"] == [(day - timedelta(days=back)).isoformat() for back in (2, 1, 0)]
    for column, metric in (("amortized_cost", "AmortizedCost"), ("unblended_cost", "UnblendedCost")):
        by_service = stored(
            cost_settings.lake,
            "SELECT account_id, service, sum(amount) FROM costs "
            "WHERE usage_date = $day AND source = 'service' AND metric = $metric GROUP BY ALL",
            day=day,
            metric=metric,
        )
        assert {(a, s): amount for a, s, amount in by_service} == ledger_sums(ledger, day, column)

    # every request the emulator answered is one page in api_calls, priced at $0.01
    calls = api_calls(cost_settings.lake, day)
    pages = sum(row["pages"] for row in calls)
    assert pages == len(emulator.requests) == result["requests"]
    # service totals, one per tag key, per-resource for the 2 services with spend (EC2, S3): none
    # for a mapped service that cost nothing
    queries = 1 + len(KEYS) + 2
    assert sum(row["calls"] for row in calls) == queries  # a whole pagination is one call
    assert {
        request.body["Filter"]["Dimensions"]["Values"][0]
        for request in emulator.requests
        if request.operation == "GetCostAndUsageWithResources"
    } == {EC2, S3}
    assert pages > queries  # page_size 4: the larger answers took several pages
    assert sum(row["request_cost_usd"] for row in calls) == Decimal("0.01") * pages
    assert (
        sum(row["items"] for row in calls)
        == stored(cost_settings.lake, "SELECT count(*) / 2 FROM costs")[0][0]
    )


def test_untagged_spend_is_cost_explorers_key_dollar_group(cost_settings, ledger):
    day = TODAY - timedelta(days=6)
    extract_costs(day, KEYS, cost_settings)
    untagged = dict(
        stored(
            cost_settings.lake,
            "SELECT account_id, sum(amount) FROM costs WHERE usage_date = $day AND source = 'tag' "
            "AND tag_key = 'CostCenter' AND tag_value = '' AND metric = 'AmortizedCost' GROUP BY ALL",
            day=day,
        )
    )
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for row in ledger.to_pylist():
        if row["usage_date"] == day and not dict(row["tags"]).get("CostCenter"):
            expected[row["account_id"]] += row["amortized_cost"]  # untagged, "" and wrong case
    assert untagged == dict(expected)


def test_resource_level_costs_only_for_the_last_14_days(cost_settings, emulator):
    old_day = TODAY - timedelta(days=20)
    result = extract_costs(old_day, KEYS, cost_settings)
    assert result["resource_days"] == []
    assert not any(r.operation == "GetCostAndUsageWithResources" for r in emulator.requests)
    assert stored(cost_settings.lake, "SELECT DISTINCT source FROM costs ORDER BY 1") == [
        ("service",),
        ("tag",),
    ]

    recent = TODAY - timedelta(days=3)
    extract_costs(recent, KEYS, cost_settings)
    resource_ids = stored(
        cost_settings.lake,
        "SELECT DISTINCT resource_id FROM costs WHERE source = 'resource' AND usage_date = $day ORDER BY 1",
        day=recent,
    )
    assert ("i-0001-123",) in resource_ids and ("bucket-two-111",) in resource_ids


def test_estimated_figures_are_replaced_by_final_ones_on_a_later_run(cost_settings, emulator, ledger):
    day = TODAY - timedelta(days=8)
    emulator.today = day + timedelta(days=1)  # the day is yesterday: Estimated
    extract_costs(day, KEYS, cost_settings)
    estimated = stored(
        cost_settings.lake,
        "SELECT bool_and(estimated), sum(amount) FROM costs WHERE usage_date = $day AND source = 'service' "
        "AND metric = 'AmortizedCost'",
        day=day,
    )[0]
    ledger_day = [row for row in ledger.to_pylist() if row["usage_date"] == day]
    assert estimated == (True, sum(row["estimated_amortized_cost"] for row in ledger_day))

    emulator.today = day + timedelta(days=3)  # two days later the figures are final
    emulator.reset_requests()
    result = extract_costs(day + timedelta(days=1), KEYS, cost_settings)
    assert day.isoformat() in result["days"]
    final = stored(
        cost_settings.lake,
        "SELECT bool_or(estimated), sum(amount) FROM costs WHERE usage_date = $day AND source = 'service' "
        "AND metric = 'AmortizedCost'",
        day=day,
    )[0]
    assert final == (False, sum(row["amortized_cost"] for row in ledger_day))

    # a third run asks again only for what is not final yet: here only the run's own day
    emulator.reset_requests()
    result = extract_costs(day + timedelta(days=2), KEYS, cost_settings)
    assert result["days"] == [(day + timedelta(days=2)).isoformat()]
    periods = {(r.body["TimePeriod"]["Start"], r.body["TimePeriod"]["End"]) for r in emulator.requests}
    assert periods == {((day + timedelta(days=2)).isoformat(), (day + timedelta(days=3)).isoformat())}


def test_the_dag_task_fails_for_good_on_the_budget_since_a_retry_would_spend_it_again(
    cost_settings, emulator
):
    from airflow.sdk.exceptions import AirflowFailException

    from tag_compliance import pipeline

    with pytest.raises(AirflowFailException, match="TAG_COMPLIANCE_COST_REQUEST_BUDGET is 2"):
        pipeline.extract_costs(TODAY.isoformat(), cost_settings.model_copy(update={"cost_request_budget": 2}))


def test_a_plan_beyond_the_budget_fails_before_any_request(cost_settings, emulator):
    with pytest.raises(
        CostExplorerBudgetError,
        match=r"needs at least 3 requests \(\$0\.03\) but TAG_COMPLIANCE_COST_REQUEST_BUDGET is 2",
    ):
        extract_costs(
            TODAY - timedelta(days=4), KEYS, cost_settings.model_copy(update={"cost_request_budget": 2})
        )
    assert emulator.requests == []
    assert not lake.has_files(cost_settings.lake, lake.COSTS)


def test_the_budget_stops_the_run_before_the_page_that_would_exceed_it(cost_settings, emulator):
    day = TODAY - timedelta(days=4)
    budget = 12  # enough for one page per query, not for every page
    with pytest.raises(CostExplorerBudgetError, match=r"budget of 12 requests \(\$0\.12\) reached after 12"):
        extract_costs(day, KEYS, cost_settings.model_copy(update={"cost_request_budget": budget}))
    assert len(emulator.requests) == budget
    assert not lake.has_files(cost_settings.lake, lake.COSTS)  # nothing half-written
    assert sum(row["pages"] for row in api_calls(cost_settings.lake, day)) == budget  # but accounted


def test_throttling_is_retried_and_counted(cost_settings, emulator, ledger):
    day = TODAY - timedelta(days=10)
    emulator.throttle_next(3)  # botocore's two attempts, then our backoff, then once more
    extract_costs(day, KEYS, cost_settings.model_copy(update={"cost_reextract_days": 1}))

    calls = api_calls(cost_settings.lake, day)
    assert sum(row["throttles"] for row in calls) == 3
    assert sum(row["retries"] for row in calls) >= 3
    assert sum(row["errors"] for row in calls) == 0
    total = stored(
        cost_settings.lake,
        "SELECT sum(amount) FROM costs WHERE source = 'service' AND metric = 'AmortizedCost'",
    )[0][0]
    assert total == sum(ledger_sums(ledger, day).values())


def test_estimated_per_resource_costs_too_old_to_refresh_give_way_to_final_totals(cost_settings, emulator):
    day = TODAY - timedelta(days=20)
    emulator.today = day + timedelta(days=1)  # back then: resource-level data, still Estimated
    extract_costs(day, KEYS, cost_settings, today=day + timedelta(days=1))
    assert stored(
        cost_settings.lake,
        "SELECT DISTINCT source, estimated FROM costs WHERE usage_date = $day ORDER BY 1",
        day=day,
    ) == [("resource", True), ("service", True), ("tag", True)]

    emulator.today = TODAY  # a backfill today: the day is final now, and too old for resources
    result = extract_costs(day + timedelta(days=1), KEYS, cost_settings, today=TODAY)
    assert day.isoformat() in result["days"] and result["resource_days"] == []
    assert stored(
        cost_settings.lake,
        "SELECT DISTINCT source, estimated FROM costs WHERE usage_date = $day ORDER BY 1",
        day=day,
    ) == [("service", False), ("tag", False)]
