"""Bad settings get one clear message naming the variable and its value, everywhere they are read,
and never turn a good warehouse into empty views."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tag_compliance import pipeline
from tag_compliance.cli import main
from tag_compliance.config import SettingsError, get_settings
from tag_compliance.scoring import score_snapshot
from tag_compliance.warehouse import WarehouseCoverageError, publish_warehouse
from tests.sql_fixtures import SNAPSHOT, fixture_policy, scored_warehouse, write_snapshot

BAD_SETTINGS = [
    ("TAG_COMPLIANCE_ACCOUNTS", "abc", "'abc' is not a 12-digit AWS account id"),
    ("TAG_COMPLIANCE_PAGE_SIZE", "-1", "greater than or equal to 1"),
    ("TAG_COMPLIANCE_REGIONS", "", "name at least one region"),
    ("TAG_COMPLIANCE_REGIONS", "nope", "'nope' is not an AWS region name"),
    ("TAG_COMPLIANCE_REGIONS", "us-east-1,,eu-west-1 ,EU-WEST-2", "'EU-WEST-2' is not an AWS region name"),
    ("TAG_COMPLIANCE_COST_EXPLORER", "maybe", "valid boolean"),
    ("TAG_COMPLIANCE_SANDBOX_CLOCK", "tomorrow", "valid datetime"),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scored_warehouse(tmp_path_factory.mktemp("settings"))


@pytest.mark.parametrize(("variable", "value", "message"), BAD_SETTINGS)
@pytest.mark.parametrize(
    "command", [["query", "select 1"], ["report"], ["remediation-plan"], ["policy", "check", "x.yaml"]]
)
def test_every_command_names_the_bad_variable_and_its_value(
    variable, value, message, command, warehouse, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("TAG_COMPLIANCE_WAREHOUSE", str(warehouse))
    monkeypatch.setenv(variable, value)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"{variable}={value!r}: " in err and message in err
    assert "Traceback" not in err and "pydantic" not in err.lower()


def test_the_cli_process_prints_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tag_compliance.cli", "query", "select 1"],
        env={"PATH": "/usr/bin:/bin", "TAG_COMPLIANCE_REGIONS": "nope", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "TAG_COMPLIANCE_REGIONS='nope': 'nope' is not an AWS region name" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_bad_variable_is_named_at_once(monkeypatch) -> None:
    monkeypatch.setenv("TAG_COMPLIANCE_ACCOUNTS", "abc")
    monkeypatch.setenv("TAG_COMPLIANCE_REGIONS", "")
    with pytest.raises(SettingsError) as error:
        get_settings()
    assert "TAG_COMPLIANCE_ACCOUNTS='abc'" in str(error.value)
    assert "TAG_COMPLIANCE_REGIONS=''" in str(error.value)


@pytest.mark.parametrize(("variable", "value", "message"), BAD_SETTINGS)
def test_the_dag_first_task_fails_for_good_naming_the_variable(variable, value, message, monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv(variable, value)
    with pytest.raises(AirflowFailException, match=rf"{variable}={value!r}: .*{message}"):
        pipeline.plan({})


def test_a_lake_that_is_a_file_or_a_warehouse_that_is_a_directory_is_refused(tmp_path, monkeypatch) -> None:
    a_file = tmp_path / "lake.txt"
    a_file.write_text("not a lake")
    monkeypatch.setenv("TAG_COMPLIANCE_LAKE", str(a_file))
    monkeypatch.setenv("TAG_COMPLIANCE_WAREHOUSE", str(tmp_path))
    with pytest.raises(SettingsError) as error:
        get_settings()
    assert f"TAG_COMPLIANCE_LAKE={str(a_file)!r}: " in str(error.value) and "is a file" in str(error.value)
    assert f"TAG_COMPLIANCE_WAREHOUSE={str(tmp_path)!r}: " in str(error.value)


def _days(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT DISTINCT snapshot_date FROM compliance_summary").fetchall()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("s3://", "not a usable S3 location"),
        ("s3://Bad_Bucket/lake", "not a usable S3 location"),
        ("s3://bucket/lake?versionId=1", "not a usable S3 location"),
        ("s3://bucket/../lake", "prefix has an empty, '.' or '..' part"),
    ],
)
def test_an_s3_lake_is_checked_before_anything_connects(value: str, problem: str, monkeypatch) -> None:
    monkeypatch.setenv("TAG_COMPLIANCE_LAKE", value)
    with pytest.raises(SettingsError) as error:
        get_settings()
    assert f"TAG_COMPLIANCE_LAKE={value!r}: " in str(error.value) and problem in str(error.value)


def test_an_s3_lake_is_kept_as_a_url_and_a_directory_as_a_path(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TAG_COMPLIANCE_LAKE", "s3://my-bucket/finops/lake/")
    assert get_settings().lake == "s3://my-bucket/finops/lake"
    monkeypatch.setenv("TAG_COMPLIANCE_LAKE", str(tmp_path / "lake"))
    assert get_settings().lake == tmp_path / "lake"


def test_publish_refuses_to_replace_a_good_warehouse_with_a_lake_missing_its_days(
    tmp_path, monkeypatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    good_lake, warehouse = tmp_path / "lake", tmp_path / "warehouse.duckdb"
    write_snapshot(good_lake)
    score_snapshot(good_lake, SNAPSHOT, fixture_policy())
    publish_warehouse(good_lake, warehouse)
    before = warehouse.read_bytes()
    wrong = tmp_path / "somewhere-else"
    wrong.mkdir()
    with pytest.raises(
        WarehouseCoverageError, match=r"scores of 2026-03-14 and inventory snapshots of 2026-03-14"
    ):
        publish_warehouse(wrong, warehouse)
    assert warehouse.read_bytes() == before and _days(warehouse) == [(SNAPSHOT,)]

    # The DAG's publish task fails for good, saying so; the override publishes the empty lake.
    monkeypatch.setenv("TAG_COMPLIANCE_LAKE", str(wrong))
    monkeypatch.setenv("TAG_COMPLIANCE_WAREHOUSE", str(warehouse))
    with pytest.raises(AirflowFailException, match="TAG_COMPLIANCE_PUBLISH_ALLOW_MISSING_DAYS"):
        pipeline.publish()
    assert warehouse.read_bytes() == before
    monkeypatch.setenv("TAG_COMPLIANCE_PUBLISH_ALLOW_MISSING_DAYS", "true")
    pipeline.publish()
    assert _days(warehouse) == []


def test_publish_over_a_lake_with_more_days_is_fine(tmp_path) -> None:
    lake_root, warehouse = tmp_path / "lake", tmp_path / "warehouse.duckdb"
    write_snapshot(lake_root)
    publish_warehouse(lake_root, warehouse)  # a snapshot, nothing scored yet
    score_snapshot(lake_root, SNAPSHOT, fixture_policy())
    publish_warehouse(lake_root, warehouse)
    assert _days(warehouse) == [(SNAPSHOT,)]
