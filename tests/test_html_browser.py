"""HTML report in a real headless Chromium: sections and charts render, and hostile log values run nothing.

Debian's chromium is driven by Playwright with ``executable_path``, with a new
empty profile and background networking off, because this machine has no
network. Every request other than the report file itself fails the test, as
does any dialog, page error or console error.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Route, sync_playwright

from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.report.html import write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGUMENTS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PWNED = "window.__pwned=1"
SCRIPT_AGENT = f"rclone/v1.66.0 <script>{PWNED};alert(1)</script>"
IMAGE_AGENT = f'rclone/v1.66.0"><img src=x onerror="{PWNED};alert(2)">'
SCRIPT_URL = f"javascript:{PWNED};alert(3)"
TAG_HOST = f"<img src=y onerror=\"{PWNED}\"><b>evil</b>&amp;.example"
SVG_USER = f'<svg onload="{PWNED}">'

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH; install Debian's chromium package")


class GuardedPage:
    """A page that records every dialog, page error, console error and request other than the report itself."""

    def __init__(self, page: Page, report: Path) -> None:
        self.page = page
        self.report_url = report.resolve().as_uri()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", lambda message: message.type == "error" and self.errors.append(f"console: {message.text}"))
        page.on("request", self._request)
        page.route("**/*", self._route)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _request(self, request) -> None:
        if request.url != self.report_url:
            self.requests.append(request.url)

    def _route(self, route: Route) -> None:
        if route.request.url == self.report_url:
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def open(self) -> Page:
        self.page.goto(self.report_url)
        self.page.wait_for_load_state("load")
        return self.page

    def assert_clean(self) -> None:
        assert self.page.evaluate("typeof window.__pwned") == "undefined", "a log value ran as script"
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"
        assert self.errors == [], f"errors: {self.errors}"
        assert self.requests == [], f"network requests: {self.requests}"


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGUMENTS,
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture
def open_report(browser_context: BrowserContext) -> Iterator:
    pages: list[Page] = []

    def open_page(report: Path) -> GuardedPage:
        guarded = GuardedPage(browser_context.new_page(), report)
        pages.append(guarded.page)
        return guarded

    yield open_page
    for page in pages:
        page.close()


def jsonl_line(**values: object) -> str:
    event = {
        "TimeGenerated": "2026-11-03T01:58:13Z",
        "SrcIpAddr": "10.0.0.5",
        "DstHostname": "bucket.example",
        "Url": "http://bucket.example/upload",
        "HttpRequestMethod": "PUT",
        "HttpUserAgent": "rclone/v1.66.0",
        "SrcBytes": 1048576,
        "DstBytes": 100,
    }
    event.update(values)
    return json.dumps(event)


def add_verdicts(result: HuntResult) -> None:
    """Mark the last finding suppressed by a filter and add a correlation finding, as the tuning step will."""
    suppressed = result.findings[-1]
    suppressed["Verdict"] = "suppressed"
    suppressed["Suppressions"] = [
        {
            "filter_id": "9a7c0c43-0f0e-4a39-9a4f-2f3a1d9c6d10",
            "filter_title": "Known backup destinations",
            "filter_source": "filters/backup.yml",
            "values": {"DstHostname": suppressed["DstHostname"]},
        }
    ]
    for finding in result.findings[:-1]:
        finding["Verdict"] = "alert"
        finding["Suppressions"] = []
    correlation = {key: None for key in suppressed}
    correlation.update(
        RuleId="5d2c5d44-1a6b-4c4f-8a3e-0c1f8f0e7b21",
        RuleTitle="Many rclone uploads from one source",
        RuleLevel="high",
        RuleTags=["attack.exfiltration"],
        RuleSource="rules/rclone_burst.yml",
        RuleType="correlation",
        Verdict="alert",
        Suppressions=[],
        CorrelationType="event_count",
        GroupBy={"SrcIpAddr": "10.20.3.7"},
        WindowStart=datetime(2026, 11, 4, 1, 50),
        WindowEnd=datetime(2026, 11, 4, 2, 0),
        Value=3,
        Events=[{"RuleId": "r", "SourceFile": "zeek-http.log", "SourceLine": line} for line in (17, 18, 19)],
        SrcIpAddr="10.20.3.7",
    )
    result.findings.append(correlation)


MEBIBYTE = 1024 * 1024


def combined_line(user_agent: str, user: str, minute: int, method: str = "PUT") -> str:
    return (
        f'10.20.1.22 - {user} [03/Nov/2026:02:{minute:02d}:44 +0100] "{method} http://upload.example-drive.test/files '
        f'HTTP/1.1" 200 227 "-" "{user_agent}"'
    )


@pytest.fixture(scope="module")
def samples_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hunt a made-up Squid combined log and JSON Lines export, with one suppressed and one correlation finding."""
    folder = tmp_path_factory.mktemp("samples")
    (folder / "access.log").write_text(
        combined_line("rclone/v1.68.2", "bob", 11) + "\n" + combined_line("Mozilla/5.0", "alice", 12, "GET") + "\n",
        encoding="utf-8",
    )
    cloud = "s3.eu-central-1.example-cloud.test"
    exports = [
        jsonl_line(TimeGenerated="2026-11-04T01:53:58Z", SrcIpAddr="10.20.3.7", DstHostname=cloud, SrcBytes=18 * MEBIBYTE),
        jsonl_line(TimeGenerated="2026-11-04T01:54:35Z", SrcIpAddr="10.20.3.7", DstHostname=cloud, SrcBytes=50 * MEBIBYTE),
        jsonl_line(TimeGenerated="2026-11-04T01:54:39Z", SrcIpAddr="10.20.3.7", DstHostname=cloud, SrcBytes=100 * MEBIBYTE),
        jsonl_line(
            TimeGenerated="2026-11-04T02:02:09Z", SrcIpAddr="10.20.1.22", DstHostname="upload.example-drive.test", SrcBytes=7 * MEBIBYTE
        ),
        jsonl_line(TimeGenerated="2026-11-04T02:02:30Z", SrcIpAddr="10.20.1.22", HttpUserAgent="curl/8.5.0"),
        jsonl_line(
            TimeGenerated="2026-11-04T02:03:45Z",
            SrcIpAddr="10.20.4.40",
            SrcUsername="svc_backup",
            DstHostname="backup.example-storage.test",
            SrcBytes=256 * MEBIBYTE,
        ),
    ]
    (folder / "export.jsonl").write_text("\n".join(exports) + "\n", encoding="utf-8")
    result = hunt([str(folder / "access.log"), str(folder / "export.jsonl")])
    add_verdicts(result)
    target = folder / "report.html"
    write_html(result, target)
    return target


