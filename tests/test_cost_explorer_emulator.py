"""The sandbox's Cost Explorer emulator, through a real boto3 ``ce`` client, against its ledger."""

from __future__ import annotations

import re
import socket
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tag_compliance.sandbox.cost_explorer import CostExplorerEmulator
from tag_compliance.sandbox.estate import EC2, LAMBDA, RDS
from tag_compliance.sandbox.ledger import LEDGER_SCHEMA, build_ledger
from tests.test_ledger import DAYS, TODAY, seeded_estate

EC2_SERVICE = "Amazon Elastic Compute Cloud - Compute"
RDS_SERVICE = "Amazon Relational Database Service"
LAMBDA_SERVICE = "AWS Lambda"
AMOUNT = re.compile(r"^\d+(\.\d+)?$")
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def ledger() -> pa.Table:
    return build_ledger(seeded_estate(), TODAY, days=DAYS)


@pytest.fixture(scope="module")
def rows(ledger: pa.Table) -> list[dict[str, Any]]:
    return ledger.to_pylist()


@pytest.fixture(scope="module")
def shared_emulator(ledger: pa.Table) -> Iterator[CostExplorerEmulator]:
    with CostExplorerEmulator(ledger, TODAY) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: CostExplorerEmulator) -> CostExplorerEmulator:
    """The module's emulator, with its runtime settings back to the defaults."""
    shared_emulator.today = TODAY
    shared_emulator.page_size = 25
    shared_emulator.estimated_days = 2
    shared_emulator.throttle_next(0)
    shared_emulator.reset_requests()
    return shared_emulator


def client(emulator: CostExplorerEmulator, **config: Any) -> Any:
    return boto3.client(
        "ce",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRIES.merge(Config(**config)) if config else NO_RETRIES,
    )


@pytest.fixture(scope="module")
def shared_ce(shared_emulator: CostExplorerEmulator) -> Any:
    return client(shared_emulator)


@pytest.fixture
def ce(emulator: CostExplorerEmulator, shared_ce: Any) -> Any:
    return shared_ce


def period(start: date, end: date) -> dict[str, str]:
    return {"Start": start.isoformat(), "End": end.isoformat()}


def pages(call: Any, **kwargs: Any) -> list[dict[str, Any]]:
    answers = []
    while True:
        answer = call(**kwargs)
        answers.append(answer)
        if "NextPageToken" not in answer:
            return answers
        kwargs["NextPageToken"] = answer["NextPageToken"]


def grouped(answers: list[dict[str, Any]], metric: str = "UnblendedCost") -> dict[tuple[str, ...], Decimal]:
    """(day, *keys) -> amount over every page, checking that no (day, keys) comes twice."""
    found: dict[tuple[str, ...], Decimal] = {}
    for answer in answers:
        for result in answer["ResultsByTime"]:
            assert result["Total"] == {}
            for group in result["Groups"]:
                key = (result["TimePeriod"]["Start"], *group["Keys"])
                assert key not in found, key
                amount = group["Metrics"][metric]["Amount"]
                assert AMOUNT.match(amount), amount
                assert group["Metrics"][metric]["Unit"] == "USD"
                found[key] = Decimal(amount)
    return found


def ledger_sums(
    rows: list[dict[str, Any]], key: Any, days: set[date], column: str = "unblended_cost", where: Any = None
) -> dict[tuple[str, ...], Decimal]:
    sums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for row in rows:
        if row["usage_date"] in days and (where is None or where(row)):
            sums[(row["usage_date"].isoformat(), *key(row))] += row[column]
    return dict(sums)


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


# --------------------------------------------------------------------------- sums


