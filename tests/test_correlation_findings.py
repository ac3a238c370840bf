"""Correlation findings carry bytes, destinations and per-event hosts, and every report shows them."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.normalize import normalize
from proxyhunt.report import terminal
from proxyhunt.report.csv import write_csv
from proxyhunt.report.html import render_html
from proxyhunt.report.jsonl import finding_to_json
from proxyhunt.report.model import build_report

MIB = 1024 * 1024

UPLOAD_RULE = """\
title: Upload
id: 0b6f3d1e-0000-4000-8000-000000000001
name: upload
level: low
logsource:
    category: proxy
detection:
    selection:
        cs-method: PUT
    condition: selection
"""


def volume_rule(correlation_type: str = "value_sum", field: str = "cs-bytes", threshold: int = 1000) -> str:
    return UPLOAD_RULE + f"""---
title: Volume
id: 0b6f3d1e-0000-4000-8000-000000000002
level: high
correlation:
    type: {correlation_type}
    rules: [upload]
    group-by: [c-ip]
    timespan: 1h
    condition:
        field: {field}
        gte: {threshold}
"""


def event(minute: int, host: str | None, sent: int | None, received: int | None = 10, ip: str = "10.0.0.1") -> dict:
    record: dict = {"TimeGenerated": f"2026-12-02T10:{minute:02d}:00Z", "SrcIpAddr": ip, "HttpRequestMethod": "PUT"}
    if host is not None:
        record["DstHostname"] = host
    if sent is not None:
        record["SrcBytes"] = sent
    if received is not None:
        record["DstBytes"] = received
    return record


def run(tmp_path: Path, events: list[dict], rules: str, **options) -> HuntResult:
    log = tmp_path / "proxy.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in events), encoding="utf-8")
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(rules, encoding="utf-8")
    return hunt([str(log)], rule_paths=[str(rule_file)], include_bundled=False, **options)


def only_correlation(result: HuntResult) -> dict:
    findings = [finding for finding in result.findings if finding["RuleType"] == "correlation"]
    assert len(findings) == 1, findings
    return findings[0]


UPLOADS = [
    event(0, "a.example.com", 600),
    event(10, "b.example.com", 100),
    event(20, "b.example.com", 700),
    event(21, None, None, received=None),
    event(22, "c.example.com", None),
]


# The findings columns


def test_bytes_are_sums_over_events(tmp_path):
    finding = only_correlation(run(tmp_path, UPLOADS, volume_rule()))

    assert finding["Value"] == 1400
    assert finding["SrcBytes"] == 1400
    assert finding["DstBytes"] == 40


def test_destinations_ordered_by_bytes(tmp_path):
    finding = only_correlation(run(tmp_path, UPLOADS, volume_rule()))

    # b: 800 bytes, a: 600, c: no known size, so last; the event without a host adds none.
    assert finding["Destinations"] == ["b.example.com", "a.example.com", "c.example.com"]


def test_destinations_tie_ordered_by_name(tmp_path):
    events = [event(0, "z.example.com", 500), event(1, "m.example.com", 500)]

    finding = only_correlation(run(tmp_path, events, volume_rule()))

    assert finding["Destinations"] == ["m.example.com", "z.example.com"]


def test_events_carry_host_and_bytes(tmp_path):
    finding = only_correlation(run(tmp_path, UPLOADS, volume_rule()))

    hosts = [(item["SourceLine"], item["DstHostname"], item["SrcBytes"]) for item in finding["Events"]]
    assert hosts == [
        (1, "a.example.com", 600),
        (2, "b.example.com", 100),
        (3, "b.example.com", 700),
        (4, None, None),
        (5, "c.example.com", None),
    ]


def test_bytes_null_without_sizes(tmp_path):
    events = [event(minute, None, None, received=None) for minute in range(3)]
    rules = volume_rule().replace("type: value_sum", "type: event_count").replace(
        "        field: cs-bytes\n        gte: 1000", "        gte: 3"
    )

    finding = only_correlation(run(tmp_path, events, rules))

    assert finding["Value"] == 3
    assert finding["SrcBytes"] is None
    assert finding["DstBytes"] is None
    assert finding["Destinations"] == []


def test_bytes_count_only_window_events(tmp_path):
    # The 2000-byte upload two hours later is outside the window that met the condition.
    events = [*UPLOADS, event(0, "late.example.com", 2000).copy()]
    events[-1]["TimeGenerated"] = "2026-12-02T12:30:00Z"

    findings = [item for item in run(tmp_path, events, volume_rule()).findings if item["RuleType"] == "correlation"]

    assert [item["SrcBytes"] for item in findings] == [1400, 2000]
    assert findings[1]["Destinations"] == ["late.example.com"]


def test_groups_keep_their_own_bytes(tmp_path):
    events = [*UPLOADS, event(5, "d.example.com", 5000, ip="10.0.0.2")]

    findings = [item for item in run(tmp_path, events, volume_rule()).findings if item["RuleType"] == "correlation"]

    by_source = {item["SrcIpAddr"]: (item["SrcBytes"], item["Destinations"]) for item in findings}
    assert by_source["10.0.0.1"] == (1400, ["b.example.com", "a.example.com", "c.example.com"])
    assert by_source["10.0.0.2"] == (5000, ["d.example.com"])


def test_temporal_ordered_counts_step_events(tmp_path):
    rules = UPLOAD_RULE + """---
title: Tunnel
name: tunnel
logsource:
    category: proxy
detection:
    selection:
        cs-method: CONNECT
    condition: selection
---
title: Tunnel then upload
correlation:
    type: temporal_ordered
    rules: [tunnel, upload]
    group-by: [c-ip]
    timespan: 1h
