"""``tag-compliance report``: one self-contained HTML page of a day's tag compliance.

The page is for people who will not run SQL: it is mailed, attached to tickets and opened
offline, so it carries everything inline (CSS, SVG charts drawn here) and no script and no
URL at all. Every figure comes from the warehouse views through ``include/sql/report/*.sql``;
every text that comes from data (keys, values, ids, accounts) goes through Jinja2 with
autoescaping on, so a tag value like ``<script>`` is shown, never run, and sits in a ``<bdi>``
(FSI ... PDI in SVG), so a right-to-left override in it cannot reorder the text around it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import jinja2
from rich.console import Console
from rich.text import Text

from tag_compliance.config import SQL_DIR, get_settings
from tag_compliance.files import write_text_atomically
from tag_compliance.output import isolate, isolation_safe
from tag_compliance.scoring import load_sql
from tag_compliance.warehouse import WarehouseNotFoundError, connect_read_only, existing_warehouse

REPORT_SQL_DIR = SQL_DIR / "report"
REPORTS_DIRNAME = "reports"
TOP_RESOURCES = 20
EXIT_OK = 0
EXIT_ERROR = 1
DATES_LISTED = 10
"""An unknown date's error lists at most this many of the available dates (first and latest)."""


class ReportError(Exception):
    """A report that cannot be built; the message says why and what would work instead."""


# --- data --------------------------------------------------------------------------------------


