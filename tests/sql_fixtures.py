"""Hand-built lake fixtures for the scoring, warehouse and CLI tests.

One small snapshot whose resources together hit every violation type and edge case the
scoring rules name; the tests state the exact rows the SQL must produce from it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from tag_compliance import lake
from tag_compliance.policy import TaggingPolicy

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
    # Out of scope (no rule applies to sqs), but its prohibited key is still reported.
    resource(ACCOUNT_2, "us-east-1", "sqs:queue", "q-out-of-scope", {"Secret": "abc"}),
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
    root: Path, rows: list[dict[str, Any]] = RESOURCES, snapshot_date: date = SNAPSHOT
) -> list[Path]:
    """Write rows into the lake, one file per (account, region, service) partition."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["account_id"], row["region"], row["service"]), []).append(row)
    paths = []
    for (account_id, region, service), group in sorted(groups.items()):
        partition = {
            "snapshot_date": snapshot_date,
            "account_id": account_id,
            "region": region,
            "service": service,
        }
        paths.append(lake.write_partition(root, lake.RESOURCES, partition, resources_table(group)))
    return paths
