"""The Parquet lake: dataset schemas (declared once), partition paths and atomic writes.

Layout: ``<root>/<dataset>/<key>=<value>/.../<part>.parquet`` (hive partitions, zstd).
Partition keys live in the path only; readers get them back as columns through hive
partitioning. Each file is written under a hidden temporary name in its final directory
and then renamed over the old one, so a rerun replaces it and a crash never leaves a
half-written file visible (readers skip names starting with ``.``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
TAGS = pa.map_(pa.string(), pa.string())
# Money is exact decimal, never float: Cost Explorer sends amounts as decimal strings with up to
# 10 fractional digits, and totals must reconcile to the cent.
MONEY = pa.decimal128(38, 10)


@dataclass(frozen=True)
class Dataset:
    """One lake dataset: its name, hive partition keys and the schema of its files."""

    name: str
    partition_keys: tuple[str, ...]
    schema: pa.Schema

    def partition_dir(self, root: Path, partition: Mapping[str, object]) -> Path:
        missing = [key for key in self.partition_keys if key not in partition]
        extra = sorted(set(partition) - set(self.partition_keys))
        if missing or extra:
            raise ValueError(
                f"dataset {self.name!r}: partition must have keys {list(self.partition_keys)}, "
                f"missing {missing}, unexpected {extra}"
            )
        path = Path(root) / self.name
        for key in self.partition_keys:
            value = _partition_value(partition[key])
            if not value or "/" in value or value.startswith("."):
                raise ValueError(f"dataset {self.name!r}: bad partition value {key}={value!r}")
            path /= f"{key}={value}"
        return path

    def empty_table(self) -> pa.Table:
        return self.schema.empty_table()


def _partition_value(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


RESOURCES = Dataset(
    "resources",
    ("snapshot_date", "account_id", "region", "service"),
    pa.schema(
        [
            ("collected_at", UTC_TIMESTAMP),
            ("resource_type", pa.string()),
            ("resource_id", pa.string()),
            ("arn", pa.string()),
            ("name", pa.string()),
            ("state", pa.string()),
            ("created_at", UTC_TIMESTAMP),
            ("tags", TAGS),
            ("source", pa.string()),
        ]
    ),
)

# The scoring outputs (violations, resource_compliance, compliance_summary, attribution_gap) carry
# inventory_as_of: the snapshot_date of the resources scored. It is the output's own snapshot_date,
# except for a backfilled day without an inventory of its own, scored with the nearest earlier one.
VIOLATIONS = Dataset(
    "violations",
    ("snapshot_date",),
    pa.schema(
        [
            ("account_id", pa.string()),
            ("region", pa.string()),
            ("resource_type", pa.string()),
            ("resource_id", pa.string()),
            ("arn", pa.string()),
            ("tag_key", pa.string()),
            ("violation_type", pa.string()),
            ("severity", pa.string()),
            ("current_value", pa.string()),
            ("expected", pa.string()),
            ("inventory_as_of", pa.date32()),
            ("policy_version", pa.string()),
        ]
    ),
)

EXEMPTED_VIOLATIONS = Dataset(
    "exempted_violations",
    ("snapshot_date",),
    pa.schema(
        [
            *VIOLATIONS.schema,
            ("exemption_reason", pa.string()),
            ("exemption_expires", pa.date32()),
        ]
    ),
)

RESOURCE_COMPLIANCE = Dataset(
    "resource_compliance",
    ("snapshot_date",),
    pa.schema(
        [
            ("account_id", pa.string()),
            ("region", pa.string()),
            ("service", pa.string()),
            ("resource_type", pa.string()),
            ("resource_id", pa.string()),
            ("arn", pa.string()),
            ("name", pa.string()),
            ("in_scope", pa.bool_()),
            ("compliant", pa.bool_()),
            ("compliance_status", pa.string()),
            ("error_violations", pa.int64()),
            ("warning_violations", pa.int64()),
            ("exempted_violations", pa.int64()),
            ("violation_types", pa.list_(pa.string())),
            ("tags", TAGS),
            ("cost_basis", pa.string()),
            ("amortized_cost", MONEY),
            ("unblended_cost", MONEY),
            ("cost_estimated", pa.bool_()),
            ("inventory_as_of", pa.date32()),
            ("policy_version", pa.string()),
        ]
    ),
)

COMPLIANCE_SUMMARY = Dataset(
    "compliance_summary",
    ("snapshot_date",),
    pa.schema(
        [
            ("dimension", pa.string()),
            ("dimension_value", pa.string()),
            ("resources_total", pa.int64()),
            ("resources_in_scope", pa.int64()),
            ("resources_compliant", pa.int64()),
            ("resources_exempt", pa.int64()),
            ("compliance_pct", pa.float64()),
            ("violations", pa.int64()),
            ("error_violations", pa.int64()),
            ("cost_total", MONEY),
            ("cost_in_scope", MONEY),
            ("cost_compliant", MONEY),
            ("cost_compliance_pct", pa.float64()),
            ("inventory_as_of", pa.date32()),
            ("policy_version", pa.string()),
        ]
    ),
)

# One row per Cost Explorer group x metric x day. source: "service" (LINKED_ACCOUNT x SERVICE),
# "tag" (LINKED_ACCOUNT x TAG:key, one request per required key), "resource" (LINKED_ACCOUNT x
# RESOURCE_ID, per service, from GetCostAndUsageWithResources).
COSTS = Dataset(
    "costs",
    ("usage_date", "source"),
    pa.schema(
        [
            ("extracted_at", UTC_TIMESTAMP),
            ("account_id", pa.string()),
            ("service", pa.string()),
            ("group_type", pa.string()),
            ("tag_key", pa.string()),
            ("tag_value", pa.string()),
            ("resource_id", pa.string()),
            ("metric", pa.string()),
            ("amount", MONEY),
            ("unit", pa.string()),
            ("estimated", pa.bool_()),
        ]
    ),
)

# Spend that cannot be attributed to a compliant resource. Rows with tag_key NULL partition the
# gap (non_compliant, out_of_scope, no_resource: they sum to the total gap); rows with a tag_key
# (tag_violation) break the spend of resources failing that key's rule down by key, so a
# resource failing two keys appears under both.
ATTRIBUTION_GAP = Dataset(
    "attribution_gap",
    ("snapshot_date",),
    pa.schema(
        [
            ("account_id", pa.string()),
            ("service", pa.string()),
            ("cost_explorer_service", pa.string()),
            ("resource_type", pa.string()),
            ("tag_key", pa.string()),
            ("gap_reason", pa.string()),
            ("severity", pa.string()),
            ("resources", pa.int64()),
            ("amortized_cost", MONEY),
            ("unblended_cost", MONEY),
            ("cost_basis", pa.string()),
            ("inventory_as_of", pa.date32()),
            ("policy_version", pa.string()),
        ]
    ),
)

API_CALLS = Dataset(
    "api_calls",
    ("snapshot_date",),
    pa.schema(
        [
            ("task", pa.string()),
            ("account_id", pa.string()),
            ("region", pa.string()),
            ("service", pa.string()),
            ("resource_type", pa.string()),
            ("operation", pa.string()),
            ("calls", pa.int64()),
            ("pages", pa.int64()),
            ("items", pa.int64()),
            ("retries", pa.int64()),
            ("throttles", pa.int64()),
            ("errors", pa.int64()),
            ("request_cost_usd", MONEY),
        ]
    ),
)

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        RESOURCES,
        COSTS,
        VIOLATIONS,
        EXEMPTED_VIOLATIONS,
        RESOURCE_COMPLIANCE,
        COMPLIANCE_SUMMARY,
        ATTRIBUTION_GAP,
        API_CALLS,
    )
}

# Partition key types for readers: account ids are strings (leading zeros matter).
HIVE_TYPES: dict[str, str] = {
    "snapshot_date": "DATE",
    "account_id": "VARCHAR",
    "region": "VARCHAR",
    "service": "VARCHAR",
    "usage_date": "DATE",
    "source": "VARCHAR",
}


class SchemaMismatchError(ValueError):
    """A table handed to the lake does not fit the dataset's declared schema."""


