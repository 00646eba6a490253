"""The ``tag-compliance`` command: check a policy file, query the warehouse.

Each subcommand is a small ``cmd_*`` function taking the parsed arguments and returning an
exit code; ``build_parser`` wires them. Add a subcommand by adding a ``_add_*`` function
that registers its parser and sets ``func``.
"""

from __future__ import annotations

import argparse
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

from tag_compliance.config import SettingsError, get_settings
from tag_compliance.files import write_text_atomically
from tag_compliance.output import csv_cell, escape_controls, escape_json_controls, write_csv_rows
from tag_compliance.policy import PolicyError, load_policy
from tag_compliance.warehouse import (
    ALLOWED_QUERIES,
    VIEW_COLUMNS,
    QueryRefusedError,
    WarehouseNotFoundError,
    check_select_only,
    connect_read_only,
    existing_warehouse,
    lake_roots,
)

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
    if args.file is None:
        try:
            args.file = get_settings().policy
        except SettingsError as exc:
            _error(str(exc))
            return EXIT_ERROR
    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        _error(str(exc))
        return EXIT_ERROR
    _stdout().print(Text.assemble(("OK ", "bold green"), f"{args.file}: {policy.summary()}"))
    return EXIT_OK


def cmd_policy_import_org(args: argparse.Namespace) -> int:
    """Import an AWS Organizations tag policy: the policy on stdout or in OUT, warnings and a
    summary on stderr (so stdout stays a clean policy)."""
    # Imported here: the importer loads the collector registry (boto3), which no other command needs.
    from tag_compliance.org_import import (
        import_org_policy,
        read_org_policy_file,
        render_policy,
    )
    from tag_compliance.policy import POLICY_SUFFIXES

    output: Path | None = args.output
    if output is not None and output.suffix.lower() not in POLICY_SUFFIXES:
        _error(f"{output}: the output must end in .yaml, .yml or .json, the policy file types")
        return EXIT_USAGE
    try:
        data, raw = read_org_policy_file(args.file)
        result = import_org_policy(data, str(args.file), raw, scope=args.scope)
    except PolicyError as exc:
        _error(str(exc))
        return EXIT_ERROR
    stderr = _stderr()
    for warning in result.warnings:
        stderr.print(Text(f"warning: {warning}", style="yellow"))
    is_json = output is not None and output.suffix.lower() == ".json"
    text = render_policy(result, "json" if is_json else "yaml")
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            write_text_atomically(output, text)
        except OSError as exc:
            _error(f"{output}: cannot write: {exc}")
            return EXIT_ERROR
    noun = "warning" if len(result.warnings) == 1 else "warnings"
    stderr.print(
        Text.assemble(
            ("OK ", "bold green"),
            f"{args.file} -> {output or 'stdout'}: {result.policy.summary()}; {len(result.warnings)} {noun}",
        )
    )
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
    check.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        nargs="?",
        help="Policy file (.yaml, .yml or .json); default: TAG_COMPLIANCE_POLICY, else the policy the "
        "package ships (include/policies/default.yaml).",
    )
    check.set_defaults(func=cmd_policy_check)
    import_org = actions.add_parser(
        "import-org",
        help="Translate an AWS Organizations tag policy (JSON) into a policy file.",
        description="Reads a tag policy document, or the JSON of `aws organizations "
        "describe-effective-policy` or `describe-policy`. What the policy language cannot express is "
        "reported as a warning on stderr. See docs/policy.md.",
        formatter_class=HelpFormatter,
    )
    import_org.add_argument("file", type=Path, metavar="FILE", help="AWS tag policy JSON file.")
    import_org.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        default=None,
        help="Policy file to write (.yaml/.yml, or .json for JSON); default: YAML on stdout.",
    )
    import_org.add_argument(
        "--scope",
        choices=["all", "enforced"],
        default="all",
        help="Check key case and values on every type carrying the key, as AWS reports them (all, "
        "default), or only on the types in enforced_for (enforced).",
    )
    import_org.set_defaults(func=cmd_policy_import_org)


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
    """A rich table for people: control and bidi characters of the data shown escaped."""
    table = Table(
        *(escape_controls(column) for column in columns),
        caption=f"{len(rows)} row{'s' if len(rows) != 1 else ''}",
    )
    for row in rows:
        # Text, not str: a tag value like "[bold]" must print as itself, not as markup. Escaped:
        # an ESC or C1 byte would drive the terminal, a bidi override reorder the table.
        table.add_row(
            *(
                Text("NULL", style="dim") if value is None else Text(escape_controls(_text_value(value)))
                for value in row
            )
        )
    _stdout().print(table)


