"""Remediation plans: the ``tag_suggestions`` of one scored day as CSV, or as AWS CLI input.

The tool never changes tags itself (no AWS call here): it writes what an operator reviews and
then runs. The JSON plan's ``tag_resources`` batches are each one
``aws resourcegroupstaggingapi tag-resources --region R --cli-input-json`` input, run with
credentials of ``account_id``; its ``untag_resources`` batches are ``untag-resources`` inputs
that remove the wrong-case key of every wrong_key_case fix, to run only after the tag batches
succeeded (removing first would lose the value of a rename). AWS takes at most 20 ARNs per call.

``add_parser`` registers the ``remediation-plan`` subcommand on the ``tag-compliance`` parser.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

import duckdb
from rich.console import Console
from rich.text import Text

from tag_compliance.files import write_text_atomically
from tag_compliance.output import csv_cell, write_csv_rows
from tag_compliance.warehouse import WarehouseNotFoundError, connect_read_only, existing_warehouse

# The CLI's exit codes (defined here too: cli imports this module, so this one cannot import cli).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

DEFAULT_MIN_CONFIDENCE = 0.5
MAX_ARNS_PER_CALL = 20  # TagResources and UntagResources take 1-20 ARNs
PLAN_SUFFIXES = (".csv", ".json")
RUN_ORDER_NOTE = (
    "Run each tag_resources cli_input with `aws resourcegroupstaggingapi tag-resources --region REGION "
    "--cli-input-json` in ACCOUNT, then, once all succeeded, each untag_resources cli_input with "
    "`untag-resources`: it removes the wrong-case key a rename or a new value replaces. Region 'global' "
    "(S3): use the bucket's own region."
)


@dataclass(frozen=True)
class Suggestion:
    """One row of the ``tag_suggestions`` view (same columns, same order)."""

    snapshot_date: dt.date
    account_id: str
    region: str
    resource_type: str
    resource_id: str
    arn: str
    tag_key: str
    violation_type: str
    current_key: str | None
    current_value: str | None
    suggested_value: str
    action: str
    confidence: float
    evidence: str
    evidence_detail: str
    neighbours: int
    agreeing: int


COLUMNS: tuple[str, ...] = tuple(column.name for column in fields(Suggestion))
ACCOUNT_NAME = "account_name"  # the plan's one column more than the view: the account's name, where known
PLAN_COLUMNS: tuple[str, ...] = tuple(
    name for column in COLUMNS for name in ((column, ACCOUNT_NAME) if column == "account_id" else (column,))
)


@dataclass(frozen=True)
class TagBatch:
    """One TagResources call: ``Tags`` set on every ARN of ``arns`` (at most 20)."""

    account_id: str
    region: str
    arns: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]

    def cli_input(self) -> dict[str, Any]:
        """The ``--cli-input-json`` document of the call (nothing else: the CLI refuses unknown keys)."""
        return {"ResourceARNList": list(self.arns), "Tags": dict(self.tags)}


@dataclass(frozen=True)
class UntagBatch:
    """One UntagResources call: ``TagKeys`` removed from every ARN of ``arns`` (at most 20)."""

    account_id: str
    region: str
    arns: tuple[str, ...]
    keys: tuple[str, ...]

    def cli_input(self) -> dict[str, Any]:
        """The ``--cli-input-json`` document of the call."""
        return {"ResourceARNList": list(self.arns), "TagKeys": list(self.keys)}


class PlanError(LookupError):
    """The warehouse has no scored snapshot to plan from (or not the one asked for)."""


@dataclass(frozen=True)
class RemediationPlan:
    """The suggestions of one scored day that pass the filters, ordered by account, region,
    resource and key; ``groups`` holds them by (account, region), the unit AWS calls work in."""

    snapshot_date: dt.date
    account_id: str | None
    min_confidence: float
    suggestions: tuple[Suggestion, ...]
    account_names: Mapping[str, str] = field(default_factory=dict)  # from AWS Organizations, where known

    @property
    def groups(self) -> dict[tuple[str, str], list[Suggestion]]:
        grouped: dict[tuple[str, str], list[Suggestion]] = {}
        for suggestion in self.suggestions:
            grouped.setdefault((suggestion.account_id, suggestion.region), []).append(suggestion)
        return grouped

    def tag_batches(self) -> list[TagBatch]:
        """TagResources calls: resources needing the same tags share calls, 20 ARNs each.

        A resource's tags are all its suggestions at once (tag_key -> suggested_value).
        """
        tags_by_resource: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
        for suggestion in self.suggestions:
            key = (suggestion.account_id, suggestion.region, suggestion.arn)
            tags_by_resource[key][suggestion.tag_key] = suggestion.suggested_value
        arns_by_tags: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[str]] = defaultdict(list)
        for (account_id, region, arn), tags in tags_by_resource.items():
            arns_by_tags[(account_id, region, tuple(sorted(tags.items())))].append(arn)
        return [
            TagBatch(account_id, region, chunk, tags)
            for (account_id, region, tags), arns in sorted(arns_by_tags.items())
            for chunk in _chunks(sorted(set(arns)))
        ]

    def untag_batches(self) -> list[UntagBatch]:
        """UntagResources calls removing the wrong-case keys (current_key of wrong_key_case fixes)."""
        keys_by_resource: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for suggestion in self.suggestions:
            if suggestion.violation_type == "wrong_key_case" and suggestion.current_key is not None:
                keys_by_resource[(suggestion.account_id, suggestion.region, suggestion.arn)].add(
                    suggestion.current_key
                )
        arns_by_keys: dict[tuple[str, str, tuple[str, ...]], list[str]] = defaultdict(list)
        for (account_id, region, arn), keys in keys_by_resource.items():
            arns_by_keys[(account_id, region, tuple(sorted(keys)))].append(arn)
        return [
            UntagBatch(account_id, region, chunk, keys)
            for (account_id, region, keys), arns in sorted(arns_by_keys.items())
            for chunk in _chunks(sorted(set(arns)))
        ]


def _chunks(arns: list[str]) -> Iterator[tuple[str, ...]]:
    for start in range(0, len(arns), MAX_ARNS_PER_CALL):
        yield tuple(arns[start : start + MAX_ARNS_PER_CALL])


def remediation_plan(
    warehouse: Path,
    account: str | None = None,
    date: dt.date | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    lake_root: Path | str | None = None,
) -> RemediationPlan:
    """The plan of one scored day (default: the latest) from the warehouse, read-only.

    Only the day asked is used, never an older day's suggestions for a newer day: a tag fixed
    since would be set again. Raises ``PlanError`` when the day was not scored.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    columns = ", ".join(f'"{name}"' for name in COLUMNS)  # our own names, never data
    with connect_read_only(warehouse, lake_root=lake_root) as con:
        latest = con.execute("SELECT max(snapshot_date) FROM resource_compliance").fetchone()[0]
        if latest is None:
            raise PlanError(f"warehouse {warehouse} has no scored snapshot yet: run the pipeline first")
        day = latest if date is None else date
        scored = con.execute(
            "SELECT count(*) > 0 FROM resource_compliance WHERE snapshot_date = ?", [day]
        ).fetchone()[0]
        if not scored:
            raise PlanError(
                f"snapshot {day.isoformat()} was not scored (latest scored: {latest.isoformat()})"
            )
        rows = con.execute(
            f"SELECT {columns} FROM tag_suggestions "
            "WHERE snapshot_date = $day AND confidence >= $min_confidence "
            "AND ($account IS NULL OR account_id = $account) "
            "ORDER BY account_id, region, resource_type, resource_id, tag_key",
            {"day": day, "min_confidence": min_confidence, "account": account},
        ).fetchall()
        names = dict(con.execute("SELECT account_id, name FROM account_names").fetchall())
    suggestions = tuple(Suggestion(*row) for row in rows)
    named = {s.account_id: names[s.account_id] for s in suggestions if s.account_id in names}
    return RemediationPlan(day, account, min_confidence, suggestions, named)


