"""History precomputed in the lake, so the views that span days read one small partition per day.

``tag_drift`` (what changed in an inventory since the one before it) and ``violation_changes``
(violations opened, resolved or updated on a scored day against the scored day before it, which
``violation_history`` adds up into episodes) each depend on a day and on the day before it only;
``tag_suggestions`` on its day only.
``refresh`` computes every day whose partition is missing or out of date, and nothing else: each
day's commit records the commits it was computed from (the day's, the previous day's, and the
SQL's fingerprint), so a backfilled day, a rescore, a new inventory or a new release of the SQL
recomputes exactly the days it changes (itself and the next one), and a daily run one day. A
lake written before this existed gets every day computed by its first refresh.

``refresh`` runs before every publish (in the one-slot ``warehouse_writes`` pool, like scoring):
the views show the history as of the last publish.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from tag_compliance import lake
from tag_compliance.config import SQL_DIR
from tag_compliance.scoring import EngineLimits, connect, load_sql, read_files_sql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DailyHistory:
    """One dataset derived from each pair of consecutive days of a source unit.

    A day of the source is one whose commit holds rows of ``counted`` (an inventory that found
    nothing is not an inventory, a scored day without resources is not scored), as the views
    over the full history always counted them. ``inputs`` names the views the SQL reads and
    the source datasets they show, from the day and from the day before it.
    """

    unit: lake.CommitUnit
    source: lake.CommitUnit
    counted: lake.Dataset
    sql: str
    inputs: Mapping[str, tuple[str, lake.Dataset]]
    first_day_has_rows: bool = True
    uses_previous: bool = True

    @property
    def dataset(self) -> lake.Dataset:
        return self.unit.datasets[0]


DRIFT = DailyHistory(
    unit=lake.DRIFT,
    source=lake.SNAPSHOT,
    counted=lake.RESOURCES,
    sql="history/tag_drift_day",
    inputs={
        "current_inventory": ("day", lake.RESOURCES),
        "previous_inventory": ("previous", lake.RESOURCES),
    },
    first_day_has_rows=False,  # the first inventory has nothing to differ from
)

VIOLATION_CHANGES = DailyHistory(
    unit=lake.CHANGES,
    source=lake.SCORES,
    counted=lake.RESOURCE_COMPLIANCE,
    sql="history/violation_changes_day",
    inputs={
        "current_violations": ("day", lake.VIOLATIONS),
        "previous_violations": ("previous", lake.VIOLATIONS),
        "current_resources": ("day", lake.RESOURCE_COMPLIANCE),
    },
    first_day_has_rows=True,  # every violation of the first scored day opens an episode
)

# The suggestions of a day need only that day, but every neighbour of every target in it: too
# much to compute each time the view is asked (about 20 s for a day of 1M resources).
TAG_SUGGESTIONS = DailyHistory(
    unit=lake.SUGGESTIONS,
    source=lake.SCORES,
    counted=lake.RESOURCE_COMPLIANCE,
    sql="tag_suggestions",
    inputs={
        "violations": ("day", lake.VIOLATIONS),
        "exempted_violations": ("day", lake.EXEMPTED_VIOLATIONS),
        "resource_compliance": ("day", lake.RESOURCE_COMPLIANCE),
    },
    uses_previous=False,
)

HISTORIES: tuple[DailyHistory, ...] = (DRIFT, VIOLATION_CHANGES, TAG_SUGGESTIONS)


def source_days(lake_root: Path, history: DailyHistory) -> dict[date, lake.Commit]:
    """The source's days, in order, with their commits."""
    days = {}
    for key in lake.committed_keys(lake_root, history.source):
        found = lake.read_commit(lake_root, history.source, key)
        if found is not None and sum(file.rows for file in found.files_of(history.counted)) > 0:
            days[key] = found
    return days


