"""HTML report as a document: sections, escaping, Content Security Policy, embedded JSON, from real hunts.

What a browser does with the report (charts drawn, no script run, no request
made) is tested in test_html_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.report import html as html_report
from proxyhunt.report.html import embedded_json, render_html, write_html
from proxyhunt.report.html_views import attack_tag

SCRIPT_AGENT = "rclone/v1.66.0 <script>window.__pwned=1;alert(1)</script>"
IMAGE_AGENT = 'rclone/v1.66.0"><img src=x onerror="window.__pwned=1;alert(2)">'
SCRIPT_URL = "javascript:window.__pwned=1"
TAG_HOST = "<b>evil</b>&amp;.example"
SVG_USER = '<svg onload="window.__pwned=1">'


class Document(HTMLParser):
    """Collects element ids, tags with their attributes, and the text of each script element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "script":
            self._script = attributes
            self.scripts.append((attributes, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attributes, text = self.scripts[-1]
            self.scripts[-1] = (attributes, text + data)
        else:
            self.text.append(data)


def parse(document: str) -> Document:
    parser = Document()
    parser.feed(document)
    parser.close()
    return parser


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


def run_hunt(tmp_path: Path, lines: list[str]) -> HuntResult:
    log = tmp_path / "proxy.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return hunt([str(log)])


@pytest.fixture
def hostile_result(tmp_path: Path) -> HuntResult:
    return run_hunt(
        tmp_path,
        [
            jsonl_line(HttpUserAgent=SCRIPT_AGENT, DstHostname=TAG_HOST, SrcUsername=SVG_USER, Url=SCRIPT_URL),
            jsonl_line(TimeGenerated="2026-11-03T01:59:13Z", HttpUserAgent=IMAGE_AGENT, SrcBytes=2048),
            jsonl_line(TimeGenerated="2026-11-03T02:10:00Z", SrcUsername="svc_backup", DstHostname="backup.example"),
        ],
    )


def add_verdicts(result: HuntResult) -> None:
    """Mark the last finding suppressed by a filter and add a correlation finding, as the tuning step will."""
    suppressed = result.findings[-1]
    suppressed["Verdict"] = "suppressed"
    suppressed["Suppressions"] = [
        {
            "filter_id": "9a7c0c43-0f0e-4a39-9a4f-2f3a1d9c6d10",
            "filter_title": "Known backup destinations",
            "filter_source": "filters/backup.yml",
            "values": {"DstHostname": "backup.example", "SrcUsername": "svc_backup"},
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
        RuleTags=["attack.exfiltration", "attack.t1567"],
        RuleSource="rules/rclone_burst.yml",
        RuleType="correlation",
        Verdict="alert",
        Suppressions=[],
        CorrelationType="event_count",
        GroupBy={"SrcIpAddr": "10.0.0.5"},
        WindowStart=datetime(2026, 11, 3, 1, 55),
        WindowEnd=datetime(2026, 11, 3, 2, 5),
        Value=2,
        Events=[{"RuleId": "r", "SourceFile": suppressed["SourceFile"], "SourceLine": line} for line in (1, 2)],
        SrcIpAddr="10.0.0.5",
    )
    result.findings.append(correlation)


def without_plotly(document: str) -> str:
    """Return the document with the inlined plotly.js left out, so that checks see only the report's own markup."""
    start = document.index("<script>/**\n* plotly.js")
    end = document.index("</script>", start)
    return document[:start] + document[end:]


def test_sections_present(hostile_result: HuntResult) -> None:
    add_verdicts(hostile_result)

    parsed = parse(render_html(hostile_result))

    for section in ("findings", "correlations", "charts", "sources", "rules", "suppressed", "inputs", "messages"):
        assert section in parsed.ids, f"section {section} missing"
    for table in ("findings-table", "correlations-table", "suppressed-table", "filters-table", "rules-table", "inputs-table"):
        assert table in parsed.ids, f"table {table} missing"
    assert "chart-upload-volume" in parsed.ids
    assert "chart-top-destinations" in parsed.ids


def test_log_values_escaped(hostile_result: HuntResult) -> None:
    document = without_plotly(render_html(hostile_result))
    parsed = parse(document)
    text = "".join(parsed.text)

    assert "<script>window.__pwned" not in document
    assert "<img" not in document
    assert "<svg" not in document
    assert "<b>evil" not in document
    assert SCRIPT_AGENT in text
    assert IMAGE_AGENT in text
    assert SVG_USER in text
    assert TAG_HOST in text
    for tag, attributes in parsed.elements:
        assert not any(name.startswith("on") for name in attributes), f"<{tag}> has an event handler"
        href = attributes.get("href") or ""
        assert not href.lower().startswith("javascript:"), f"<{tag}> links to {href}"


def test_hidden_characters_made_visible(tmp_path: Path) -> None:
    result = run_hunt(tmp_path, [jsonl_line(HttpUserAgent="rclone/v1.66.0 invoice\u202etxt.exe\x1b]0;t\x07")])

    text = "".join(parse(without_plotly(render_html(result))).text)

    assert "\u202e" not in text
    assert "\x1b" not in text
    assert "invoice\\u202etxt.exe\\x1b]0;t\\x07" in text


def test_scripts_allowed_only_by_hash(hostile_result: HuntResult) -> None:
    parsed = parse(render_html(hostile_result))
    policy = next(
        attributes["content"]
        for tag, attributes in parsed.elements
        if tag == "meta" and (attributes.get("http-equiv") or "").lower() == "content-security-policy"
    )
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))

    assert directives["default-src"] == "'none'"
    assert "unsafe-inline" not in directives["script-src"]
    assert "connect-src" not in directives
    executable = [text for attributes, text in parsed.scripts if attributes.get("type") != "application/json"]
    assert len(executable) == 2
    for text in executable:
        digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
        assert f"'sha256-{digest}'" in directives["script-src"]
    assert not any(attributes.get("src") for attributes, _ in parsed.scripts)


def test_plotly_inlined_once(hostile_result: HuntResult) -> None:
    document = render_html(hostile_result)

    assert document.count("* plotly.js v") == 1
    assert "cdn.plot.ly" not in without_plotly(document)
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?:", without_plotly(document))


def test_chart_data_escaped_json(hostile_result: HuntResult) -> None:
    parsed = parse(render_html(hostile_result))
    chart_json = next(text for attributes, text in parsed.scripts if attributes.get("id") == "chart-data")

    assert "<" not in chart_json
    charts = json.loads(chart_json)
    names = [trace["name"] for trace in charts["chart-upload-volume"]["data"]]
    assert "10.0.0.5 (&lt;svg onload=\"window.__pwned=1\"&gt;)" in names
    ticks = charts["chart-top-destinations"]["layout"]["yaxis"]["ticktext"]
    assert "&lt;b&gt;evil&lt;/b&gt;&amp;amp;.example" in ticks


def test_embedded_json_cannot_close_script() -> None:
    text = str(embedded_json({"agent": "</script><script>alert(1)</script>", "amp": "&", "separator": "\u2028"}))

    assert "</" not in text
    assert "<" not in text
    assert "\u2028" not in text
    assert json.loads(text) == {"agent": "</script><script>alert(1)</script>", "amp": "&", "separator": "\u2028"}


def test_suppressed_section_names_filters(hostile_result: HuntResult) -> None:
    add_verdicts(hostile_result)

    parsed = parse(without_plotly(render_html(hostile_result)))
    text = " ".join(parsed.text)

    assert "Known backup destinations" in text
    assert "DstHostname=backup.example, SrcUsername=svc_backup" in text
    assert "filters/backup.yml" in text
    assert "Many rclone uploads from one source" in text
    assert "SrcIpAddr=10.0.0.5" in text


def test_attack_tags_linked() -> None:
    technique = attack_tag("attack.t1567.002")
    group = attack_tag("attack.g0010")
    tactic = attack_tag("attack.exfiltration")

    assert (technique.label, technique.href) == ("T1567.002", "https://attack.mitre.org/techniques/T1567/002/")
    assert (group.label, group.href) == ("G0010", "https://attack.mitre.org/groups/G0010/")
    assert (tactic.label, tactic.href) == ("attack.exfiltration", None)


def test_row_limit_notice(hostile_result: HuntResult, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_report, "HTML_ROW_LIMIT", 1)

    document = render_html(hostile_result)

    assert "The first 1 of 3 findings are shown" in document
    assert document.count('<tbody class="finding"') == 1


def test_empty_hunt_report(tmp_path: Path) -> None:
    result = run_hunt(tmp_path, [jsonl_line(HttpUserAgent="curl/8.5.0")])

    parsed = parse(render_html(result))
    text = " ".join(parsed.text)

    assert "No findings in 1 event" in text
    assert "chart-upload-volume-empty" in parsed.ids
    assert "findings-table" not in parsed.ids


def test_write_html_replaces_file(hostile_result: HuntResult, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")

    write_html(hostile_result, target)

    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".report.html")] == []


