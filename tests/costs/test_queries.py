"""Cost Explorer request shapes and answer parsing, without any server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tag_compliance.costs.queries import (
    RESOURCE_SOURCE,
    SERVICE_SOURCE,
    TAG_SOURCE,
    USAGE_SOURCE,
    CostExplorerAnswerError,
    CostQuery,
    contiguous_ranges,
    parse_page,
    plan_queries,
)

D1, D2, D3, D5 = date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 3), date(2026, 5, 5)
NOW = datetime(2026, 5, 6, tzinfo=UTC)


def test_days_are_grouped_into_ranges_of_consecutive_days():
    assert contiguous_ranges([D3, D1, D5, D2, D1]) == [(D1, date(2026, 5, 4)), (D5, date(2026, 5, 6))]
    assert contiguous_ranges([]) == []


def test_every_query_groups_by_linked_account_and_one_other_key_only():
    queries = plan_queries([D1, D2], ["CostCenter", "Owner"], ["AWS Lambda"], resource_days=[D2])
    assert [(q.source, q.start, q.end, q.tag_key, q.service) for q in queries] == [
        (SERVICE_SOURCE, D1, D3, None, None),
        (TAG_SOURCE, D1, D3, "CostCenter", None),
        (TAG_SOURCE, D1, D3, "Owner", None),
        (RESOURCE_SOURCE, D2, D3, None, "AWS Lambda"),
    ]
    for query in queries:
        request = query.request()
        assert len(request["GroupBy"]) == 2 and request["GroupBy"][0]["Key"] == "LINKED_ACCOUNT"
        assert request["Granularity"] == "DAILY"
        assert request["Metrics"] == ["AmortizedCost", "UnblendedCost"]
    resource_request = queries[-1].request("token-1")
    assert queries[-1].operation == "get_cost_and_usage_with_resources"
    assert resource_request["Filter"] == {"Dimensions": {"Key": "SERVICE", "Values": ["AWS Lambda"]}}
    assert resource_request["NextPageToken"] == "token-1"
    assert "NextPageToken" not in queries[0].request()


def test_usage_types_of_a_shared_service_are_asked_for_the_days_without_resource_data():
    queries = plan_queries(
        [D1, D2, D3], [], ["EC2 - Other"], resource_days=[D3], split_services=["EC2 - Other"]
    )
    assert [(q.source, q.start, q.end, q.service) for q in queries] == [
        (SERVICE_SOURCE, D1, date(2026, 5, 4), None),
        (RESOURCE_SOURCE, D3, date(2026, 5, 4), "EC2 - Other"),
        (USAGE_SOURCE, D1, D3, "EC2 - Other"),
    ]
    usage = queries[-1]
    assert usage.per_service and not queries[0].per_service
    assert usage.request()["GroupBy"] == [
        {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
        {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
    ]
    assert usage.request()["Filter"] == {"Dimensions": {"Key": "SERVICE", "Values": ["EC2 - Other"]}}
    assert usage.label == "usage_type:EC2 - Other"
    rows = parse_page(usage, page("2026-05-01", ["111111111111", "USE1-EBS:VolumeUsage.gp3"]), NOW).rows
    assert {(r["service"], r["usage_type"], r["group_type"], r["resource_id"]) for r in rows} == {
        ("EC2 - Other", "USE1-EBS:VolumeUsage.gp3", "USAGE_TYPE", None)
    }


def page(day: str, keys: list[str], amount: object = "1.5", estimated: bool = False) -> dict:
    metrics = {m: {"Amount": amount, "Unit": "USD"} for m in ("AmortizedCost", "UnblendedCost")}
    return {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": day, "End": "x"},
                "Groups": [{"Keys": keys, "Metrics": metrics}],
                "Estimated": estimated,
            }
        ]
    }


def test_tag_groups_split_key_and_value_and_key_dollar_is_untagged():
    query = CostQuery(TAG_SOURCE, D1, D2, tag_key="Cost$Center?")
    rows = parse_page(query, page("2026-05-01", ["111111111111", "Cost$Center?$"]), NOW).rows
    assert {(r["tag_key"], r["tag_value"], r["metric"]) for r in rows} == {
        ("Cost$Center?", "", "AmortizedCost"),
        ("Cost$Center?", "", "UnblendedCost"),
    }
    rows = parse_page(
        query, page("2026-05-01", ["111111111111", "Cost$Center?$a$b"], estimated=True), NOW
    ).rows
    assert {r["tag_value"] for r in rows} == {"a$b"} and all(r["estimated"] for r in rows)


def test_amounts_are_exact_decimals_at_ten_places():
    query = CostQuery(SERVICE_SOURCE, D1, D2)
    rows = parse_page(query, page("2026-05-01", ["1", "Tax"], amount="0.123456789012"), NOW).rows
    assert rows[0]["amount"] == Decimal("0.1234567890")  # half-even beyond the lake's 10 places
    rows = parse_page(query, page("2026-05-01", ["1", "Tax"], amount="1E-7"), NOW).rows
    assert rows[0]["amount"] == Decimal("0.0000001000")


@pytest.mark.parametrize(
    ("query", "answer", "message"),
    [
        (
            CostQuery(SERVICE_SOURCE, D1, D2),
            page("2026-05-01", ["1", "Tax"], amount="n/a"),
            r"service on 2026-05-01, group \['1', 'Tax'\], metric AmortizedCost: Amount 'n/a' is not a "
            "number",
        ),
        (
            CostQuery(SERVICE_SOURCE, D1, D2),
            page("2026-05-01", ["1", "Tax"], amount="Infinity"),
            "is not a finite number",
        ),
        (
            CostQuery(TAG_SOURCE, D1, D2, tag_key="Owner"),
            page("2026-05-01", ["1", "CostCenter$x"]),
            r"tag group 'CostCenter\$x' is not of the form 'Owner\$'<value>",
        ),
        (
            CostQuery(SERVICE_SOURCE, D1, D2),
            page("2026-05-02", ["1", "Tax"]),
            r"answer for 2026-05-02 outside the requested 2026-05-01\.\.2026-05-02",
        ),
        (CostQuery(SERVICE_SOURCE, D1, D2), page("2026-05-01", ["Tax"]), "expected 2 group keys"),
    ],
)
def test_answers_that_cannot_be_stored_fail_naming_day_group_and_field(query, answer, message):
    with pytest.raises(CostExplorerAnswerError, match=message):
        parse_page(query, answer, NOW)
