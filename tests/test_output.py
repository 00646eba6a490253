"""Output hygiene helpers: the exact rules the CLI, the plan and the report rely on."""

from __future__ import annotations

import io
import json

import pytest

from tag_compliance.output import (
    escape_controls,
    escape_json_controls,
    guard_csv_formula,
    isolate,
    isolation_safe,
    write_csv_rows,
)


@pytest.mark.parametrize(
    ("text", "guarded"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),
        ("", ""),
        (" =1", " =1"),
    ],
)
def test_guard_csv_formula(text: str, guarded: str) -> None:
    assert guard_csv_formula(text) == guarded


def test_csv_rows_quote_every_cell_with_a_line_break() -> None:
    stream = io.StringIO(newline="")
    write_csv_rows(stream, [["a\rb", "c\nd", "e,f", "g"], ["h"]])
    assert stream.getvalue() == '"a\rb","c\nd","e,f",g\nh\n'


def test_escape_controls() -> None:
    assert escape_controls("a\x00\x1b[1m\t\n\r\x7f\x9b\u202e\u2066\u2069z") == (
        r"a\x00\x1b[1m\t\n\r\x7f\x9b\u202e\u2066\u2069z"
    )
    assert escape_controls("plain ünïcødé €") == "plain ünïcødé €"


def test_escape_json_controls_keeps_the_values() -> None:
    value = "x\x7f\x9b\u202e\u2067y\u2069"
    document = escape_json_controls(json.dumps({"v": value}, ensure_ascii=False))
    assert json.loads(document) == {"v": value}
    assert document == '{"v": "x\\u007f\\u009b\\u202e\\u2067y\\u2069"}'


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("\u202eabc", "\u202eabc"),  # an override is closed by the isolation itself
        ("a\u2069\u202eb", "a\\u2069\u202eb"),  # a PDI without opener would end the isolation
        ("\u2067ab\u2069c", "\u2067ab\u2069c"),  # balanced isolates stay
        ("\u2067ab", "\u2067ab\u2069"),  # an isolate left open is closed
        ("a\u2029\u202eb", "a\\u2029\u202eb"),  # a paragraph separator ends every isolation
        ("a\x1cb", "a\\x1cb"),
    ],
)
def test_isolation_safe(text: str, safe: str) -> None:
    assert isolation_safe(text) == safe
    assert isolate(text) == f"\u2068{safe}\u2069"
