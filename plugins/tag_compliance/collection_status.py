"""Each planned target's collection status, and the coverage of a snapshot: what collection
reports, ``commit_snapshot`` stores in ``collection_status`` and scoring, the summary, the report
and the run's last check read back. Light: no AWS import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from tag_compliance import lake

COLLECTED, FAILED = "collected", "failed"
NOT_ENABLED = "not_enabled"  # a region the account has not enabled: never called, not planned
TASK_FAILED = "TaskFailed"  # the error code of a target whose collection task ended without a word
STATUS_COLUMNS = tuple(lake.COLLECTION_STATUS.schema.names)


def outcome(
    key: tuple[str, str, str],
    status: str,
    attempts: int,
    *,
    error_code: str | None = None,
    message: str | None = None,
    resources: int = 0,
) -> dict[str, Any]:
    """One target's row of ``collection_status`` (what a collection task reports of it)."""
    service, account_id, region = key
    return {
        "service": service,
        "account_id": account_id,
        "region": region,
        "status": status,
        "error_code": error_code,
        "message": message,
        "attempts": attempts,
        "resources": resources,
    }


def earlier_attempts(
    lake_root: Path, snapshot_date: date, run_id: str | None
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """What an earlier attempt of the same Airflow run left of the day's snapshot: each target's
    status, and for a collected one its committed file; nothing unless that snapshot was committed
    incomplete by ``run_id`` (a complete one is recollected whole when its run is cleared)."""
    snapshot = lake.read_commit(lake_root, lake.SNAPSHOT, snapshot_date)
    if run_id is None or snapshot is None or snapshot.meta.get("airflow_run_id") != run_id:
        return {}
    if snapshot.meta.get("collected") == snapshot.meta.get("targets"):
        return {}
    files = {target_of(file): file for file in snapshot.files_of(lake.RESOURCES)}
    earlier = {}
    for row in status_rows(lake_root, snapshot):
        key = (row["service"], row["account_id"], row["region"])
        if row["status"] == COLLECTED and key in files:
            earlier[key] = {**row, "file": files[key].to_json()}
        elif row["status"] == FAILED:
            earlier[key] = {**row, "status": FAILED}
    return earlier


def status_rows(lake_root: Path, snapshot: lake.Commit) -> list[dict[str, Any]]:
    """The ``collection_status`` rows a snapshot commit lists (none before that dataset existed)."""
    return [
        row
        for file in sorted(snapshot.files_of(lake.COLLECTION_STATUS), key=lambda file: file.path)
        for row in lake.read_data_file(lake_root, file, STATUS_COLUMNS).to_pylist()
    ]


def target_of(file: lake.DataFile) -> tuple[str, str, str]:
    """The (service, account, region) a ``resources`` file holds, from its hive partition."""
    keys = dict(part.split("=", 1) for part in file.partition.split("/"))
    return (keys["service"], keys["account_id"], keys["region"])


@dataclass(frozen=True)
class Coverage:
    """How much of its plan an inventory snapshot collected (``planned`` None: it does not say,
    as for a lake adopted from before commits)."""

    planned: int | None
    collected: int | None
    not_collected: tuple[dict[str, Any], ...] = ()

    @property
    def pct(self) -> float | None:
        if self.planned is None or self.collected is None:
            return None
        return 100.0 * self.collected / self.planned if self.planned else 100.0


def snapshot_coverage(lake_root: Path, snapshot_date: date) -> Coverage:
    """The coverage a committed snapshot records, with its targets that were not collected.

    Snapshots committed before ``collection_status`` existed were committed only when complete:
    their planned count is their collected count."""
    snapshot = lake.read_commit(lake_root, lake.SNAPSHOT, snapshot_date)
    if snapshot is None or "targets" not in snapshot.meta:
        return Coverage(None, None)
    planned = int(snapshot.meta["targets"])
    collected = int(snapshot.meta.get("collected", planned))
    not_collected = tuple(row for row in status_rows(lake_root, snapshot) if row["status"] == FAILED)
    return Coverage(planned, collected, not_collected)


def describe_failure(status: Mapping[str, Any]) -> str:
    return f"{status['service']} {status['account_id']}/{status['region']} ({status['error_code']})"
