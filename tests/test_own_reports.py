"""Reports written into a hunted directory: the next hunt skips them with a note instead of reading them as logs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proxyhunt.formats.own_reports import own_report_kind
from proxyhunt.hunt import hunt
from proxyhunt.report.messages import collect_messages

# Three rclone requests in Squid's native format, made up for this test.
SQUID_LINES = "".join(
    f"1796440{index}00.000    120 10.0.0.5 TCP_MISS/200 4512 PUT http://bucket.example/{index} - "
    "HIER_DIRECT/198.51.100.7 application/octet-stream\n"
    for index in range(3)
)
ZEEK_LINE = (
    '{"ts":1796440000.0,"uid":"C1","id.orig_h":"10.0.0.5","id.orig_p":5000,"id.resp_h":"198.51.100.7",'
    '"id.resp_p":80,"method":"PUT","host":"files.example.org","uri":"/a","user_agent":"rclone/v1.68.2"}'
)


def run_hunt(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", *arguments], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("lines", "kind"),
    [
        (['{"RuleId": "r1", "Verdict": "alert", "Url": "http://a/"}'], "findings file (JSON Lines)"),
        (["\ufeffVerdict,RuleType,RuleTitle,RuleId,Url", "alert,detection,T,r1,http://a/"], "findings file (CSV)"),
        (["<!DOCTYPE html>", '<html lang="en">', "<head>", "<title>proxyhunt report: 3 alerts</title>"], "HTML report"),
        ([ZEEK_LINE], None),
        (['{"RuleId": "r1"}'], None),
        (["TimeGenerated,SrcIpAddr,Url", "2026-12-03T10:00:00Z,10.0.0.5,http://a/"], None),
        (["<!DOCTYPE html>", "<title>Squid error page</title>"], None),
        (["{not json"], None),
        ([], None),
    ],
    ids=["jsonl", "csv", "html", "zeek-json", "one-key", "websession-csv", "other-html", "broken-json", "empty"],
)
def test_own_report_kind(lines, kind):
    assert own_report_kind(lines) == kind


def test_reports_in_hunted_directory_skipped(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log").write_text(SQUID_LINES, encoding="utf-8")
    (logs / "zeek.log").write_text(ZEEK_LINE + "\n", encoding="utf-8")

    first = run_hunt("logs", "--output", "logs/findings.jsonl", "--csv", "logs/findings.csv", "--html", "logs/report.html", cwd=tmp_path)
    assert first.returncode in (0, 1), first.stderr
    assert (logs / "findings.jsonl").stat().st_size > 0
    findings_first = [json.loads(line) for line in (logs / "findings.jsonl").read_text(encoding="utf-8").splitlines()]

    result = hunt([str(logs)])

    skipped = {Path(report.path).name: report.own_report for report in result.files if report.own_report}
    assert skipped == {
        "findings.jsonl": "findings file (JSON Lines)",
        "findings.csv": "findings file (CSV)",
        "report.html": "HTML report",
    }
    assert len(result.findings) == len(findings_first)
    assert {finding["SourceFile"] for finding in result.findings} == {str(logs / "zeek.log")}
    notes = [message.text for message in collect_messages(result) if message.kind == "note"]
    assert any(
        text.startswith(f"{logs / 'findings.jsonl'}: skipped, because it is a proxyhunt findings file (JSON Lines)")
        for text in notes
    )
    assert not any(report.error for report in result.files)
    assert {Path(report.path).name for report in result.files if report.parsed} == {"access.log", "zeek.log"}


def test_forced_format_reads_report(tmp_path):
    findings = tmp_path / "findings.jsonl"
    findings.write_text('{"RuleId": "r1", "Verdict": "alert", "TimeGenerated": "2026-12-03T10:00:00Z"}\n', encoding="utf-8")

    result = hunt([str(findings)], format_name="jsonl")

    [report] = result.files
    assert report.error is None
    assert report.own_report is None
    assert report.lines_read == 1
