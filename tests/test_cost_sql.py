"""Cost attribution SQL on hand-built costs: exact per-resource costs, cost compliance, attribution
gap and untagged spend, for a day with resource-level costs and a day with service totals only.

Every expected amount below can be checked by hand from ``COSTS_WITH_RESOURCES`` and
``COSTS_SERVICE_ONLY`` in ``tests/sql_fixtures.py`` (the snapshot is the same ten resources
as in ``test_scoring_sql``).
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tag_compliance import lake
from tag_compliance.policy import TaggingPolicy
from tag_compliance.scoring import DayCosts, ScoreResult, connect, score_resources, score_snapshot
from tag_compliance.warehouse import publish_warehouse
from tests.sql_fixtures import (
    ACCOUNT_1,
    ACCOUNT_2,
    CE_CONFIG,
    CE_EC2,
    CE_ECS,
    CE_LAMBDA,
    CE_S3,
    CE_TAX,
    COSTS_SERVICE_ONLY,
    COSTS_WITH_RESOURCES,
    KEY_128,
    SNAPSHOT,
    committed_file,
    costs_table,
    fixture_policy,
    resource,
    resource_cost,
    resources_table,
    service_cost,
    usage_cost,
    write_costs,
    write_snapshot,
)

EC2, S3, LAMBDA, ECS, SSM = "ec2:instance", "s3:bucket", "lambda:function", "ecs:service", "ssm:parameter"
# gap_reason and cost_basis values, short so the expected rows fit on a line.
NC, OOS, NR, TV = "non_compliant", "out_of_scope", "no_resource", "tag_violation"
RB, SA = "resource", "service_average"


def money(text: str) -> Decimal:
    return Decimal(text)


def pct(part: str, whole: str) -> float:
    """100 * part / whole in doubles, computed as the SQL does."""
    return 100 * float(Decimal(part)) / float(Decimal(whole))


def scored(root: Path, costs: list[dict[str, Any]], **kw: Any) -> ScoreResult:
    write_snapshot(root)
    write_costs(root, costs, **kw)
    return score_snapshot(root, SNAPSHOT, fixture_policy())


@pytest.fixture(scope="module")
def resource_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resource-costs")
    result = scored(root, COSTS_WITH_RESOURCES)
    assert (result.has_costs, result.has_resource_costs, result.attribution_gap) == (True, True, 17)
    return root


@pytest.fixture(scope="module")
def average_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("service-costs")
    result = scored(root, COSTS_SERVICE_ONLY)
    assert (result.has_costs, result.has_resource_costs, result.attribution_gap) == (True, False, 15)
    return root


def output_table(root: Path, dataset: lake.Dataset) -> pa.Table:
    return pq.read_table(committed_file(root, dataset))


def read_output(root: Path, dataset: lake.Dataset) -> list[dict[str, Any]]:
    return output_table(root, dataset).to_pylist()


def resource_costs(root: Path) -> dict[str, tuple[Any, ...]]:
    return {
        row["resource_id"]: (
            row["cost_basis"],
            row["amortized_cost"],
            row["unblended_cost"],
            row["cost_estimated"],
        )
        for row in read_output(root, lake.RESOURCE_COMPLIANCE)
    }


# --- resource_costs -----------------------------------------------------------------------------


def test_resource_basis_costs(resource_lake: Path) -> None:
    assert resource_costs(resource_lake) == {
        # Matched by instance id / bucket name.
        "i-0a-compliant": ("resource", money("4.0000000000"), money("5.0000000000"), True),
        "i-0b-violations": ("resource", money("2.0000000001"), money("2.0000000001"), True),
        "i-0e-precedence": ("resource", money("1.0000000000"), money("0.5000000000"), True),
        # No row of its own: 0, estimated as the day's service rows are.
        "i-0j-warning": ("resource", money("0"), money("0"), True),
        "bucket-format": ("resource", money("0.5000000000"), money("0.5000000000"), True),
        "bucket-blank": ("resource", money("0.2500000000"), money("0.3000000000"), True),
        # Matched by ARN; its row is final, not estimated.
        "fn-unicode": ("resource", money("0.9999999999"), money("1.0000000000"), False),
        "fn-missing": ("resource", money("3"), money("3"), True),
        "svc-untagged": ("resource", money("6"), money("6"), True),
        # SSM parameters are free: no Cost Explorer service is mapped to them.
        "q-out-of-scope": (None, None, None, None),
    }


def test_service_average_costs_split_exactly(average_lake: Path) -> None:
    assert resource_costs(average_lake) == {
        # 1.0000000003 over 4 instances: 3 remainder units to the first three by resource_id;
        # 2.0000000002: 2 units to the first two. Estimated like their service row.
        "i-0a-compliant": ("service_average", money("0.2500000001"), money("0.5000000001"), True),
        "i-0b-violations": ("service_average", money("0.2500000001"), money("0.5000000001"), True),
        "i-0e-precedence": ("service_average", money("0.2500000001"), money("0.5000000000"), True),
        "i-0j-warning": ("service_average", money("0.2500000000"), money("0.5000000000"), True),
        # 1.0000000001 over 2 buckets; a credit of -0.0000000003: -1 each, the extra -1 to the first.
        "bucket-blank": ("service_average", money("0.5000000001"), money("-0.0000000002"), False),
        "bucket-format": ("service_average", money("0.5000000000"), money("-0.0000000001"), False),
        "fn-unicode": ("service_average", money("0.5"), money("0.5"), False),
        "fn-missing": ("service_average", money("2"), money("2"), False),
        "svc-untagged": ("service_average", money("3"), money("3"), False),
        "q-out-of-scope": (None, None, None, None),
    }


def test_service_average_shares_add_up_to_service_totals(average_lake: Path) -> None:
    with connect() as con:
        con.register("rc", output_table(average_lake, lake.RESOURCE_COMPLIANCE))
        shares = con.sql(
            "SELECT account_id, resource_type, sum(amortized_cost), sum(unblended_cost) FROM rc "
            "WHERE cost_basis IS NOT NULL GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    assert shares == [
        (ACCOUNT_1, EC2, money("1.0000000003"), money("2.0000000002")),
        (ACCOUNT_1, LAMBDA, money("0.5"), money("0.5")),
        (ACCOUNT_1, S3, money("1.0000000001"), money("-0.0000000003")),
        (ACCOUNT_2, ECS, money("3"), money("3")),
        (ACCOUNT_2, LAMBDA, money("2"), money("2")),
    ]


# --- compliance_summary -------------------------------------------------------------------------

# (dimension, value, cost_total, cost_in_scope, cost_compliant, cost_compliance_pct)
EXPECTED_SUMMARY_RESOURCE_BASIS = [
    ("overall", "all", "17.75", "11.75", "4.9999999999", pct("4.9999999999", "11.75")),
    ("account", ACCOUNT_1, "8.75", "8.75", "4.9999999999", pct("4.9999999999", "8.75")),
    ("account", ACCOUNT_2, "9", "3", "0", 0.0),
    ("region", "eu-west-1", "3", "3", "0.9999999999", pct("0.9999999999", "3")),
    ("region", "global", "0.75", "0.75", "0", 0.0),
    ("region", "us-east-1", "14", "8", "4", 50.0),
    ("service", "ec2", "7.0000000001", "7.0000000001", "4", pct("4", "7.0000000001")),
    ("service", "ecs", "6", "0", "0", None),  # nothing in scope
    ("service", "lambda", "3.9999999999", "3.9999999999", "0.9999999999",
     pct("0.9999999999", "3.9999999999")),
    ("service", "s3", "0.75", "0.75", "0", 0.0),
    ("service", "ssm", "0", "0", "0", None),  # no cost known, nothing in scope
    ("resource_type", EC2, "7.0000000001", "7.0000000001", "4", pct("4", "7.0000000001")),
    ("resource_type", ECS, "6", "0", "0", None),
    ("resource_type", LAMBDA, "3.9999999999", "3.9999999999", "0.9999999999",
     pct("0.9999999999", "3.9999999999")),
    ("resource_type", S3, "0.75", "0.75", "0", 0.0),
    ("resource_type", SSM, "0", "0", "0", None),
    # Per key: resources the rule applies to, and those with no violation of it.
    ("tag_key", "CostCenter", "11.75", "11.75", "5.9999999999", pct("5.9999999999", "11.75")),
    ("tag_key", "Environment", "11.75", "11.75", "4.9999999999", pct("4.9999999999", "11.75")),
    ("tag_key", "Team", "7.0000000001", "7.0000000001", "5", pct("5", "7.0000000001")),
    ("tag_key", KEY_128, "3.9999999999", "3.9999999999", "0.9999999999", pct("0.9999999999", "3.9999999999")),
]  # fmt: skip

EXPECTED_SUMMARY_SERVICE_AVERAGE = [
    ("overall", "all", "7.5000000004", "4.5000000004", "1.0000000001", pct("1.0000000001", "4.5000000004")),
    ("account", ACCOUNT_1, "2.5000000004", "2.5000000004", "1.0000000001",
     pct("1.0000000001", "2.5000000004")),
    ("account", ACCOUNT_2, "5", "2", "0", 0.0),
    ("region", "eu-west-1", "0.7500000001", "0.7500000001", "0.5", pct("0.5", "0.7500000001")),
    ("region", "global", "1.0000000001", "1.0000000001", "0", 0.0),
    ("region", "us-east-1", "5.7500000002", "2.7500000002", "0.5000000001",
     pct("0.5000000001", "2.7500000002")),
    ("service", "ec2", "1.0000000003", "1.0000000003", "0.5000000001", pct("0.5000000001", "1.0000000003")),
    ("service", "ecs", "3", "0", "0", None),
    ("service", "lambda", "2.5", "2.5", "0.5", 20.0),
    ("service", "s3", "1.0000000001", "1.0000000001", "0", 0.0),
    ("service", "ssm", "0", "0", "0", None),
    ("resource_type", EC2, "1.0000000003", "1.0000000003", "0.5000000001",
     pct("0.5000000001", "1.0000000003")),
    ("resource_type", ECS, "3", "0", "0", None),
    ("resource_type", LAMBDA, "2.5", "2.5", "0.5", 20.0),
    ("resource_type", S3, "1.0000000001", "1.0000000001", "0", 0.0),
    ("resource_type", SSM, "0", "0", "0", None),
    ("tag_key", "CostCenter", "4.5000000004", "4.5000000004", "1.2500000002",
     pct("1.2500000002", "4.5000000004")),
    ("tag_key", "Environment", "4.5000000004", "4.5000000004", "1.0000000001",
     pct("1.0000000001", "4.5000000004")),
    ("tag_key", "Team", "1.0000000003", "1.0000000003", "0.5000000002", pct("0.5000000002", "1.0000000003")),
    ("tag_key", KEY_128, "2.5", "2.5", "0.5", 20.0),
]  # fmt: skip


def summary_costs(root: Path) -> list[tuple[Any, ...]]:
    return [
        (
            row["dimension"],
            row["dimension_value"],
            row["cost_total"],
            row["cost_in_scope"],
            row["cost_compliant"],
            row["cost_compliance_pct"],
        )
        for row in read_output(root, lake.COMPLIANCE_SUMMARY)
    ]


def as_money(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(dim, value, money(a), money(b), money(c), p) for dim, value, a, b, c, p in rows]


def test_summary_costs_resource_basis(resource_lake: Path) -> None:
    assert summary_costs(resource_lake) == as_money(EXPECTED_SUMMARY_RESOURCE_BASIS)


def test_summary_costs_service_average(average_lake: Path) -> None:
    assert summary_costs(average_lake) == as_money(EXPECTED_SUMMARY_SERVICE_AVERAGE)


# --- attribution_gap ----------------------------------------------------------------------------

# (account, service, cost_explorer_service, resource_type, tag_key, gap_reason, severity,
#  resources, amortized, unblended, cost_basis)
EXPECTED_GAP_RESOURCE_BASIS = [
    (ACCOUNT_1, "ec2", CE_EC2, EC2, None, NC, None, 2, "3.0000000001", "2.5000000001", RB),
    (ACCOUNT_1, "s3", CE_S3, S3, None, NC, None, 2, "0.75", "0.8", RB),
    # EC2 total 8.0000000001 (unblended 8.2500000001) minus the 7.0000000001 (7.5000000001) its four
    # instances got: the deleted instance's 0.75 (0.75) plus 0.25 (0) reported for no resource.
    (ACCOUNT_1, "ec2", CE_EC2, None, None, NR, None, 0, "1", "0.75", "service"),
    (ACCOUNT_1, None, CE_TAX, None, None, NR, None, 0, "1", "1", "service"),
    (ACCOUNT_1, "ec2", CE_EC2, EC2, "CostCenter", TV, "error", 1, "2.0000000001", "2.0000000001", RB),
    (ACCOUNT_1, "ec2", CE_EC2, EC2, "Environment", TV, "error", 2, "3.0000000001", "2.5000000001", RB),
    # Warning-severity failures are listed too (i-0j-warning, compliant, costs 0).
    (ACCOUNT_1, "ec2", CE_EC2, EC2, "Team", TV, "warning", 2, "2.0000000001", "2.0000000001", RB),
    (ACCOUNT_1, "s3", CE_S3, S3, "CostCenter", TV, "error", 2, "0.75", "0.8", RB),
    (ACCOUNT_1, "s3", CE_S3, S3, "Environment", TV, "error", 2, "0.75", "0.8", RB),
    (ACCOUNT_2, "lambda", CE_LAMBDA, LAMBDA, None, NC, None, 1, "3", "3", RB),
    (ACCOUNT_2, "ecs", CE_ECS, ECS, None, OOS, None, 1, "6", "6", RB),
    (ACCOUNT_2, "ssm", None, SSM, None, OOS, None, 1, "0", "0", None),
    (ACCOUNT_2, None, CE_CONFIG, None, None, NR, None, 0, "0.4", "0.4", "service"),
    # Account 1's instance id reported in account 2 belongs to no resource of account 2.
    (ACCOUNT_2, "ec2", CE_EC2, None, None, NR, None, 0, "0.1", "0.1", "service"),
    (ACCOUNT_2, "lambda", CE_LAMBDA, LAMBDA, "CostCenter", TV, "error", 1, "3", "3", RB),
    (ACCOUNT_2, "lambda", CE_LAMBDA, LAMBDA, "Environment", TV, "error", 1, "3", "3", RB),
    (ACCOUNT_2, "lambda", CE_LAMBDA, LAMBDA, KEY_128, TV, "error", 1, "3", "3", RB),
]  # fmt: skip

EXPECTED_GAP_SERVICE_AVERAGE = [
    (ACCOUNT_1, "ec2", CE_EC2, EC2, None, NC, None, 2, "0.5000000002", "1.0000000001", SA),
    (ACCOUNT_1, "s3", CE_S3, S3, None, NC, None, 2, "1.0000000001", "-0.0000000003", SA),
    # Every mapped service with resources is shared out in full: only Tax is left.
    (ACCOUNT_1, None, CE_TAX, None, None, NR, None, 0, "0.2", "0.2", "service"),
    (ACCOUNT_1, "ec2", CE_EC2, EC2, "CostCenter", TV, "error", 1, "0.2500000001", "0.5000000001", SA),
    (ACCOUNT_1, "ec2", CE_EC2, EC2, "Environment", TV, "error", 2, "0.5000000002", "1.0000000001", SA),
    (ACCOUNT_1, "ec2", CE_EC2, EC2, "Team", TV, "warning", 2, "0.5000000001", "1.0000000001", SA),
    (ACCOUNT_1, "s3", CE_S3, S3, "CostCenter", TV, "error", 2, "1.0000000001", "-0.0000000003", SA),
    (ACCOUNT_1, "s3", CE_S3, S3, "Environment", TV, "error", 2, "1.0000000001", "-0.0000000003", SA),
    (ACCOUNT_2, "lambda", CE_LAMBDA, LAMBDA, None, NC, None, 1, "2", "2", SA),
    (ACCOUNT_2, "ecs", CE_ECS, ECS, None, OOS, None, 1, "3", "3", SA),
    (ACCOUNT_2, "ssm", None, SSM, None, OOS, None, 1, "0", "0", None),
    (ACCOUNT_2, None, CE_CONFIG, None, None, NR, None, 0, "0.1", "0.1", "service"),
    (ACCOUNT_2, "lambda", CE_LAMBDA, LAMBDA, "CostCenter", TV, "error", 1, "2", "2", SA),
    (ACCOUNT_2, "lambda", CE_LAMBDA, LAMBDA, "Environment", TV, "error", 1, "2", "2", SA),
    (ACCOUNT_2, "lambda", CE_LAMBDA, LAMBDA, KEY_128, TV, "error", 1, "2", "2", SA),
]  # fmt: skip

GAP_KEYS = (
    "account_id",
    "service",
    "cost_explorer_service",
    "resource_type",
    "tag_key",
    "gap_reason",
    "severity",
    "resources",
    "amortized_cost",
    "unblended_cost",
    "cost_basis",
)


def gap_rows(root: Path) -> list[tuple[Any, ...]]:
    rows = read_output(root, lake.ATTRIBUTION_GAP)
    assert {row["policy_version"] for row in rows} == {"test-2026.1"}
    return [tuple(row[key] for key in GAP_KEYS) for row in rows]


def expected_gap(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(*row[:8], money(row[8]), money(row[9]), row[10]) for row in rows]


def test_attribution_gap_resource_basis(resource_lake: Path) -> None:
    assert gap_rows(resource_lake) == expected_gap(EXPECTED_GAP_RESOURCE_BASIS)


def test_attribution_gap_service_average(average_lake: Path) -> None:
    assert gap_rows(average_lake) == expected_gap(EXPECTED_GAP_SERVICE_AVERAGE)


@pytest.mark.parametrize(
    ("lake_fixture", "day_total", "compliant"),
    [("resource_lake", "20.25", "4.9999999999"), ("average_lake", "7.8000000004", "1.0000000001")],
)
def test_gap_adds_up_to_total_spend_minus_compliant_spend(
    lake_fixture: str, day_total: str, compliant: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Through the public warehouse views: the untagged-key rows of the gap are exactly the day's
    spend (Cost Explorer's service totals) minus the spend of compliant resources."""
    root = request.getfixturevalue(lake_fixture)
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(root, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        total, gap, overall_compliant, compliant_resources = con.execute(
            """
            SELECT
                (SELECT sum(amount) FROM costs
                 WHERE source = 'service' AND metric = 'AmortizedCost' AND usage_date = $day),
                (SELECT sum(amortized_cost) FROM attribution_gap
                 WHERE tag_key IS NULL AND snapshot_date = $day),
                (SELECT cost_compliant FROM compliance_summary
                 WHERE dimension = 'overall' AND snapshot_date = $day),
                (SELECT sum(amortized_cost) FROM resource_compliance
                 WHERE compliant AND snapshot_date = $day)
            """,
            {"day": SNAPSHOT},
        ).fetchone()
        unblended_total, unblended_gap, unblended_compliant = con.execute(
            """
            SELECT
                (SELECT sum(amount) FROM costs
                 WHERE source = 'service' AND metric = 'UnblendedCost' AND usage_date = $day),
                (SELECT sum(unblended_cost) FROM attribution_gap
                 WHERE tag_key IS NULL AND snapshot_date = $day),
                (SELECT sum(unblended_cost) FROM resource_compliance
                 WHERE compliant AND snapshot_date = $day)
            """,
            {"day": SNAPSHOT},
        ).fetchone()
    assert (total, overall_compliant, compliant_resources) == (
        money(day_total),
        money(compliant),
        money(compliant),
    )
    assert gap == total - overall_compliant
    assert unblended_gap == unblended_total - unblended_compliant


# --- coverage: no costs, empty partitions, partial days ----------------------------------------------


def summary_overall_costs(root: Path) -> tuple[Any, ...]:
    overall = read_output(root, lake.COMPLIANCE_SUMMARY)[0]
    assert overall["dimension"] == "overall"
    return tuple(
        overall[key] for key in ("cost_total", "cost_in_scope", "cost_compliant", "cost_compliance_pct")
    )


def test_costs_of_other_days_are_not_used(tmp_path: Path) -> None:
    result = scored(tmp_path, COSTS_WITH_RESOURCES, usage_date=SNAPSHOT - timedelta(days=1))
    assert (result.has_costs, result.has_resource_costs, result.attribution_gap) == (False, False, 0)
    assert set(resource_costs(tmp_path).values()) == {(None, None, None, None)}
    assert {row["cost_compliance_pct"] for row in read_output(tmp_path, lake.COMPLIANCE_SUMMARY)} == {None}
    assert summary_overall_costs(tmp_path) == (None, None, None, None)
    assert read_output(tmp_path, lake.ATTRIBUTION_GAP) == []


def test_resource_rows_without_service_totals_are_no_costs(tmp_path: Path) -> None:
    """Without the day's service totals there is nothing to attribute against: no costs."""
    only_resources = [row for row in COSTS_WITH_RESOURCES if row["source"] == "resource"]
    result = scored(tmp_path, only_resources)
    assert (result.has_costs, result.has_resource_costs, result.attribution_gap) == (False, False, 0)
    assert resource_costs(tmp_path)["i-0a-compliant"] == (None, None, None, None)


def test_empty_resource_partition_means_resource_basis_with_no_rows(tmp_path: Path) -> None:
    """A zero-row resource file says "extracted, nothing per resource": every costed resource
    costs 0 on the resource basis and the whole service total is a no_resource gap."""
    services = [row for row in COSTS_WITH_RESOURCES if row["source"] == "service"]
    result = scored(tmp_path, services, empty_sources=("resource",))
    assert (result.has_costs, result.has_resource_costs) == (True, True)
    costs = resource_costs(tmp_path)
    assert costs["i-0a-compliant"] == ("resource", money("0"), money("0"), True)
    assert costs["q-out-of-scope"] == (None, None, None, None)
    assert summary_overall_costs(tmp_path) == (money("0"), money("0"), money("0"), None)
    no_resource = [(row[0], row[2], row[8], row[9]) for row in gap_rows(tmp_path) if row[5] == "no_resource"]
    assert no_resource == [
        (ACCOUNT_1, CE_LAMBDA, money("0.9999999999"), money("1")),
        (ACCOUNT_1, CE_EC2, money("8.0000000001"), money("8.2500000001")),
        (ACCOUNT_1, CE_S3, money("0.75"), money("0.8")),
        (ACCOUNT_1, CE_TAX, money("1"), money("1")),
        (ACCOUNT_2, CE_CONFIG, money("0.4"), money("0.4")),
        (ACCOUNT_2, CE_LAMBDA, money("3"), money("3")),
        (ACCOUNT_2, CE_EC2, money("0.1"), money("0.1")),
        (ACCOUNT_2, CE_ECS, money("6"), money("6")),
    ]


def test_empty_service_partition_means_a_day_that_cost_nothing(tmp_path: Path) -> None:
    result = scored(tmp_path, [], empty_sources=("service",))
    assert (result.has_costs, result.has_resource_costs, result.attribution_gap) == (True, False, 13)
    assert resource_costs(tmp_path)["i-0a-compliant"] == ("service_average", money("0"), money("0"), False)
    assert summary_overall_costs(tmp_path) == (money("0"), money("0"), money("0"), None)
    assert {row[8] for row in gap_rows(tmp_path)} == {money("0")}


def test_hidden_cost_files_are_ignored(tmp_path: Path) -> None:
    scored(tmp_path, COSTS_WITH_RESOURCES)
    expected = gap_rows(tmp_path)
    day = tmp_path / "costs" / f"usage_date={SNAPSHOT.isoformat()}"
    # A leftover of a crashed writer, and a half-written partition of a source never finished.
    service = committed_file(tmp_path, lake.COSTS, partition="source=service")
    resource = committed_file(tmp_path, lake.COSTS, partition="source=resource")
    shutil.copy(service, day / "source=service" / ".part-0.abc.parquet")
    (day / ".source=resource.tmp").mkdir()
    shutil.copy(resource, day / ".source=resource.tmp" / "part-0.parquet")
    # A killed writer's file, whole but never committed.
    shutil.copy(service, day / "source=service" / "part-killed-writer.parquet")
    score_snapshot(tmp_path, SNAPSHOT, fixture_policy())
    assert gap_rows(tmp_path) == expected


# --- matching resource rows ---------------------------------------------------------------------


def score_with_costs(
    rows: list[dict[str, Any]], costs: list[dict[str, Any]], policy: TaggingPolicy
) -> dict[str, list[dict[str, Any]]]:
    with connect() as con:
        con.register("snapshot_resources", resources_table(rows))
        outputs = score_resources(con, policy, DayCosts.of(costs_table(costs)))
    return {name: table.to_pylist() for name, table in outputs.items()}


def test_each_resource_row_goes_to_one_resource_and_id_and_arn_rows_add_up() -> None:
    policy = TaggingPolicy.model_validate({"version": "1", "required_tags": [{"key": "Owner"}]})
    twice = resource(ACCOUNT_1, "us-east-1", EC2, "i-twice", {"Owner": "a"})
    function = resource(ACCOUNT_1, "us-east-1", LAMBDA, "fn", {"Owner": "a"})
    costs = [
        *service_cost(ACCOUNT_1, CE_EC2, "1", "1"),
        *service_cost(ACCOUNT_1, CE_LAMBDA, "0.3", "0.3"),
        *resource_cost(ACCOUNT_1, CE_EC2, "i-twice", "1", "1"),
        # Reported once under the name, once under the ARN: both are the function's.
        *resource_cost(ACCOUNT_1, CE_LAMBDA, "fn", "0.1", "0.1"),
        *resource_cost(ACCOUNT_1, CE_LAMBDA, function["arn"], "0.2", "0.2"),
    ]
    outputs = score_with_costs([twice, twice, function], costs, policy)
    assert [(row["resource_id"], row["amortized_cost"]) for row in outputs["resource_compliance"]] == [
        ("i-twice", money("1")),  # the first of two identical rows gets the row, once
        ("i-twice", money("0")),
        ("fn", money("0.3")),
    ]
    assert outputs["attribution_gap"] == []  # all compliant, nothing left over
    assert outputs["compliance_summary"][0]["cost_compliance_pct"] == 100.0


def test_a_service_several_types_share_is_split_by_their_usage_types() -> None:
    """ "EC2 - Other" on a day without per-resource rows: each type's share is the spend of its own
    usage types (with or without a region code), spread over that type's resources only; usage
    of no type (regional data transfer) and of a type with no resource (snapshots) stays a gap."""
    policy = TaggingPolicy.model_validate({"version": "1", "required_tags": [{"key": "Owner"}]})
    other = "EC2 - Other"
    resources = [
        resource(ACCOUNT_1, "us-east-1", "ec2:volume", "vol-1", {"Owner": "a"}),
        resource(ACCOUNT_1, "eu-west-1", "ec2:volume", "vol-2", {}),
        resource(ACCOUNT_1, "us-east-1", "ec2:natgateway", "nat-1", {"Owner": "a"}),
        resource(ACCOUNT_2, "us-east-1", "ec2:volume", "vol-3", {"Owner": "b"}),
    ]
    costs = [
        *service_cost(ACCOUNT_1, other, "10", "10"),
        *usage_cost(ACCOUNT_1, other, "EBS:VolumeUsage.gp3", "3", "3"),
        *usage_cost(ACCOUNT_1, other, "EU-EBS:VolumeIOUsage", "1", "1"),
        *usage_cost(ACCOUNT_1, other, "EU-NatGateway-Hours", "2", "2"),
        *usage_cost(ACCOUNT_1, other, "USE1-EBS:SnapshotUsage", "0.5", "0.5"),
        *usage_cost(ACCOUNT_1, other, "DataTransfer-Regional-Bytes", "3.5", "3.5"),
        *service_cost(ACCOUNT_2, other, "0.3", "0.3"),
        *usage_cost(ACCOUNT_2, other, "EBS:VolumeUsage.gp3", "0.3", "0.3"),
    ]
    outputs = score_with_costs(resources, costs, policy)
    costs_of = {
        row["resource_id"]: (row["cost_basis"], row["amortized_cost"])
        for row in outputs["resource_compliance"]
    }
    assert costs_of == {
        "vol-1": (SA, money("2")),  # (3 + 1) / 2
        "vol-2": (SA, money("2")),
        "nat-1": (SA, money("2")),
        "vol-3": (SA, money("0.3")),
    }
    no_resource = [
        (row["account_id"], row["service"], row["cost_explorer_service"], row["amortized_cost"])
        for row in outputs["attribution_gap"]
        if row["gap_reason"] == NR
    ]
    # once per (account, service), however many types share it: 0.5 of snapshots + 3.5 of transfer
    assert no_resource == [(ACCOUNT_1, "ec2", other, money("4"))]


def test_cost_rows_written_before_usage_types_existed_read_it_as_null() -> None:
    rows = costs_table(COSTS_SERVICE_ONLY).drop_columns(["usage_type"])
    costs = DayCosts.of(rows)
    assert costs.rows.column("usage_type").null_count == rows.num_rows
    assert costs.rows.column("amount").to_pylist() == rows.column("amount").to_pylist()


def test_score_resources_without_costs_defaults_to_no_costs() -> None:
    policy = TaggingPolicy.model_validate({"version": "1", "required_tags": [{"key": "Owner"}]})
    with connect() as con:
        con.register(
            "snapshot_resources", resources_table([resource(ACCOUNT_1, "us-east-1", EC2, "i-1", {})])
        )
        outputs = score_resources(con, policy)
    assert outputs["resource_compliance"].column("amortized_cost").to_pylist() == [None]
    assert outputs["attribution_gap"].num_rows == 0
    assert outputs["attribution_gap"].schema == lake.ATTRIBUTION_GAP.schema


# --- untagged_spend view ------------------------------------------------------------------------


def test_untagged_spend_view(resource_lake: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(resource_lake, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT * FROM untagged_spend").fetchall()
    assert rows == [
        (SNAPSHOT, ACCOUNT_1, "CostCenter", money("2.15"), money("2.2"), money("10.75"),
         money("11.0500000001"), pct("2.15", "10.75"), True),
        # Every dollar carries the key: nothing untagged.
        (SNAPSHOT, ACCOUNT_1, "Environment", money("0"), money("0"), money("10.75"),
         money("11.0500000001"), 0.0, False),
        (SNAPSHOT, ACCOUNT_2, "CostCenter", money("9.5"), money("9.5"), money("9.5"), money("9.5"), 100.0,
         True),
    ]  # fmt: skip


def test_untagged_spend_over_several_days(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    tags = [row for row in COSTS_WITH_RESOURCES if row["source"] == "tag" and row["account_id"] == ACCOUNT_2]
    write_costs(root, tags, usage_date=date(2026, 3, 13))
    write_costs(root, tags, usage_date=SNAPSHOT)
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(root, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT usage_date, account_id, untagged_amortized_cost FROM untagged_spend"
        ).fetchall()
    assert rows == [(date(2026, 3, 13), ACCOUNT_2, money("9.5")), (SNAPSHOT, ACCOUNT_2, money("9.5"))]


def test_spend_of_exempt_resources_is_its_own_gap_reason() -> None:
    """Exempt spend is not compliant spend, but it is not a to-fix gap either: its own reason."""
    policy = TaggingPolicy.model_validate(
        {
            "version": "1",
            "required_tags": [{"key": "Owner"}, {"key": "Team"}],
            "exemptions": [
                {"resources": ["i-exempt"], "keys": ["Owner"], "reason": "vendor", "expires": "2026-12-31"}
            ],
        }
    )
    rows = [
        resource(ACCOUNT_1, "us-east-1", EC2, "i-ok", {"Owner": "a", "Team": "t"}),
        resource(ACCOUNT_1, "us-east-1", EC2, "i-exempt", {"Team": "t"}),
        resource(ACCOUNT_1, "us-east-1", EC2, "i-bad", {}),
    ]
    costs = [
        *service_cost(ACCOUNT_1, CE_EC2, "6", "6"),
        *resource_cost(ACCOUNT_1, CE_EC2, "i-ok", "1", "1"),
        *resource_cost(ACCOUNT_1, CE_EC2, "i-exempt", "2", "2"),
        *resource_cost(ACCOUNT_1, CE_EC2, "i-bad", "3", "3"),
    ]
    with connect() as con:
        con.register("snapshot_resources", resources_table(rows))
        outputs = score_resources(con, policy, DayCosts.of(costs_table(costs)), scored_date=SNAPSHOT)
    gaps = [
        (row["gap_reason"], row["tag_key"], row["resources"], row["amortized_cost"])
        for row in outputs["attribution_gap"].to_pylist()
    ]
    assert gaps == [
        ("non_compliant", None, 1, money("3")),
        ("exempt", None, 1, money("2")),
        # The breakdown by key leaves the exempted Owner violation out.
        ("tag_violation", "Owner", 1, money("3")),
        ("tag_violation", "Team", 1, money("3")),
    ]
    overall = outputs["compliance_summary"].to_pylist()[0]
    assert (overall["cost_in_scope"], overall["cost_compliant"]) == (money("6"), money("1"))