def test_account_and_service_groups_equal_the_ledger(ce: Any, rows: list[dict[str, Any]]) -> None:
    day = TODAY - timedelta(days=6)
    answers = pages(
        ce.get_cost_and_usage,
        TimePeriod=period(day, day + timedelta(days=1)),
        Granularity="DAILY",
        Metrics=["UnblendedCost", "AmortizedCost"],
        GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
    )
    assert answers[0]["GroupDefinitions"] == [
        {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
        {"Type": "DIMENSION", "Key": "SERVICE"},
    ]
    key = lambda row: (row["account_id"], row["service"])  # noqa: E731
    assert grouped(answers) == ledger_sums(rows, key, {day})
    assert grouped(answers, "AmortizedCost") == ledger_sums(rows, key, {day}, "amortized_cost")
    assert {result["Estimated"] for answer in answers for result in answer["ResultsByTime"]} == {False}
    # some amortized figures really differ (reservations on EC2 / RDS)
    assert grouped(answers, "AmortizedCost") != grouped(answers)


def test_total_without_group_by_and_metric_aliases(ce: Any, rows: list[dict[str, Any]]) -> None:
    day = TODAY - timedelta(days=3)
    answer = ce.get_cost_and_usage(
        TimePeriod=period(day, day + timedelta(days=1)),
        Granularity="DAILY",
        Metrics=["BlendedCost", "NetUnblendedCost", "NetAmortizedCost"],
    )
    assert "NextPageToken" not in answer
    (result,) = answer["ResultsByTime"]
    assert result["Groups"] == []
    unblended = sum(row["unblended_cost"] for row in rows if row["usage_date"] == day)
    amortized = sum(row["amortized_cost"] for row in rows if row["usage_date"] == day)
    assert Decimal(result["Total"]["BlendedCost"]["Amount"]) == unblended
    assert Decimal(result["Total"]["NetUnblendedCost"]["Amount"]) == unblended
    assert Decimal(result["Total"]["NetAmortizedCost"]["Amount"]) == amortized


def test_filters(ce: Any, rows: list[dict[str, Any]]) -> None:
    day = TODAY - timedelta(days=8)
    account = "111111111111"
    answer = ce.get_cost_and_usage(
        TimePeriod=period(day, day + timedelta(days=1)),
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
        GroupBy=[{"Type": "DIMENSION", "Key": "REGION"}],
        Filter={
            "And": [
                {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [account]}},
                {"Not": {"Dimensions": {"Key": "SERVICE", "Values": [EC2_SERVICE]}}},
                {
                    "Or": [
                        {"Tags": {"Key": "Environment", "Values": ["prod", "dev"]}},
                        {"Tags": {"Key": "Environment", "MatchOptions": ["ABSENT"]}},
                    ]
                },
            ]
        },
    )

    def admitted(row: dict[str, Any]) -> bool:
        env = dict(row["tags"]).get("Environment", "")
        return row["account_id"] == account and row["service"] != EC2_SERVICE and env in ("prod", "dev", "")

    expected = ledger_sums(rows, lambda row: (row["region"] or "NoRegion",), {day}, where=admitted)
    assert grouped([answer]) == expected
    assert (day.isoformat(), "NoRegion") in expected  # Tax: no region, no tags


def test_tag_groups_use_the_exact_key() -> None:
    """Untagged, tagged with a wrong-case key, and tagged with an empty value: all "CostCenter$"."""
    day = TODAY - timedelta(days=4)
    base = {
        "usage_date": day,
        "account_id": "123456789012",
        "service": LAMBDA_SERVICE,
        "region": "us-east-1",
        "resource_type": LAMBDA,
        "inventoried": True,
    }
    money = {column: Decimal("1.0000000001") for column in LEDGER_SCHEMA.names if column.endswith("_cost")}
    tagged = [
        ("fn-untagged", []),
        ("fn-wrong-case", [("costcenter", "CC-0001")]),
        ("fn-empty", [("CostCenter", "")]),
        ("fn-ok", [("CostCenter", "CC-0002")]),
        ("fn-ok-too", [("CostCenter", "CC-0002"), ("COSTCENTER", "x")]),
    ]
    table = pa.Table.from_pylist(
        [{**base, **money, "resource_id": rid, "tags": tags} for rid, tags in tagged], schema=LEDGER_SCHEMA
    )
    with CostExplorerEmulator(table, TODAY) as emulator:
        answer = client(emulator).get_cost_and_usage(
            TimePeriod=period(day, day + timedelta(days=1)),
            Granularity="DAILY",
            Metrics=["UnblendedCost"],
            GroupBy=[{"Type": "TAG", "Key": "CostCenter"}],
        )
    assert answer["GroupDefinitions"] == [{"Type": "TAG", "Key": "CostCenter"}]
    assert grouped([answer]) == {
        (day.isoformat(), "CostCenter$"): Decimal("3.0000000003"),
        (day.isoformat(), "CostCenter$CC-0002"): Decimal("2.0000000002"),
    }