# --- writers -----------------------------------------------------------------------------------


def _cell(value: Any, formula_guard: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return csv_cell(value, str(value), formula_guard)


def _named_row(plan: RemediationPlan, suggestion: Suggestion) -> dict[str, Any]:
    """A suggestion's columns with ``account_name`` after ``account_id`` (None when unknown)."""
    row: dict[str, Any] = {}
    for name, value in zip(COLUMNS, astuple(suggestion), strict=True):
        row[name] = value
        if name == "account_id":
            row[ACCOUNT_NAME] = plan.account_names.get(suggestion.account_id)
    return row


def _json_row(plan: RemediationPlan, suggestion: Suggestion) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, dt.date) else value
        for name, value in _named_row(plan, suggestion).items()
    }


def _batch(plan: RemediationPlan, batch: TagBatch | UntagBatch) -> dict[str, Any]:
    return {
        "account_id": batch.account_id,
        ACCOUNT_NAME: plan.account_names.get(batch.account_id),
        "region": batch.region,
        "cli_input": batch.cli_input(),
    }


def write_csv(plan: RemediationPlan, stream: TextIO, formula_guard: bool = True) -> None:
    """One line per suggestion, the view's columns; NULL as an empty cell. Text a spreadsheet
    would run as a formula gets a leading ' unless ``formula_guard`` is off (the file is for
    people to review, often in a spreadsheet; the JSON plan keeps exact values for the AWS CLI)."""
    write_csv_rows(
        stream,
        [
            list(PLAN_COLUMNS),
            *(
                [_cell(value, formula_guard) for value in _named_row(plan, suggestion).values()]
                for suggestion in plan.suggestions
            ),
        ],
    )