def visible_rows(page: Page, table: str) -> int:
    return page.locator(f"#{table} > tbody:not([hidden])").count()


def test_sections_render(open_report, samples_report: Path) -> None:
    guarded = open_report(samples_report)
    page = guarded.open()

    for section, heading in (
        ("findings", "Findings"),
        ("correlations", "Correlations"),
        ("charts", "Uploads"),
        ("sources", "Sources"),
        ("rules", "Rules"),
        ("suppressed", "Suppressed findings"),
        ("inputs", "Inputs"),
        ("messages", "Warnings and notes"),
    ):
        assert page.locator(f"#{section} > h2").inner_text() == heading
    assert page.locator("#verdict").inner_text() == "6 findings in 8 events; 1 more suppressed by filters"
    assert visible_rows(page, "findings-table") == 5
    assert visible_rows(page, "suppressed-table") == 1
    assert "Known backup destinations" in page.locator("#filters-table").inner_text()
    assert "SrcIpAddr=10.20.3.7" in page.locator("#correlations-table").inner_text()
    # Several bundled rules carry the tag, so the first link stands for all.
    assert page.locator("#rules-table a.attack", has_text="T1567.002").first.get_attribute("href") == (
        "https://attack.mitre.org/techniques/T1567/002/"
    )
    inputs = page.locator("#inputs-table").inner_text()
    assert "export.jsonl" in inputs
    assert "2 files" in inputs
    guarded.assert_clean()


def test_charts_drawn(open_report, samples_report: Path) -> None:
    guarded = open_report(samples_report)
    page = guarded.open()

    page.wait_for_selector("#chart-upload-volume .main-svg")
    page.wait_for_selector("#chart-top-destinations .main-svg")

    # The suppressed upload of 256 MiB to backup.example-storage.test is left out of both charts.
    legend = page.locator("#chart-upload-volume .legendtext").all_text_contents()
    assert legend == ["10.20.3.7", "10.20.1.22"]
    assert page.locator("#chart-upload-volume .point").count() == 3
    ticks = page.locator("#chart-top-destinations .ytick text").all_text_contents()
    assert ticks == ["upload.example-drive.test", "s3.eu-central-1.example-cloud.test"]
    guarded.assert_clean()


