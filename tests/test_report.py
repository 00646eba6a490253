"""The HTML report from a hand-built warehouse: its figures are the views', data is escaped, the page
loads nothing, it is written atomically, and the ``report`` subcommand works.

The warehouse: three scored days (04-01 without costs, 04-02 and 04-03 with service-level costs)
of a few resources whose tags carry HTML (a ``<script>`` value, a key ``&<>"'``, an ``<img>`` name),
plus 22 non-compliant functions so the top-20 list is cut.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
from rich.console import Console

from tag_compliance import files, report
from tag_compliance.policy import TaggingPolicy
from tag_compliance.report import ReportError, default_report_path, write_report
from tag_compliance.scoring import score_snapshot
from tag_compliance.warehouse import publish_warehouse
from tests.sql_fixtures import (
    ACCOUNT_1,
    ACCOUNT_2,
    CE_CONFIG,
    CE_EC2,
    CE_ECS,
    CE_LAMBDA,
    CE_S3,
    CE_TAX,
    resource,
    service_cost,
    write_costs,
    write_snapshot,
)

D1, D2, D3 = date(2026, 4, 1), date(2026, 4, 2), date(2026, 4, 3)
SCRIPT = "<script>alert(1)</script>"
ODD_KEY = "&<>\"'"
IMG_NAME = "<img src=x onerror=alert(2)>"
FUNCTIONS = [f"fn-bad-{index:02d}" for index in range(22)]  # 22 non-compliant: the top 20 is cut

REPORT_POLICY: dict[str, Any] = {
    "version": "report-1",
    "required_tags": [
        {"key": "CostCenter", "pattern": "CC-[0-9]{4}", "applies_to": ["ec2:*", "s3:*", "lambda:*"]},
        {"key": "Environment", "allowed_values": ["prod", "dev"], "applies_to": ["ec2:*", "s3:*"]},
        {"key": ODD_KEY, "applies_to": ["ec2:*"]},
    ],
    "exemptions": [{"resources": ["i-legacy"], "reason": "Legacy host, retiring", "expires": "2099-12-31"}],
}


def inventory(day: date) -> list[dict[str, Any]]:
    """The resources of one day: only bucket-ok changes (its Environment is fixed on 04-02)."""
    bad_bucket = resource(ACCOUNT_2, "global", "s3:bucket", "bucket-bad", {"CostCenter": "nope"})
    bad_bucket["name"] = IMG_NAME
    return [
        resource(
            ACCOUNT_1,
            "us-east-1",
            "ec2:instance",
            "i-good",
            {"CostCenter": "CC-1000", "Environment": "prod", ODD_KEY: "x"},
        ),
        resource(
            ACCOUNT_1,
            "us-east-1",
            "ec2:instance",
            "i-script",
            {"CostCenter": "CC-2000", "Environment": SCRIPT},  # and no ODD_KEY
        ),
        resource(ACCOUNT_2, "us-east-1", "ec2:instance", "i-legacy", {}),
        resource(
            ACCOUNT_1,
            "global",
            "s3:bucket",
            "bucket-ok",
            {"CostCenter": "CC-3000", "Environment": "qa" if day == D1 else "dev"},
        ),
        bad_bucket,
        resource(ACCOUNT_2, "us-east-1", "lambda:function", "fn-ok", {"CostCenter": "CC-4000"}),
        resource(ACCOUNT_2, "us-east-1", "ecs:service", "svc-out", {"Anything": "goes"}),
        *(resource(ACCOUNT_1, "eu-west-1", "lambda:function", name, {}) for name in FUNCTIONS),
    ]


# Service totals (split equally over an account's resources of a service): the same both days.
# Compliant: i-good 3.00 + bucket-ok 2.00 + fn-ok 0.75 = 5.75 of 17.95; the gap is 12.20.
DAY_COSTS = [
    *service_cost(ACCOUNT_1, CE_EC2, "6.00", "6.00"),  # i-good, i-script
    *service_cost(ACCOUNT_1, CE_S3, "2.00", "2.00"),  # bucket-ok
    *service_cost(ACCOUNT_1, CE_LAMBDA, "2.20", "2.20"),  # 22 functions, 0.10 each
    *service_cost(ACCOUNT_1, CE_TAX, "0.50", "0.50"),  # no resource
    *service_cost(ACCOUNT_2, CE_EC2, "4.00", "4.00"),  # i-legacy (exempt)
    *service_cost(ACCOUNT_2, CE_S3, "1.00", "1.00"),  # bucket-bad
    *service_cost(ACCOUNT_2, CE_LAMBDA, "0.75", "0.75"),  # fn-ok
    *service_cost(ACCOUNT_2, CE_ECS, "1.25", "1.25"),  # svc-out (out of scope)
    *service_cost(ACCOUNT_2, CE_CONFIG, "0.25", "0.25"),  # no collector: no resource
]
TOTAL_SPEND = Decimal("17.95")
ATTRIBUTION_GAP = Decimal("12.20")


# As AWS Organizations names them: one account named (with markup in its name), one configured by id.
ACCOUNT_NAME = "Payments <prod>"
ACCOUNTS = [
    {"account_id": ACCOUNT_1, "name": ACCOUNT_NAME, "status": "ACTIVE", "inventoried": True},
    {"account_id": ACCOUNT_2, "inventoried": True},
]


def build_report_warehouse(root: Path) -> Path:
    """Write and score the three days, publish the warehouse and return its path."""
    lake_root = root / "lake"
    policy = TaggingPolicy.model_validate(REPORT_POLICY)
    for day in (D1, D2, D3):
        write_snapshot(lake_root, inventory(day), snapshot_date=day, accounts=ACCOUNTS if day == D3 else None)
        if day != D1:
            write_costs(lake_root, DAY_COSTS, usage_date=day)
        score_snapshot(lake_root, day, policy)
    warehouse = root / "warehouse.duckdb"
    publish_warehouse(lake_root, warehouse)
    return warehouse


# --- a small DOM from html.parser ---------------------------------------------------------------

VOID = {"meta", "br", "img", "input", "link", "hr", "col", "source", "area", "base", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        return [
            element
            for element in self.iter()
            if (tag is None or element.tag == tag)
            and all(element.attrs.get(name.replace("_", "-")) == value for name, value in attrs.items())
        ]

    def by_id(self, element_id: str) -> Element:
        (element,) = self.find_all(id=element_id)
        return element


class TreeBuilder(HTMLParser):
    """Elements and decoded text (``convert_charrefs``: ``&lt;`` reads as ``<``, as a browser shows it)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Element("#document", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, dict(attrs), self.current))

    def handle_endtag(self, tag: str) -> None:
        element = self.current
        while element.parent is not None and element.tag != tag:
            element = element.parent
        if element.parent is not None:
            self.current = element.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(page: str) -> Element:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder.root