"""
    tunnel = event(0, "t.example.com", 50)
    tunnel["HttpRequestMethod"] = "CONNECT"
    events = [tunnel, event(1, "a.example.com", 600), event(2, "b.example.com", 900)]

    finding = only_correlation(run(tmp_path, events, rules))

    # Only the events that make up the sequence count: the tunnel and the first upload after it.
    assert [item["SourceLine"] for item in finding["Events"]] == [1, 2]
    assert finding["SrcBytes"] == 650
    assert finding["Destinations"] == ["a.example.com", "t.example.com"]


# Reports


@pytest.fixture
def volume_result(tmp_path: Path) -> HuntResult:
    hosts = [f"bucket-{index}.s3.example-storage.test" for index in range(5)]
    events = [event(minute, hosts[minute % 5], 300 * MIB) for minute in range(10)]
    return run(tmp_path, events, volume_rule(threshold=1024 * MIB))


def render(result: HuntResult, width: int) -> str:
    output = io.StringIO()
    console = Console(file=output, width=width, no_color=True)
    terminal.render_findings(console, result)
    return output.getvalue()


@pytest.mark.parametrize("width", [80, 160])
def test_terminal_shows_bytes_and_destinations(volume_result, width):
    text = render(volume_result, width)
    table = text.split("Volume  high")[1]

    assert max(len(line) for line in table.splitlines()) <= width
    # Value and Up: 3000 MiB in IEC units, twice; no raw byte count.
    assert table.count("2.9 GiB") == 2
    assert "3145728000" not in table
    assert "100 B" in table
    assert "+2 more" in table
    assert "c-ip=10.0.0.1" in table
    assert "2026-12-02 10:00:00" in table
    assert "2026-12-02 11:00:00" in table


def test_terminal_count_value_plain(tmp_path):
    rules = volume_rule("value_count", field="cs-host", threshold=2).replace("title: Volume", "title: Hosts")
    text = render(run(tmp_path, UPLOADS, rules), 80)
    table = text.split("Hosts  high")[1]

    first_row = next(line for line in table.splitlines() if "c-ip=10.0.0.1" in line)
    assert re.search(r"\s3\s", first_row), table
    assert "3 B" not in table


def test_html_lists_every_destination(volume_result):
    document = render_html(volume_result)
    section = document.split('id="correlations"')[1].split("</section>")[0]

    for index in range(5):
        assert f"bucket-{index}.s3.example-storage.test" in section
    assert "2.9 GiB" in section
    assert "+2 more" not in section


def test_csv_carries_exact_bytes(volume_result, tmp_path):
    path = tmp_path / "findings.csv"
    write_csv(volume_result, path)

    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    correlation = next(row for row in rows if row["RuleType"] == "correlation")
    assert correlation["SrcBytes"] == str(3000 * MIB)
    assert correlation["DstBytes"] == "100"
    assert correlation["Destinations"].split(", ")[0] == "bucket-0.s3.example-storage.test"
    assert len(correlation["Destinations"].split(", ")) == 5


def test_jsonl_carries_events_and_destinations(volume_result):
    finding = next(item for item in volume_result.findings if item["RuleType"] == "correlation")

    record = json.loads(finding_to_json(finding))
    assert record["SrcBytes"] == 3000 * MIB
    assert len(record["Destinations"]) == 5
    first = record["Events"][0]
    assert first["SourceLine"] == 1
    assert first["DstHostname"] == "bucket-0.s3.example-storage.test"
    assert first["SrcBytes"] == 300 * MIB
    assert first["RuleId"] == "0b6f3d1e-0000-4000-8000-000000000001"


def test_value_text_bytes_only_for_byte_fields(volume_result):
    report = build_report(volume_result)
    finding = next(item for item in volume_result.findings if item["RuleType"] == "correlation")

    assert report.value_text(finding) == "2.9 GiB"
    assert report.value_text({**finding, "RuleId": "another"}) == str(3000 * MIB)


# Spark gives the same correlation columns


def java_missing() -> bool:
    return shutil.which("java") is None and not os.environ.get("JAVA_HOME")


def test_spark_gives_same_bytes_and_destinations(tmp_path):
    pytest.importorskip("pyspark", reason="pyspark is not installed; pip install -e '.[test]' installs it")
    if java_missing():
        pytest.skip("Java is not installed; Spark needs Java 17")
    from proxyhunt.engines.spark import start_session

    log = tmp_path / "proxy.jsonl"
    events = [*UPLOADS, event(5, "d.example.com", 5000, ip="10.0.0.2")]
    log.write_text("".join(json.dumps(record) + "\n" for record in events), encoding="utf-8")
    dataset = tmp_path / "dataset"
    assert not normalize([str(log)], str(dataset)).failed_files
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(volume_rule(), encoding="utf-8")

    session, created = start_session("local[2]")
    try:
        on_spark = hunt([str(dataset)], rule_paths=[str(rule_file)], include_bundled=False, engine="spark")
    finally:
        if created:
            session.stop()
    on_duckdb = hunt([str(dataset)], rule_paths=[str(rule_file)], include_bundled=False)

    def columns(result: HuntResult) -> list[tuple]:
        return [
            (item["SrcIpAddr"], item["SrcBytes"], item["DstBytes"], item["Destinations"],
             [(event["SourceLine"], event["DstHostname"], event["SrcBytes"]) for event in item["Events"]])
            for item in result.findings
            if item["RuleType"] == "correlation"
        ]

    assert len(columns(on_duckdb)) == 2
    assert columns(on_spark) == columns(on_duckdb)
