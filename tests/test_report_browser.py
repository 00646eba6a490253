"""The report in a real browser, headless Chromium: its charts and tables render, data shows as
text, the page logs nothing to the console and makes no network request of its own.

Driven through Chromium's own command line (no Python dependency). A missing Chromium fails these
tests rather than skipping them: CI installs it (``.ci/run``); locally ``apt-get install chromium``.

How the checks see errors (Chromium 156, verified by ``test_the_checks_catch_a_broken_page``):

- Console: with ``--enable-logging=stderr --v=0`` every console message of the page, whatever its
  level (``console.error`` included), and every uncaught exception is one stderr line like
  ``[pid:tid:MMDD/hhmmss.micro:INFO:CONSOLE:2] "Uncaught ReferenceError: f is not defined", source:
  file:///... (2)``. Older builds wrote ``ERROR:CONSOLE(2)``. The report has no script, so any
  CONSOLE line (or "Uncaught") fails.
- Network: ``--log-net-log`` records every request. Chromium's own background requests (update
  checks, time, accounts: made despite the flags below) have initiator "not an origin"; requests
  of the page have its origin ("null" for file://). The page may make none.
- ``--host-resolver-rules=MAP * ~NOTFOUND`` makes every host name unresolvable, so neither the page
  nor Chromium's background requests leave the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tag_compliance.report import write_report
from tests.conftest import REPO_ROOT
from tests.test_report import (
    BIDI_KEY,
    BIDI_KEY_PDI,
    IMG_NAME,
    ODD_KEY,
    PDI,
    SCRIPT,
    TOTAL_SPEND,
    build_bidi_warehouse,
    build_report_warehouse,
    figures,
    parse,
    table_rows,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
CONSOLE_LINE = re.compile(r":CONSOLE\b|Uncaught")
BROWSER_INITIATED = "not an origin"
TIMEOUT = 90


@dataclass(frozen=True)
class Loaded:
    dom: str
    console: list[str]
    page_requests: list[str]


def chromium(tmp: Path, *args: str) -> tuple[str, str]:
    """Run headless Chromium once; its stdout and stderr. A run that hangs is killed and fails."""
    assert Path(CHROMIUM).is_file(), (
        f"Chromium not found at {CHROMIUM}: the browser tests need it (apt-get install chromium)"
    )
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a hung browser is killed with its children
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"Chromium did not finish in {TIMEOUT}s (a page blocking it, e.g. an alert() from data?)")
    assert process.returncode == 0, stderr[-3000:]
    return stdout, stderr


def page_requests(netlog: Path) -> list[str]:
    """URLs of the requests the page made (not Chromium's own), from a --log-net-log file."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and event["params"].get("initiator") != BROWSER_INITIATED
    ]


def load(page: Path, tmp: Path) -> Loaded:
    """Open a page; its DOM after load, its console messages and its network requests."""
    netlog = tmp / "netlog.json"
    dom, stderr = chromium(
        tmp, "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", "--dump-dom", page.as_uri()
    )
    console = [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]
    return Loaded(dom, console, page_requests(netlog))


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(build_report_warehouse(tmp_path_factory.mktemp("browser-report")))