def table_rows(dom: Element, table_id: str) -> list[list[str]]:
    body = dom.by_id(table_id).find_all("tbody")[0]
    return [[" ".join(td.text().split()) for td in tr.find_all("td")] for tr in body.find_all("tr")]


def figures(dom: Element) -> dict[str, tuple[str, str]]:
    """data-figure -> (data-value, shown text)."""
    return {
        element.attrs["data-figure"]: (element.attrs["data-value"], element.text().strip())
        for element in dom.iter()
        if "data-figure" in element.attrs
    }


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report_warehouse(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def page(warehouse: Path) -> str:
    path = write_report(warehouse)
    assert (
        path
        == default_report_path(warehouse, D3)
        == warehouse.parent / "reports/tag-compliance-2026-04-03.html"
    )
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def dom(page: str) -> Element:
    return parse(page)


def query(warehouse: Path, sql: str, **params: object) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params).fetchall()


# --- figures -----------------------------------------------------------------------------------


def test_headline_figures_are_the_warehouse_views_figures(warehouse, dom):
    ((pct, cost_pct, in_scope, compliant, exempt, errors, cost_compliant),) = query(
        warehouse,
        "select compliance_pct, cost_compliance_pct, resources_in_scope, resources_compliant, "
        "resources_exempt, error_violations, cost_compliant from compliance_summary "
        "where dimension = 'overall' and snapshot_date = $day",
        day=D3,
    )
    ((gap,),) = query(
        warehouse,
        "select sum(amortized_cost) from attribution_gap where snapshot_date = $day and tag_key is null",
        day=D3,
    )
    ((spend,),) = query(
        warehouse,
        "select sum(amount) from costs where usage_date = $day and source = 'service' "
        "and metric = 'AmortizedCost'",
        day=D3,
    )
    shown = figures(dom)
    assert float(shown["compliance_pct"][0]) == pct and shown["compliance_pct"][1] == f"{pct:.1f}%"
    assert float(shown["cost_compliance_pct"][0]) == cost_pct
    assert shown["cost_compliance_pct"][1] == f"{cost_pct:.1f}%"
    for key, value in {
        "resources_in_scope": in_scope,
        "resources_compliant": compliant,
        "resources_exempt": exempt,
        "error_violations": errors,
    }.items():
        assert shown[key] == (str(value), f"{value:,}"), key
    assert Decimal(shown["attribution_gap"][0]) == gap == ATTRIBUTION_GAP
    assert Decimal(shown["total_spend"][0]) == spend == TOTAL_SPEND
    assert (shown["attribution_gap"][1], shown["total_spend"][1]) == ("$12.20", "$17.95")
    # The gap partitions the spend not on compliant resources.
    assert spend == cost_compliant + gap
    # By hand: i-good, bucket-ok and fn-ok comply; i-legacy is exempt; svc-out is out of scope.
    assert (in_scope, compliant, exempt) == (28, 3, 1)


