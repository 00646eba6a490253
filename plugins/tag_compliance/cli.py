"""The ``tag-compliance`` command: check a policy file, query the warehouse.

Each subcommand is a small ``cmd_*`` function taking the parsed arguments and returning an
exit code; ``build_parser`` wires them. Add a subcommand by adding a ``_add_*`` function
that registers its parser and sets ``func``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tag_compliance.config import get_settings
from tag_compliance.policy import PolicyError, load_policy

try:  # nicer --help; optional so the CLI never depends on it
    from rich_argparse import RichHelpFormatter as HelpFormatter
except ImportError:  # pragma: no cover
    from argparse import HelpFormatter  # type: ignore[assignment]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace], int]


def _stdout() -> Console:
    # Created per call so tests capturing sys.stdout see the output. Off a terminal, never
    # wrap or squeeze table cells to 80 columns: scripts and pipes want whole values.
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=4096)
    return console


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _error(message: str) -> None:
    _stderr().print(Text(message, style="red"))


# --- policy ------------------------------------------------------------------------------------


def cmd_policy_check(args: argparse.Namespace) -> int:
    """Validate a policy file: OK and a summary, or every error with file, field path and value."""
    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        _error(str(exc))
        return EXIT_ERROR
    _stdout().print(Text.assemble(("OK ", "bold green"), f"{args.file}: {policy.summary()}"))
    return EXIT_OK


def _add_policy(subparsers: argparse._SubParsersAction) -> None:
    policy = subparsers.add_parser(
        "policy", help="Work with tagging policy files.", formatter_class=HelpFormatter
    )
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="Validate a policy file (YAML or JSON) and summarise it.",
        formatter_class=HelpFormatter,
    )
    check.add_argument("file", type=Path, metavar="FILE", help="Policy file (.yaml, .yml or .json).")
    check.set_defaults(func=cmd_policy_check)


# --- query -------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """Python values from DuckDB as JSON-ready values (dates as ISO text, maps as objects)."""
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _text_value(value: Any) -> str:
    """One cell as text: NULL as empty (CSV) is handled by the caller; nested values as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(_json_value(value), ensure_ascii=False)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return str(value)


def print_table(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    table = Table(*columns, caption=f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
    for row in rows:
        # Text, not str: a tag value like "[bold]" must print as itself, not as markup.
        table.add_row(
            *(Text("NULL", style="dim") if value is None else Text(_text_value(value)) for value in row)
        )
    _stdout().print(table)


def print_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if value is None else _text_value(value) for value in row] for row in rows)


def print_json(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    records = [dict(zip(columns, (_json_value(value) for value in row), strict=True)) for row in rows]
    json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


PRINTERS: dict[str, Callable[[list[str], list[tuple[Any, ...]]], None]] = {
    "table": print_table,
    "csv": print_csv,
    "json": print_json,
}


def cmd_query(args: argparse.Namespace) -> int:
    """Run one SQL statement against the warehouse views, read-only, and print the result."""
    warehouse = Path(args.warehouse) if args.warehouse else get_settings().warehouse
    if not warehouse.is_file():
        _error(
            f"warehouse {warehouse} does not exist: run `make demo` or the tag_compliance DAG first "
            "(or point --warehouse / TAG_COMPLIANCE_WAREHOUSE at one)"
        )
        return EXIT_ERROR
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            cursor = con.execute(args.sql)
            if cursor.description is None:
                _stdout().print("OK")
                return EXIT_OK
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
    except duckdb.Error as exc:
        _error(f"query failed: {exc}")
        return EXIT_ERROR
    PRINTERS[args.format](columns, rows)
    return EXIT_OK


def _add_query(subparsers: argparse._SubParsersAction) -> None:
    query = subparsers.add_parser(
        "query",
        help="Run SQL against the warehouse views (read-only) and print the result.",
        description="Views: resources, violations, resource_compliance, compliance_summary, api_calls.",
        formatter_class=HelpFormatter,
    )
    query.add_argument("sql", metavar="SQL", help='e.g. "SELECT * FROM compliance_summary"')
    query.add_argument(
        "--format", choices=sorted(PRINTERS), default="table", help="Output format (default: table)."
    )
    query.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="Warehouse file (default: TAG_COMPLIANCE_WAREHOUSE, else data/warehouse.duckdb).",
    )
    query.set_defaults(func=cmd_query)


# --- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tag-compliance",
        description="AWS tag compliance: check policies and query the compliance warehouse.",
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_policy(subparsers)
    _add_query(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
