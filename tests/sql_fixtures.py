"""Hand-built lake fixtures for the scoring, warehouse and CLI tests.

One small snapshot whose resources together hit every violation type and edge case the
scoring rules name; the tests state the exact rows the SQL must produce from it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from tag_compliance import lake
from tag_compliance.policy import TaggingPolicy
from tag_compliance.warehouse import connect_read_only

SNAPSHOT = date(2026, 3, 14)
COLLECTED_AT = datetime(2026, 3, 14, 6, 30, tzinfo=UTC)
ACCOUNT_1 = "012345678901"  # leading zero: must survive as VARCHAR everywhere
ACCOUNT_2 = "210987654321"

KEY_128 = "Ключ-" + "k" * 123  # a 128-character unicode key
VALUE_256 = "värde-" + "é" * 250  # a 256-character unicode value
BLANK = " \t\x0b\x0c\r\n"  # ASCII whitespace only
INJECTION = "x'; drop table resources; --"

APPLIES_WIDE = ["ec2:*", "s3:*", "lambda:*"]

POLICY_DATA: dict[str, Any] = {
    "version": "test-2026.1",
    "description": "Fixture policy for the SQL tests.",
    "required_tags": [
        {"key": "CostCenter", "pattern": "CC-[0-9]{4}", "applies_to": APPLIES_WIDE},
        {
            "key": "Environment",
            "allowed_values": ["prod", "staging", "dev-*"],
            "pattern": "[a-z-]+",
            "applies_to": APPLIES_WIDE,
        },
        {
            "key": "Team",
            "allowed_values": ["Platform", "Data"],
            "case_sensitive_values": False,
            "severity": "warning",
            "applies_to": ["ec2:instance"],
        },
        {"key": KEY_128, "applies_to": ["lambda:function"]},
    ],
    "prohibited_keys": ["password*", "*secret*"],
}


def fixture_policy() -> TaggingPolicy:
    return TaggingPolicy.model_validate(POLICY_DATA)


def resource(
    account_id: str,
    region: str,
    resource_type: str,
    resource_id: str,
    tags: dict[str, str] | None,
) -> dict[str, Any]:
    service = resource_type.split(":", 1)[0]
    return {
        "account_id": account_id,
        "region": region,
        "service": service,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "arn": f"arn:aws:{service}:{region}:{account_id}:{resource_id}",
        "name": resource_id,
        "state": "active",
        "created_at": datetime(2025, 1, 1, tzinfo=UTC),
        "tags": tags,
        "source": "service_api",
        "collected_at": COLLECTED_AT,
    }


def arn(account_id: str, region: str, resource_type: str, resource_id: str) -> str:
    return f"arn:aws:{resource_type.split(':', 1)[0]}:{region}:{account_id}:{resource_id}"


RESOURCES: list[dict[str, Any]] = [
    # Compliant; 'platform' passes the case-insensitive rule; the aws: key matches a glob but is AWS's.
    resource(
        ACCOUNT_1,
        "us-east-1",
        "ec2:instance",
        "i-0a-compliant",
        {
            "CostCenter": "CC-1234",
            "Environment": "prod",
            "Team": "platform",
            "aws:secretsmanager:secret-arn": "arn:x",
        },
    ),
    # Wrong key case (two candidates: the smallest is reported), untrimmed value, missing warning
    # rule, and two prohibited keys (one matching both globs: still one violation).
    resource(
        ACCOUNT_1,
        "eu-west-1",
        "ec2:instance",
        "i-0b-violations",
        {
            "costcenter": "CC-0001",
            "COSTCENTER": "x",
            "Environment": " prod",
            "PassWord": "hunter2",
            "password_secret": "s",
        },
    ),
    # Pattern failures; 'dev-X' passes the wildcard allowed value but not the pattern.
    resource(
        ACCOUNT_1, "global", "s3:bucket", "bucket-format", {"CostCenter": "CC-12345", "Environment": "dev-X"}
    ),
    # Whitespace-only and empty values.
    resource(ACCOUNT_1, "global", "s3:bucket", "bucket-blank", {"CostCenter": BLANK, "Environment": ""}),
    # Precedence: 'PROD' fails allowed_values and pattern -> only invalid_value; the exact key wins
    # over another-case duplicate.
    resource(
        ACCOUNT_1,
        "us-east-1",
        "ec2:instance",
        "i-0e-precedence",
        {"CostCenter": "CC-1111", "costcenter": "junk", "Environment": "PROD", "Team": "DATA"},
    ),
    # Only a warning-severity violation: still compliant.
    resource(
        ACCOUNT_1,
        "us-east-1",
        "ec2:instance",
        "i-0j-warning",
        {"CostCenter": "CC-2000", "Environment": "staging", "Team": "Sales"},
    ),
    # Unicode 128-character key with a 256-character value; wildcard 'dev-*' allows 'dev-feature'.
    resource(
        ACCOUNT_1,
        "eu-west-1",
        "lambda:function",
        "fn-unicode",
        {"CostCenter": "CC-0042", "Environment": "dev-feature", KEY_128: VALUE_256},
    ),
    # Injection-looking value is data; unicode key present only in upper case.
    resource(
        ACCOUNT_2,
        "us-east-1",
        "lambda:function",
        "fn-missing",
        {"CostCenter": INJECTION, KEY_128.upper(): "v"},
    ),
    # Out of scope (no rule applies to ssm), but its prohibited key is still reported.
    resource(ACCOUNT_2, "us-east-1", "ssm:parameter", "q-out-of-scope", {"Secret": "abc"}),
    # Out of scope and untagged.
    resource(ACCOUNT_2, "us-east-1", "ecs:service", "svc-untagged", {}),
]


def resources_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows in the lake's resources layout (partition keys included as columns)."""
    partition_fields = [pa.field(key, pa.string()) for key in ("account_id", "region", "service")]
    schema = pa.schema([*partition_fields, *lake.RESOURCES.schema])
    return pa.Table.from_pylist(
        [{name: row[name] for name in schema.names} for row in rows],
        schema=schema,
    )