def test_a_day_without_costs_shows_dashes_not_zeros(warehouse, tmp_path):
    dom = parse(write_report(warehouse, D1, tmp_path / "d1.html").read_text(encoding="utf-8"))
    shown = figures(dom)
    for key in ("cost_compliance_pct", "attribution_gap", "total_spend"):
        assert shown[key] == ("", "—"), key
    assert table_rows(dom, "table-gap-by-reason") == [
        ["No attribution gap: no cost data for this day, or all spend is attributable."]
    ]


def test_the_trend_has_every_scored_day_up_to_the_report_date(warehouse, dom, tmp_path):
    trend = query(
        warehouse,
        "select snapshot_date, compliance_pct, cost_compliance_pct from compliance_trend "
        "where dimension = 'overall' order by snapshot_date",
    )
    chart = dom.by_id("chart-trend")
    assert chart.tag == "svg"
    for series, column in (("compliance_pct", 1), ("cost_compliance_pct", 2)):
        (group,) = chart.find_all("g", data_series=series)
        points = [(c.attrs["data-date"], float(c.attrs["data-value"])) for c in group.find_all("circle")]
        assert points == [(row[0].isoformat(), row[column]) for row in trend if row[column] is not None]
    # 04-01 has no costs: the cost line starts on 04-02 (one segment of two points).
    (cost_group,) = chart.find_all("g", data_series="cost_compliance_pct")
    assert len(cost_group.find_all("polyline")) == 1
    assert [row[0] for row in table_rows(dom, "table-trend")] == ["2026-04-01", "2026-04-02", "2026-04-03"]
    earlier = parse(write_report(warehouse, D2, tmp_path / "d2.html").read_text(encoding="utf-8"))
    assert [row[0] for row in table_rows(earlier, "table-trend")] == ["2026-04-01", "2026-04-02"]


