"""The Parquet lake: dataset schemas (declared once), partition paths, and commits.

Layout: ``<root>/<dataset>/<key>=<value>/.../<part>.parquet`` (hive partitions, zstd).
Partition keys live in the path only; readers get them back as columns through hive
partitioning.

Most datasets are written in **commits** (``CommitUnit``): a writer first writes immutable data
files under names of their own (``part-<run id>.parquet``, each written under a hidden temporary
name and renamed into place), which no reader looks at yet; then one small commit file
``_commits/<unit>/<key>=<value>.parquet`` lists every file of the unit (a collected snapshot, a
scored day, a day of costs). Replacing that one file is the only step that changes what readers
see, so they see the previous complete state or the new complete state, never a mix. Readers
(scoring, the warehouse views, backfills) only read files a commit lists. Files a commit no longer
lists are deleted right after it; files of writers killed before their commit are deleted by the
next writer of the same partition, and by ``sweep`` once they are older than any task can run.
Nothing here renames a directory: the same protocol works on object storage, where one object
is replaced atomically but there is no rename (``storage.LakeLocation.replace`` is a server-side
copy there). Every function takes the lake's root as a local path or ``s3://bucket/prefix``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tag_compliance import storage

log = logging.getLogger(__name__)

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
TAGS = pa.map_(pa.string(), pa.string())
# Money is exact decimal, never float: Cost Explorer sends amounts as decimal strings with up to
# 10 fractional digits, and totals must reconcile to the cent.
MONEY = pa.decimal128(38, 10)


@dataclass(frozen=True)
class Dataset:
    """One lake dataset: its name, hive partition keys and the schema of its files; ``view_order``
    is the ORDER BY of its warehouse view (empty: none)."""

    name: str
    partition_keys: tuple[str, ...]
    schema: pa.Schema
    view_order: tuple[str, ...] = ()

    def partition_dir(self, root: Path, partition: Mapping[str, object]) -> Path:
        """The partition's directory of a local lake."""
        return Path(root) / self.name / self.partition_path(partition)

    def partition_path(self, partition: Mapping[str, object]) -> str:
        """The partition's hive path below the dataset, e.g. ``snapshot_date=2026-11-20/region=...``."""
        missing = [key for key in self.partition_keys if key not in partition]
        extra = sorted(set(partition) - set(self.partition_keys))
        if missing or extra:
            raise ValueError(
                f"dataset {self.name!r}: partition must have keys {list(self.partition_keys)}, "
                f"missing {missing}, unexpected {extra}"
            )
        parts = []
        for key in self.partition_keys:
            value = _partition_value(partition[key])
            if not value or "/" in value or value.startswith("."):
                raise ValueError(f"dataset {self.name!r}: bad partition value {key}={value!r}")
            parts.append(f"{key}={value}")
        return "/".join(parts)

    def empty_table(self) -> pa.Table:
        return self.schema.empty_table()

    @property
    def schema_id(self) -> str:
        """Fingerprint of the schema files are written with now: a reader whose files all carry it
        may take the first file's schema for all, instead of reading every file's to unify them."""
        return hashlib.sha256(self.schema.to_string(show_schema_metadata=False).encode()).hexdigest()[:16]


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

# Every planned (service, account, region) target of a snapshot and how its collection ended:
# ``collected`` (its resources are in the snapshot) or ``failed`` (after retries; the AWS error
# code when AWS gave one, ``TaskFailed`` when its collection task ended without a word). A failed
# target's resources are not in the snapshot: they are not collected, never compliant nor absent.
COLLECTION_STATUS = Dataset(
    "collection_status",
    ("snapshot_date",),
    pa.schema(
        [
            ("service", pa.string()),
            ("account_id", pa.string()),
            ("region", pa.string()),
            ("status", pa.string()),
            ("error_code", pa.string()),
            ("message", pa.string()),
            ("attempts", pa.int32()),
            ("resources", pa.int64()),
        ]
    ),
    view_order=("snapshot_date", "service", "account_id", "region"),
)