def _query(con: duckdb.DuckDBPyConnection, name: str, **params: object) -> list[dict[str, Any]]:
    """Rows of ``include/sql/report/<name>.sql`` as dicts, run with its named parameters."""
    cursor = con.execute(load_sql(name, REPORT_SQL_DIR), params)
    columns = [description[0] for description in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def scored_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Every snapshot date the warehouse has compliance figures for, oldest first."""
    return [row["snapshot_date"] for row in _query(con, "dates")]


def _describe_dates(dates: list[date]) -> str:
    """The available dates for an error message: all of them, or the first and latest few."""
    if len(dates) <= DATES_LISTED:
        return ", ".join(day.isoformat() for day in dates)
    half = DATES_LISTED // 2
    head = ", ".join(day.isoformat() for day in dates[:half])
    tail = ", ".join(day.isoformat() for day in dates[-half:])
    return f"{head}, ... ({len(dates) - 2 * half} more), {tail}"


def resolve_date(con: duckdb.DuckDBPyConnection, day: date | None) -> date:
    """The report's date: the one asked for if it was scored, else (None) the latest scored one."""
    dates = scored_dates(con)
    if not dates:
        raise ReportError("the warehouse holds no scored snapshot yet: run the tag_compliance DAG first")
    if day is None:
        return dates[-1]
    if day not in dates:
        raise ReportError(
            f"no compliance data for {day.isoformat()} in the warehouse; "
            f"scored dates available ({len(dates)}): {_describe_dates(dates)}"
        )
    return day


BREAKDOWNS: tuple[tuple[str, str, str], ...] = (
    # (dimension, section title, heading of its first column)
    ("account", "By account", "Account"),
    ("service", "By service", "Service"),
    ("resource_type", "By resource type", "Resource type"),
    ("tag_key", "By tag key", "Tag key"),
)


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, all read before rendering: a failing query writes no page."""

    day: date
    headline: dict[str, Any]
    trend: list[dict[str, Any]]
    breakdowns: dict[str, list[dict[str, Any]]]
    top_resources: list[dict[str, Any]]
    key_coverage: list[dict[str, Any]]
    gap_by_reason: list[dict[str, Any]]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def load_report_data(con: duckdb.DuckDBPyConnection, day: date | None = None) -> ReportData:
    """Read the figures of ``day`` (default: the latest scored date) from the warehouse views."""
    day = resolve_date(con, day)
    (headline,) = _query(con, "headline", day=day)
    return ReportData(
        day=day,
        headline=headline,
        trend=_query(con, "trend", day=day),
        breakdowns={
            dimension: _query(con, "breakdown", day=day, dimension=dimension)
            for dimension, _, _ in BREAKDOWNS
        },
        top_resources=_query(con, "top_non_compliant", day=day, limit=TOP_RESOURCES),
        key_coverage=_query(con, "key_coverage", day=day),
        gap_by_reason=_query(con, "gap_by_reason", day=day),
    )


# --- formatting --------------------------------------------------------------------------------

MISSING = "—"


def fmt(value: Any, kind: str = "text") -> str:
    """One value as the page shows it; the template escapes the result."""
    if value is None:
        return MISSING
    if kind == "int":
        return f"{value:,}"
    if kind in ("pct", "share"):  # share: a percentage without the compliance meter
        return f"{value:.1f}%"
    if kind == "money":
        amount = Decimal(value)
        return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"
    if kind == "pp":  # a change in percentage points
        return f"{value:+.1f} pp"
    if isinstance(value, date):
        return value.isoformat()
    # Shown in a <bdi> (or FSI ... PDI): nothing in the text may end that isolation early.
    return isolation_safe(str(value))


def meter(pct: float) -> str:
    """Width of a table cell's meter bar, as CSS percent text clamped to 0-100."""
    return f"{min(max(pct, 0.0), 100.0):.1f}"


def _shorten(text: str, limit: int = 28) -> str:
    """A chart label that fits its column; the full text goes in the SVG <title>."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Figure:
    """A headline figure: ``value`` is the warehouse's exact value (``data-value``)."""

    key: str
    label: str
    value: Any
    display: str
    note: str


def headline_figures(headline: dict[str, Any]) -> list[Figure]:
    """The figure cards, each with a note saying what it counts (or that the day has no costs)."""
    h = headline
    no_costs = "no Cost Explorer data for this day"
    return [
        Figure(
            "compliance_pct",
            "Compliance",
            h["compliance_pct"],
            fmt(h["compliance_pct"], "pct"),
            f"{fmt(h['resources_compliant'], 'int')} of {fmt(h['resources_in_scope'], 'int')} "
            "in-scope resources comply",
        ),
        Figure(
            "collection_coverage_pct",
            "Collection coverage",
            h["collection_coverage_pct"],
            fmt(h["collection_coverage_pct"], "pct"),
            "not recorded for this inventory"
            if h["targets_planned"] is None
            else f"{fmt(h['targets_collected'], 'int')} of {fmt(h['targets_planned'], 'int')} planned "
            "(service, account, region) targets collected; the others' resources are in no figure here "
            "(see collection_status)",
        ),
        Figure(
            "cost_compliance_pct",
            "Cost-weighted compliance",
            h["cost_compliance_pct"],
            fmt(h["cost_compliance_pct"], "pct"),
            no_costs
            if h["cost_compliant"] is None
            else f"{fmt(h['cost_compliant'], 'money')} of in-scope spend is on compliant resources",
        ),
        Figure(
            "attribution_gap",
            "Attribution gap",
            h["attribution_gap"],
            fmt(h["attribution_gap"], "money"),
            no_costs if h["attribution_gap"] is None else "spend not attributable to a compliant resource",
        ),
        Figure(
            "total_spend",
            "Total spend",
            h["total_spend"],
            fmt(h["total_spend"], "money"),
            no_costs if h["total_spend"] is None else "amortized, all accounts and services",
        ),
        Figure(
            "inventoried_spend_pct",
            "Spend on inventoried types",
            h["inventoried_spend_pct"],
            fmt(h["inventoried_spend_pct"], "pct"),
            no_costs
            if h["total_spend"] is None
            else f"{fmt(h['inventoried_spend'], 'money')} of the day's spend is on resources of the types "
            "inventoried (see coverage)",
        ),
        Figure(
            "resources_in_scope",
            "Resources in scope",
            h["resources_in_scope"],
            fmt(h["resources_in_scope"], "int"),
            f"of {fmt(h['resources_total'], 'int')} inventoried",
        ),
        Figure(
            "resources_compliant",
            "Compliant",
            h["resources_compliant"],
            fmt(h["resources_compliant"], "int"),
            "in scope, no error-severity violation",
        ),
        Figure(
            "resources_exempt",
            "Exempt",
            h["resources_exempt"],
            fmt(h["resources_exempt"], "int"),
            "failing only under an exemption (not compliant, not to fix)",
        ),
        Figure(
            "error_violations",
            "Error violations",
            h["error_violations"],
            fmt(h["error_violations"], "int"),
            f"{fmt(h['violations'], 'int')} violations in all",
        ),
    ]


# --- charts: geometry here, markup in the template (so labels are autoescaped too) ------------


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    day: date
    value: float


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    points: list[Point]
    segments: list[list[Point]]
    """Runs of consecutive points with a value: a day without one breaks the line."""


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class LineChart:
    id: str
    title: str
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    series: list[Series]


TREND_SERIES = (("compliance_pct", "Compliance"), ("cost_compliance_pct", "Cost-weighted compliance"))


def trend_chart(rows: list[dict[str, Any]], width: int = 1120, height: int = 280) -> LineChart:
    """Percentages (0-100) over dates, x spaced by calendar days so gaps between runs show."""
    left, top, right, bottom = 56, 16, width - 16, height - 40
    days = [row["snapshot_date"] for row in rows]
    first, last = (days[0], days[-1]) if days else (None, None)
    span = (last - first).days if first and last else 0

    def x_of(day: date) -> float:
        if not span:
            return round((left + right) / 2, 1)
        return round(left + (day - first).days / span * (right - left), 1)

    def y_of(value: float) -> float:
        return round(top + (100 - value) / 100 * (bottom - top), 1)

    series = []
    for key, label in TREND_SERIES:
        points: list[Point] = []
        segments: list[list[Point]] = [[]]
        for row in rows:
            value = row[key]
            if value is None:
                segments.append([])
                continue
            point = Point(x_of(row["snapshot_date"]), y_of(value), row["snapshot_date"], value)
            points.append(point)
            segments[-1].append(point)
        series.append(Series(key, label, points, [run for run in segments if len(run) > 1]))
    # At most six date labels, always the first and the latest, evenly spread between.
    shown = days if len(days) <= 6 else [days[round(i * (len(days) - 1) / 5)] for i in range(6)]
    x_ticks = [Tick(x_of(day), day.isoformat()) for day in shown]
    if len(x_ticks) > 1:  # the outermost labels stay inside the chart
        x_ticks[0] = Tick(x_ticks[0].position, x_ticks[0].label, "start")
        x_ticks[-1] = Tick(x_ticks[-1].position, x_ticks[-1].label, "end")
    return LineChart(
        id="chart-trend",
        title="Compliance and cost-weighted compliance per scored day (%)",
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        y_ticks=[Tick(y_of(value), f"{value}%") for value in (0, 25, 50, 75, 100)],
        x_ticks=x_ticks,
        series=series,
    )


@dataclass(frozen=True)
class Bar:
    label: str
    short_label: str
    y: float
    length: float
    value: Any
    display: str
    tone: str


@dataclass(frozen=True)
class BarChart:
    id: str
    title: str
    width: int
    height: int
    label_width: int
    bar_area: int
    row_height: int
    bars: list[Bar]


def bar_chart(
    chart_id: str,
    title: str,
    items: list[tuple[str, Any, str, str]],
    scale_max: float | None = None,
    width: int = 760,
) -> BarChart:
    """Horizontal bars of (label, value, display text, tone); scaled to ``scale_max`` or the
    largest value. Negative values (credits) draw no bar but keep their figure."""
    label_width, value_width, row_height = 200, 100, 26
    bar_area = width - label_width - value_width
    largest = scale_max or max((float(value) for _, value, _, _ in items if value is not None), default=0)
    bars = []
    for index, (label, value, display, tone) in enumerate(items):
        share = float(value) / largest if largest and value is not None and value > 0 else 0.0
        bars.append(
            Bar(
                label,
                _shorten(label),
                index * row_height + 4,
                round(min(share, 1.0) * bar_area, 1),
                value,
                display,
                tone,
            )
        )
    return BarChart(
        chart_id, title, width, len(items) * row_height + 8, label_width, bar_area, row_height, bars
    )


def key_coverage_chart(rows: list[dict[str, Any]]) -> BarChart:
    """Coverage per tag key on a fixed 0-100 scale, so keys compare across reports."""
    items = [
        (
            row["tag_key"],
            row["compliance_pct"],
            fmt(row["compliance_pct"], "pct"),
            "good" if (row["compliance_pct"] or 0) >= 90 else "bad",
        )
        for row in rows
    ]
    return bar_chart("chart-key-coverage", "Share of resources passing each tag rule", items, 100.0)


def gap_chart(rows: list[dict[str, Any]]) -> BarChart:
    """The gap's reasons against the largest, so the biggest lever stands out."""
    items = [
        (row["gap_reason"], row["amortized_cost"], fmt(row["amortized_cost"], "money"), "gap") for row in rows
    ]
    return bar_chart("chart-gap", "Attribution gap by reason (amortized cost)", items)


# --- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    kind: str = "text"


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    empty: str = "No rows for this day."


def _breakdown_columns(first: str) -> list[Column]:
    return [
        Column("dimension_value", first),
        Column("resources_in_scope", "In scope", "int"),
        Column("resources_compliant", "Compliant", "int"),
        Column("resources_exempt", "Exempt", "int"),
        Column("compliance_pct", "Compliance", "pct"),
        Column("error_violations", "Errors", "int"),
        Column("violations", "Violations", "int"),
        Column("cost_in_scope", "In-scope spend", "money"),
        Column("cost_compliance_pct", "Cost-weighted", "pct"),
    ]


def breakdown_tables(data: ReportData) -> list[Table]:
    return [
        Table(
            f"table-{dimension.replace('_', '-')}",
            title,
            _breakdown_columns(first),
            data.breakdowns[dimension],
        )
        for dimension, title, first in BREAKDOWNS
    ]


KEY_COVERAGE_COLUMNS = [
    Column("tag_key", "Tag key"),
    Column("resources_in_scope", "Rule applies to", "int"),
    Column("resources_compliant", "Passing", "int"),
    Column("resources_exempt", "Exempt", "int"),
    Column("compliance_pct", "Coverage", "pct"),
    Column("failing_cost", "Spend failing it", "money"),
]

GAP_COLUMNS = [
    Column("gap_reason", "Reason"),
    Column("resources", "Resources", "int"),
    Column("amortized_cost", "Amortized", "money"),
    Column("unblended_cost", "Unblended", "money"),
    Column("share_pct", "Share of gap", "share"),
]

TREND_COLUMNS = [
    Column("snapshot_date", "Date"),
    Column("resources_in_scope", "In scope", "int"),
    Column("resources_compliant", "Compliant", "int"),
    Column("compliance_pct", "Compliance", "pct"),
    Column("compliance_pct_change", "Change", "pp"),
    Column("cost_compliance_pct", "Cost-weighted", "pct"),
    Column("cost_compliance_pct_change", "Change", "pp"),
]

GAP_REASONS = {
    "non_compliant": "in scope, with an error-severity violation",
    "exempt": "in scope, failing only under an exemption",
    "out_of_scope": "no tag rule applies to the resource",
    "no_resource": "service spend not given to any inventoried resource (deleted resources, tax, ...)",
}


# --- template ----------------------------------------------------------------------------------

STYLE = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --card: #f5f7fa;
  --good: #2f9e44; --bad: #d9480f; --gap: #c2255c; --s1: #1c7ed6; --s2: #e67700; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 6px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 22px 0 6px; }
p.meta, p.note, .figure .note, caption { color: var(--muted); }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 12px;
  margin: 0; }