def test_trend_chart_geometry_for_many_days_and_a_day_without_costs():
    days = [date(2026, 1, 1) + timedelta(days=offset) for offset in range(30)]
    rows = [
        {"snapshot_date": day, "compliance_pct": 50.0, "cost_compliance_pct": None if i == 10 else 40.0}
        for i, day in enumerate(days)
    ]
    chart = report.trend_chart(rows)
    assert [tick.label for tick in chart.x_ticks][0::5] == ["2026-01-01", "2026-01-30"]
    assert len(chart.x_ticks) == 6
    assert (chart.x_ticks[0].anchor, chart.x_ticks[-1].anchor) == ("start", "end")
    compliance, cost = chart.series
    assert len(compliance.segments) == 1 and len(compliance.points) == 30
    assert [len(segment) for segment in cost.segments] == [10, 19]  # broken at the day without costs
    assert compliance.points[0].x == chart.left and compliance.points[-1].x == chart.right
    assert compliance.points[0].y == (chart.top + chart.bottom) / 2  # 50%
    single = report.trend_chart(rows[:1])
    assert single.series[0].points[0].x == (chart.left + chart.right) / 2 and single.series[0].segments == []


def test_breakdowns_have_a_row_per_value_of_the_dimension(warehouse, dom):
    for dimension, table_id in (
        ("account", "table-account"),
        ("service", "table-service"),
        ("resource_type", "table-resource-type"),
        ("tag_key", "table-tag-key"),
    ):
        expected = query(
            warehouse,
            "select dimension_value, resources_in_scope, compliance_pct from compliance_summary "
            "where snapshot_date = $day and dimension = $dimension "
            "order by compliance_pct nulls last, dimension_value",
            day=D3,
            dimension=dimension,
        )
        if dimension == "account":  # labelled with the name Organizations gave, where it gave one
            names = {ACCOUNT_1: ACCOUNT_NAME}
            expected = [
                (f"{names[value]} ({value})" if value in names else value, *rest) for value, *rest in expected
            ]
            assert {value for value, *_ in expected} == {f"{ACCOUNT_NAME} ({ACCOUNT_1})", ACCOUNT_2}
        rows = table_rows(dom, table_id)
        assert [(row[0], row[1], row[4]) for row in rows] == [
            (value, f"{in_scope:,}", "—" if pct is None else f"{pct:.1f}%")
            for value, in_scope, pct in expected
        ], dimension


def test_top_non_compliant_resources_are_the_20_costliest_without_exempt_ones(dom):
    rows = table_rows(dom, "table-top-resources")
    assert len(rows) == 20
    ids = [tr.attrs["data-resource-id"] for tr in dom.by_id("table-top-resources").find_all("tr")[1:]]
    # i-script (3.00), bucket-bad (1.00), then 0.10 each by account, type and id.
    assert ids[:2] == ["i-script", "bucket-bad"]
    assert ids[2:] == FUNCTIONS[:18]
    assert [row[6] for row in rows[:3]] == ["$3.00", "$1.00", "$0.10"]
    assert "i-legacy" not in ids and "i-good" not in ids
    # the account's name (escaped: it holds markup) next to its id, where Organizations named it
    accounts = {resource_id: row[1] for resource_id, row in zip(ids, rows, strict=True)}
    assert set(accounts.values()) == {f"{ACCOUNT_NAME} ({ACCOUNT_1})", ACCOUNT_2}


def test_per_key_coverage_and_gap_by_reason(warehouse, dom):
    coverage = {row[0]: row for row in table_rows(dom, "table-key-coverage")}
    assert set(coverage) == {"CostCenter", "Environment", ODD_KEY}
    # The odd key applies to the three instances: i-good passes, i-script fails, i-legacy is exempt.
    assert coverage[ODD_KEY][1:5] == ["3", "1", "1", "33.3%"]
    bars = dom.by_id("chart-key-coverage").find_all("g")
    assert sorted(bar.attrs["data-label"] for bar in bars) == sorted(coverage)
    gap = {row[0]: row[2] for row in table_rows(dom, "table-gap-by-reason")}
    assert gap == {
        "non_compliant": "$6.20",
        "exempt": "$4.00",
        "out_of_scope": "$1.25",
        "no_resource": "$0.75",
    }
    shown = sum(Decimal(value.lstrip("$")) for value in gap.values())
    assert shown == ATTRIBUTION_GAP
    assert len(dom.by_id("chart-gap").find_all("g")) == 4