def write_snapshot(
    root: Path,
    rows: list[dict[str, Any]] = RESOURCES,
    snapshot_date: date = SNAPSHOT,
    accounts: list[dict[str, Any]] | None = None,
) -> list[Path]:
    """Write rows into the lake as one committed snapshot, one file per (account, region, service),
    with ``accounts`` rows (as the organisation task stages them) when given."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["account_id"], row["region"], row["service"]), []).append(row)
    tables = [
        (
            lake.RESOURCES,
            {"snapshot_date": snapshot_date, "account_id": account_id, "region": region, "service": service},
            resources_table(group),
        )
        for (account_id, region, service), group in sorted(groups.items())
    ]
    if accounts is not None:
        tables.append(
            (
                lake.ACCOUNTS,
                {"snapshot_date": snapshot_date},
                pa.Table.from_pylist(accounts, schema=lake.ACCOUNTS.schema),
            )
        )
    snapshot = lake.write_and_commit(root, lake.SNAPSHOT, snapshot_date, tables)
    return [Path(path) for path in snapshot.paths(root)]


# --- costs of the snapshot's day ---------------------------------------------------------------------
# Cost Explorer SERVICE values (the ones our collectors map, and two they do not).
CE_EC2 = "Amazon Elastic Compute Cloud - Compute"
CE_S3 = "Amazon Simple Storage Service"
CE_LAMBDA = "AWS Lambda"
CE_ECS = "Amazon Elastic Container Service"
CE_CONFIG = "AWS Config"  # no collector
CE_TAX = "Tax"  # no collector, never a resource
EXTRACTED_AT = datetime(2026, 3, 15, 4, 0, tzinfo=UTC)

GROUP_TYPES = {"service": "SERVICE", "tag": "TAG", "resource": "RESOURCE_ID", "usage_type": "USAGE_TYPE"}


def cost(
    source: str,
    account_id: str,
    amortized: str,
    unblended: str,
    *,
    service: str | None = None,
    tag_key: str | None = None,
    tag_value: str | None = None,
    resource_id: str | None = None,
    usage_type: str | None = None,
    estimated: bool = True,
) -> list[dict[str, Any]]:
    """The two rows (AmortizedCost, UnblendedCost) Cost Explorer gives one group on one day."""
    return [
        {
            "extracted_at": EXTRACTED_AT,
            "account_id": account_id,
            "service": service,
            "group_type": GROUP_TYPES[source],
            "tag_key": tag_key,
            "tag_value": tag_value,
            "resource_id": resource_id,
            "usage_type": usage_type,
            "metric": metric,
            "amount": Decimal(amount),
            "unit": "USD",
            "estimated": estimated,
            "source": source,
        }
        for metric, amount in (("AmortizedCost", amortized), ("UnblendedCost", unblended))
    ]


def service_cost(
    account_id: str, service: str, amortized: str, unblended: str, **kw: Any
) -> list[dict[str, Any]]:
    return cost("service", account_id, amortized, unblended, service=service, **kw)


def resource_cost(
    account_id: str, service: str, resource_id: str, amortized: str, unblended: str, **kw: Any
) -> list[dict[str, Any]]:
    return cost("resource", account_id, amortized, unblended, service=service, resource_id=resource_id, **kw)


def usage_cost(
    account_id: str, service: str, usage_type: str, amortized: str, unblended: str, **kw: Any
) -> list[dict[str, Any]]:
    return cost("usage_type", account_id, amortized, unblended, service=service, usage_type=usage_type, **kw)


def tag_cost(
    account_id: str, key: str, value: str, amortized: str, unblended: str, **kw: Any
) -> list[dict[str, Any]]:
    return cost("tag", account_id, amortized, unblended, tag_key=key, tag_value=value, **kw)


# A day with resource-level costs. Account 1 spends 10.75 amortized (11.0500000001 unblended),
# account 2 9.5 (9.5): 20.25 in all.
COSTS_WITH_RESOURCES: list[dict[str, Any]] = [
    *service_cost(ACCOUNT_1, CE_EC2, "8.0000000001", "8.2500000001"),
    *service_cost(ACCOUNT_1, CE_S3, "0.7500000000", "0.8000000000"),
    *service_cost(ACCOUNT_1, CE_LAMBDA, "0.9999999999", "1.0000000000"),
    *service_cost(ACCOUNT_1, CE_TAX, "1.0000000000", "1.0000000000"),
    *service_cost(ACCOUNT_2, CE_LAMBDA, "3.0000000000", "3.0000000000"),
    *service_cost(ACCOUNT_2, CE_ECS, "6.0000000000", "6.0000000000"),
    *service_cost(ACCOUNT_2, CE_CONFIG, "0.4000000000", "0.4000000000"),
    *service_cost(ACCOUNT_2, CE_EC2, "0.1000000000", "0.1000000000"),
    # EC2 and S3 report the instance id / bucket name; i-0j-warning has no row (costs 0).
    *resource_cost(ACCOUNT_1, CE_EC2, "i-0a-compliant", "4.0000000000", "5.0000000000"),
    *resource_cost(ACCOUNT_1, CE_EC2, "i-0b-violations", "2.0000000001", "2.0000000001"),
    *resource_cost(ACCOUNT_1, CE_EC2, "i-0e-precedence", "1.0000000000", "0.5000000000"),
    *resource_cost(ACCOUNT_1, CE_EC2, "i-0deleted", "0.7500000000", "0.7500000000"),  # not in snapshot
    *resource_cost(ACCOUNT_1, CE_S3, "bucket-format", "0.5000000000", "0.5000000000"),
    *resource_cost(ACCOUNT_1, CE_S3, "bucket-blank", "0.2500000000", "0.3000000000"),
    # Lambda and ECS report ARNs.
    *resource_cost(
        ACCOUNT_1,
        CE_LAMBDA,
        arn(ACCOUNT_1, "eu-west-1", "lambda:function", "fn-unicode"),
        "0.9999999999",
        "1.0000000000",
        estimated=False,
    ),
    *resource_cost(
        ACCOUNT_2, CE_LAMBDA, arn(ACCOUNT_2, "us-east-1", "lambda:function", "fn-missing"), "3", "3"
    ),
    *resource_cost(ACCOUNT_2, CE_ECS, arn(ACCOUNT_2, "us-east-1", "ecs:service", "svc-untagged"), "6", "6"),
    # Account 1's instance id, reported in account 2: not that resource.
    *resource_cost(ACCOUNT_2, CE_EC2, "i-0a-compliant", "0.1000000000", "0.1000000000"),
    # Cost Explorer's own grouping by tag key ('' = without the key).
    *tag_cost(ACCOUNT_1, "CostCenter", "", "2.1500000000", "2.2000000000"),
    *tag_cost(ACCOUNT_1, "CostCenter", "CC-1234", "8.6000000000", "8.8500000001"),
    *tag_cost(ACCOUNT_1, "Environment", "prod", "10.7500000000", "11.0500000001", estimated=False),
    *tag_cost(ACCOUNT_2, "CostCenter", "", "9.5000000000", "9.5000000000"),
]

# A day without resource-level costs: service totals are split over the resources, exactly.
COSTS_SERVICE_ONLY: list[dict[str, Any]] = [
    *service_cost(ACCOUNT_1, CE_EC2, "1.0000000003", "2.0000000002"),  # 4 instances
    *service_cost(ACCOUNT_1, CE_S3, "1.0000000001", "-0.0000000003", estimated=False),  # a credit
    *service_cost(ACCOUNT_1, CE_LAMBDA, "0.5000000000", "0.5000000000", estimated=False),
    *service_cost(ACCOUNT_1, CE_TAX, "0.2000000000", "0.2000000000", estimated=False),
    *service_cost(ACCOUNT_2, CE_LAMBDA, "2.0000000000", "2.0000000000", estimated=False),
    *service_cost(ACCOUNT_2, CE_ECS, "3.0000000000", "3.0000000000", estimated=False),
    *service_cost(ACCOUNT_2, CE_CONFIG, "0.1000000000", "0.1000000000", estimated=False),
]


def costs_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Cost rows in the lake's costs layout plus the ``source`` partition key as a column."""
    schema = pa.schema([*lake.COSTS.schema, pa.field("source", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def write_costs(
    root: Path,
    rows: list[dict[str, Any]],
    usage_date: date = SNAPSHOT,
    empty_sources: tuple[str, ...] = (),
) -> list[Path]:
    """Write cost rows into the lake, one file per source, committed as the day's costs;
    ``empty_sources`` get a zero-row file."""
    by_source: dict[str, list[dict[str, Any]]] = {source: [] for source in empty_sources}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    tables = [
        (lake.COSTS, {"usage_date": usage_date, "source": source}, costs_table(group))
        for source, group in sorted(by_source.items())
    ]
    day = lake.write_and_commit(root, lake.DAY_COSTS, usage_date, tables)
    return [Path(path) for path in day.paths(root)]


def scored_warehouse(root: Path) -> Path:
    """A warehouse published over ``root / "lake"``: the fixture snapshot, scored by the fixture policy."""
    from tag_compliance.scoring import score_snapshot
    from tag_compliance.warehouse import publish_warehouse

    write_snapshot(root / "lake")
    score_snapshot(root / "lake", SNAPSHOT, fixture_policy())
    publish_warehouse(root / "lake", root / "warehouse.duckdb")
    return root / "warehouse.duckdb"


def committed_file(root: Path, dataset: lake.Dataset, key: date = SNAPSHOT, partition: str = "") -> Path:
    """The one committed file of a dataset for a day (and, below it, a partition like
    ``source=service``): what readers read."""
    unit = lake.COMMITTED_DATASETS[dataset.name]
    day = lake.read_commit(root, unit, key)
    assert day is not None, f"{unit.name} {key} is not committed"
    suffix = f"/{partition}" if partition else ""
    files = [file for file in day.files_of(dataset) if file.partition.endswith(f"{key.isoformat()}{suffix}")]
    assert len(files) == 1, files
    return root / files[0].path


def query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of one query against a published warehouse file, through the readers' locked-down
    connection (so every exact-row test also shows the views work under it)."""
    with connect_read_only(warehouse) as con:
        return con.execute(sql, params or []).fetchall()