def test_tag_groups_over_the_estate(ce: Any, rows: list[dict[str, Any]]) -> None:
    day = TODAY - timedelta(days=9)
    answers = pages(
        ce.get_cost_and_usage,
        TimePeriod=period(day, day + timedelta(days=1)),
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
        GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "TAG", "Key": "CostCenter"}],
    )
    key = lambda row: (row["account_id"], "CostCenter$" + dict(row["tags"]).get("CostCenter", ""))  # noqa: E731
    expected = ledger_sums(rows, key, {day})
    assert grouped(answers) == expected
    wrong_case = [
        row
        for row in rows
        if row["usage_date"] == day
        and any(k.lower() == "costcenter" and k != "CostCenter" for k, _ in row["tags"])
    ]
    assert wrong_case  # the estate has wrong-case keys: they land in "CostCenter$"


# --------------------------------------------------------------------------- limits


def test_three_group_by_keys_are_rejected(ce: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ce.get_cost_and_usage(
            TimePeriod=period(TODAY - timedelta(days=3), TODAY),
            Granularity="DAILY",
            Metrics=["UnblendedCost"],
            GroupBy=[
                {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
                {"Type": "DIMENSION", "Key": "SERVICE"},
                {"Type": "TAG", "Key": "Owner"},
            ],
        )
    assert error_code(exc) == "ValidationException"
    assert "GroupBy" in str(exc.value)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"Granularity": "MONTHLY"}, "DAILY only"),
        ({"Metrics": ["UsageQuantity"]}, "UsageQuantity"),
        ({"TimePeriod": {"Start": "2026-03-10", "End": "2026-03-10"}}, "TimePeriod.Start"),
        ({"TimePeriod": {"Start": "2026-03-10", "End": "10/03/2026"}}, "TimePeriod.End"),
        ({"GroupBy": [{"Type": "DIMENSION", "Key": "RESOURCE_ID"}]}, "RESOURCE_ID"),
        ({"GroupBy": [{"Type": "COST_CATEGORY", "Key": "Team"}]}, "COST_CATEGORY"),
        ({"Filter": {"CostCategories": {"Key": "Team", "Values": ["x"]}}}, "CostCategories"),
        ({"Filter": {"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["x"]}}}, "INSTANCE_TYPE"),
    ],
)
def test_invalid_requests_are_rejected(ce: Any, change: dict[str, Any], fragment: str) -> None:
    request = {
        "TimePeriod": period(TODAY - timedelta(days=3), TODAY),
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        **change,
    }
    with pytest.raises(ClientError) as exc:
        ce.get_cost_and_usage(**request)
    assert error_code(exc) == "ValidationException"
    assert fragment in exc.value.response["Error"]["Message"]


def test_unknown_operation(ce: Any, emulator: CostExplorerEmulator) -> None:
    with pytest.raises(ClientError) as exc:
        ce.get_dimension_values(TimePeriod=period(TODAY - timedelta(days=3), TODAY), Dimension="SERVICE")
    assert error_code(exc) == "UnknownOperationException"
    assert emulator.requests[-1].status == 400


def test_with_resources_window_and_filter(emulator: CostExplorerEmulator, ce: Any) -> None:
    lambda_only = {"Dimensions": {"Key": "SERVICE", "Values": [LAMBDA_SERVICE]}}
    request = {
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "RESOURCE_ID"}],
    }
    with pytest.raises(ClientError) as exc:
        ce.get_cost_and_usage_with_resources(
            TimePeriod=period(TODAY - timedelta(days=15), TODAY), Filter=lambda_only, **request
        )
    assert error_code(exc) == "ValidationException"
    assert "14 days" in str(exc.value) and "TimePeriod.Start" in str(exc.value)
    ce.get_cost_and_usage_with_resources(
        TimePeriod=period(TODAY - timedelta(days=14), TODAY), Filter=lambda_only, **request
    )

    unvalidated = client(emulator, parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        unvalidated.get_cost_and_usage_with_resources(
            TimePeriod=period(TODAY - timedelta(days=3), TODAY), **request
        )
    assert error_code(exc) == "ValidationException" and "Filter" in str(exc.value)
    for no_service in (
        {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["123456789012"]}},
        {"Not": lambda_only},
        {"Or": [lambda_only, {"Dimensions": {"Key": "REGION", "Values": ["us-east-1"]}}]},
    ):
        with pytest.raises(ClientError) as exc:
            ce.get_cost_and_usage_with_resources(
                TimePeriod=period(TODAY - timedelta(days=3), TODAY), Filter=no_service, **request
            )
        assert error_code(exc) == "ValidationException" and "SERVICE" in str(exc.value)