# --- escaping and offline ----------------------------------------------------------------------


def test_data_is_escaped_and_shown_as_text(page, dom):
    assert "<script" not in page.lower()  # the page has no script at all, so none can come from data
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    values = [q.text() for q in dom.find_all("q")]
    assert SCRIPT in values
    script_row = dom.find_all("tr", data_resource_id="i-script")[0]
    assert SCRIPT in script_row.text()
    assert ODD_KEY in [li.attrs["data-tag-key"] for li in dom.find_all("li") if "data-tag-key" in li.attrs]
    assert "&amp;&lt;&gt;&#34;&#39;" in page  # the odd key, escaped in text and attributes
    assert ODD_KEY in dom.by_id("table-tag-key").text()
    bucket_row = dom.find_all("tr", data_resource_id="bucket-bad")[0]
    assert IMG_NAME in bucket_row.text()


def test_the_template_marks_nothing_safe():
    assert not re.search(r"\|\s*safe\b", report.TEMPLATE)
    assert "Markup" not in Path(report.__file__).read_text(encoding="utf-8")


def test_the_css_is_inline_and_verbatim(page):
    # Not entity-escaped: a <style> element does not decode entities ('.meter &gt; span' matches nothing).
    assert f"<style>{report.STYLE}</style>" in page


def test_the_page_references_nothing_outside_itself(page, dom):
    assert not re.search(r"https?:|//[a-z0-9]", page, re.IGNORECASE)
    assert not re.search(r"\burl\(|@import|@font-face", page, re.IGNORECASE)
    for element in dom.iter():
        for attribute in ("src", "href", "srcset", "action", "data", "xlink:href", "background"):
            assert attribute not in element.attrs, (element.tag, attribute)
    assert not dom.find_all("script") and not dom.find_all("link") and not dom.find_all("iframe")


# --- bidi isolation (issue 11, defect 8c) ------------------------------------------------------