.figure { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.figure dt { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.figure dd { margin: 2px 0 0; }
.figure .value { display: block; font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
.figure .note { display: block; font-size: 12px; }
table.data { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-variant-numeric: tabular-nums; }
table.data caption { text-align: left; font-size: 15px; font-weight: 600; color: var(--ink);
  padding: 14px 0 4px; }
table.data th, table.data td { padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.data th { text-align: left; background: var(--card); font-weight: 600; }
table.data .int, table.data .pct, table.data .share, table.data .money, table.data .pp {
  text-align: right; white-space: nowrap; }
table.data td.text { overflow-wrap: anywhere; max-width: 420px; }
table.data td.nowrap { white-space: nowrap; }
.meter { display: inline-block; width: 48px; height: 7px; margin-left: 6px; background: var(--line);
  border-radius: 4px; overflow: hidden; vertical-align: middle; }
.meter > span { display: block; height: 100%; background: var(--good); }
ul.findings { margin: 0; padding-left: 16px; }
ul.findings li { overflow-wrap: anywhere; }
.sev-error { color: var(--bad); font-weight: 600; }
.sev-warning { color: var(--s2); font-weight: 600; }
code, q { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
svg { display: block; max-width: 100%; height: auto; margin: 6px 0 4px; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--muted); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .line-compliance_pct { stroke: var(--s1); fill: none; stroke-width: 2.5; }
svg .line-cost_compliance_pct { stroke: var(--s2); fill: none; stroke-width: 2.5; stroke-dasharray: 6 3; }
svg .dot-compliance_pct { fill: var(--s1); }
svg .dot-cost_compliance_pct { fill: var(--s2); }
svg .bar-good { fill: var(--good); } svg .bar-bad { fill: var(--bad); } svg .bar-gap { fill: var(--gap); }
svg .track { fill: var(--card); }
svg text.value { fill: var(--ink); font-weight: 600; }
.legend span { display: inline-block; margin-right: 18px; color: var(--muted); font-size: 12px; }
.legend i { display: inline-block; width: 18px; height: 3px; margin-right: 6px; vertical-align: middle; }
details summary { cursor: pointer; color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { body { max-width: none; padding: 0; } h2 { break-after: avoid; } }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tag-compliance report">
<title>Tag compliance {{ day }}</title>
<style>{% raw %}__STYLE__{% endraw %}</style>
</head>
<body data-snapshot-date="{{ day }}">
{%- macro data_table(table) %}
<table class="data" id="{{ table.id }}">
<caption>{{ table.title }}</caption>
<thead><tr>
{%- for column in table.columns %}<th scope="col" class="{{ column.kind }}">{{ column.heading }}</th>
{%- endfor %}</tr></thead>
<tbody>
{%- for row in table.rows %}
<tr>{% for column in table.columns %}{% set value = row[column.key] %}
<td class="{{ column.kind }}" data-column="{{ column.key }}">
{%- if column.kind == "text" %}<bdi>{{ fmt(value) }}</bdi>{% else %}{{ fmt(value, column.kind) }}{% endif %}
{%- if column.kind == "pct" and value is not none %}<span class="meter" aria-hidden="true">
<span style="width: {{ meter(value) }}%"></span></span>{% endif %}</td>
{%- endfor %}</tr>
{%- else %}
<tr><td colspan="{{ table.columns | length }}">{{ table.empty }}</td></tr>
{%- endfor %}
</tbody>
</table>
{%- endmacro %}
{%- macro bar_chart(chart) %}
<svg id="{{ chart.id }}" class="chart" role="img" aria-label="{{ chart.title }}"
 width="{{ chart.width }}" height="{{ chart.height }}" viewBox="0 0 {{ chart.width }} {{ chart.height }}">
<title>{{ chart.title }}</title>
{%- for bar in chart.bars %}
<g class="bar" data-label="{{ bar.label }}" data-value="{{ bar.value }}">
<title>{{ isolate(bar.label) }}: {{ bar.display }}</title>
<text x="{{ chart.label_width - 8 }}" y="{{ bar.y + 13 }}" text-anchor="end">
{{- isolate(bar.short_label) }}</text>
<rect class="track" x="{{ chart.label_width }}" y="{{ bar.y }}" width="{{ chart.bar_area }}"
 height="{{ chart.row_height - 8 }}" rx="3"></rect>
<rect class="bar-{{ bar.tone }}" x="{{ chart.label_width }}" y="{{ bar.y }}" width="{{ bar.length }}"
 height="{{ chart.row_height - 8 }}" rx="3"></rect>
<text class="value" x="{{ chart.label_width + chart.bar_area + 8 }}" y="{{ bar.y + 13 }}">
{{- bar.display }}</text>
</g>
{%- endfor %}
</svg>
{%- endmacro %}
<header>
<h1>Tag compliance report: {{ day }}</h1>
<p class="meta">Policy <strong><bdi>{{ fmt(headline.policy_version) }}</bdi></strong>
{%- if headline.inventory_as_of != day %}; scored from the inventory of
<strong>{{ headline.inventory_as_of }}</strong> (no inventory of its own){% endif %}.
Generated {{ generated_at }} from the compliance warehouse.</p>
</header>

<section id="headline">
<h2>Headline</h2>
<dl class="figures">
{%- for figure in figures %}
<div class="figure" id="figure-{{ figure.key }}">
<dt>{{ figure.label }}</dt>
<dd><span class="value" data-figure="{{ figure.key }}"
 data-value="{{ '' if figure.value is none else figure.value }}">{{ figure.display }}</span>
<span class="note">{{ figure.note }}</span></dd>
</div>
{%- endfor %}
</dl>
</section>

<section id="trend">
<h2>Trend</h2>
{%- set chart = trend %}
<p class="legend">{% for series in chart.series %}<span><i class="legend-{{ series.key }}"
 style="background: var(--s{{ loop.index }})"></i>{{ series.label }}</span>{% endfor %}</p>
<svg id="{{ chart.id }}" class="chart" role="img" aria-label="{{ chart.title }}"
 width="{{ chart.width }}" height="{{ chart.height }}" viewBox="0 0 {{ chart.width }} {{ chart.height }}">
<title>{{ chart.title }}</title>
{%- for tick in chart.y_ticks %}
<line class="grid" x1="{{ chart.left }}" x2="{{ chart.right }}" y1="{{ tick.position }}"
 y2="{{ tick.position }}"></line>
<text x="{{ chart.left - 6 }}" y="{{ tick.position + 4 }}" text-anchor="end">{{ tick.label }}</text>
{%- endfor %}
{%- for tick in chart.x_ticks %}
<text x="{{ tick.position }}" y="{{ chart.bottom + 18 }}" text-anchor="{{ tick.anchor }}">
{{- tick.label }}</text>
{%- endfor %}
{%- for series in chart.series %}
<g class="series" data-series="{{ series.key }}">
{%- for segment in series.segments %}
<polyline class="line-{{ series.key }}"
 points="{% for p in segment %}{{ p.x }},{{ p.y }} {% endfor %}"></polyline>
{%- endfor %}
{%- for p in series.points %}
<circle class="dot-{{ series.key }}" cx="{{ p.x }}" cy="{{ p.y }}" r="3.5" data-date="{{ p.day }}"
 data-value="{{ p.value }}"><title>{{ p.day }}: {{ series.label }} {{ fmt(p.value, "pct") }}</title></circle>
{%- endfor %}
</g>
{%- endfor %}
</svg>
<details><summary>Trend figures</summary>
{{ data_table(trend_table) }}
</details>
</section>

<section id="breakdowns">
<h2>Breakdowns</h2>
<p class="note">Worst compliance first. Cost-weighted: the share of in-scope spend on compliant resources.</p>
{%- for table in breakdowns %}
{{ data_table(table) }}
{%- endfor %}
</section>

<section id="top-resources">
<h2>Top {{ top_limit }} non-compliant resources by amortized cost</h2>
<table class="data" id="table-top-resources">
<caption>Fixing these brings the most spend into attribution</caption>
<thead><tr><th scope="col" class="int">#</th><th scope="col">Account</th><th scope="col">Region</th>
<th scope="col">Type</th><th scope="col">Resource</th><th scope="col">Violations</th>
<th scope="col" class="money">Amortized</th><th scope="col">Cost basis</th></tr></thead>
<tbody>
{%- for row in top_resources %}
<tr data-resource-id="{{ row.resource_id }}">
<td class="int">{{ loop.index }}</td>
<td class="nowrap"><bdi>{{ fmt(row.account_label) }}</bdi></td>
<td class="nowrap"><bdi>{{ fmt(row.region) }}</bdi></td>
<td class="nowrap"><bdi>{{ fmt(row.resource_type) }}</bdi></td>
<td class="text"><code><bdi>{{ fmt(row.resource_id) }}</bdi></code>
{%- if row.name and row.name != row.resource_id %}<br><bdi>{{ fmt(row.name) }}</bdi>{% endif %}</td>
<td class="text"><ul class="findings">
{%- for finding in row.findings %}
<li data-tag-key="{{ finding.tag_key if finding.tag_key is not none else '' }}">
<span class="sev-{{ finding.severity }}">{{ finding.severity }}</span>
{{ finding.violation_type }}{% if finding.tag_key is not none %} <code><bdi>
{{- fmt(finding.tag_key) }}</bdi></code>{% endif %}
{%- if finding.current_value is not none %}: <q class="value"><bdi>
{{- fmt(finding.current_value) }}</bdi></q>{% endif %}</li>
{%- endfor %}</ul></td>
<td class="money">{{ fmt(row.amortized_cost, "money") }}</td>
<td class="nowrap">{{ fmt(row.cost_basis) }}</td>
</tr>
{%- else %}
<tr><td colspan="8">No non-compliant resources on this day.</td></tr>
{%- endfor %}
</tbody>
</table>
</section>

<section id="key-coverage">
<h2>Coverage per tag key</h2>
<p class="note">Resources a tag rule applies to that pass it; bars under 90% are highlighted.</p>
{{ bar_chart(coverage_chart) }}
{{ data_table(coverage_table) }}
</section>

<section id="attribution-gap">
<h2>Attribution gap by reason</h2>
<p class="note">Spend that cannot be attributed to a compliant resource; the reasons partition the gap.</p>
{{ bar_chart(gap_chart) }}
{{ data_table(gap_table) }}
<ul class="note">
{%- for reason, meaning in gap_reasons.items() %}
<li><code>{{ reason }}</code>: {{ meaning }}</li>
{%- endfor %}
</ul>
</section>

<footer>tag-compliance report for {{ day }}. Self-contained: no scripts, fonts or images are loaded.</footer>
</body>
</html>
"""

_ENVIRONMENT = jinja2.Environment(
    autoescape=True,  # every value from the data is escaped; nothing in the template is marked safe
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render_report(data: ReportData) -> str:
    """The whole HTML page of one day's report."""
    # The CSS goes in verbatim: autoescaping would turn its '>' and quotes into entities, which
    # a <style> element does not decode. It is a constant, never data.
    template = _ENVIRONMENT.from_string(TEMPLATE.replace("__STYLE__", STYLE))
    return template.render(
        day=data.day,
        fmt=fmt,
        isolate=isolate,
        meter=meter,
        generated_at=data.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        headline=data.headline,
        figures=headline_figures(data.headline),
        trend=trend_chart(data.trend),
        trend_table=Table("table-trend", "Overall, per scored day up to this one", TREND_COLUMNS, data.trend),
        breakdowns=breakdown_tables(data),
        top_limit=TOP_RESOURCES,
        top_resources=data.top_resources,
        coverage_chart=key_coverage_chart(data.key_coverage),
        coverage_table=Table(
            "table-key-coverage", "Per tag rule key, worst first", KEY_COVERAGE_COLUMNS, data.key_coverage
        ),
        gap_chart=gap_chart(data.gap_by_reason),
        gap_table=Table(
            "table-gap-by-reason",
            "Rows of attribution_gap without a tag key",
            GAP_COLUMNS,
            data.gap_by_reason,
            "No attribution gap: no cost data for this day, or all spend is attributable.",
        ),
        gap_reasons=GAP_REASONS,
    )


# --- writing -----------------------------------------------------------------------------------


def default_report_path(warehouse: Path, day: date) -> Path:
    """Where a day's report goes unless told otherwise: ``reports/`` next to the warehouse."""
    return Path(warehouse).parent / REPORTS_DIRNAME / f"tag-compliance-{day.isoformat()}.html"


def write_report(
    warehouse: Path, day: date | None = None, output: Path | None = None, lake_root: Path | str | None = None
) -> Path:
    """Build the report of ``day`` (default: latest scored) and write it; returns its path."""
    try:
        warehouse = existing_warehouse(warehouse)
    except WarehouseNotFoundError as exc:
        raise ReportError(str(exc)) from None
    with connect_read_only(warehouse, lake_root=lake_root) as con:
        data = load_report_data(con, day)
    page = render_report(data)
    path = Path(output) if output is not None else default_report_path(warehouse, data.day)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, page)
    return path


# --- command line ------------------------------------------------------------------------------


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of one scored day and say where it is."""
    warehouse = Path(args.warehouse) if args.warehouse else get_settings().warehouse
    try:
        path = write_report(warehouse, args.date, args.output, args.lake)
    except ReportError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(Text(str(exc), style="red"))
        return EXIT_ERROR
    except (duckdb.Error, OSError) as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            Text(f"report failed: {exc}", style="red")
        )
        return EXIT_ERROR
    Console(highlight=False, soft_wrap=True).print(Text.assemble(("OK ", "bold green"), f"report: {path}"))
    return EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``report`` on the ``tag-compliance`` command (called by ``cli.build_parser``)."""
    # Imported here: cli imports this module to wire the subcommand, so no import cycle at load time.
    from tag_compliance.cli import HelpFormatter, add_warehouse_option

    report = subparsers.add_parser(
        "report",
        help="Write a self-contained HTML compliance report of one scored day.",
        description="Headline figures, the trend, breakdowns, the costliest non-compliant resources, "
        "coverage per tag key and the attribution gap, in one HTML file that works offline.",
        formatter_class=HelpFormatter,
    )
    report.add_argument(
        "--date",
        type=_iso_date,
        default=None,
        metavar="D",
        help="Snapshot date, YYYY-MM-DD (default: the latest scored date).",
    )
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="HTML file to write (default: reports/tag-compliance-<date>.html next to the warehouse).",
    )
    add_warehouse_option(report)
    report.set_defaults(func=cmd_report)
    return report