def test_cli_writes_html(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n", encoding="utf-8")
    target = tmp_path / "report.html"

    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(log), "--html", str(target), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        timeout=120,
    )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "findings-table" in parse(target.read_text(encoding="utf-8")).ids


def test_cli_html_onto_input_rejected(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n", encoding="utf-8")
    link = tmp_path / "link.html"
    link.symlink_to(log)

    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(log), "--html", str(link)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert "--html" in result.stderr
    assert "is also an input log" in result.stderr
    assert log.read_text(encoding="utf-8").startswith("{")


KNOWN_HOST_FILTER = """\
title: Exclude rclone uploads to the backup host
id: 0f1d6a7e-2b7c-4c55-9d64-3f0f3c1b2a10
logsource:
    category: proxy
filter:
    rules:
        - 2c03648b-e081-41a5-b9fb-7d854a915091
    backup_host:
        DstHostname: 'backup.example'
    condition: not backup_host
"""


def test_real_filter_suppression_rendered(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(
        jsonl_line() + "\n" + jsonl_line(TimeGenerated="2026-11-03T02:10:00Z", DstHostname="backup.example") + "\n",
        encoding="utf-8",
    )
    rule = tmp_path / "backup-filter.yml"
    rule.write_text(KNOWN_HOST_FILTER, encoding="utf-8")

    result = hunt([str(log)], rule_paths=[str(rule)])
    parsed = parse(without_plotly(render_html(result)))
    text = " ".join(parsed.text)

    assert [finding.get("Verdict") for finding in result.findings] == ["alert", "suppressed"]
    assert "1 finding in 2 events; 1 more suppressed by filters" in text
    assert "Exclude rclone uploads to the backup host" in text
    assert "DstHostname=backup.example" in text
    assert str(rule) in text