def plan_document(plan: RemediationPlan) -> dict[str, Any]:
    """The JSON plan: the filters, the AWS CLI inputs in run order, and the suggestions behind them."""
    return {
        "snapshot_date": plan.snapshot_date.isoformat(),
        "account_id": plan.account_id,
        "min_confidence": plan.min_confidence,
        "note": RUN_ORDER_NOTE,
        "tag_resources": [_batch(plan, batch) for batch in plan.tag_batches()],
        "untag_resources": [_batch(plan, batch) for batch in plan.untag_batches()],
        "suggestions": [_json_row(plan, suggestion) for suggestion in plan.suggestions],
    }


def write_json(plan: RemediationPlan, stream: TextIO) -> None:
    json.dump(plan_document(plan), stream, ensure_ascii=False, indent=2)
    stream.write("\n")


WRITERS = {".csv": write_csv, ".json": write_json}


def render_plan(plan: RemediationPlan, suffix: str, formula_guard: bool = True) -> str:
    """The plan as the text of a ``.csv`` or ``.json`` file."""
    buffer = io.StringIO(newline="")
    if suffix.lower() == ".csv":
        write_csv(plan, buffer, formula_guard)
    else:
        WRITERS[suffix.lower()](plan, buffer)  # JSON: exact values, the AWS CLI's input
    return buffer.getvalue()


# --- command -----------------------------------------------------------------------------------


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _error(message: str) -> None:
    _stderr().print(Text(message, style="red"))


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_remediation_plan(args: argparse.Namespace) -> int:
    """Write the plan: CSV on stdout, or CSV/JSON in OUT by its suffix; a summary on stderr."""
    output: Path | None = args.output
    if output is not None and output.suffix.lower() not in PLAN_SUFFIXES:
        _error(f"{output}: the output must end in .csv or .json")
        return EXIT_USAGE
    try:
        warehouse = existing_warehouse(args.warehouse)
    except WarehouseNotFoundError as exc:
        _error(str(exc))
        return EXIT_ERROR
    try:
        plan = remediation_plan(
            warehouse,
            account=args.account,
            date=args.date,
            min_confidence=args.min_confidence,
            lake_root=args.lake,
        )
    except (PlanError, duckdb.Error) as exc:
        _error(str(exc))
        return EXIT_ERROR
    if output is None:
        write_csv(plan, sys.stdout, formula_guard=not args.raw_csv)
        sys.stdout.flush()
    else:
        try:
            text = render_plan(plan, output.suffix, formula_guard=not args.raw_csv)
            write_text_atomically(output, text, newline="")
        except OSError as exc:
            _error(f"{output}: cannot write: {exc}")
            return EXIT_ERROR
    _stderr().print(
        Text.assemble(
            ("OK ", "bold green"),
            f"{len(plan.suggestions)} suggestions for {plan.snapshot_date.isoformat()} "
            f"(confidence >= {plan.min_confidence}): {len(plan.tag_batches())} tag-resources and "
            f"{len(plan.untag_batches())} untag-resources calls -> {output or 'stdout'}",
        )
    )
    return EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``remediation-plan`` on the ``tag-compliance`` subcommands."""
    # Imported here: cli imports this module to wire the subcommand, so no import cycle at load time.
    from tag_compliance.cli import HelpFormatter, add_raw_csv_option, add_warehouse_option

    parser = subparsers.add_parser(
        "remediation-plan",
        help="Write the tag fixes the warehouse's tag_suggestions propose (CSV, or AWS CLI JSON).",
        description="Reads the tag_suggestions view of one scored day. Changes no tag: the JSON plan "
        "holds `aws resourcegroupstaggingapi tag-resources` / `untag-resources` --cli-input-json "
        "inputs to review and run.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--account", metavar="A", default=None, help="Only this account id.")
    parser.add_argument(
        "--date",
        type=_iso_date,
        metavar="D",
        default=None,
        help="Scored snapshot date (YYYY-MM-DD); default: the latest.",
    )
    parser.add_argument(
        "--min-confidence",
        type=_confidence,
        metavar="X",
        default=DEFAULT_MIN_CONFIDENCE,
        help=f"Only suggestions with confidence >= X, 0 to 1 (default: {DEFAULT_MIN_CONFIDENCE}).",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        default=None,
        help="Plan file: .csv or .json (AWS CLI inputs); default: CSV on stdout.",
    )
    add_raw_csv_option(parser)
    add_warehouse_option(parser)
    parser.set_defaults(func=cmd_remediation_plan)
    return parser