RLO, PDI, FSI = "\u202e", "\u2069", "\u2068"
BIDI_CONTROLS = {chr(code) for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
BIDI_KEY = f"evil{RLO}key"  # a prohibited key found on a resource: shown in its findings
BIDI_KEY_PDI = f"evil{PDI}{RLO}pdi"  # a stray PDI would end an isolation early
BIDI_VALUE = f"{RLO}dorp"
BIDI_ID = f"i-{RLO}321"
BIDI_NAME = f"web{PDI}{RLO}eman"
BIDI_POLICY: dict[str, Any] = {
    "version": "bidi-1",
    "required_tags": [{"key": "Environment", "allowed_values": ["prod"], "applies_to": ["ec2:*"]}],
    "prohibited_keys": ["evil*"],
}


def build_bidi_warehouse(root: Path) -> Path:
    """One day, one resource whose id, name, tag keys and value carry right-to-left overrides."""
    lake_root = root / "lake"
    hostile = resource(
        ACCOUNT_1,
        "us-east-1",
        "ec2:instance",
        BIDI_ID,
        {"Environment": BIDI_VALUE, BIDI_KEY: "x", BIDI_KEY_PDI: "y"},
    )
    hostile["name"] = BIDI_NAME
    fine = resource(ACCOUNT_1, "us-east-1", "ec2:instance", "i-fine", {"Environment": "prod"})
    write_snapshot(lake_root, [hostile, fine], snapshot_date=D1)
    score_snapshot(lake_root, D1, TaggingPolicy.model_validate(BIDI_POLICY))
    warehouse = root / "warehouse.duckdb"
    publish_warehouse(lake_root, warehouse)
    return warehouse


def isolates_balanced(text: str) -> bool:
    """No PDI closes more isolates than the text opened (it would close the one around it)."""
    depth = 0
    for char in text:
        depth += char in "\u2066\u2067\u2068"
        depth -= char == PDI
        if depth < 0:
            return False
    return depth == 0


@pytest.fixture(scope="module")
def bidi_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_report(build_bidi_warehouse(tmp_path_factory.mktemp("bidi"))).read_text(encoding="utf-8")


SVG_TEXT = {"text", "title", "tspan"}


def texts_with_bidi_controls(dom: Element) -> list[tuple[Element, str]]:
    return [
        (element, child)
        for element in dom.iter()
        for child in element.children
        if isinstance(child, str) and BIDI_CONTROLS & set(child)
    ]


def test_user_text_with_bidi_overrides_is_isolated(bidi_page):
    dom = parse(bidi_page)
    found = texts_with_bidi_controls(dom)
    html = [(element, text) for element, text in found if element.tag not in SVG_TEXT]
    # Each such text is a <bdi> of its own: its override cannot reorder the text around it.
    assert [(element.tag, text) for element, text in html if element.tag != "bdi"] == []
    shown = {text for _, text in html}
    assert {BIDI_KEY, BIDI_VALUE, BIDI_ID} <= shown
    # A stray PDI is shown escaped, so it cannot end the <bdi>'s isolation early.
    assert {BIDI_KEY_PDI.replace(PDI, "\\u2069"), BIDI_NAME.replace(PDI, "\\u2069")} <= shown
    assert all(isolates_balanced(text) for text in shown)
    (row,) = dom.find_all("tr", data_resource_id=BIDI_ID)
    assert {li.attrs["data-tag-key"] for li in row.find_all("li")} >= {BIDI_KEY, BIDI_KEY_PDI}  # exact


def test_every_cell_showing_user_text_is_isolated(dom):
    top = dom.by_id("table-top-resources")
    for tr in top.find_all("tbody")[0].find_all("tr"):
        cells = tr.find_all("td")
        for td in cells[1:4]:  # account, region, type
            assert [child.tag for child in td.children if isinstance(child, Element)] == ["bdi"]
        (code, *_) = cells[4].find_all("code")
        assert code.children and all(
            isinstance(child, Element) and child.tag == "bdi" for child in code.children
        )
        for element in [*cells[5].find_all("code"), *cells[5].find_all("q")]:
            assert [child.tag for child in element.children] == ["bdi"], element.text()
    bucket = dom.find_all("tr", data_resource_id="bucket-bad")[0]
    assert IMG_NAME in [bdi.text() for bdi in bucket.find_all("bdi")]
    for table_id in ("table-account", "table-tag-key", "table-key-coverage", "table-gap-by-reason"):
        for td in dom.by_id(table_id).find_all("td", **{"class": "text"}):
            assert [child.tag for child in td.children if isinstance(child, Element)] == ["bdi"], table_id
    # SVG text cannot hold <bdi>: chart labels and tooltips are wrapped in FSI ... PDI instead.
    bars = dom.by_id("chart-key-coverage").find_all("g")
    assert bars
    for bar in bars:
        label = bar.attrs["data-label"]
        (text, _value) = bar.find_all("text")
        assert text.text() == f"{FSI}{label}{PDI}"
        (title,) = bar.find_all("title")
        assert title.text().startswith(f"{FSI}{label}{PDI}: ")


# --- dates, writing, command line --------------------------------------------------------------


def test_an_unknown_date_names_it_and_the_dates_available(warehouse):
    with pytest.raises(ReportError) as error:
        write_report(warehouse, date(2026, 1, 1))
    message = str(error.value)
    assert "2026-01-01" in message
    assert "2026-04-01, 2026-04-02, 2026-04-03" in message


def test_many_available_dates_are_listed_first_and_latest():
    dates = [date(2026, 1, day) for day in range(1, 31)]
    text = report._describe_dates(dates)
    assert text.startswith("2026-01-01, ") and text.endswith(", 2026-01-30") and "(20 more)" in text


def test_an_empty_or_missing_warehouse_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        write_report(tmp_path / "nothing.duckdb")
    publish_warehouse(tmp_path / "lake", tmp_path / "empty.duckdb")
    with pytest.raises(ReportError, match="no scored snapshot"):
        write_report(tmp_path / "empty.duckdb")


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_the_report_replaces_the_old_one_atomically(warehouse, tmp_path, monkeypatch):
    target = tmp_path / "out" / "report.html"
    write_report(warehouse, D2, target)
    first = target.read_text(encoding="utf-8")
    assert 'data-snapshot-date="2026-04-02"' in first
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()

    def failing_replace(source: os.PathLike, destination: os.PathLike) -> None:
        assert Path(source).read_text(encoding="utf-8").endswith("</html>\n")  # complete before the rename
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(warehouse, D3, target)
    assert target.read_text(encoding="utf-8") == first  # the previous report is untouched
    assert leftovers(target.parent) == []
    monkeypatch.undo()

    def failing_render(data: report.ReportData) -> str:
        raise RuntimeError("template broke")

    monkeypatch.setattr(report, "render_report", failing_render)
    with pytest.raises(RuntimeError):
        write_report(warehouse, D3, target)
    assert target.read_text(encoding="utf-8") == first
    monkeypatch.undo()

    write_report(warehouse, D3, target)
    assert 'data-snapshot-date="2026-04-03"' in target.read_text(encoding="utf-8")
    assert leftovers(target.parent) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def parser() -> argparse.ArgumentParser:
    """The ``tag-compliance`` parser as cli.build_parser wires it: report.add_parser on the subparsers."""
    parser = argparse.ArgumentParser(prog="tag-compliance")
    report.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_the_report_command_writes_the_file_and_says_where(warehouse, tmp_path, capsys):
    output = tmp_path / "cli.html"
    args = parser().parse_args(
        ["report", "--warehouse", str(warehouse), "--date", "2026-04-02", "-o", str(output)]
    )
    assert args.func(args) == report.EXIT_OK
    assert 'data-snapshot-date="2026-04-02"' in output.read_text(encoding="utf-8")
    assert str(output) in capsys.readouterr().out.replace("\n", "")


def test_the_report_command_defaults_to_the_latest_date_next_to_the_warehouse(warehouse, monkeypatch, capsys):
    monkeypatch.setenv("TAG_COMPLIANCE_WAREHOUSE", str(warehouse))
    args = parser().parse_args(["report"])
    assert args.func(args) == report.EXIT_OK
    expected = warehouse.parent / "reports" / "tag-compliance-2026-04-03.html"
    assert expected.is_file()
    assert str(expected) in capsys.readouterr().out.replace("\n", "")


def test_the_report_command_errors(warehouse, tmp_path, capsys):
    args = parser().parse_args(["report", "--warehouse", str(warehouse), "--date", "2025-12-31"])
    assert args.func(args) == report.EXIT_ERROR
    err = capsys.readouterr().err
    assert "no compliance data for 2025-12-31" in err and "2026-04-03" in err
    args = parser().parse_args(["report", "--warehouse", str(tmp_path / "missing.duckdb")])
    assert args.func(args) == report.EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["report", "--date", "yesterday"])
    assert exit_.value.code == 2
    assert "not a date" in capsys.readouterr().err


# --- the pipeline task and the demo -------------------------------------------------------------


def test_the_pipeline_writes_the_runs_report_next_to_the_warehouse(warehouse, monkeypatch):
    from tag_compliance import pipeline
    from tag_compliance.config import Settings

    monkeypatch.setenv("TAG_COMPLIANCE_WAREHOUSE", str(warehouse))
    path = Path(pipeline.write_report("2026-04-02", Settings()))
    assert path == warehouse.parent / "reports" / "tag-compliance-2026-04-02.html"
    assert 'data-snapshot-date="2026-04-02"' in path.read_text(encoding="utf-8")


def test_the_demo_summary_ends_with_the_reports_path(warehouse):
    from tag_compliance.demo import print_summary

    expected = default_report_path(warehouse, D3)
    expected.unlink(missing_ok=True)  # the DAG did not write it: the demo generates it
    console = Console(record=True, width=400)
    print_summary(console, warehouse)
    printed = console.export_text()
    assert expected.is_file()
    assert f"Report:    {expected}" in printed
