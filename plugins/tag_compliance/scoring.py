"""Score one snapshot of the lake against a tagging policy with the SQL in ``include/sql``.

The SQL files run in order in one in-memory DuckDB connection; each file's result becomes a
temporary table or view (``VIEW_STEPS``) named after the file, so later files read earlier ones
by name, and the outputs stream from DuckDB into the lake's files. The
policy is registered as Arrow tables (``TaggingPolicy.to_tables``), never spliced into SQL.
The Cost Explorer rows of the snapshot's day are registered the same way (``snapshot_costs``,
``cost_coverage``, ``cost_service_map``), so every resource gets its cost of that day, and so is
``run_info`` (one row: ``inventory_as_of``, the date of the resources scored).

A backfilled day may have no inventory of its own: it is scored with the nearest earlier one
(``latest_snapshot_on_or_before``), its own day's costs and the current policy, and its outputs
record ``inventory_as_of`` (``score_snapshot(..., inventory_as_of=...)``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from tag_compliance import lake, storage
from tag_compliance.aws.collectors import cost_mappings
from tag_compliance.collection_status import Coverage, snapshot_coverage
from tag_compliance.config import SQL_DIR, Settings
from tag_compliance.policy import TaggingPolicy

# Run in this order; each name is a file in include/sql and the table its result becomes.
SCORING_STEPS: tuple[str, ...] = (
    "snapshot",
    "applicable_rules",
    "tag_checks",
    "failed_checks",
    "failed_check_rows",
    "violations",
    "exempted_violations",
    "resource_costs",
    "resource_violations",
    "resource_compliance",
    "compliance_summary",
    "attribution_gap",
    "resource_compliance_rows",
)

# Steps that are views, not tables: the snapshot and resource_compliance (read from the files
# by each step that needs them, columns pushed down), the checks (read once, by failed_checks)
# and the outputs no later step reads (streamed into the lake writer).
VIEW_STEPS = frozenset(
    {
        "snapshot",
        "tag_checks",
        "resource_compliance",
        "failed_check_rows",
        "violations",
        "exempted_violations",
        "resource_compliance_rows",
    }
)

# The steps whose results are written to the lake, and where. Only the dataset's columns are
# kept (resource_compliance also carries resource_key for the steps after it).
OUTPUTS: dict[str, lake.Dataset] = {
    "violations": lake.VIOLATIONS,
    "exempted_violations": lake.EXEMPTED_VIOLATIONS,
    "resource_compliance": lake.RESOURCE_COMPLIANCE,
    "compliance_summary": lake.COMPLIANCE_SUMMARY,
    "attribution_gap": lake.ATTRIBUTION_GAP,
}

# ``snapshot_costs`` as the SQL sees it: the lake's costs columns plus the hive key ``source``
# ('service', 'tag' or 'resource').
COST_ROWS_SCHEMA = pa.schema([*lake.COSTS.schema, pa.field("source", pa.string())])
COST_SERVICE_MAP_SCHEMA = pa.schema(
    [
        pa.field("cost_explorer_service", pa.string()),
        pa.field("service", pa.string()),
        pa.field("resource_type", pa.string()),
    ]
)
COST_USAGE_TYPES_SCHEMA = pa.schema(
    [
        pa.field("cost_explorer_service", pa.string()),
        pa.field("usage_type_prefix", pa.string()),
        pa.field("resource_type", pa.string()),
    ]
)
COST_COVERAGE_SCHEMA = pa.schema(
    [pa.field("has_costs", pa.bool_()), pa.field("has_resource_costs", pa.bool_())]
)
# ``run_info``: one row describing the run itself (data, never spliced into SQL text).
RUN_INFO_SCHEMA = pa.schema(
    [
        pa.field("inventory_as_of", pa.date32()),
        pa.field("scored_date", pa.date32()),
        pa.field("targets_planned", pa.int64()),
        pa.field("targets_collected", pa.int64()),
    ]
)


class SnapshotNotFoundError(LookupError):
    """The lake holds no resources for the requested snapshot (inventory) date."""


@dataclass(frozen=True)
class DayCosts:
    """The Cost Explorer rows of one usage day, and which kinds of them were extracted.

    ``has_costs``: the day's service totals were extracted (a ``source=service`` partition
    exists, even an empty one: then the day cost nothing). Without them there is no total to
    attribute, so every cost column is NULL. ``has_resource_costs``: resource-level rows were
    extracted too (the partition exists; zero rows means "nothing reported per resource"), so
    resources are costed from their own rows rather than a share of the service total.
    """

    rows: pa.Table
    has_costs: bool
    has_resource_costs: bool

    @classmethod
    def none(cls) -> DayCosts:
        """No costs for the day: cost columns NULL, no attribution gap rows."""
        return cls(COST_ROWS_SCHEMA.empty_table(), has_costs=False, has_resource_costs=False)

    @classmethod
    def of(cls, rows: pa.Table, sources: Iterable[str] | None = None) -> DayCosts:
        """Cost rows (``COST_ROWS_SCHEMA`` columns) whose extracted sources are ``sources``
        (default: the ``source`` values present in the rows)."""
        # A column added to the lake later (usage_type) reads as NULL from files written before.
        rows = pa.Table.from_arrays(
            [
                rows[column.name].cast(column.type)
                if column.name in rows.column_names
                else pa.nulls(rows.num_rows, column.type)
                for column in COST_ROWS_SCHEMA
            ],
            schema=COST_ROWS_SCHEMA,
        )
        present = set(rows["source"].to_pylist()) if sources is None else set(sources)
        has_costs = "service" in present
        return cls(rows, has_costs=has_costs, has_resource_costs=has_costs and "resource" in present)


@dataclass(frozen=True)
class ScoreResult:
    """What one scoring run wrote: row counts per output and the files written.

    ``inventory_as_of``: the date of the resources snapshot scored (``snapshot_date`` unless an
    earlier inventory was reused for a backfilled day).
    """

    snapshot_date: date
    policy_version: str
    resources: int
    violations: int
    resource_compliance: int
    compliance_summary: int
    attribution_gap: int = 0
    exempted_violations: int = 0
    has_costs: bool = False
    has_resource_costs: bool = False
    files: dict[str, str] = field(default_factory=dict)
    inventory_as_of: date | None = None


def load_sql(name: str, sql_dir: Path = SQL_DIR) -> str:
    """The text of ``include/sql/<name>.sql``, without a trailing semicolon (it gets wrapped)."""
    path = Path(sql_dir) / f"{name}.sql"
    return path.read_text(encoding="utf-8").strip().rstrip(";")


def register_policy(con: duckdb.DuckDBPyConnection, policy: TaggingPolicy) -> None:
    """Make the policy visible to SQL as tables (``policy_rules`` etc.), replacing any earlier one."""
    for name, table in policy.to_tables().items():
        con.register(name, table)


def cost_service_map_table() -> pa.Table:
    """``cost_service_map``: each costed resource type -> its Cost Explorer SERVICE value."""
    mappings = sorted(cost_mappings(), key=lambda mapping: mapping.resource_type)
    return pa.table(
        {
            "cost_explorer_service": [mapping.cost_explorer_service for mapping in mappings],
            "service": [mapping.service for mapping in mappings],
            "resource_type": [mapping.resource_type for mapping in mappings],
        },
        schema=COST_SERVICE_MAP_SCHEMA,
    )


def cost_usage_types_table() -> pa.Table:
    """``cost_usage_types``: for a SERVICE several types share, which usage types are whose."""
    rows = sorted(
        (mapping.cost_explorer_service, prefix, mapping.resource_type)
        for mapping in cost_mappings()
        for prefix in mapping.usage_types
    )
    return pa.Table.from_pylist(
        [dict(zip(COST_USAGE_TYPES_SCHEMA.names, row, strict=True)) for row in rows],
        schema=COST_USAGE_TYPES_SCHEMA,
    )


def register_costs(con: duckdb.DuckDBPyConnection, costs: DayCosts) -> None:
    """Make the day's costs visible to SQL: ``snapshot_costs``, ``cost_coverage``, ``cost_service_map``,
    ``cost_usage_types``."""
    con.register("snapshot_costs", costs.rows)
    con.register(
        "cost_coverage",
        pa.table(
            {"has_costs": [costs.has_costs], "has_resource_costs": [costs.has_resource_costs]},
            schema=COST_COVERAGE_SCHEMA,
        ),
    )
    con.register("cost_service_map", cost_service_map_table())
    con.register("cost_usage_types", cost_usage_types_table())


def register_run_info(
    con: duckdb.DuckDBPyConnection,
    inventory_as_of: date | None,
    scored_date: date | None,
    coverage: Coverage | None = None,
) -> None:
    """Make ``run_info`` visible to SQL: one row, ``inventory_as_of`` and ``scored_date`` (DATEs,
    may be NULL), and the inventory's ``targets_planned`` and ``targets_collected`` (NULL when
    it does not say)."""
    coverage = coverage or Coverage(None, None)
    row = {
        "inventory_as_of": [inventory_as_of],
        "scored_date": [scored_date],
        "targets_planned": [coverage.planned],
        "targets_collected": [coverage.collected],
    }
    con.register("run_info", pa.table(row, schema=RUN_INFO_SCHEMA))


def run_scoring_steps(
    con: duckdb.DuckDBPyConnection,
    policy: TaggingPolicy,
    costs: DayCosts | None = None,
    inventory_as_of: date | None = None,
    scored_date: date | None = None,
    coverage: Coverage | None = None,
) -> None:
    """Run the scoring SQL over the relation ``keyed_resources`` visible to ``con`` (the
    resources with a unique, stable ``resource_key``); each output can then be read as
    ``output_query(name)``. ``coverage``: how much of its plan the inventory collected."""
    scored_date = scored_date if scored_date is not None else inventory_as_of
    if policy.exemptions and scored_date is None:
        raise ValueError(
            f"policy {policy.version} has exemptions, which expire: pass the scored_date they are judged on"
        )
    register_policy(con, policy)
    register_costs(con, costs if costs is not None else DayCosts.none())
    register_run_info(con, inventory_as_of, scored_date, coverage)
    for step in SCORING_STEPS:
        # The step name is one of our constants, never data.
        kind = "VIEW" if step in VIEW_STEPS else "TABLE"
        con.execute(f"CREATE OR REPLACE TEMP {kind} {step} AS\n{load_sql(step)}")


# The relation each output is read from, where it is not the output's own name.
OUTPUT_RELATIONS = {"resource_compliance": "resource_compliance_rows"}


def output_query(name: str) -> str:
    """The SELECT of one output's lake columns (names from our own schemas, never from data)."""
    columns = ", ".join(_identifier(column) for column in OUTPUTS[name].schema.names)
    return f"SELECT {columns} FROM {OUTPUT_RELATIONS.get(name, name)}"


