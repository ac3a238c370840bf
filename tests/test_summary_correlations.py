"""The per-source, per-destination and upload summaries count the events of correlation findings."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.report import terminal
from proxyhunt.report.html import render_html
from proxyhunt.report.model import build_report

MIB = 1024 * 1024

UPLOAD_RULE = """\
title: Upload
id: 5d0c2a4e-0000-4000-8000-000000000001
name: upload
level: low
logsource:
    category: proxy
detection:
    selection:
        cs-method: PUT
    condition: selection
"""


def volume_rules(threshold: int = 1000, generate: bool = False) -> str:
    """Return the upload rule and a value_sum correlation over it, grouped by c-ip."""
    return UPLOAD_RULE + f"""---
title: Volume
id: 5d0c2a4e-0000-4000-8000-000000000002
level: high
correlation:
    type: value_sum
    rules: [upload]
    group-by: [c-ip]
    timespan: 1h
    generate: {"true" if generate else "false"}
    condition:
        field: cs-bytes
        gte: {threshold}
"""


def upload(minute: int, host: str, sent: int | None, ip: str = "10.0.0.1", method: str = "PUT") -> dict:
    record: dict = {
        "TimeGenerated": f"2026-12-02T10:{minute:02d}:00Z",
        "SrcIpAddr": ip,
        "HttpRequestMethod": method,
        "DstHostname": host,
        "DstBytes": 10,
    }
    if sent is not None:
        record["SrcBytes"] = sent
    return record


# 10.0.0.1 sends 1400 bytes in four PUTs (one of unknown size) and one GET
# that no rule matches; 10.0.0.2 sends 200 bytes, below the threshold.
EVENTS = [
    upload(0, "a.example.com", 600),
    upload(10, "b.example.com", 100),
    upload(20, "b.example.com", 700),
    upload(22, "c.example.com", None),
    upload(25, "a.example.com", 50, method="GET"),
    upload(30, "a.example.com", 200, ip="10.0.0.2"),
]


def run(tmp_path: Path, rules: str, events: list[dict] = EVENTS) -> HuntResult:
    log = tmp_path / "proxy.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in events), encoding="utf-8")
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(rules, encoding="utf-8")
    return hunt([str(log)], rule_paths=[str(rule_file)], include_bundled=False)


@pytest.fixture
def volume_only(tmp_path) -> HuntResult:
    """A hunt whose only alert is the volume finding of 10.0.0.1: its base rule has generate false."""
    result = run(tmp_path, volume_rules())
    assert [finding["RuleType"] for finding in result.findings] == ["correlation"]
    return result


def render_terminal(result: HuntResult, width: int) -> str:
    output = io.StringIO()
    console = Console(file=output, width=width, no_color=True)
    terminal.render_findings(console, result)
    terminal.render_sources(console, result)
    return output.getvalue()


# Hits per source


def test_sources_count_correlation_events(volume_only):
    (source,) = volume_only.sources

    assert source.src_ip == "10.0.0.1"
    assert source.hits == 4
    assert source.bytes_uploaded == 1400
    assert source.bytes_downloaded == 40
    assert source.destinations == 3
    assert source.upload_unknown == 1


def test_sources_times_come_from_events(volume_only):
    (source,) = volume_only.sources

    assert source.first_seen.isoformat() == "2026-12-02T10:00:00"
    assert source.last_seen.isoformat() == "2026-12-02T10:22:00"


def test_report_sources_match_hunt(volume_only):
    report = build_report(volume_only)

    assert report.sources == volume_only.sources


def test_event_counted_once_with_detection(tmp_path):
    result = run(tmp_path, volume_rules(generate=True))
    types = sorted(finding["RuleType"] for finding in result.findings)
    assert types == ["correlation", "detection", "detection", "detection", "detection", "detection"]

    by_address = {source.src_ip: source for source in result.sources}
    report_by_address = {source.src_ip: source for source in build_report(result).sources}

    assert by_address["10.0.0.1"].hits == 4
    assert by_address["10.0.0.1"].bytes_uploaded == 1400
    assert by_address["10.0.0.2"].hits == 1
    assert report_by_address == by_address


def test_two_findings_share_events_once(tmp_path):
    second = volume_rules().split("---\n")[1].replace("000000000002", "000000000003")
    rules = volume_rules() + "---\n" + second.replace("title: Volume", "title: Volume again")
    result = run(tmp_path, rules)
    assert len(result.findings) == 2

    (source,) = result.sources

    assert source.hits == 4
    assert source.bytes_uploaded == 1400


def test_no_correlation_finding_no_sources(tmp_path):
    result = run(tmp_path, volume_rules(threshold=10 * MIB))

    assert result.findings == []
    assert result.sources == []
    assert build_report(result).sources == []


# Destinations and the upload chart


def test_destinations_count_correlation_events(volume_only):
    destinations = {item.host: item for item in build_report(volume_only).destinations}

    assert set(destinations) == {"a.example.com", "b.example.com", "c.example.com"}
    assert destinations["b.example.com"].bytes_uploaded == 800
    assert destinations["b.example.com"].hits == 2
    assert destinations["c.example.com"].upload_unknown == 1


def test_upload_series_counts_correlation_events(volume_only):
    report = build_report(volume_only)

    (series,) = report.upload_series

    assert series.total == 1400


# Terminal and HTML


@pytest.mark.parametrize("width", [80, 160])
def test_terminal_lists_correlation_source(volume_only, width):
    text = render_terminal(volume_only, width)
    table = text.split("Hits per source")[1]

    assert "10.0.0.1" in table
    assert "1.4 KiB" in table
    assert "10.0.0.2" not in table


@pytest.mark.parametrize("width", [80, 160])
def test_terminal_labels_counted_bytes(volume_only, width):
    text = render_terminal(volume_only, width)

    assert "Up*" in text
    assert "Down*" in text
    assert terminal.COUNTED_BYTES_CAPTION in " ".join(text.split())


def test_html_sources_list_correlation_source(volume_only):
    document = render_html(volume_only)
    sources = document.split('<section id="sources">')[1].split("</section>")[0]

    assert "10.0.0.1" in sources
    assert "No alert events" not in sources


def test_html_labels_counted_bytes(volume_only):
    document = render_html(volume_only)
    correlations = document.split('<section id="correlations">')[1].split("</section>")[0]

    assert "Up (counted events)" in correlations
    assert "Down (counted events)" in correlations


def test_html_no_alert_events(tmp_path):
    document = render_html(run(tmp_path, volume_rules(threshold=10 * MIB)))
    sources = document.split('<section id="sources">')[1].split("</section>")[0]

    assert "No alert events" in sources
