"""The manifest: the seeded estate's ground truth, as Parquet (one row per inventoried resource).

Tests and the demo reconcile the pipeline's ``resources`` and ``violations`` against it, so it holds
only what the pipeline should inventory (no terminated instances) and the ids exactly as the APIs
return them.

Layout under ``<data_dir>/manifest/``::

    resources.parquet, summary.json    the estate as moto holds it now (with history: the current day)
    history.json                       with history only: seed, scale, the history days, the current
                                       day, and per day the number of changes by kind and detail
    days/<YYYY-MM-DD>/                 with history only, one directory per day reached so far:
        resources.parquet, summary.json    that day's truth (same schema as above)
        changes.json                       what changed that day (``[]`` on the first day): one object
                                           per change, see :meth:`.timeline.Change.to_json`

A change object: ``day, kind`` (created | deleted | fixed | broken), ``detail`` (the API action for
created / deleted; tag_added, value_corrected, key_case_corrected, prohibited_tag_removed for fixed;
tag_removed, value_invalid, key_case_changed for broken), ``account_id, region, resource_type,
resource_id, arn, name, tag_key`` (the policy key fixed or broken, or the prohibited key removed;
null for created / deleted), ``tags_before, tags_after`` (objects; null where the resource does not
exist) and ``violations_before, violations_after`` (lists of ``{tag_key, violation_type}``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import date
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
CHANGES_FILE = "changes.json"
HISTORY_FILE = "history.json"
DAYS_DIR = "days"


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


def summary(estate: Estate, day: date | None = None) -> dict[str, Any]:
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
        **({"day": day.isoformat()} if day is not None else {}),
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


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(estate: Estate, directory: Path, day: date | None = None) -> Path:
    """Write ``resources.parquet`` and ``summary.json`` atomically; returns the Parquet path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RESOURCES_FILE
    tmp = directory / f".{RESOURCES_FILE}.{os.getpid()}.tmp"
    pq.write_table(manifest_table(estate), tmp, compression="zstd")
    os.replace(tmp, path)
    _write_json(directory / SUMMARY_FILE, summary(estate, day))
    return path


def day_directory(manifest_dir: Path, day: date) -> Path:
    """``<manifest>/days/<YYYY-MM-DD>``: the truth of one day of the history."""
    return Path(manifest_dir) / DAYS_DIR / day.isoformat()


def write_day(estate: Estate, manifest_dir: Path, day: date, changes: list[dict[str, Any]]) -> Path:
    """Write one day's ``resources.parquet``, ``summary.json`` and ``changes.json``; returns its dir."""
    directory = day_directory(manifest_dir, day)
    write_manifest(estate, directory, day)
    _write_json(directory / CHANGES_FILE, changes)
    return directory


def write_history(manifest_dir: Path, history: dict[str, Any]) -> Path:
    path = Path(manifest_dir) / HISTORY_FILE
    _write_json(path, history)
    return path


def _manifest_dir(path: Path) -> Path:
    return path / "manifest" if (path / "manifest").is_dir() else path


def load_manifest(path: Path | str, day: date | None = None) -> pa.Table:
    """The manifest table; ``path`` is the Parquet file, its directory, or the sandbox data dir.

    With ``day`` (a sandbox with history): that day's truth, ``path`` being the manifest directory
    or the sandbox data dir.
    """
    path = Path(path)
    if day is not None:
        path = day_directory(_manifest_dir(path), day)
    for candidate in (path, path / RESOURCES_FILE, path / "manifest" / RESOURCES_FILE):
        if candidate.is_file():
            return pq.read_table(candidate, schema=MANIFEST_SCHEMA)
    raise FileNotFoundError(f"no sandbox manifest at {path}")


def load_changes(path: Path | str, day: date) -> list[dict[str, Any]]:
    """The changes of ``day``; ``path`` is the manifest directory or the sandbox data dir."""
    file = day_directory(_manifest_dir(Path(path)), day) / CHANGES_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no sandbox changes for {day.isoformat()} at {file}")
    return json.loads(file.read_text(encoding="utf-8"))