@pytest.mark.parametrize(("service", "resource_type"), [(EC2_SERVICE, EC2), (RDS_SERVICE, RDS)])
def test_resource_ids_equal_the_ledger(
    ce: Any, rows: list[dict[str, Any]], service: str, resource_type: str
) -> None:
    start = TODAY - timedelta(days=14)
    answers = pages(
        ce.get_cost_and_usage_with_resources,
        TimePeriod=period(start, TODAY - timedelta(days=1)),
        Granularity="DAILY",
        Metrics=["AmortizedCost"],
        GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "RESOURCE_ID"}],
        Filter={
            "And": [
                {"Dimensions": {"Key": "SERVICE", "Values": [service]}},
                {"Dimensions": {"Key": "REGION", "Values": ["us-east-1", "eu-west-1"]}},
            ]
        },
    )
    assert len(answers) > 1
    days = {start + timedelta(days=n) for n in range(13)}
    expected = ledger_sums(
        rows,
        lambda row: (row["account_id"], row["resource_id"]),
        days,
        "amortized_cost",
        where=lambda row: row["service"] == service,
    )
    assert grouped(answers, "AmortizedCost") == expected
    assert {key[2] for key in expected} == {
        row["resource_id"]
        for row in rows
        if row["resource_type"] == resource_type and row["usage_date"] in days
    }


# --------------------------------------------------------------------------- pagination, estimates


def test_pagination_covers_the_ledger_exactly(
    emulator: CostExplorerEmulator, ce: Any, rows: list[dict[str, Any]]
) -> None:
    emulator.page_size = 7
    start, end = TODAY - timedelta(days=DAYS + 2), TODAY + timedelta(days=3)  # beyond both ends
    answers = pages(
        ce.get_cost_and_usage,
        TimePeriod=period(start, end),
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
        GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}],
    )
    assert len(answers) > 10
    for answer in answers:
        assert sum(max(1, len(result["Groups"])) for result in answer["ResultsByTime"]) <= 7
    # every day appears, days split over pages included; empty days once, without groups
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for answer in answers:
        for result in answer["ResultsByTime"]:
            by_day[result["TimePeriod"]["Start"]].append(result)
    all_days = [start + timedelta(days=n) for n in range((end - start).days)]
    assert sorted(by_day) == [d.isoformat() for d in all_days]
    for day in all_days:
        parts = by_day[day.isoformat()]
        if day > TODAY or day <= TODAY - timedelta(days=DAYS):
            assert len(parts) == 1 and parts[0]["Groups"] == [] and parts[0]["Estimated"] is False
    assert any(len(parts) > 1 for parts in by_day.values())  # some day was split over pages

    days = {row["usage_date"] for row in rows}
    final_days = {d for d in days if d <= TODAY - timedelta(days=2)}
    found = grouped(answers)
    key = lambda row: (row["service"], row["account_id"])  # noqa: E731
    expected = ledger_sums(rows, key, final_days) | ledger_sums(
        rows, key, days - final_days, "estimated_unblended_cost"
    )
    assert found == expected
    assert sum(found.values()) == sum(expected.values())
    assert len(emulator.requests) == len(answers)


def test_estimated_days(emulator: CostExplorerEmulator, ce: Any, rows: list[dict[str, Any]]) -> None:
    request = {
        "TimePeriod": period(TODAY - timedelta(days=3), TODAY + timedelta(days=2)),
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost", "AmortizedCost"],
    }

    def flags() -> dict[str, bool]:
        return {
            r["TimePeriod"]["Start"]: r["Estimated"]
            for r in ce.get_cost_and_usage(**request)["ResultsByTime"]
        }

    def iso(offset: int) -> str:
        return (TODAY + timedelta(days=offset)).isoformat()

    assert flags() == {iso(-3): False, iso(-2): False, iso(-1): True, iso(0): True, iso(1): False}
    answer = ce.get_cost_and_usage(**request)
    totals = {r["TimePeriod"]["Start"]: r["Total"] for r in answer["ResultsByTime"]}
    for offset, column in (
        (-2, "unblended_cost"),
        (-1, "estimated_unblended_cost"),
        (0, "estimated_unblended_cost"),
    ):
        day = TODAY + timedelta(days=offset)
        expected = sum(row[column] for row in rows if row["usage_date"] == day)
        assert Decimal(totals[iso(offset)]["UnblendedCost"]["Amount"]) == expected
    amortized_today = sum(row["estimated_amortized_cost"] for row in rows if row["usage_date"] == TODAY)
    assert Decimal(totals[iso(0)]["AmortizedCost"]["Amount"]) == amortized_today
    assert Decimal(totals[iso(1)]["UnblendedCost"]["Amount"]) == 0  # after today: no data

    emulator.estimated_days = 3
    assert flags()[iso(-2)] is True
    emulator.estimated_days = 2
    emulator.today = TODAY - timedelta(days=1)  # the ledger's last day is now in the future
    assert flags() == {iso(-3): False, iso(-2): True, iso(-1): True, iso(0): False, iso(1): False}