# The accounts a snapshot's run knew of: the organisation's, as AWS Organizations lists them
# (every one its walk saw, inventoried or not), or the configured ones (ids only).
ACCOUNTS = Dataset(
    "accounts",
    ("snapshot_date",),
    pa.schema(
        [
            ("account_id", pa.string()),
            ("name", pa.string()),
            ("email_domain", pa.string()),
            ("ou_path", pa.string()),
            ("status", pa.string()),
            ("joined_at", pa.timestamp("us", tz="UTC")),
            ("inventoried", pa.bool_()),
        ]
    ),
    view_order=("snapshot_date", "account_id"),
)

# The scoring outputs (violations, resource_compliance, compliance_summary, attribution_gap) carry
# inventory_as_of: the snapshot_date of the resources scored. It is the output's own snapshot_date,
# except for a backfilled day without an inventory of its own, scored with the nearest earlier one.
# Which violation of which resource (a row of violations, or the target of a tag suggestion).
_VIOLATION_OF_RESOURCE = [
    ("account_id", pa.string()),
    ("region", pa.string()),
    ("resource_type", pa.string()),
    ("resource_id", pa.string()),
    ("arn", pa.string()),
    ("tag_key", pa.string()),
    ("violation_type", pa.string()),
]
VIOLATIONS = Dataset(
    "violations",
    ("snapshot_date",),
    pa.schema(
        [
            *_VIOLATION_OF_RESOURCE,
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
            # The inventory's coverage: its planned (service, account, region) targets, those
            # collected, and 100 * collected / planned; NULL for an inventory that does not say.
            ("targets_planned", pa.int64()),
            ("targets_collected", pa.int64()),
            ("collection_coverage_pct", pa.float64()),
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
            ("usage_type", pa.string()),
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

# History precomputed by ``history.refresh`` (at every publish), one partition per day, so the
# views over many days read these small per-day differences instead of every day's full rows.
_RESOURCE_ORDER = ("snapshot_date", "account_id", "region", "resource_type", "resource_id")
# Which resource changed, and since when.
_CHANGED_RESOURCE = [
    ("previous_snapshot_date", pa.date32()),
    ("account_id", pa.string()),
    ("region", pa.string()),
    ("resource_type", pa.string()),
    ("resource_id", pa.string()),
    ("arn", pa.string()),
]

# What changed in an inventory snapshot since the one before it (the tag_drift view).
TAG_DRIFT = Dataset(
    "tag_drift",
    ("snapshot_date",),
    pa.schema(
        [
            *_CHANGED_RESOURCE,
            ("change", pa.string()),
            ("tag_key", pa.string()),
            ("previous_value", pa.string()),
            ("value", pa.string()),
        ]
    ),
    view_order=(*_RESOURCE_ORDER, "tag_key NULLS FIRST", "change"),
)

# Violations that appeared, went away or changed ARN or severity on a scored day against the
# scored day before it: the episode bookkeeping the violation_history view adds up.
VIOLATION_CHANGES = Dataset(
    "violation_changes",
    ("snapshot_date",),
    pa.schema(
        [
            *_CHANGED_RESOURCE,
            ("tag_key", pa.string()),
            ("violation_type", pa.string()),
            ("severity", pa.string()),
            ("change", pa.string()),
            ("resolution", pa.string()),
        ]
    ),
    view_order=(*_RESOURCE_ORDER, "tag_key NULLS FIRST", "violation_type", "change"),
)

# A value for each fixable violation of a scored day, from its compliant neighbours.
TAG_SUGGESTIONS = Dataset(
    "tag_suggestions",
    ("snapshot_date",),
    pa.schema(
        [
            *_VIOLATION_OF_RESOURCE,
            ("current_key", pa.string()),
            ("current_value", pa.string()),
            ("suggested_value", pa.string()),
            ("action", pa.string()),
            ("confidence", pa.float64()),
            ("evidence", pa.string()),
            ("evidence_detail", pa.string()),
            ("neighbours", pa.int64()),
            ("agreeing", pa.int64()),
        ]
    ),
    view_order=(*_RESOURCE_ORDER, "tag_key"),
)

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        RESOURCES,
        COLLECTION_STATUS,
        ACCOUNTS,
        COSTS,
        VIOLATIONS,
        EXEMPTED_VIOLATIONS,
        RESOURCE_COMPLIANCE,
        COMPLIANCE_SUMMARY,
        ATTRIBUTION_GAP,
        API_CALLS,
        TAG_DRIFT,
        VIOLATION_CHANGES,
        TAG_SUGGESTIONS,
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
    for column in dataset.schema:
        found = table[column.name]
        if found.type == column.type:  # a cast is a copy even to the same type
            columns.append(found)
            continue
        try:
            columns.append(found.cast(column.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatchError(
                f"dataset {dataset.name!r}: column {column.name!r} of type {table[column.name].type} "
                f"cannot be stored as {column.type}: {exc}"
            ) from exc
    return pa.Table.from_arrays(columns, schema=dataset.schema)


def _write_parquet_atomically(table: pa.Table, location: storage.LakeLocation, final: str) -> None:
    """Write under a hidden temporary name in the final directory, then move into place: a
    reader (or a crash) never sees half a file. Readers and globs skip names starting with '.'."""
    _write_batches_atomically(iter([table]), table.schema, location, final)


def _write_batches_atomically(
    tables: Iterator[pa.Table], schema: pa.Schema, location: storage.LakeLocation, final: str
) -> int:
    """``_write_parquet_atomically`` for data that arrives in pieces (a streamed query result),
    so a large output is never whole in memory; returns the rows written.

    On object storage the upload itself is invisible until complete, but a writer that fails
    half-way would still close (and so publish) a truncated file under its name: the temporary
    name keeps that away from readers there too."""
    directory, _, name = final.rpartition("/")
    temporary = f"{directory}/{TEMPORARY_PREFIX}{name}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"
    location.make_parent(final)
    location.audit("write", temporary)
    filesystem, path = location.arrow(temporary)
    rows, pending = 0, []
    try:
        with pq.ParquetWriter(path, schema, compression="zstd", filesystem=filesystem) as writer:
            for table in tables:  # small batches are gathered: one row group each would be many
                pending.append(table)
                rows += table.num_rows
                if sum(piece.num_rows for piece in pending) >= ROW_GROUP_ROWS:
                    writer.write_table(pa.concat_tables(pending))
                    pending = []
            if pending:
                writer.write_table(pa.concat_tables(pending))
        location.replace(temporary, final)
    finally:
        location.delete(temporary)
    return rows


TEMPORARY_PREFIX = "."
TEMPORARY_SUFFIX = ".tmp"
ROW_GROUP_ROWS = 128 * 1024
"""Rows gathered before a streamed write makes a row group."""
STREAM_BATCH_ROWS = 16 * 1024
"""Rows per batch a DuckDB result is streamed in: a batch is whole in memory on both sides of
the hand-over, and at 1M resources 16k-row batches cut the score's peak RSS by about 200 MiB
against row-group-sized ones, for no measurable time (``make bench``)."""


def write_partition(
    root: Path,
    dataset: Dataset,
    partition: Mapping[str, object],
    table: pa.Table,
    part: str = "part-0",
) -> Path:
    """Atomically write (or replace) one file of a dataset that is not written in commits.

    Only ``api_calls`` is: each of its files is a fact of its own (one task's requests), kept
    even when the task failed. Datasets of a ``CommitUnit`` go through ``write_data_file`` and
    ``commit`` instead, so that their files become visible together.
    """
    if dataset.name in COMMITTED_DATASETS:
        raise ValueError(
            f"dataset {dataset.name!r} is written in commits of unit "
            f"{COMMITTED_DATASETS[dataset.name].name!r}: use write_data_file() and commit()"
        )
    table = conform(dataset, table)
    location = storage.locate(root)
    directory = f"{dataset.name}/{dataset.partition_path(partition)}"
    name = f"{part}.parquet"
    _remove_temporaries_of(location, f"{directory}/{name}")  # its only writer
    _write_parquet_atomically(table, location, f"{directory}/{name}")
    return location.url(f"{directory}/{name}")


def _remove_temporaries_of(location: storage.LakeLocation, final: str) -> None:
    """Delete the temporaries a killed writer of ``final`` left (only its one writer may call this)."""
    directory, _, name = final.rpartition("/")
    for leftover, _ in location.files_below(directory):
        if leftover.rpartition("/")[2].startswith(f"{TEMPORARY_PREFIX}{name}.") and _is_temporary(leftover):
            location.delete(leftover)


def dataset_glob(root: Path, dataset: Dataset | str) -> str:
    """Glob of every data file of a dataset, for DuckDB's read_parquet (committed or not: a
    reader of a committed dataset must also filter on its commits, see ``CommitUnit``)."""
    return storage.locate(root).url(files_pattern(dataset))


def files_pattern(dataset: Dataset | str) -> str:
    """``dataset_glob`` relative to the lake's root."""
    name = dataset if isinstance(dataset, str) else dataset.name
    return f"{name}/**/*.parquet"


def has_files(root: Path, dataset: Dataset | str, partition_prefix: str = "") -> bool:
    """Whether a dataset (not written in commits) has a visible file under the prefix."""
    name = dataset if isinstance(dataset, str) else dataset.name
    base = f"{name}/{partition_prefix}".rstrip("/")
    return any(
        path.endswith(".parquet") and not _is_hidden(path, base)
        for path, _ in storage.locate(root).files_below(base)
    )


def _is_hidden(path: str, below: str) -> bool:
    """Whether a path (relative to the lake) has a hidden part below ``below``."""
    return any(part.startswith(TEMPORARY_PREFIX) for part in path.removeprefix(below).split("/") if part)


# --- commits ---------------------------------------------------------------------------------

COMMITS_DIR = "_commits"


@dataclass(frozen=True)
class CommitUnit:
    """What becomes visible to readers as a whole: every file of its datasets for one key value.

    ``key`` is the first partition key of each of its datasets (a snapshot date, a usage date).
    A commit of a unit lists all its files for that key (``partial=False``: the new commit
    replaces the old one whole), or, with ``partial=True``, the files of the partitions it names
    (the old commit's other partitions stay: a re-extraction of one day's service costs keeps
    its resource costs).
    """

    name: str
    key: str
    datasets: tuple[Dataset, ...]
    partial: bool = False

    def commit_file(self, key_value: date) -> str:
        """The commit file of one key, relative to the lake's root."""
        return f"{COMMITS_DIR}/{self.name}/{self.key}={_partition_value(key_value)}.parquet"

    def commit_path(self, root: Path | str, key_value: date) -> str:
        return storage.locate(root).url(self.commit_file(key_value))

    def commits_glob(self, root: Path | str) -> str:
        """Glob of this unit's commit files, for DuckDB's read_parquet (hidden temporaries excluded)."""
        return storage.locate(root).url(self.commits_pattern)

    @property
    def commits_pattern(self) -> str:
        """``commits_glob`` relative to the lake's root."""
        return f"{COMMITS_DIR}/{self.name}/{self.key}=*.parquet"


# A collected inventory snapshot: the file of every planned (account, region, service) target
# that was collected, and the status of every planned target.
SNAPSHOT = CommitUnit("snapshot", "snapshot_date", (RESOURCES, COLLECTION_STATUS, ACCOUNTS))
# A scored day: its five outputs, scored together by one run with one policy version.
SCORES = CommitUnit(
    "scores",
    "snapshot_date",
    (VIOLATIONS, EXEMPTED_VIOLATIONS, RESOURCE_COMPLIANCE, COMPLIANCE_SUMMARY, ATTRIBUTION_GAP),
)
# A day of Cost Explorer data: one file per source extracted (service, tag, resource).
DAY_COSTS = CommitUnit("costs", "usage_date", (COSTS,), partial=True)
# An inventory snapshot's drift, a scored day's violation changes and tag suggestions; each
# commit's meta names the commits it was computed from, so ``history.refresh`` knows when one is
# out of date.
DRIFT = CommitUnit("drift", "snapshot_date", (TAG_DRIFT,))
CHANGES = CommitUnit("violation_changes", "snapshot_date", (VIOLATION_CHANGES,))
SUGGESTIONS = CommitUnit("tag_suggestions", "snapshot_date", (TAG_SUGGESTIONS,))

COMMIT_UNITS: tuple[CommitUnit, ...] = (SNAPSHOT, SCORES, DAY_COSTS, DRIFT, CHANGES, SUGGESTIONS)
COMMITTED_DATASETS: dict[str, CommitUnit] = {
    dataset.name: unit for unit in COMMIT_UNITS for dataset in unit.datasets
}

# One row per file of a commit (a commit of no files has one row with dataset and path NULL).
COMMIT_SCHEMA = pa.schema(
    [
        ("unit", pa.string()),
        ("key", pa.date32()),
        ("run_id", pa.string()),
        ("committed_at", UTC_TIMESTAMP),
        ("dataset", pa.string()),
        ("partition", pa.string()),
        ("path", pa.string()),
        ("rows", pa.int64()),
        ("meta", pa.string()),
        ("schema_id", pa.string()),  # the file's Dataset.schema_id; NULL for files adopted or older
    ]
)

# Longer than any task of the DAG may run (every task has an execution_timeout below it, which
# tests/test_dag_integrity.py checks): an uncommitted file this old has no live writer.
STRAY_FILE_GRACE = timedelta(hours=12)


class CommitError(RuntimeError):
    """A commit that would make an incomplete or inconsistent state visible; nothing was changed."""


def new_run_id(now: datetime | None = None) -> str:
    """A writer's own id, unique and sortable by time: it names the data files it writes."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class DataFile:
    """One immutable data file of a commit, by paths relative to the lake root (POSIX)."""

    dataset: str
    partition: str  # hive path below the dataset, e.g. "snapshot_date=2026-11-20/account_id=..."
    path: str  # e.g. "resources/snapshot_date=2026-11-20/.../part-<run id>.parquet"
    rows: int
    schema_id: str | None = None  # the schema it was written with; None: not known

    def to_json(self) -> dict[str, Any]:
        """For XCom: a collection task hands its file to the task that commits the snapshot."""
        return {
            "dataset": self.dataset,
            "partition": self.partition,
            "path": self.path,
            "rows": self.rows,
            "schema_id": self.schema_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DataFile:
        schema_id = data.get("schema_id")
        return cls(
            str(data["dataset"]),
            str(data["partition"]),
            str(data["path"]),
            int(data["rows"]),
            None if schema_id is None else str(schema_id),
        )


@dataclass(frozen=True)
class Commit:
    """The committed state of one key of a unit: which files readers read, and facts about them."""

    unit: str
    key: date
    run_id: str
    committed_at: datetime
    files: tuple[DataFile, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def files_of(self, dataset: Dataset | str) -> list[DataFile]:
        name = dataset if isinstance(dataset, str) else dataset.name
        return [file for file in self.files if file.dataset == name]

    def paths(self, root: Path | str, dataset: Dataset | str | None = None) -> list[str]:
        """Paths of the committed files (of one dataset) as DuckDB reads them, in a stable order."""
        files = self.files if dataset is None else self.files_of(dataset)
        location = storage.locate(root)
        return sorted(location.url(file.path) for file in files)


def _partition_path(dataset: Dataset, partition: Mapping[str, object]) -> str:
    return dataset.partition_path(partition)


def write_data_file(
    root: Path,
    dataset: Dataset,
    partition: Mapping[str, object],
    data: pa.Table | pa.RecordBatchReader,
    run_id: str,
) -> DataFile:
    """Write one immutable, not yet visible file of a committed dataset; ``commit`` publishes it.

    ``data`` may be a stream of record batches (a DuckDB result), written as it arrives."""
    if dataset.name not in COMMITTED_DATASETS:
        raise ValueError(f"dataset {dataset.name!r} is not written in commits: use write_partition()")
    batches = data.to_batches() if isinstance(data, pa.Table) else _read_ahead(data)
    tables = (conform(dataset, pa.Table.from_batches([batch])) for batch in batches)
    partition_path = _partition_path(dataset, partition)
    relative = f"{dataset.name}/{partition_path}/part-{run_id}.parquet"
    rows = _write_batches_atomically(tables, dataset.schema, storage.locate(root), relative)
    return DataFile(dataset.name, partition_path, relative, rows, dataset.schema_id)


READ_AHEAD_BATCHES = 1
"""Batches of a stream read ahead while the previous one is encoded: more bought no time at 1M
resources and cost 20-40 MiB of peak RSS."""


def _read_ahead(reader: pa.RecordBatchReader, depth: int = READ_AHEAD_BATCHES) -> Iterator[pa.RecordBatch]:
    """The reader's batches, produced by a thread of their own: the query that makes them (DuckDB)
    and the Parquet encoder that takes them both release the GIL, so they overlap instead of
    taking turns (0.5-1 s of a 1M-resource score, ``make bench``). At most ``depth`` batches
    wait; an error of the reader is raised here, and a consumer that stops early stops it."""
    waiting: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(depth)
    stopped = threading.Event()

    def offer(item: pa.RecordBatch | BaseException | None) -> bool:
        while not stopped.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in reader:
                if not offer(batch):
                    return
            offer(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)

    producer = threading.Thread(target=produce, name="lake-read-ahead", daemon=True)
    producer.start()
    try:
        while (item := waiting.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        producer.join()


def read_data_file(root: Path | str, file: DataFile, columns: Sequence[str] | None = None) -> pa.Table:
    """One committed file's rows (partition keys are in its path, not in the file)."""
    return _read_parquet_file(storage.locate(root), file.path, columns=list(columns) if columns else None)


def _read_parquet_file(location: storage.LakeLocation, relative: str, **options: Any) -> pa.Table:
    """One Parquet file read whole: on object storage one ranged GET or two, where a dataset read
    of the path would first ask whether it is a directory."""
    filesystem, path = location.arrow(relative)
    if filesystem is None:
        return pq.read_table(path, **options)
    with filesystem.open_input_file(path) as source:
        return pq.read_table(source, **options)


def read_commit(root: Path, unit: CommitUnit, key_value: date) -> Commit | None:
    """The current commit of one key, or None when that key was never committed."""
    try:
        table = _read_parquet_file(storage.locate(root), unit.commit_file(key_value))
    except FileNotFoundError:
        return None
    for column in COMMIT_SCHEMA:  # a commit written before a column existed has NULL there
        if column.name not in table.column_names:
            table = table.append_column(column, pa.nulls(table.num_rows, column.type))
    rows = table.select(COMMIT_SCHEMA.names).to_pylist()
    first = rows[0]
    return Commit(
        unit=unit.name,
        key=first["key"],
        run_id=first["run_id"],
        committed_at=first["committed_at"],
        files=tuple(
            DataFile(row["dataset"], row["partition"], row["path"], row["rows"], row["schema_id"])
            for row in rows
            if row["path"] is not None
        ),
        meta=json.loads(first["meta"] or "{}"),
    )


def committed_keys(root: Path, unit: CommitUnit) -> list[date]:
    """Every key value of the unit that has a commit, in order."""
    keys = []
    for path, _ in storage.locate(root).files_below(f"{COMMITS_DIR}/{unit.name}"):
        name = path.rpartition("/")[2]
        if not (name.startswith(f"{unit.key}=") and name.endswith(".parquet")):
            continue
        try:
            keys.append(date.fromisoformat(name.removeprefix(f"{unit.key}=").removesuffix(".parquet")))
        except ValueError:
            continue
    return sorted(keys)


def has_commits(root: Path, unit: CommitUnit) -> bool:
    return bool(committed_keys(root, unit))


def _check_files(root: Path, unit: CommitUnit, key_value: date, files: Sequence[DataFile]) -> None:
    """Every file belongs to the unit's datasets under this key, exists, and is listed once."""
    datasets = {dataset.name for dataset in unit.datasets}
    prefix = f"{unit.key}={_partition_value(key_value)}"
    where = f"commit of {unit.name} {prefix}"
    seen: set[tuple[str, str]] = set()
    for file in files:
        if file.dataset not in datasets:
            raise CommitError(f"{where}: {file.path} is not a file of {sorted(datasets)}")
        if not (file.partition == prefix or file.partition.startswith(prefix + "/")):
            raise CommitError(f"{where}: {file.path} is outside {prefix}")
        if (file.dataset, file.partition) in seen:
            raise CommitError(f"{where}: two files for {file.dataset}/{file.partition}")
        seen.add((file.dataset, file.partition))
        if not storage.locate(root).is_file(file.path):
            raise CommitError(
                f"{where}: {file.path} does not exist (deleted by another writer "
                "of the same partition?); nothing was committed"
            )


def commit(
    root: Path,
    unit: CommitUnit,
    key_value: date,
    files: Sequence[DataFile],
    run_id: str,
    meta: Mapping[str, Any] | None = None,
    removed_partitions: Iterable[tuple[Dataset, Mapping[str, object]]] = (),
) -> Commit:
    """Make ``files`` the visible state of one key of the unit, in one atomic step.

    Replaces the previous commit whole, or for a ``partial`` unit only in the partitions that
    ``files`` and ``removed_partitions`` name. Files the new commit no longer lists are deleted
    afterwards (a reader already reading them may fail, but never sees a mix).
    """
    location = storage.locate(root)
    _check_files(root, unit, key_value, files)
    previous = read_commit(root, unit, key_value)
    kept: list[DataFile] = []
    if unit.partial and previous is not None:
        replaced = {(file.dataset, file.partition) for file in files} | {
            (dataset.name, _partition_path(dataset, partition)) for dataset, partition in removed_partitions
        }
        kept = [file for file in previous.files if (file.dataset, file.partition) not in replaced]
    new_files = sorted([*kept, *files], key=lambda file: file.path)
    committed_at = datetime.now(UTC)
    meta_text = json.dumps(dict(meta or {}), sort_keys=True, default=str)
    common = {"unit": unit.name, "key": key_value, "run_id": run_id, "committed_at": committed_at}
    rows: list[dict[str, Any]] = [{**common, **file.to_json(), "meta": meta_text} for file in new_files] or [
        {**common, "meta": meta_text}
    ]
    table = pa.Table.from_pylist(rows, schema=COMMIT_SCHEMA)
    _remove_temporaries_of(location, unit.commit_file(key_value))  # the key's only committer
    _write_parquet_atomically(table, location, unit.commit_file(key_value))
    if previous is not None:
        still_listed = {file.path for file in new_files}
        for file in previous.files:
            if file.path not in still_listed:
                location.delete(file.path)
    log.info("committed %s %s=%s: %d files (run %s)", unit.name, unit.key, key_value, len(new_files), run_id)
    return Commit(unit.name, key_value, run_id, committed_at, tuple(new_files), json.loads(meta_text))


def discard_uncommitted(
    root: Path | str,
    unit: CommitUnit,
    key_value: date,
    partitions: Iterable[tuple[Dataset, Mapping[str, object]]],
) -> list[str]:
    """Delete what killed writers left in these partitions: files no commit lists, temporaries.

    Called by a writer before it writes the partitions, as their only writer (one task per
    target; scoring and cost extraction run in one-slot pools). Returns what was deleted.
    """
    current = read_commit(root, unit, key_value)
    listed = {file.path for file in current.files} if current else set()
    location = storage.locate(root)
    deleted = []
    for dataset, partition in partitions:
        directory = f"{dataset.name}/{dataset.partition_path(partition)}"
        for path, _ in location.files_below(directory):
            if "/" in path.removeprefix(directory + "/"):
                continue  # a deeper partition's file, not this one's
            stray_file = path.endswith(".parquet") and path not in listed
            if stray_file or _is_temporary(path):
                location.delete(path)
                deleted.append(location.url(path))
    if deleted:
        log.info("removed %d files left by an earlier, unfinished writer: %s", len(deleted), deleted[:5])
    return deleted


def write_and_commit(
    root: Path,
    unit: CommitUnit,
    key_value: date,
    tables: Iterable[tuple[Dataset, Mapping[str, object], pa.Table | pa.RecordBatchReader]],
    meta: Mapping[str, Any] | None = None,
    removed_partitions: Sequence[tuple[Dataset, Mapping[str, object]]] = (),
) -> Commit:
    """Write one writer's partitions of a unit and commit them, for a writer that does all of it.

    ``tables`` is consumed one item at a time, so it may produce streamed query results lazily
    (one DuckDB connection streams one result at a time). What an earlier, killed writer of
    these partitions left is removed first.
    """
    discard_uncommitted(root, unit, key_value, removed_partitions)
    run_id = new_run_id()
    files = []
    for dataset, partition, data in tables:
        discard_uncommitted(root, unit, key_value, [(dataset, partition)])
        files.append(write_data_file(root, dataset, partition, data, run_id))
    return commit(root, unit, key_value, files, run_id, meta, removed_partitions)


def _is_temporary(path: str) -> bool:
    name = path.rpartition("/")[2]
    return name.startswith(TEMPORARY_PREFIX) and name.endswith(TEMPORARY_SUFFIX)


def sweep(
    root: Path | str, older_than: timedelta = STRAY_FILE_GRACE, now: datetime | None = None
) -> list[str]:
    """Delete every file of a killed writer in the whole lake: uncommitted data files and
    temporaries older than ``older_than`` (younger ones may belong to a writer still running)."""
    location = storage.locate(root)
    cutoff = (now or datetime.now(UTC)).timestamp() - older_than.total_seconds()
    deleted = []
    for unit in COMMIT_UNITS:
        listed = {
            file.path
            for key_value in committed_keys(root, unit)
            for file in (read_commit(root, unit, key_value) or _NO_COMMIT).files
        }
        for dataset in unit.datasets:
            for path, modified in location.files_below(dataset.name):
                stray = _is_temporary(path) or (path.endswith(".parquet") and path not in listed)
                if stray and modified < cutoff:
                    location.delete(path)
                    deleted.append(location.url(path))
    for directory in (COMMITS_DIR, API_CALLS.name):
        for path, modified in location.files_below(directory):
            if _is_temporary(path) and modified < cutoff:
                location.delete(path)
                deleted.append(location.url(path))
    if deleted:
        log.info("swept %d files of killed writers from %s", len(deleted), location.root)
    return deleted


_NO_COMMIT = Commit("", date.min, "", datetime.min.replace(tzinfo=UTC), ())


LEGACY_RUN_ID = "adopted"


def adopt_files_without_commits(root: Path) -> list[Commit]:
    """Commit the files of a lake written before commits existed, as they were visible then.

    Runs once: a lake that has a commit directory is left alone. Without it, readers that
    only read committed files would see nothing of the history such a lake holds.
    """
    location = storage.locate(root)
    if location.remote or Path(location.url(COMMITS_DIR)).exists():
        return []  # a lake on object storage was never written without commits
    adopted = []
    for unit in COMMIT_UNITS:
        by_key: dict[date, list[DataFile]] = {}
        for dataset in unit.datasets:
            for path, _ in location.files_below(dataset.name):
                if not path.endswith(".parquet") or _is_hidden(path, dataset.name):
                    continue
                partition = path.removeprefix(f"{dataset.name}/").rpartition("/")[0]
                first = partition.split("/", 1)[0]
                try:
                    key_value = date.fromisoformat(first.removeprefix(f"{unit.key}="))
                except ValueError:
                    continue
                rows = pq.ParquetFile(location.url(path)).metadata.num_rows
                by_key.setdefault(key_value, []).append(DataFile(dataset.name, partition, path, rows))
        for key_value, files in sorted(by_key.items()):
            adopted.append(commit(root, unit, key_value, files, LEGACY_RUN_ID, {"adopted": True}))
    Path(location.url(COMMITS_DIR)).mkdir(parents=True, exist_ok=True)
    if adopted:
        log.info("adopted %d units of files written before commits existed in %s", len(adopted), root)
    return adopted