def print_csv(columns: list[str], rows: list[tuple[Any, ...]], formula_guard: bool = True) -> None:
    """Exact values, except (unless ``formula_guard`` is off) text a spreadsheet would run."""
    write_csv_rows(
        sys.stdout,
        [
            [csv_cell(column, column, formula_guard) for column in columns],
            *(
                ["" if value is None else csv_cell(value, _text_value(value), formula_guard) for value in row]
                for row in rows
            ),
        ],
    )


def print_json(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Exact values; DEL, C1 and bidi controls as \\u escapes (json escapes only C0 itself)."""
    records = [dict(zip(columns, (_json_value(value) for value in row), strict=True)) for row in rows]
    sys.stdout.write(escape_json_controls(json.dumps(records, ensure_ascii=False, indent=2)))
    sys.stdout.write("\n")


PRINTERS: dict[str, Callable[[list[str], list[tuple[Any, ...]]], None]] = {
    "table": print_table,
    "csv": print_csv,
    "json": print_json,
}


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def cmd_query(args: argparse.Namespace) -> int:
    """Run one SQL query against the warehouse views, locked down, and print the result."""
    try:
        warehouse = existing_warehouse(args.warehouse)
    except WarehouseNotFoundError as exc:
        _error(str(exc))
        return EXIT_ERROR
    try:
        with connect_read_only(warehouse, lake_root=args.lake) as con:
            try:
                check_select_only(con, args.sql)
                cursor = con.execute(args.sql)
            except QueryRefusedError as exc:
                _error(f"query refused: {exc}")
                return EXIT_ERROR
            except duckdb.PermissionException as exc:
                roots = ", ".join(str(root) for root in lake_roots(con))
                _error(
                    f"query refused: {_first_line(exc)}; "
                    f"tag-compliance query reads files only under the lake ({roots})"
                )
                return EXIT_ERROR
            if cursor.description is None:
                _stdout().print("OK")
                return EXIT_OK
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
    except duckdb.Error as exc:
        _error(f"query failed: {exc}")
        return EXIT_ERROR
    if args.format == "csv":
        print_csv(columns, rows, formula_guard=not args.raw_csv)
    else:
        PRINTERS[args.format](columns, rows)
    return EXIT_OK


def _add_query(subparsers: argparse._SubParsersAction) -> None:
    query = subparsers.add_parser(
        "query",
        help="Run SQL against the warehouse views (read-only) and print the result.",
        description="Views: "
        + ", ".join(VIEW_COLUMNS)
        + ". Their columns are in the README; worked examples in docs/queries.md. "
        f"Only SELECT queries run ({ALLOWED_QUERIES}); the connection reads no file outside the "
        "lake, writes none, loads no extension and cannot be reconfigured.",
        formatter_class=HelpFormatter,
    )
    query.add_argument("sql", metavar="SQL", help='e.g. "SELECT * FROM compliance_summary"')
    query.add_argument(
        "--format",
        choices=sorted(PRINTERS),
        default="table",
        help="Output format (default: table). The table shows control and bidi characters escaped "
        "(\\x1b, \\u202e); json keeps exact values, csv too but for the formula guard (--raw-csv).",
    )
    add_raw_csv_option(query)
    add_warehouse_option(query)
    query.set_defaults(func=cmd_query)


def add_warehouse_option(parser: argparse.ArgumentParser) -> None:
    """``--warehouse``, the same on every command that reads the warehouse."""
    parser.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="Warehouse file (default: TAG_COMPLIANCE_WAREHOUSE, else data/warehouse.duckdb).",
    )
    parser.add_argument(
        "--lake",
        default=None,
        metavar="DIR_OR_S3_URL",
        help="The lake the warehouse's views read: a directory or s3://bucket/prefix (reached through "
        "TAG_COMPLIANCE_LAKE_CONN_ID's connection, else boto3's credentials and AWS_ENDPOINT_URL_S3). "
        "Default: the lake it was published from while it is reachable, else TAG_COMPLIANCE_LAKE.",
    )


def add_raw_csv_option(parser: argparse.ArgumentParser) -> None:
    """``--raw-csv``, the same on every command that writes CSV."""
    parser.add_argument(
        "--raw-csv",
        action="store_true",
        help="CSV: write text cells exactly as stored. By default a text cell starting with = + - @, "
        "a tab or a carriage return gets a leading ' so a spreadsheet shows it instead of running "
        "it as a formula (OWASP CSV injection); numbers are never changed. For programs only.",
    )


# --- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tag-compliance",
        description="AWS tag compliance: check and import policies, query the compliance warehouse, "
        "write the HTML report, export remediation plans.",
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_policy(subparsers)
    _add_query(subparsers)
    # Imported here so `policy check` and `query` never load what only these commands need.
    from tag_compliance import remediation, report

    report.add_parser(subparsers)
    remediation.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:  # once, before any command: a bad TAG_COMPLIANCE_* value is named, not a traceback
        get_settings()
    except SettingsError as exc:
        _error(str(exc))
        return EXIT_USAGE
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