def _fingerprint(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()[:16]


def _inputs(day: lake.Commit, previous: lake.Commit | None, sql: str) -> dict[str, str | None]:
    """What a day's partition is computed from: when any of it changes, the partition is stale."""
    return {
        "day": day.run_id,
        "previous_date": previous.key.isoformat() if previous else None,
        "previous": previous.run_id if previous else None,
        "sql": _fingerprint(sql),
    }


def _register_input(
    con: duckdb.DuckDBPyConnection, name: str, dataset: lake.Dataset, files: list[str]
) -> None:
    """``name``: a view of the committed files (partition keys as columns), or no rows."""
    if not files:
        keys = [
            pa.field(key, pa.date32() if lake.HIVE_TYPES.get(key) == "DATE" else pa.string())
            for key in dataset.partition_keys
        ]
        con.register(name, pa.schema([*keys, *dataset.schema]).empty_table())
        return
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {read_files_sql(files, dataset)}")


def _compute_day(
    lake_root: Path,
    history: DailyHistory,
    day: lake.Commit,
    previous: lake.Commit | None,
    sql: str,
    connection: Callable[[], duckdb.DuckDBPyConnection],
) -> lake.Commit:
    partition = {"snapshot_date": day.key}
    meta = {"inputs": _inputs(day, previous, sql)}
    if previous is None and not history.first_day_has_rows:
        return lake.write_and_commit(lake_root, history.unit, day.key, [], meta=meta)
    with connection() as con:
        for name, (which, dataset) in history.inputs.items():
            source = day if which == "day" else previous
            files = source.paths(lake_root, dataset) if source else []
            _register_input(con, name, dataset, files)
        params = None
        if history.uses_previous:
            params = {"snapshot_date": day.key, "previous_snapshot_date": previous.key if previous else None}
        reader = con.sql(sql, params=params).to_arrow_reader(lake.STREAM_BATCH_ROWS)
        return lake.write_and_commit(
            lake_root, history.unit, day.key, [(history.dataset, partition, reader)], meta=meta
        )


@dataclass(frozen=True)
class Refreshed:
    """What one refresh did: the days recomputed, and the days emptied (no longer a source day)."""

    computed: dict[str, list[date]]
    emptied: dict[str, list[date]]


def refresh(
    lake_root: Path,
    limits: EngineLimits | None = None,
    sql_dir: Path = SQL_DIR,
    histories: tuple[DailyHistory, ...] = HISTORIES,
) -> Refreshed:
    """Bring every day of the precomputed histories up to date with the lake; see the module."""
    limits = limits or EngineLimits()
    computed: dict[str, list[date]] = {}
    emptied: dict[str, list[date]] = {}
    with tempfile.TemporaryDirectory(prefix="tag-compliance-spill-") as spill:

        def connection() -> duckdb.DuckDBPyConnection:
            return connect(replace(limits, temp_directory=limits.temp_directory or Path(spill)), lake_root)

        for history in histories:
            sql = load_sql(history.sql, sql_dir)
            days = source_days(lake_root, history)
            previous: lake.Commit | None = None
            for key, day in days.items():
                current = lake.read_commit(lake_root, history.unit, key)
                before = previous if history.uses_previous else None
                if current is None or current.meta.get("inputs") != _inputs(day, before, sql):
                    _compute_day(lake_root, history, day, before, sql, connection)
                    computed.setdefault(history.dataset.name, []).append(key)
                previous = day
            for key in lake.committed_keys(lake_root, history.unit):
                if key in days:
                    continue
                stale = lake.read_commit(lake_root, history.unit, key)
                if stale is not None and stale.files:  # that day is no longer a source day
                    lake.write_and_commit(lake_root, history.unit, key, [], meta={"inputs": None})
                    emptied.setdefault(history.dataset.name, []).append(key)
    for name, keys in computed.items():
        log.info("%s: computed %d days (%s .. %s)", name, len(keys), keys[0], keys[-1])
    return Refreshed(computed, emptied)