@pytest.fixture(scope="module")
def loaded(report_page: Path, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    return load(report_page, tmp_path_factory.mktemp("chromium"))


def test_chromium_is_installed():
    assert Path(CHROMIUM).is_file(), f"install Chromium (apt-get install chromium): {CHROMIUM} is missing"
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert "Chromium" in version.stdout


def test_the_checks_catch_a_broken_page(tmp_path):
    """Negative control: a page with a console error, an uncaught exception, an external image and
    unescaped markup trips every check the report passes."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><body><p>broken</p>"
        '<img src="https://example.invalid/pixel.png">'
        '<p><script>console.log("injected markup ran")</script></p>'
        '<script>console.error("deliberate console error"); undefined_function_call();</script>'
        "</body></html>",
        encoding="utf-8",
    )
    run = load(broken, tmp_path)
    assert any('"deliberate console error"' in line for line in run.console), run.console
    assert any(
        "Uncaught ReferenceError: undefined_function_call is not defined" in line for line in run.console
    )
    assert run.page_requests == ["https://example.invalid/pixel.png"]
    # Unescaped markup becomes an element and runs. (Not alert(): it blocks headless Chromium.)
    assert any('"injected markup ran"' in line for line in run.console)
    assert '<script>console.log("injected markup ran")</script>' in run.dom


def test_no_console_messages(loaded):
    assert loaded.console == []


def test_no_network_requests(loaded):
    assert loaded.page_requests == []


def test_charts_tables_and_figures_render(loaded):
    dom = parse(loaded.dom)
    trend = dom.by_id("chart-trend")
    assert trend.tag == "svg"
    assert len(trend.find_all("circle")) == 5  # 3 days of compliance, 2 with costs
    assert trend.find_all("polyline")
    assert {bar.attrs["data-label"] for bar in dom.by_id("chart-key-coverage").find_all("g")} == {
        "CostCenter",
        "Environment",
        ODD_KEY,
    }
    assert len(dom.by_id("chart-gap").find_all("g")) == 4
    for table_id in (
        "table-account",
        "table-service",
        "table-resource-type",
        "table-tag-key",
        "table-key-coverage",
        "table-gap-by-reason",
        "table-trend",
    ):
        assert table_rows(dom, table_id), table_id
    assert len(table_rows(dom, "table-top-resources")) == 20
    value, shown = figures(dom)["total_spend"]
    assert (Decimal(value), shown) == (TOTAL_SPEND, "$17.95")


def test_escaped_values_stay_text_in_the_browser(loaded):
    assert "<script" not in loaded.dom.lower()  # no element made of data (the report has no script)
    assert "<img" not in loaded.dom.lower()
    dom = parse(loaded.dom)
    assert SCRIPT in [q.text() for q in dom.find_all("q")]
    assert IMG_NAME in dom.find_all("tr", data_resource_id="bucket-bad")[0].text()
    assert ODD_KEY in dom.by_id("table-key-coverage").text()


def test_screenshot(report_page, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2000", report_page.as_uri())
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a rendered page, not a blank one (blank is about 8 kB)


# --- bidi isolation, as laid out (issue 11, defect 8c) -------------------------------------------

# Appended to a copy of the page (the report itself has no script): where each finding's parts are.
MEASURE_FINDINGS = """<script>
const findings = [];
const middle = (r) => (r.top + r.bottom) / 2;
const sameLine = (a, b) => middle(a) > b.top && middle(a) < b.bottom;
for (const li of document.querySelectorAll('ul.findings li')) {
  const [severity, key, value] = [li.querySelector('span'), li.querySelector('code'), li.querySelector('q')];
  if (!key || !value) continue;
  const [s, k, v] = [severity, key, value].map((element) => element.getBoundingClientRect());
  findings.push({key: li.dataset.tagKey, one_line: sameLine(s, k) && sameLine(v, k),
                 in_order: s.right <= k.left && k.right <= v.left});
}
document.body.dataset.findings = JSON.stringify(findings);
</script>"""


def finding_layout(page: str, tmp: Path) -> dict[str, bool]:
    """Tag key -> whether severity, key and value of its finding are laid out left to right."""
    tmp.mkdir(exist_ok=True)
    measured = tmp / "measured.html"
    measured.write_text(page.replace("</body>", MEASURE_FINDINGS + "</body>"), encoding="utf-8")
    dom, _ = chromium(tmp, "--window-size=1600,1200", "--dump-dom", measured.as_uri())
    findings = json.loads(parse(dom).find_all("body")[0].attrs["data-findings"])
    assert all(finding["one_line"] for finding in findings), findings  # else left/right says nothing
    return {finding["key"]: finding["in_order"] for finding in findings}


@pytest.fixture(scope="module")
def bidi_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    warehouse = build_bidi_warehouse(tmp_path_factory.mktemp("browser-bidi"))
    return write_report(warehouse).read_text(encoding="utf-8")


def test_bidi_overrides_in_tag_keys_do_not_reorder_the_finding(bidi_report, tmp_path):
    layout = finding_layout(bidi_report, tmp_path)
    assert {BIDI_KEY, BIDI_KEY_PDI} <= set(layout)
    assert all(layout.values()), layout


def test_the_layout_check_catches_text_that_is_not_isolated(bidi_report, tmp_path):
    """Negative controls: without <bdi>, or with the stray PDI left raw, the override reorders
    the finding (the key shows after its value)."""
    without_bdi = bidi_report.replace("<bdi>", "").replace("</bdi>", "")
    assert finding_layout(without_bdi, tmp_path / "no-bdi")[BIDI_KEY] is False
    raw_pdi = bidi_report.replace("\\u2069", PDI)
    layout = finding_layout(raw_pdi, tmp_path / "raw-pdi")
    assert layout[BIDI_KEY_PDI] is False and layout[BIDI_KEY] is True