def test_throttling(emulator: CostExplorerEmulator, ce: Any) -> None:
    request = {
        "TimePeriod": period(TODAY - timedelta(days=2), TODAY),
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
    }
    emulator.reset_requests()
    # retries={"max_attempts": 1}: one retry, and botocore retries LimitExceededException as throttling
    emulator.throttle_next(2)
    with pytest.raises(ClientError) as exc:
        ce.get_cost_and_usage(**request)
    assert error_code(exc) == "LimitExceededException"
    assert exc.value.response["Error"]["Message"] == "Rate exceeded"
    assert ce.get_cost_and_usage(**request)["ResponseMetadata"]["RetryAttempts"] == 0
    assert [r.status for r in emulator.requests] == [400, 400, 200]
    assert [r.error for r in emulator.requests] == ["LimitExceededException", "LimitExceededException", None]
    assert emulator.requests[0].operation == "GetCostAndUsage"
    assert emulator.requests[0].body["Granularity"] == "DAILY"
    emulator.throttle_next(1, "ThrottlingException")
    answer = ce.get_cost_and_usage(**request)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert emulator.requests[-2].error == "ThrottlingException"
    emulator.reset_requests()
    assert emulator.requests == []


def test_foreign_or_garbled_page_token_is_rejected(emulator: CostExplorerEmulator, ce: Any) -> None:
    emulator.page_size = 3
    request = {
        "TimePeriod": period(TODAY - timedelta(days=5), TODAY),
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    token = ce.get_cost_and_usage(**request)["NextPageToken"]
    ce.get_cost_and_usage(**request, NextPageToken=token)  # its own request: fine
    foreign = {**request, "Metrics": ["AmortizedCost"]}
    for bad in (token, "not-a-token", token[:-4]):
        with pytest.raises(ClientError) as exc:
            ce.get_cost_and_usage(**foreign, NextPageToken=bad)
        assert error_code(exc) == "ValidationException"
        assert "NextPageToken" in str(exc.value)


def test_stop_is_idempotent_and_closes_the_port(ledger: pa.Table) -> None:
    emulator = CostExplorerEmulator(ledger, TODAY)
    url = emulator.start()
    assert emulator.start() == url == emulator.endpoint_url
    ce = client(emulator)
    ce.get_cost_and_usage(
        TimePeriod=period(TODAY, TODAY + timedelta(days=1)), Granularity="DAILY", Metrics=["UnblendedCost"]
    )
    emulator.stop()
    emulator.stop()
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        assert sock.connect_ex((host, int(port))) != 0


def test_the_ledger_can_be_replaced_and_its_ids_renamed_while_serving(ledger: pa.Table) -> None:
    day = TODAY - timedelta(days=3)

    def resource_costs(ce: Any) -> dict[str, Decimal]:
        answer = ce.get_cost_and_usage_with_resources(
            TimePeriod=period(day, day + timedelta(days=1)),
            Granularity="DAILY",
            Metrics=["UnblendedCost"],
            Filter={"Dimensions": {"Key": "SERVICE", "Values": [EC2_SERVICE]}},
            GroupBy=[{"Type": "DIMENSION", "Key": "RESOURCE_ID"}],
        )
        return {
            group["Keys"][0]: Decimal(group["Metrics"]["UnblendedCost"]["Amount"])
            for result in answer["ResultsByTime"]
            for group in result["Groups"]
        }

    with CostExplorerEmulator(ledger, TODAY, page_size=1000) as emulator:
        ce = client(emulator)
        before = resource_costs(ce)  # cached by the emulator: renaming must not serve it again
        old = sorted(before)[0]
        emulator.rename_resources({old: "i-renamed"})
        after = resource_costs(ce)
        assert old not in after and after["i-renamed"] == before[old]
        assert {k: v for k, v in after.items() if k != "i-renamed"} == {
            k: v for k, v in before.items() if k != old
        }
        emulator.replace_ledger(ledger.filter(pc.not_equal(ledger["resource_id"], old)))
        assert resource_costs(ce) == {k: v for k, v in before.items() if k != old}
        assert emulator.first_day == TODAY - timedelta(days=DAYS - 1) and emulator.last_day == TODAY
