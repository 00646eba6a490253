"""Score one snapshot of the lake against a tagging policy with the SQL in ``include/sql``.

The SQL files run in order in one in-memory DuckDB connection; each file's result becomes
a temporary table named after the file, so later files read earlier ones by name. The
policy is registered as Arrow tables (``TaggingPolicy.to_tables``), never spliced into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from tag_compliance import lake
from tag_compliance.config import SQL_DIR
from tag_compliance.policy import TaggingPolicy

# Run in this order; each name is a file in include/sql and the table its result becomes.
SCORING_STEPS: tuple[str, ...] = (
    "snapshot",
    "tag_checks",
    "violations",
    "resource_compliance",
    "compliance_summary",
)

# The steps whose results are written to the lake, and where.
OUTPUTS: dict[str, lake.Dataset] = {
    "violations": lake.VIOLATIONS,
    "resource_compliance": lake.RESOURCE_COMPLIANCE,
    "compliance_summary": lake.COMPLIANCE_SUMMARY,
}


class SnapshotNotFoundError(LookupError):
    """The lake holds no resources for the requested snapshot date."""


@dataclass(frozen=True)
class ScoreResult:
    """What one scoring run wrote: row counts per output and the files written."""

    snapshot_date: date
    policy_version: str
    resources: int
    violations: int
    resource_compliance: int
    compliance_summary: int
    files: dict[str, Path] = field(default_factory=dict)


def load_sql(name: str, sql_dir: Path = SQL_DIR) -> str:
    """The text of ``include/sql/<name>.sql``, without a trailing semicolon (it gets wrapped)."""
    path = Path(sql_dir) / f"{name}.sql"
    return path.read_text(encoding="utf-8").strip().rstrip(";")


def register_policy(con: duckdb.DuckDBPyConnection, policy: TaggingPolicy) -> None:
    """Make the policy visible to SQL as tables (``policy_rules`` etc.), replacing any earlier one."""
    for name, table in policy.to_tables().items():
        con.register(name, table)


def score_resources(con: duckdb.DuckDBPyConnection, policy: TaggingPolicy) -> dict[str, pa.Table]:
    """Score the relation ``snapshot_resources`` visible to ``con``; return the three outputs.

    Separate from ``score_snapshot`` so tests and the sandbox can score resources that do
    not come from the lake, through exactly the same SQL.
    """
    register_policy(con, policy)
    for step in SCORING_STEPS:
        # The step name is one of our constants, never data.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {step} AS\n{load_sql(step)}")
    return {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in OUTPUTS}


def snapshot_files(lake_root: Path, snapshot_date: date) -> list[str]:
    """The ``resources`` files of one snapshot (hidden temporary files excluded)."""
    directory = Path(lake_root) / lake.RESOURCES.name / f"snapshot_date={snapshot_date.isoformat()}"
    if not directory.is_dir():
        return []
    return sorted(
        str(path)
        for path in directory.rglob("*.parquet")
        if not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )


def hive_types(dataset: lake.Dataset) -> dict[str, str]:
    """``lake.HIVE_TYPES`` restricted to the dataset's keys (DuckDB rejects unknown ones)."""
    return {key: lake.HIVE_TYPES[key] for key in dataset.partition_keys if key in lake.HIVE_TYPES}


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory connection with UTC session time, so timestamps never shift."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    return con


def score_snapshot(lake_root: Path, snapshot_date: date, policy: TaggingPolicy) -> ScoreResult:
    """Score one snapshot of ``resources`` and write violations, resource_compliance and
    compliance_summary for that date (atomically; a rerun replaces the earlier results)."""
    lake_root = Path(lake_root)
    files = snapshot_files(lake_root, snapshot_date)
    if not files:
        raise SnapshotNotFoundError(
            f"no resources for snapshot {snapshot_date.isoformat()} in lake "
            f"{lake_root.resolve()} (expected files under "
            f"{lake.RESOURCES.name}/snapshot_date={snapshot_date.isoformat()}/): "
            "run the inventory for that date first"
        )
    with connect() as con:
        con.execute(
            "CREATE TEMP TABLE snapshot_resources AS SELECT * FROM "
            "read_parquet($files, hive_partitioning = true, hive_types = $hive_types)",
            {"files": files, "hive_types": hive_types(lake.RESOURCES)},
        )
        outputs = score_resources(con, policy)
        resource_count = con.execute("SELECT count(*) FROM snapshot").fetchone()[0]

    written = {
        name: lake.write_partition(lake_root, dataset, {"snapshot_date": snapshot_date}, outputs[name])
        for name, dataset in OUTPUTS.items()
    }
    return ScoreResult(
        snapshot_date=snapshot_date,
        policy_version=policy.version,
        resources=resource_count,
        violations=outputs["violations"].num_rows,
        resource_compliance=outputs["resource_compliance"].num_rows,
        compliance_summary=outputs["compliance_summary"].num_rows,
        files=written,
    )
