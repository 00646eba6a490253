"""docs/queries.md: every example query parses, runs on the warehouse of a real pipeline run (directly
and through ``tag-compliance query --format csv``), and the queries marked as possibly empty find
what they look for in a warehouse with history and exemptions."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tag_compliance.cli import main
from tag_compliance.policy import TaggingPolicy
from tag_compliance.scoring import latest_snapshot_on_or_before, score_snapshot
from tag_compliance.warehouse import VIEW_COLUMNS, publish_warehouse
from tests.history_fixtures import (
    HISTORY_COSTS,
    HISTORY_POLICY_DATA,
    INVENTORY_DATES,
    SCORED_DATES,
    inventory,
)
from tests.queries_doc import QUERIES_DOC, ExampleQuery, example_queries, parse_queries
from tests.sql_fixtures import write_costs, write_snapshot

# The real DAG run of the end-to-end tests; module-scoped, so it runs once for this module.
from tests.test_end_to_end import first_run, pipeline_env, sandbox  # noqa: F401

QUERIES = parse_queries(QUERIES_DOC)
IDS = [query.heading for query in QUERIES]


def run(warehouse: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        return [column[0] for column in cursor.description], cursor.fetchall()


# --------------------------------------------------------------------------- the document itself


def test_at_least_ten_queries_with_unique_headings() -> None:
    queries = example_queries(QUERIES_DOC)
    assert len(queries) >= 10
    headings = [heading for heading, _ in queries]
    assert len(set(headings)) == len(headings), sorted(h for h in headings if headings.count(h) > 1)
    assert all(sql for _, sql in queries)


@pytest.mark.parametrize("query", QUERIES, ids=IDS)
def test_each_block_is_one_statement_over_the_public_views(query: ExampleQuery) -> None:
    with duckdb.connect(":memory:") as con:
        statements = con.extract_statements(query.sql)
    assert len(statements) == 1, f"line {query.line}: {len(statements)} statements"
    # Pasted between double quotes in a shell (the documented `tag-compliance query "..."`), a
    # double quote, a backquote or a dollar sign would end or change the argument.
    assert not set(query.sql) & set('"`$'), f"line {query.line}"
    assert views_read(query.sql) <= set(VIEW_COLUMNS), f"line {query.line}: not a public view"


def views_read(sql: str) -> set[str]:
    """The relations a query reads FROM or JOINs, other than its own CTEs."""
    sql = re.sub(r"--[^\n]*", "", sql)
    ctes = set(re.findall(r"\b(\w+)\s+AS\s*\(", sql, flags=re.IGNORECASE))
    return set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", sql, flags=re.IGNORECASE)) - ctes


def test_the_queries_cover_the_derived_and_cost_views() -> None:
    used = set().union(*(views_read(query.sql) for query in QUERIES))
    assert used >= {
        "attribution_gap",
        "untagged_spend",
        "tag_drift",
        "violation_history",
        "compliance_trend",
        "exempted_violations",
        "api_calls",
        "violations",
        "resource_compliance",
        "compliance_summary",
    }


def test_the_parser_refuses_two_queries_under_one_heading(tmp_path: Path) -> None:
    doc = tmp_path / "queries.md"
    doc.write_text(
        "# A\n\n<!-- may be empty -->\n```sql\nSELECT 1\n```\n\n## B\n\n```sh\necho\n```\n\n"
        "```sql\nSELECT 2\n```\n"
    )
    assert [(q.heading, q.sql, q.may_be_empty) for q in parse_queries(doc)] == [
        ("A", "SELECT 1", True),
        ("B", "SELECT 2", False),
    ]
    doc.write_text(doc.read_text() + "\n```sql\nSELECT 3\n```\n")
    with pytest.raises(ValueError, match="second sql block"):
        parse_queries(doc)


# --------------------------------------------------------------------------- the end-to-end warehouse


@pytest.fixture(scope="module")
def pipeline_warehouse(first_run, pipeline_env) -> Path:  # noqa: F811
    """The warehouse of the end-to-end pipeline run (one daily run of the seeded sandbox estate)."""
    return pipeline_env / "warehouse.duckdb"


@pytest.mark.e2e
@pytest.mark.parametrize("query", QUERIES, ids=IDS)
def test_query_runs_on_the_pipeline_warehouse_and_through_the_cli(
    query: ExampleQuery, pipeline_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    columns, rows = run(pipeline_warehouse, query.sql)
    if not query.may_be_empty:
        assert rows, f"docs/queries.md line {query.line}: no rows on the end-to-end warehouse"

    capsys.readouterr()
    code = main(["query", query.sql, "--warehouse", str(pipeline_warehouse), "--format", "csv"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    printed = list(csv.reader(io.StringIO(out)))
    assert printed[0] == columns
    assert len(printed) - 1 == len(rows)


# --------------------------------------------------------------------------- a warehouse with history

EXEMPTIONS = [
    {
        "resources": ["bucket-new"],
        "keys": ["Environment"],
        "reason": "Migrating to the new stages",
        "expires": "2026-03-20",  # within 30 days of the latest snapshot, 2026-03-06
    },
    {"resources": ["i-fixed"], "reason": "Legacy host", "expires": "2026-12-31"},
]


@pytest.fixture(scope="module")
def history_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-built history of ``tests/history_fixtures.py`` (inventories on four days, one
    backfilled day), scored by the real scoring path with its policy plus two exemptions."""
    root = tmp_path_factory.mktemp("queries-doc-history")
    lake = root / "lake"
    for day in INVENTORY_DATES:
        write_snapshot(lake, inventory(day), snapshot_date=day)
    for day, rows in HISTORY_COSTS.items():
        write_costs(lake, rows, usage_date=day)
    policy = TaggingPolicy.model_validate({**HISTORY_POLICY_DATA, "exemptions": EXEMPTIONS})
    for day in SCORED_DATES:
        score_snapshot(lake, day, policy, inventory_as_of=latest_snapshot_on_or_before(lake, day))
    publish_warehouse(lake, root / "warehouse.duckdb")
    return root / "warehouse.duckdb"


@pytest.mark.parametrize("query", QUERIES, ids=IDS)
def test_query_runs_on_a_warehouse_with_history(query: ExampleQuery, history_warehouse: Path) -> None:
    _, rows = run(history_warehouse, query.sql)
    if query.may_be_empty:  # what they look for is there: they must find it
        assert rows, f"docs/queries.md line {query.line}: no rows on the history warehouse"


def named(heading: str) -> str:
    return next(query.sql for query in QUERIES if query.heading == heading)


def records(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    columns, rows = run(warehouse, sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_history_answers_of_the_queries_that_need_history(history_warehouse: Path) -> None:
    lost = records(history_warehouse, named("Resources that lost a required tag this week"))
    assert [
        (row["lost_on"], row["resource_id"], row["tag_key"], row["value_before"], row["status"])
        for row in lost
    ] == [(date(2026, 3, 2), "i-env", "Environment", "prod", "resolved")]

    fixes = records(history_warehouse, named("How fast violations get fixed"))
    assert {
        row["violation_type"]: (
            row["still_open"],
            row["fixed"],
            row["resource_deleted"],
            row["max_days_to_fix"],
        )
        for row in fixes
    } == {"missing_required_tag": (1, 1, 2, 3), "wrong_key_case": (0, 1, 0, 1)}

    expiring = records(history_warehouse, named("Exemptions expiring in the next 30 days"))
    assert [
        (row["resource_id"], row["exemption_expires"], row["days_left"], row["waived"], row["waives_errors"])
        for row in expiring
    ] == [("bucket-new", date(2026, 3, 20), 14, "Environment: invalid_value", True)]
