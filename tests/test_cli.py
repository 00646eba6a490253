"""The tag-compliance command: policy check and query, through main() as the console script runs it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tag_compliance.cli import main
from tag_compliance.config import DEFAULT_POLICY
from tag_compliance.scoring import score_snapshot
from tag_compliance.warehouse import publish_warehouse
from tests.sql_fixtures import ACCOUNT_1, SNAPSHOT, fixture_policy, write_snapshot


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_snapshot(root / "lake")
    score_snapshot(root / "lake", SNAPSHOT, fixture_policy())
    path = root / "warehouse.duckdb"
    publish_warehouse(root / "lake", path)
    return path


def test_policy_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(DEFAULT_POLICY)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK {DEFAULT_POLICY}: version 2026.11.1, 5 required tags")


def test_policy_check_prints_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: '1'\n"
        "required_tags:\n"
        "  - key: CostCenter\n"
        "    severity: critical\n"
        "    pattern: 'CC-(['\n"
        "  - key: Env\n"
        "    colour: red\n"
    )
    assert main(["policy", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: required_tags[0].severity: Input should be 'error' or 'warning' (got 'critical')" in err
    assert f"{bad}: required_tags[0].pattern: not a valid RE2 pattern" in err
    assert f"{bad}: required_tags[1].colour: Extra inputs are not permitted (got 'red')" in err


def test_policy_check_bad_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1",,}')
    assert main(["policy", "check", str(bad)]) == 1
    assert f"{bad}: invalid JSON at line 1" in capsys.readouterr().err


def test_query_table(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = (
        "SELECT dimension, dimension_value, compliance_pct FROM compliance_summary "
        "WHERE dimension = 'overall'"
    )
    assert main(["query", sql, "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    for text in ("dimension_value", "overall", "all", "37.5", "1 row"):
        assert text in out


def test_query_table_prints_values_literally(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "SELECT '[bold]x[/bold]' AS v, NULL AS n", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert "[bold]x[/bold]" in out
    assert "NULL" in out


def test_query_csv(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = (
        "SELECT account_id, resource_id, compliant, violation_types FROM resource_compliance "
        "WHERE resource_id IN ('i-0b-violations', 'svc-untagged') ORDER BY resource_id"
    )
    assert main(["query", sql, "--format", "csv", "--warehouse", str(warehouse)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [
        ["account_id", "resource_id", "compliant", "violation_types"],
        [
            ACCOUNT_1,
            "i-0b-violations",
            "false",
            '["invalid_value", "missing_required_tag", "prohibited_tag", "wrong_key_case"]',
        ],
        ["210987654321", "svc-untagged", "", "[]"],
    ]


def test_query_json(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT snapshot_date, account_id, tags FROM resources WHERE resource_id = 'i-0j-warning'"
    assert main(["query", sql, "--format", "json", "--warehouse", str(warehouse)]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "snapshot_date": "2026-03-14",
            "account_id": ACCOUNT_1,
            "tags": {"CostCenter": "CC-2000", "Environment": "staging", "Team": "Sales"},
        }
    ]


def test_query_is_read_only(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "DROP VIEW resources", "--warehouse", str(warehouse)]) == 1
    assert "query failed" in capsys.readouterr().err
    assert main(["query", "SELECT count(*) AS n FROM resources", "--warehouse", str(warehouse)]) == 0


def test_query_error_is_reported(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "SELECT * FROM nope", "--warehouse", str(warehouse)]) == 1
    assert "query failed: Catalog Error" in capsys.readouterr().err


def test_query_without_warehouse_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.duckdb"
    assert main(["query", "SELECT 1", "--warehouse", str(missing)]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "run `make demo` or the tag_compliance DAG first" in err


def test_query_default_warehouse_from_settings(
    warehouse: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAG_COMPLIANCE_WAREHOUSE", str(warehouse))
    assert main(["query", "SELECT count(*) AS n FROM violations", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 15}]


def test_no_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "policy" in capsys.readouterr().err


def test_console_script_runs() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tag-compliance"), "policy", "check", str(DEFAULT_POLICY)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK ")
