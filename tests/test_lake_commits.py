"""Lake commits: what a commit makes visible, what it refuses, and what it cleans up."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tag_compliance import lake
from tag_compliance.collect import IncompleteSnapshotError, commit_snapshot, target_partition
from tag_compliance.collection_status import COLLECTED, FAILED, TASK_FAILED, outcome, snapshot_coverage
from tag_compliance.config import Settings
from tag_compliance.scoring import latest_snapshot_on_or_before, score_snapshot, snapshot_files
from tag_compliance.warehouse import publish_warehouse
from tests.sql_fixtures import RESOURCES, SNAPSHOT, fixture_policy, resources_table, write_snapshot

DAY = date(2026, 3, 14)


def costs_table(amounts: list[str]) -> pa.Table:
    from decimal import Decimal

    rows = [{"account_id": "1", "metric": "AmortizedCost", "amount": Decimal(a)} for a in amounts]
    return pa.Table.from_pylist(rows, schema=lake.COSTS.schema)


def cost_partition(source: str, day: date = DAY) -> dict[str, object]:
    return {"usage_date": day, "source": source}


def test_a_commit_replaces_the_day_whole_and_deletes_what_it_no_longer_lists(tmp_path: Path) -> None:
    first = write_snapshot(tmp_path, RESOURCES)
    second = write_snapshot(tmp_path, RESOURCES[:3])
    assert not any(path.exists() for path in first)
    assert snapshot_files(tmp_path, SNAPSHOT) == sorted(str(path) for path in second)
    assert sum(pq.read_metadata(path).num_rows for path in second) == 3


def test_files_are_invisible_until_committed(tmp_path: Path) -> None:
    partition = target_partition(DAY, "ec2", "012345678901", "us-east-1")
    staged = lake.write_data_file(tmp_path, lake.RESOURCES, partition, resources_table(RESOURCES[:1]), "r1")
    assert (tmp_path / staged.path).is_file()
    assert latest_snapshot_on_or_before(tmp_path, DAY) is None and snapshot_files(tmp_path, DAY) == []
    lake.commit(tmp_path, lake.SNAPSHOT, DAY, [staged], "r1")
    assert snapshot_files(tmp_path, DAY) == [str(tmp_path / staged.path)]


def test_a_commit_refuses_missing_foreign_and_duplicate_files_and_changes_nothing(tmp_path: Path) -> None:
    write_snapshot(tmp_path, RESOURCES, snapshot_date=DAY)
    before = snapshot_files(tmp_path, DAY)
    partition = target_partition(DAY, "ec2", "012345678901", "us-east-1")
    good = lake.write_data_file(tmp_path, lake.RESOURCES, partition, resources_table(RESOURCES[:1]), "r2")
    gone = lake.write_data_file(tmp_path, lake.RESOURCES, partition, resources_table(RESOURCES[:1]), "r3")
    (tmp_path / gone.path).unlink()
    other_day = lake.write_data_file(
        tmp_path,
        lake.RESOURCES,
        target_partition(DAY + timedelta(days=1), "ec2", "1", "r"),
        resources_table([]),
        "r4",
    )
    for files, message in (
        ([gone], "does not exist"),
        ([other_day], "is outside snapshot_date=2026-03-14"),
        ([good, good], "two files for resources/"),
    ):
        with pytest.raises(lake.CommitError, match=message):
            lake.commit(tmp_path, lake.SNAPSHOT, DAY, files, "r")
        assert snapshot_files(tmp_path, DAY) == before
    with pytest.raises(lake.CommitError, match="is not a file of"):
        lake.commit(tmp_path, lake.SCORES, DAY, [good], "r")


def test_a_partial_unit_replaces_only_the_partitions_it_names(tmp_path: Path) -> None:
    lake.write_and_commit(
        tmp_path,
        lake.DAY_COSTS,
        DAY,
        [
            (lake.COSTS, cost_partition("service"), costs_table(["1"])),
            (lake.COSTS, cost_partition("resource"), costs_table(["2"])),
        ],
    )
    lake.write_and_commit(
        tmp_path, lake.DAY_COSTS, DAY, [(lake.COSTS, cost_partition("service"), costs_table(["3"]))]
    )
    day = lake.read_commit(tmp_path, lake.DAY_COSTS, DAY)
    assert sorted(file.partition for file in day.files) == [
        "usage_date=2026-03-14/source=resource",
        "usage_date=2026-03-14/source=service",
    ]
    lake.write_and_commit(
        tmp_path, lake.DAY_COSTS, DAY, [], removed_partitions=[(lake.COSTS, cost_partition("resource"))]
    )
    day = lake.read_commit(tmp_path, lake.DAY_COSTS, DAY)
    assert [file.partition for file in day.files] == ["usage_date=2026-03-14/source=service"]
    assert not list((tmp_path / "costs" / "usage_date=2026-03-14" / "source=resource").glob("*.parquet"))


def test_a_writer_removes_what_a_killed_writer_left_in_its_partitions(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    score_snapshot(tmp_path, SNAPSHOT, fixture_policy())
    directory = lake.VIOLATIONS.partition_dir(tmp_path, {"snapshot_date": SNAPSHOT})
    committed = list(directory.iterdir())
    (directory / "part-killed.parquet").write_bytes(
        pq.read_table(committed[0]).to_pandas().to_parquet() if False else b"x"
    )
    (directory / ".part-killed.parquet.abc.tmp").write_bytes(b"half")
    score_snapshot(tmp_path, SNAPSHOT, fixture_policy())
    assert [path.name for path in directory.iterdir()] == [
        Path(f).name
        for f in lake.read_commit(tmp_path, lake.SCORES, SNAPSHOT).paths(tmp_path, lake.VIOLATIONS)
    ]


PLANNED = {
    "ec2": [{"account_id": "012345678901", "region": "us-east-1"}],
    "s3": [{"account_id": "012345678901", "region": "global"}],
}


def collected_ec2(root: Path, rows: list[dict]) -> dict:
    """What a collection task reports of a collected target."""
    written = lake.write_data_file(
        root,
        lake.RESOURCES,
        target_partition(DAY, "ec2", "012345678901", "us-east-1"),
        resources_table(rows),
        "run",
    )
    return {
        **outcome(("ec2", "012345678901", "us-east-1"), COLLECTED, 1, resources=len(rows)),
        "file": written.to_json(),
    }


def test_a_snapshot_missing_a_target_is_committed_saying_so_never_padded_with_an_older_one(
    tmp_path: Path,
) -> None:
    settings = Settings(lake=tmp_path, accounts=["012345678901"], regions=["us-east-1"])
    earlier = DAY - timedelta(days=1)
    write_snapshot(tmp_path, RESOURCES, snapshot_date=earlier)  # holds s3 buckets of that account
    ec2_rows = [row for row in RESOURCES if row["service"] == "ec2" and row["account_id"] == "012345678901"]
    assert ec2_rows
    snapshot = commit_snapshot(DAY, PLANNED, [collected_ec2(tmp_path, ec2_rows)], settings, run_id="run-1")
    assert snapshot.meta == {"targets": 2, "collected": 1, "airflow_run_id": "run-1"}
    assert latest_snapshot_on_or_before(tmp_path, DAY) == DAY
    coverage = snapshot_coverage(tmp_path, DAY)
    assert (coverage.planned, coverage.collected, coverage.pct) == (2, 1, 50.0)
    assert [(row["service"], row["error_code"]) for row in coverage.not_collected] == [("s3", TASK_FAILED)]
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(tmp_path, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        services = con.execute(
            "SELECT DISTINCT service FROM resources WHERE snapshot_date = ?", [DAY]
        ).fetchall()
        assert services == [("ec2",)]  # the older snapshot's buckets are not taken for today's
        assert con.execute(
            "SELECT service, region, status, error_code, attempts, resources FROM collection_status "
            "WHERE snapshot_date = ? ORDER BY service",
            [DAY],
        ).fetchall() == [
            ("ec2", "us-east-1", "collected", None, 1, len(ec2_rows)),
            ("s3", "global", "failed", TASK_FAILED, 1, 0),
        ]


def test_a_snapshot_with_nothing_collected_is_not_committed_and_the_day_keeps_its_earlier_commit(
    tmp_path: Path,
) -> None:
    settings = Settings(lake=tmp_path, accounts=["012345678901"], regions=["us-east-1"])
    first = commit_snapshot(DAY, PLANNED, [collected_ec2(tmp_path, RESOURCES[:1])], settings, run_id="a")
    failed = [
        outcome(target, FAILED, 1, error_code="AccessDenied", message="cannot assume the role")
        for target in [("ec2", "012345678901", "us-east-1"), ("s3", "012345678901", "global")]
    ]
    with pytest.raises(IncompleteSnapshotError, match=r"none of the 2 planned targets was collected"):
        commit_snapshot(DAY, PLANNED, failed, settings, run_id="b")
    assert lake.read_commit(tmp_path, lake.SNAPSHOT, DAY) == first


def test_a_region_the_account_has_not_enabled_is_listed_but_outside_the_coverage(tmp_path: Path) -> None:
    settings = Settings(lake=tmp_path, accounts=["012345678901"], regions=["us-east-1", "eu-south-1"])
    buckets = lake.write_data_file(
        tmp_path,
        lake.RESOURCES,
        target_partition(DAY, "s3", "012345678901", "global"),
        resources_table([]),
        "run",
    )
    s3 = {**outcome(("s3", "012345678901", "global"), COLLECTED, 1), "file": buckets.to_json()}
    snapshot = commit_snapshot(
        DAY,
        PLANNED,
        [collected_ec2(tmp_path, RESOURCES[:1]), s3],
        settings,
        regions_not_enabled={"012345678901": {"eu-south-1": "DISABLED"}},
    )
    assert (snapshot.meta["targets"], snapshot.meta["collected"]) == (2, 2)
    coverage = snapshot_coverage(tmp_path, DAY)
    assert (coverage.pct, coverage.not_collected) == (100.0, ())
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(tmp_path, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # the regional service's row for the disabled region; the global one has no region to skip
        assert con.execute(
            "SELECT service, region, status, error_code, attempts FROM collection_status "
            "WHERE snapshot_date = ? AND status = 'not_enabled'",
            [DAY],
        ).fetchall() == [("ec2", "eu-south-1", "not_enabled", "DISABLED", 0)]


def test_results_for_targets_that_were_not_planned_are_refused(tmp_path: Path) -> None:
    settings = Settings(lake=tmp_path, accounts=["012345678901"], regions=["us-east-1"])
    with pytest.raises(IncompleteSnapshotError, match="not planned"):
        commit_snapshot(DAY, {"s3": PLANNED["s3"]}, [collected_ec2(tmp_path, [])], settings)
    assert lake.read_commit(tmp_path, lake.SNAPSHOT, DAY) is None


def test_writers_of_different_partitions_at_once_are_all_committed(tmp_path: Path) -> None:
    """Collection tasks write their targets concurrently; scoring of different days too."""
    targets = [("ec2", "012345678901", f"region-{n}") for n in range(8)]
    files: list[lake.DataFile] = []
    lock = threading.Lock()

    def collect(target: tuple[str, str, str]) -> None:
        written = lake.write_data_file(
            tmp_path,
            lake.RESOURCES,
            target_partition(DAY, *target),
            resources_table(RESOURCES[:2]),
            lake.new_run_id(),
        )
        with lock:
            files.append(written)

    def score(day: date) -> None:
        score_snapshot(tmp_path, day, fixture_policy(), inventory_as_of=SNAPSHOT)

    write_snapshot(tmp_path)
    threads = [threading.Thread(target=collect, args=(target,)) for target in targets]
    threads += [threading.Thread(target=score, args=(SNAPSHOT + timedelta(days=n),)) for n in range(1, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lake.commit(tmp_path, lake.SNAPSHOT, DAY, files, "run")
    assert len(snapshot_files(tmp_path, DAY)) == len(targets)
    assert lake.committed_keys(tmp_path, lake.SCORES) == [SNAPSHOT + timedelta(days=n) for n in range(1, 4)]


def test_a_lake_written_before_commits_is_adopted_once(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    score_snapshot(tmp_path, SNAPSHOT, fixture_policy())
    # what an older version left: the same files, no commits
    for path in (tmp_path / lake.COMMITS_DIR).rglob("*.parquet"):
        path.unlink()
    (tmp_path / lake.COMMITS_DIR / "snapshot").rmdir()
    (tmp_path / lake.COMMITS_DIR / "scores").rmdir()
    (tmp_path / lake.COMMITS_DIR).rmdir()
    assert latest_snapshot_on_or_before(tmp_path, SNAPSHOT) is None
    adopted = lake.adopt_files_without_commits(tmp_path)
    assert sorted(commit.unit for commit in adopted) == ["scores", "snapshot"]
    assert latest_snapshot_on_or_before(tmp_path, SNAPSHOT) == SNAPSHOT
    assert len(lake.read_commit(tmp_path, lake.SCORES, SNAPSHOT).files) == 5
    assert lake.adopt_files_without_commits(tmp_path) == []  # once


def _stream(table: pa.Table, fail_after: int | None = None) -> pa.RecordBatchReader:
    """``table`` one row per batch, as a query result streams it; raises after ``fail_after``."""

    def batches():
        for n, batch in enumerate(table.to_batches(max_chunksize=1)):
            if n == fail_after:
                raise OSError("the query failed mid-stream")
            yield batch

    return pa.RecordBatchReader.from_batches(table.schema, batches())


def test_a_stream_is_written_whole_and_in_order_while_it_is_read_ahead(tmp_path: Path) -> None:
    table = resources_table(RESOURCES)
    written = lake.write_data_file(
        tmp_path, lake.RESOURCES, target_partition(DAY, "ec2", "1", "r"), _stream(table), "r1"
    )
    assert written.rows == len(RESOURCES)
    assert (
        pq.read_table(tmp_path / written.path).to_pylist() == lake.conform(lake.RESOURCES, table).to_pylist()
    )


def test_a_stream_that_fails_mid_way_raises_its_error_and_leaves_no_file(tmp_path: Path) -> None:
    before = threading.active_count()
    with pytest.raises(OSError, match="failed mid-stream"):
        lake.write_data_file(
            tmp_path,
            lake.RESOURCES,
            target_partition(DAY, "ec2", "1", "r"),
            _stream(resources_table(RESOURCES), fail_after=2),
            "r1",
        )
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]
    assert threading.active_count() == before  # the read-ahead thread ended with the stream


def test_a_consumer_that_stops_early_stops_the_read_ahead(tmp_path: Path) -> None:
    before = threading.active_count()
    batches = lake._read_ahead(_stream(resources_table(RESOURCES)))
    assert next(batches).num_rows == 1
    batches.close()
    assert threading.active_count() == before