def conform(dataset: Dataset, table: pa.Table) -> pa.Table:
    """Select and cast the dataset's columns, naming the first one that does not fit."""
    missing = [name for name in dataset.schema.names if name not in table.column_names]
    if missing:
        raise SchemaMismatchError(f"dataset {dataset.name!r}: missing columns {missing}")
    columns = []
    for field in dataset.schema:
        try:
            columns.append(table[field.name].cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatchError(
                f"dataset {dataset.name!r}: column {field.name!r} of type {table[field.name].type} "
                f"cannot be stored as {field.type}: {exc}"
            ) from exc
    return pa.Table.from_arrays(columns, schema=dataset.schema)


def write_partition(
    root: Path,
    dataset: Dataset,
    partition: Mapping[str, object],
    table: pa.Table,
    part: str = "part-0",
) -> Path:
    """Atomically write (or replace) one file of a partition and return its path."""
    table = conform(dataset, table)
    directory = dataset.partition_dir(root, partition)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{part}.parquet"
    temporary = directory / f".{part}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final


def remove_partition(root: Path, dataset: Dataset, partition: Mapping[str, object]) -> bool:
    """Delete one partition, file by file (a reader sees each file whole or not at all).

    Returns whether there was anything to delete.
    """
    directory = dataset.partition_dir(root, partition)
    if not directory.is_dir():
        return False
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    return True


def dataset_glob(root: Path, dataset: Dataset | str) -> str:
    """Glob of every data file of a dataset, for DuckDB's read_parquet."""
    name = dataset if isinstance(dataset, str) else dataset.name
    return str(Path(root) / name / "**" / "*.parquet")


def has_files(root: Path, dataset: Dataset | str, partition_prefix: str = "") -> bool:
    name = dataset if isinstance(dataset, str) else dataset.name
    base = Path(root) / name / partition_prefix
    return base.exists() and any(base.rglob("*.parquet"))