def score_resources(
    con: duckdb.DuckDBPyConnection,
    policy: TaggingPolicy,
    costs: DayCosts | None = None,
    inventory_as_of: date | None = None,
    scored_date: date | None = None,
) -> dict[str, pa.Table]:
    """Score the relation ``snapshot_resources`` visible to ``con``; return the outputs.

    ``costs`` are the Cost Explorer rows of the snapshot's day; without them the resources are
    scored as of a day with no costs (cost columns NULL, no attribution gap rows).
    ``inventory_as_of`` is the date the resources were inventoried, recorded in every output's
    ``inventory_as_of`` column; NULL when not given (resources that do not come from a lake
    snapshot have no inventory date). ``scored_date`` is the day being scored, the day the
    policy's exemptions are judged on (default ``inventory_as_of``); a policy with exemptions
    needs one of the two. Separate from ``score_snapshot`` so tests and the sandbox can score
    resources that do not come from the lake, through exactly the same SQL.
    """
    # Keys numbered once and kept: the snapshot view reads them many times.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE keyed_resources AS "
        "SELECT row_number() OVER () AS resource_key, * FROM snapshot_resources"
    )
    run_scoring_steps(con, policy, costs, inventory_as_of, scored_date)
    return {name: con.sql(output_query(name)).to_arrow_table() for name in OUTPUTS}


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def snapshot_files(lake_root: Path, snapshot_date: date) -> list[str]:
    """The ``resources`` files of one committed snapshot; [] when it was never committed (an
    inventory whose collection did not finish is never read as a snapshot)."""
    snapshot = lake.read_commit(lake_root, lake.SNAPSHOT, snapshot_date)
    return snapshot.paths(lake_root, lake.RESOURCES) if snapshot else []


