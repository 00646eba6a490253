"""The manifest: the seeded estate's ground truth, as Parquet (one row per inventoried resource).

Tests and the demo reconcile the pipeline's ``resources`` and ``violations`` against it, so it holds
only what the pipeline should inventory (no terminated instances) and the ids exactly as the APIs
return them.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tag_compliance.sandbox.estate import EC2, Estate, load_policy

VIOLATION = pa.struct([("tag_key", pa.string()), ("violation_type", pa.string())])
MANIFEST_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("resource_type", pa.string()),
        ("resource_id", pa.string()),
        ("arn", pa.string()),
        ("tags", pa.map_(pa.string(), pa.string())),
        ("expected_violations", pa.list_(VIOLATION)),
        ("service", pa.string()),
        ("state", pa.string()),
    ]
)
RESOURCES_FILE = "resources.parquet"
SUMMARY_FILE = "summary.json"


def manifest_table(estate: Estate) -> pa.Table:
    rows = sorted(
        (r for r in estate.resources if r.inventoried),
        key=lambda r: (r.account_id, r.region, r.resource_type, r.resource_id),
    )
    if any(not r.resource_id or not r.arn for r in rows):
        raise ValueError("the estate has not been seeded: resource ids are missing")
    columns: dict[str, list[Any]] = {
        "account_id": [r.account_id for r in rows],
        "region": [r.region for r in rows],
        "resource_type": [r.resource_type for r in rows],
        "resource_id": [r.resource_id for r in rows],
        "arn": [r.arn for r in rows],
        "tags": [list(r.tags.items()) for r in rows],
        "expected_violations": [
            [{"tag_key": key, "violation_type": kind} for key, kind in r.expected] for r in rows
        ],
        "service": [r.service for r in rows],
        "state": [r.state for r in rows],
    }
    return pa.Table.from_pydict(columns, schema=MANIFEST_SCHEMA)


def summary(estate: Estate) -> dict[str, Any]:
    """Counts a test or a human can check at a glance (deterministic for a seed and scale)."""
    inventory = estate.inventory
    nested: dict[str, dict[str, dict[str, int]]] = {}
    for r in inventory:
        per_region = nested.setdefault(r.account_id, {}).setdefault(r.region, {})
        per_region[r.resource_type] = per_region.get(r.resource_type, 0) + 1
    violations = Counter(kind for r in inventory for _, kind in r.expected)
    by_type_and_kind: dict[str, dict[str, int]] = {}
    for r in inventory:
        for _, kind in r.expected:
            per_type = by_type_and_kind.setdefault(r.resource_type, {})
            per_type[kind] = per_type.get(kind, 0) + 1
    return {
        "seed": estate.seed,
        "scale": estate.scale,
        "policy_version": load_policy().version,
        "accounts": list(estate.accounts),
        "regions": list(estate.regions),
        "resources_total": len(inventory),
        "by_resource_type": dict(sorted(Counter(r.resource_type for r in inventory).items())),
        "by_account": dict(sorted(Counter(r.account_id for r in inventory).items())),
        "by_region": dict(sorted(Counter(r.region for r in inventory).items())),
        "by_account_region_type": nested,
        "ec2_states": dict(
            sorted(Counter(r.state for r in estate.resources if r.resource_type == EC2).items())
        ),
        "terminated_instances": sum(1 for r in estate.resources if not r.inventoried),
        "untagged_resources": sum(1 for r in inventory if not r.tags),
        "resources_without_violations": sum(1 for r in inventory if not r.expected),
        "violations_total": sum(violations.values()),
        "violations_by_type": dict(sorted(violations.items())),
        "violations_by_resource_type": {
            k: dict(sorted(v.items())) for k, v in sorted(by_type_and_kind.items())
        },
    }


def write_manifest(estate: Estate, directory: Path) -> Path:
    """Write ``resources.parquet`` and ``summary.json`` atomically; returns the Parquet path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RESOURCES_FILE
    tmp = directory / f".{RESOURCES_FILE}.{os.getpid()}.tmp"
    pq.write_table(manifest_table(estate), tmp, compression="zstd")
    os.replace(tmp, path)
    tmp_summary = directory / f".{SUMMARY_FILE}.{os.getpid()}.tmp"
    tmp_summary.write_text(json.dumps(summary(estate), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp_summary, directory / SUMMARY_FILE)
    return path


def load_manifest(path: Path | str) -> pa.Table:
    """The manifest table; ``path`` is the Parquet file, its directory, or the sandbox data dir."""
    path = Path(path)
    for candidate in (path, path / RESOURCES_FILE, path / "manifest" / RESOURCES_FILE):
        if candidate.is_file():
            return pq.read_table(candidate, schema=MANIFEST_SCHEMA)
    raise FileNotFoundError(f"no sandbox manifest at {path}")
