"""The warehouse file: views over the lake, typed even when empty, replaced atomically."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tag_compliance import lake
from tag_compliance.config import SQL_DIR
from tag_compliance.scoring import score_snapshot
from tag_compliance.warehouse import (
    DERIVED_VIEWS,
    VIEW_COLUMNS,
    QueryRefusedError,
    check_select_only,
    connect_read_only,
    lake_roots,
    publish_warehouse,
    view_columns,
    views_markdown,
)
from tests.conftest import REPO_ROOT
from tests.sql_fixtures import ACCOUNT_1, RESOURCES, SNAPSHOT, committed_file, fixture_policy, write_snapshot

DATASET_VIEWS = [
    "resources",
    "collection_status",
    "accounts",
    "costs",
    "violations",
    "exempted_violations",
    "resource_compliance",
    "compliance_summary",
    "attribution_gap",
    "api_calls",
    "tag_drift",  # precomputed per day by history.refresh since issue 12
    "violation_changes",
    "tag_suggestions",
]
VIEWS = [
    *DATASET_VIEWS,
    "account_names",
    "untagged_spend",
    "compliance_trend",
    "violation_history",
    "coverage",
]
# Column types of the derived views (the dataset views' come from lake.py).
DERIVED_VIEW_TYPES = {
    "account_names": [
        ("account_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("named_as_of", "DATE"),
    ],
    "coverage": [
        ("snapshot_date", "DATE"),
        ("account_id", "VARCHAR"),
        ("region", "VARCHAR"),
        ("resource_type", "VARCHAR"),
        ("resources", "BIGINT"),
        ("service_api_resources", "BIGINT"),
        ("tagging_api_resources", "BIGINT"),
        ("never_tagged_visible", "BOOLEAN"),
        ("amortized_cost", "DECIMAL(38,10)"),
        ("unblended_cost", "DECIMAL(38,10)"),
        ("inventory_as_of", "DATE"),
    ],
    "untagged_spend": [
        ("usage_date", "DATE"),
        ("account_id", "VARCHAR"),
        ("tag_key", "VARCHAR"),
        ("untagged_amortized_cost", "DECIMAL(38,10)"),
        ("untagged_unblended_cost", "DECIMAL(38,10)"),
        ("total_amortized_cost", "DECIMAL(38,10)"),
        ("total_unblended_cost", "DECIMAL(38,10)"),
        ("untagged_pct", "DOUBLE"),
        ("estimated", "BOOLEAN"),
    ],
    "compliance_trend": [
        ("snapshot_date", "DATE"),
        ("dimension", "VARCHAR"),
        ("dimension_value", "VARCHAR"),
        ("resources_in_scope", "BIGINT"),
        ("resources_compliant", "BIGINT"),
        ("resources_exempt", "BIGINT"),
        ("compliance_pct", "DOUBLE"),
        ("violations", "BIGINT"),
        ("cost_in_scope", "DECIMAL(38,10)"),
        ("cost_compliant", "DECIMAL(38,10)"),
        ("cost_compliance_pct", "DOUBLE"),
        ("previous_snapshot_date", "DATE"),
        ("previous_compliance_pct", "DOUBLE"),
        ("compliance_pct_change", "DOUBLE"),
        ("previous_cost_compliance_pct", "DOUBLE"),
        ("cost_compliance_pct_change", "DOUBLE"),
        ("violations_change", "BIGINT"),
        ("inventory_as_of", "DATE"),
        ("policy_version", "VARCHAR"),
    ],
    "tag_drift": [
        ("snapshot_date", "DATE"),
        ("previous_snapshot_date", "DATE"),
        ("account_id", "VARCHAR"),
        ("region", "VARCHAR"),
        ("resource_type", "VARCHAR"),
        ("resource_id", "VARCHAR"),
        ("arn", "VARCHAR"),
        ("change", "VARCHAR"),
        ("tag_key", "VARCHAR"),
        ("previous_value", "VARCHAR"),
        ("value", "VARCHAR"),
    ],
    "violation_history": [
        ("account_id", "VARCHAR"),
        ("region", "VARCHAR"),
        ("resource_type", "VARCHAR"),
        ("resource_id", "VARCHAR"),
        ("arn", "VARCHAR"),
        ("tag_key", "VARCHAR"),
        ("violation_type", "VARCHAR"),
        ("severity", "VARCHAR"),
        ("first_seen", "DATE"),
        ("last_seen", "DATE"),
        ("snapshots_seen", "BIGINT"),
        ("days_open", "BIGINT"),
        ("status", "VARCHAR"),
        ("resolved_on", "DATE"),
        ("resolution", "VARCHAR"),
        ("days_to_resolve", "BIGINT"),
    ],
    "tag_suggestions": [
        ("snapshot_date", "DATE"),
        ("account_id", "VARCHAR"),
        ("region", "VARCHAR"),
        ("resource_type", "VARCHAR"),
        ("resource_id", "VARCHAR"),
        ("arn", "VARCHAR"),
        ("tag_key", "VARCHAR"),
        ("violation_type", "VARCHAR"),
        ("current_key", "VARCHAR"),
        ("current_value", "VARCHAR"),
        ("suggested_value", "VARCHAR"),
        ("action", "VARCHAR"),
        ("confidence", "DOUBLE"),
        ("evidence", "VARCHAR"),
        ("evidence_detail", "VARCHAR"),
        ("neighbours", "BIGINT"),
        ("agreeing", "BIGINT"),
    ],
}


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    write_snapshot(root)
    score_snapshot(root, SNAPSHOT, fixture_policy())
    return root


def describe(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {view}").fetchall()]


def test_views_exist_with_documented_columns(lake_root: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    assert publish_warehouse(lake_root, warehouse) == VIEWS
    with duckdb.connect(str(warehouse), read_only=True) as con:
        views = {
            row[0]
            for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        assert views == set(VIEWS)
        for view in DATASET_VIEWS:
            assert describe(con, view) == view_columns(lake.DATASETS[view])
        for view in DERIVED_VIEWS:
            assert describe(con, view) == DERIVED_VIEW_TYPES[view]
        for view in VIEWS:
            assert [name for name, _ in describe(con, view)] == list(VIEW_COLUMNS[view])
        counts = {view: con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] for view in VIEWS}
    assert counts == {
        "resources": 10,
        "collection_status": 0,  # written by commit_snapshot; the fixture commits its files itself
        "accounts": 0,  # staged by the organisation task
        "costs": 0,
        "violations": 15,
        "exempted_violations": 0,  # the fixture policy has no exemptions
        "resource_compliance": 10,
        "compliance_summary": 20,
        "attribution_gap": 0,  # no costs for the day
        "api_calls": 0,
        "account_names": 0,  # no accounts listed
        "untagged_spend": 0,
        "compliance_trend": 20,  # one row per summary row, none with a previous snapshot
        "tag_drift": 0,  # a single inventory
        "violation_changes": 15,  # on the first scored day every violation opens
        "violation_history": 15,  # every violation is a one-snapshot open episode
        "tag_suggestions": 5,  # the violations of ec2 instances: other ec2 instances carry valid values
        "coverage": 7,  # the 10 resources' (account, region, type) groups
    }


def test_coverage_counts_every_scored_resource_by_the_source_that_saw_it(
    lake_root: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(lake_root, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        per_group = con.execute(
            "SELECT account_id, region, resource_type, count(*) FROM resource_compliance GROUP BY ALL"
        ).fetchall()
        coverage = con.execute(
            "SELECT account_id, region, resource_type, resources, service_api_resources, "
            "tagging_api_resources, never_tagged_visible, amortized_cost FROM coverage"
        ).fetchall()
    assert sorted(coverage) == sorted(
        (account, region, resource_type, n, n, 0, True, None)
        for account, region, resource_type, n in per_group
    )


def test_partition_keys_keep_their_types(lake_root: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(lake_root, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        types = dict(describe(con, "resources"))
        assert (types["account_id"], types["snapshot_date"]) == ("VARCHAR", "DATE")
        accounts = con.execute("SELECT DISTINCT account_id FROM resources ORDER BY 1").fetchall()
        assert accounts[0] == (ACCOUNT_1,)  # '012345678901', leading zero intact
        assert con.execute(
            "SELECT count(*) FROM violations WHERE account_id = ? AND snapshot_date = ?",
            [ACCOUNT_1, SNAPSHOT],
        ).fetchone() == (11,)


def test_empty_lake_gives_typed_zero_row_views(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(tmp_path / "no-lake-yet", warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for view in VIEWS:
            assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)
        for view in DATASET_VIEWS:
            assert describe(con, view) == view_columns(lake.DATASETS[view])
        for view in DERIVED_VIEWS:
            assert describe(con, view) == DERIVED_VIEW_TYPES[view]
        assert dict(describe(con, "resources"))["tags"] == "MAP(VARCHAR, VARCHAR)"
        assert dict(describe(con, "costs"))["amount"] == "DECIMAL(38,10)"


def test_rerun_replaces_the_file_and_picks_up_new_data(lake_root: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    empty_lake = tmp_path / "empty"
    publish_warehouse(empty_lake, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM resources").fetchone() == (0,)

    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE VIEW stale AS SELECT 1 AS x")

    publish_warehouse(lake_root, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = {
            row[0]
            for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
    assert names == set(VIEWS)  # replaced, not updated in place
    write_snapshot(lake_root, RESOURCES[:3], snapshot_date=date(2026, 3, 15))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # The views read the lake at query time: a new snapshot shows without republishing.
        rows = con.execute("SELECT snapshot_date, count(*) FROM resources GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [(SNAPSHOT, 10), (date(2026, 3, 15), 3)]
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def test_views_use_absolute_lake_paths(
    lake_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(lake_root.parent)
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(Path("lake"), warehouse)
    monkeypatch.chdir("/")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM resources").fetchone() == (10,)
        sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'resources'").fetchone()[0]
    assert str(lake_root.resolve()) in sql


def test_files_written_before_a_column_existed_read_it_as_null(lake_root: Path, tmp_path: Path) -> None:
    """A column added with a migration note (inventory_as_of) reads as NULL from older files, even
    when no file of the dataset has it yet."""
    summary = committed_file(lake_root, lake.COMPLIANCE_SUMMARY)
    pq.write_table(pq.read_table(summary).drop_columns(["inventory_as_of"]), summary)
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(lake_root, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(inventory_as_of), any_value(policy_version) FROM compliance_summary"
        ).fetchone() == (20, 0, "test-2026.1")
        assert con.execute("SELECT DISTINCT inventory_as_of FROM violations").fetchall() == [(SNAPSHOT,)]


def test_every_view_column_is_documented() -> None:
    assert list(VIEW_COLUMNS) == [*lake.DATASETS, *DERIVED_VIEWS]
    for view, columns in VIEW_COLUMNS.items():
        assert all(text.strip() for text in columns.values()), view
    for name, dataset in lake.DATASETS.items():
        assert list(VIEW_COLUMNS[name]) == [column for column, _ in view_columns(dataset)], name


def test_derived_view_sql_files_have_produces_header() -> None:
    for view in DERIVED_VIEWS:
        first_line = (SQL_DIR / f"{view}.sql").read_text().splitlines()[0]
        assert first_line.startswith(f"-- Produces: {view} "), view


def test_the_readme_documents_every_view_and_column():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    documented = readme.split("<!-- views:start -->\n", 1)[1].split("<!-- views:end -->", 1)[0]
    assert documented == views_markdown()


# --- the readers' connection (issue 11, defect 4) ------------------------------------------------


def test_the_read_only_connection_is_locked_down_by_duckdb_itself(
    lake_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What DuckDB refuses on its own, with no statement check in front (report and
    remediation-plan rely on this alone; they run only the project's SQL)."""
    monkeypatch.setenv("TAG_COMPLIANCE_LAKE", str(tmp_path / "configured-lake"))
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(lake_root, warehouse)
    outside = tmp_path / "outside.csv"
    outside.write_text("password\nhunter2\n", encoding="utf-8")
    with connect_read_only(warehouse) as con:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
                "'autoload_known_extensions', 'autoinstall_known_extensions', 'lock_configuration')"
            ).fetchall()
        )
        assert settings == {
            "enable_external_access": "false",
            "autoload_known_extensions": "false",
            "autoinstall_known_extensions": "false",
            "lock_configuration": "true",
        }
        # The lake roots as a whole (the views' and TAG_COMPLIANCE_LAKE), not each dataset.
        (allowed,) = con.execute("SELECT current_setting('allowed_directories')").fetchone()
        lake_dirs = [path for path in allowed if not path.endswith(".tmp/")]
        # the published lake only: TAG_COMPLIANCE_LAKE is a fallback for a lake that is not there
        assert lake_dirs == [f"{lake_root.resolve()}/"]
        assert con.execute("SELECT count(*) FROM resources").fetchone() == (10,)
        for sql in (
            f"SELECT * FROM read_csv('{outside}')",
            f"SELECT * FROM read_text('{lake_root}/../outside.csv')",
            f"COPY (SELECT 1 AS a) TO '{tmp_path / 'copied.csv'}'",
            f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
            "INSTALL httpfs",
            "LOAD httpfs",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        for sql in (
            "SET enable_external_access = true",
            "RESET enable_external_access",
            "SET allowed_directories = ['/']",
            "SET lock_configuration = false",
            "SET autoinstall_known_extensions = true",
        ):
            with pytest.raises(duckdb.InvalidInputException, match="the configuration has been locked"):
                con.execute(sql)
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            con.execute("CREATE TABLE t AS SELECT 1 AS a")
    assert not (tmp_path / "copied.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_the_lockdown_coexists_with_other_connections_to_the_file(lake_root: Path, tmp_path: Path) -> None:
    """Settings belong to a DuckDB instance, shared by all connections to a file in one process:
    a plain reader already open (as the end-to-end tests keep one) neither blocks the locked
    connection nor gets locked by it, and two locked readers can be open at once."""
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(lake_root, warehouse)
    outside = tmp_path / "outside.csv"
    outside.write_text("password\nhunter2\n", encoding="utf-8")
    with (
        duckdb.connect(str(warehouse), read_only=True) as plain,  # opened first
        connect_read_only(warehouse) as locked,
        connect_read_only(warehouse) as second,
    ):
        for con in (locked, second):
            assert con.execute("SELECT count(*) FROM tag_suggestions").fetchone() == (5,)
            with pytest.raises(duckdb.PermissionException):
                con.execute(f"SELECT * FROM read_csv('{outside}')")
        assert plain.execute("SELECT current_setting('lock_configuration')").fetchone() == (False,)
        assert plain.execute(f"SELECT * FROM read_csv('{outside}')").fetchall() == [("hunter2",)]


def test_the_lake_is_resolved_when_the_warehouse_is_opened(
    lake_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The views read the lake a reader names; else the one published from while it exists; else
    TAG_COMPLIANCE_LAKE: a warehouse file copied to a machine where the lake lives elsewhere opens."""
    warehouse = tmp_path / "warehouse.duckdb"
    publish_warehouse(lake_root, warehouse)
    with connect_read_only(warehouse) as con:
        assert lake_roots(con) == [str(lake_root.resolve())]
        published = con.execute("SELECT count(*) FROM resources").fetchone()
    moved = tmp_path / "moved" / "lake"
    moved.parent.mkdir()
    shutil.copytree(lake_root, moved)
    shutil.rmtree(lake_root)  # the published lake is gone from this machine
    with connect_read_only(warehouse, lake_root=moved) as con:  # named: that lake
        assert lake_roots(con) == [str(moved)]
        assert con.execute("SELECT count(*) FROM resources").fetchone() == published
    copied = tmp_path / "elsewhere" / "warehouse.duckdb"
    copied.parent.mkdir()
    shutil.copy(warehouse, copied)
    monkeypatch.setenv("TAG_COMPLIANCE_LAKE", str(moved))
    with connect_read_only(copied) as con:
        assert lake_roots(con) == [str(moved)]
        assert con.execute("SELECT count(*) FROM resources").fetchone() == published


def test_check_select_only_lets_read_queries_through() -> None:
    with duckdb.connect() as con:
        for sql in (
            "SELECT 1",
            "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
            "FROM duckdb_settings() LIMIT 1",
            "VALUES (1)",
            "DESCRIBE SELECT 1 AS a",
            "SHOW TABLES",
            "SUMMARIZE SELECT 1 AS a",
            "SELECT 1; SELECT 2",
            "-- a comment\nSELECT 1",
        ):
            check_select_only(con, sql)
        for sql, keyword in (
            ("/* hidden */ COPY (SELECT 1) TO 'x.csv'", "COPY"),
            ("-- hidden\n force install httpfs", "FORCE INSTALL"),
            ("SELECT 1; DROP VIEW v", "DROP"),
            ("CALL checkpoint()", "CALL"),
        ):
            with pytest.raises(QueryRefusedError, match=f"^{keyword} statements are not allowed"):
                check_select_only(con, sql)