def latest_snapshot_on_or_before(lake_root: Path, day: date) -> date | None:
    """The nearest committed inventory snapshot on or before ``day`` (even one that found no
    resources: an inventory that found nothing); None when there is none."""
    earlier = [snapshot for snapshot in lake.committed_keys(lake_root, lake.SNAPSHOT) if snapshot <= day]
    return earlier[-1] if earlier else None


def scored_dates(lake_root: Path) -> list[date]:
    """Every snapshot_date with committed scores."""
    return lake.committed_keys(lake_root, lake.SCORES)


def cost_files(lake_root: Path, usage_date: date) -> dict[str, list[str]]:
    """The committed ``costs`` files of one usage day by source.

    A source is listed when the day's commit has a file for it, even a zero-row one: that
    means "extracted, nothing there".
    """
    day = lake.read_commit(lake_root, lake.DAY_COSTS, usage_date)
    found: dict[str, list[str]] = {}
    for file in day.files if day else ():
        source = file.partition.rsplit("/", 1)[-1].removeprefix("source=")
        found.setdefault(source, []).append(storage.locate(lake_root).url(file.path))
    return {source: sorted(paths) for source, paths in sorted(found.items())}


def read_day_costs(con: duckdb.DuckDBPyConnection, lake_root: Path, usage_date: date) -> DayCosts:
    """The costs of one usage day from the lake (all sources), or ``DayCosts.none()``."""
    files_by_source = cost_files(lake_root, usage_date)
    if not files_by_source:
        return DayCosts.none()
    files = [path for paths in files_by_source.values() for path in paths]
    # Every column the files have; DayCosts.of casts them to our schema (NULL for a missing one).
    rows = con.sql(
        "SELECT * FROM read_parquet($files, hive_partitioning = true, "
        "hive_types = $hive_types, union_by_name = true)",
        params={"files": files, "hive_types": hive_types(lake.COSTS)},
    ).to_arrow_table()
    return DayCosts.of(rows, sources=files_by_source)