def test_findings_sort_filter_expand(open_report, samples_report: Path) -> None:
    guarded = open_report(samples_report)
    page = guarded.open()
    up = page.locator("#findings-table thead th", has_text="Up")

    up.click()
    up.click()

    assert up.get_attribute("aria-sort") == "descending"
    first = page.locator("#findings-table > tbody").first
    assert "100.0 MiB" in first.locator("tr.summary").inner_text()

    page.locator('[data-filter-for="findings-table"] input[type=search]').fill("bob")
    assert visible_rows(page, "findings-table") == 1
    assert page.locator('[data-filter-for="findings-table"] .shown').inner_text() == "1 of 5 shown"

    page.locator('[data-filter-for="findings-table"] input[type=search]').fill("")
    details = first.locator("tr.details")
    assert details.is_hidden()
    first.locator("button.expand").click()
    assert details.is_visible()
    assert "RawEvent" in details.inner_text()
    guarded.assert_clean()


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    log = folder / "proxy.jsonl"
    lines = [
        jsonl_line(HttpUserAgent=SCRIPT_AGENT, DstHostname=TAG_HOST, SrcUsername=SVG_USER, Url=SCRIPT_URL),
        jsonl_line(TimeGenerated="2026-11-03T01:59:13Z", HttpUserAgent=IMAGE_AGENT, SrcBytes=2048, SrcIpAddr="10.0.0.6"),
        jsonl_line(TimeGenerated="2026-11-03T02:10:00Z", HttpUserAgent=SCRIPT_AGENT, DstHostname=TAG_HOST),
    ]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = hunt([str(log)])
    add_verdicts(result)
    target = folder / "report.html"
    write_html(result, target)
    return target


def test_hostile_values_run_nothing(open_report, hostile_report: Path) -> None:
    guarded = open_report(hostile_report)
    page = guarded.open()
    page.wait_for_selector("#chart-upload-volume .main-svg")
    page.wait_for_selector("#chart-top-destinations .main-svg")

    for button in page.locator("button.expand").all():
        button.click()
    # plotly.js listens on a drag layer above the bars, so the mouse moves onto the largest bar's centre.
    hover_texts = {}
    for chart in ("#chart-upload-volume", "#chart-top-destinations"):
        page.locator(chart).scroll_into_view_if_needed()
        bars = page.locator(f"{chart} .point path")
        box = max((bars.nth(index).bounding_box() for index in range(bars.count())), key=lambda b: b["width"] * b["height"])
        page.mouse.move(1, 1)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
        page.wait_for_selector(f"{chart} .hoverlayer .hovertext")
        hover_texts[chart] = page.locator(f"{chart} .hoverlayer").text_content()
    assert SVG_USER in hover_texts["#chart-upload-volume"]
    assert TAG_HOST in hover_texts["#chart-top-destinations"]

    guarded.assert_clean()
    assert page.locator("#findings-table img, #findings-table svg, #findings-table script").count() == 0
    assert page.locator("a[href^='javascript:' i]").count() == 0


def test_hostile_values_shown_as_text(open_report, hostile_report: Path) -> None:
    guarded = open_report(hostile_report)
    page = guarded.open()
    page.wait_for_selector("#chart-top-destinations .main-svg")

    findings = page.locator("#findings-table").text_content()
    assert SCRIPT_AGENT in findings
    assert IMAGE_AGENT in findings
    assert SCRIPT_URL in findings
    assert SVG_USER in findings
    assert TAG_HOST in findings
    assert TAG_HOST in page.locator("#suppressed-table").text_content()

    ticks = page.locator("#chart-top-destinations .ytick text").all_text_contents()
    assert any(tick.endswith("<b>evil</b>&amp;.example") for tick in ticks), ticks
    legend = page.locator("#chart-upload-volume .legendtext").all_text_contents()
    assert f"10.0.0.5 ({SVG_USER})" in legend
    guarded.assert_clean()