def hive_types(dataset: lake.Dataset) -> dict[str, str]:
    """``lake.HIVE_TYPES`` restricted to the dataset's keys (DuckDB rejects unknown ones)."""
    return {key: lake.HIVE_TYPES[key] for key in dataset.partition_keys if key in lake.HIVE_TYPES}


@dataclass(frozen=True)
class EngineLimits:
    """How much of the machine DuckDB may use; beyond ``memory_limit`` it spills to
    ``temp_directory`` instead of failing. None leaves DuckDB's default (80% of RAM, every core)."""

    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: Path | None = None

    @classmethod
    def of(cls, settings: Settings) -> EngineLimits:
        """The limits the settings give every DAG task that runs DuckDB."""
        return cls(settings.duckdb_memory_limit, settings.duckdb_threads)


def connect(
    limits: EngineLimits | None = None, lake_root: Path | str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with UTC session time, so timestamps never shift, that reads the
    lake at ``lake_root`` (on object storage too).

    Insertion order is not preserved: every output that has an order says so with ORDER BY,
    and DuckDB then needs far less memory for large intermediate results."""
    config: dict[str, str | int | bool] = {
        "preserve_insertion_order": False,
        **storage.DUCKDB_CONFIG,  # never a download: s3:// goes through the registered filesystem
    }
    limits = limits or EngineLimits()
    if limits.memory_limit is not None:
        config["memory_limit"] = limits.memory_limit
    if limits.threads is not None:
        config["threads"] = limits.threads
    if limits.temp_directory is not None:
        config["temp_directory"] = str(limits.temp_directory)
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con if lake_root is None else storage.locate(lake_root).register(con)


def register_snapshot(con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
    """``keyed_resources``: a view over the snapshot's files, keyed by file and row.

    The key is ``file_index << 32 | file_row_number``: unique, and the same on every read (a
    ``row_number()`` over a parallel scan is neither), so the snapshot needs no copy."""
    con.execute(
        "CREATE OR REPLACE TEMP VIEW keyed_resources AS "
        "SELECT (file_index::BIGINT << 32) + file_row_number AS resource_key, * "
        f"FROM {read_files_sql(files, lake.RESOURCES)}"
    )


def read_files_sql(files: list[str], dataset: lake.Dataset) -> str:
    """``read_parquet`` of these files of a dataset, partition keys typed as the lake types them.

    For a view (which cannot take parameters): the paths are the lake's own, from its commits,
    quoted as SQL strings."""
    paths = ", ".join(_sql_string(path) for path in files)
    types = ", ".join(f"{_sql_string(key)}: {_sql_string(kind)}" for key, kind in hive_types(dataset).items())
    return f"read_parquet([{paths}], hive_partitioning = true, hive_types = {{{types}}})"


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def score_snapshot(
    lake_root: Path,
    snapshot_date: date,
    policy: TaggingPolicy,
    inventory_as_of: date | None = None,
    limits: EngineLimits | None = None,
) -> ScoreResult:
    """Score ``snapshot_date`` and write its violations, resource_compliance, compliance_summary
    and attribution_gap in one commit (readers see the earlier results or these, never a mix;
    a rerun replaces the earlier results).

    The resources scored are the inventory snapshot of ``inventory_as_of`` (default
    ``snapshot_date``; a backfill passes ``latest_snapshot_on_or_before(lake_root, day)``); the
    costs are those of ``snapshot_date``; the outputs go under ``snapshot_date=`` and record
    ``inventory_as_of``. An inventory after ``snapshot_date`` is refused (ValueError): a day is
    never scored with resources seen later.
    """
    inventory_as_of = snapshot_date if inventory_as_of is None else inventory_as_of
    if inventory_as_of > snapshot_date:
        raise ValueError(
            f"cannot score snapshot {snapshot_date.isoformat()} with the later inventory of "
            f"{inventory_as_of.isoformat()}: inventory_as_of must be on or before the snapshot date"
        )
    files = snapshot_files(lake_root, inventory_as_of)
    if not files:
        scoring = (
            f"snapshot {snapshot_date.isoformat()}"
            if inventory_as_of == snapshot_date
            else f"inventory {inventory_as_of.isoformat()} (to score snapshot {snapshot_date.isoformat()})"
        )
        raise SnapshotNotFoundError(
            f"no resources for {scoring} in lake {storage.locate(lake_root).root} (no committed snapshot "
            f"{lake.SNAPSHOT.commit_file(inventory_as_of)}; an inventory whose collection did not "
            "finish is never scored): run the inventory for that date first"
        )
    # The day's five outputs become visible together, in one commit, with one policy version;
    # each is streamed from DuckDB into its file, never whole in memory.
    partition = {"snapshot_date": snapshot_date}
    limits = limits or EngineLimits()
    with (
        tempfile.TemporaryDirectory(prefix="tag-compliance-spill-") as spill,
        connect(replace(limits, temp_directory=limits.temp_directory or Path(spill)), lake_root) as con,
    ):
        register_snapshot(con, files)
        costs = read_day_costs(con, lake_root, snapshot_date)
        coverage = snapshot_coverage(lake_root, inventory_as_of)
        run_scoring_steps(con, policy, costs, inventory_as_of, snapshot_date, coverage)
        resource_count = con.execute("SELECT count(*) FROM snapshot").fetchall()[0][0]
        scored = lake.write_and_commit(
            lake_root,
            lake.SCORES,
            snapshot_date,
            (  # lazily: each result streams while it is written, then the next one starts
                (dataset, partition, con.sql(output_query(name)).to_arrow_reader(lake.STREAM_BATCH_ROWS))
                for name, dataset in OUTPUTS.items()
            ),
            meta={"policy_version": policy.version, "inventory_as_of": inventory_as_of.isoformat()},
        )
    written = {name: scored.paths(lake_root, dataset)[0] for name, dataset in OUTPUTS.items()}
    rows = {file.dataset: file.rows for file in scored.files}
    return ScoreResult(
        snapshot_date=snapshot_date,
        policy_version=policy.version,
        resources=resource_count,
        violations=rows[lake.VIOLATIONS.name],
        resource_compliance=rows[lake.RESOURCE_COMPLIANCE.name],
        compliance_summary=rows[lake.COMPLIANCE_SUMMARY.name],
        attribution_gap=rows[lake.ATTRIBUTION_GAP.name],
        exempted_violations=rows[lake.EXEMPTED_VIOLATIONS.name],
        has_costs=costs.has_costs,
        has_resource_costs=costs.has_resource_costs,
        files=written,
        inventory_as_of=inventory_as_of,
    )
