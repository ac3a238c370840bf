"""``proxyhunt inspect`` and its Python API: format, runner-up, compression, line accounting and columns per file."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

from proxyhunt.formats import format_names
from proxyhunt.formats.base import LineFormat
from proxyhunt.formats.inspect import inspect_paths
from proxyhunt.formats.loader import Loader
from proxyhunt.formats.squid_logformat import LogformatError
from proxyhunt.report.inspect import render_inspection


SQUID_LINES = [
    "1700000000.123    150 192.0.2.10 TCP_MISS/200 5120 GET http://example.com/a.gz alice HIER_DIRECT/203.0.113.5 application/x-gzip",
    "not a squid line",
    "1700000060.000      5 192.0.2.11 TCP_TUNNEL/200 3000 CONNECT drive.google.com:443 - HIER_DIRECT/203.0.113.6 -",
]
W3C_LINES = [
    "#Software: Microsoft Internet Information Services 10.0",
    "#Version: 1.0",
    "#Fields: date time c-ip cs-method cs-uri-stem sc-status cs(User-Agent)",
    "2024-07-01 10:00:00 198.51.100.7 GET /a 200 rclone/v1.66.0",
]


def run_proxyhunt(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m proxyhunt`` with a wide terminal and check that it printed no traceback."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture
def log_directory(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    (directory / "access.log").write_text("\n".join(SQUID_LINES) + "\n")
    (directory / "u_ex240701.log.1.gz").write_bytes(gzip.compress(("\n".join(W3C_LINES) + "\n").encode()))
    return directory


def test_inspect_paths_reports_each_file(log_directory):
    result = inspect_paths([str(log_directory)])
    by_name = {Path(file.path).name: file for file in result.files}

    squid = by_name["access.log"]
    assert squid.format == "squid"
    assert squid.runner_up is not None
    assert squid.runner_up[1] < squid.confidence
    assert squid.compression is None
    assert (squid.lines_read, squid.parsed, squid.rejected, squid.header_lines) == (3, 2, 1, 0)
    assert squid.first_rejects[0][0] == 2
    assert "SrcIpAddr" in squid.columns
    assert "HttpUserAgent" not in squid.columns
    assert "RawEvent" not in squid.columns
    assert squid.first_seen.isoformat() == "2023-11-14T22:13:20.123000"
    assert squid.last_seen.isoformat() == "2023-11-14T22:14:20"

    w3c = by_name["u_ex240701.log.1.gz"]
    assert w3c.format == "w3c"
    assert w3c.compression == "gzip"
    assert (w3c.lines_read, w3c.parsed, w3c.rejected, w3c.header_lines) == (4, 1, 0, 3)
    assert "HttpUserAgent" in w3c.columns
    assert all(file.balanced for file in result.files)
    assert result.failed_files == []


def test_forced_format_has_no_runner_up(log_directory):
    result = inspect_paths([str(log_directory / "access.log")], format_name="squid")

    assert result.files[0].runner_up is None
    assert result.files[0].confidence == 1.0


def test_invalid_logformat_raises(log_directory):
    with pytest.raises(LogformatError):
        inspect_paths([str(log_directory)], squid_logformat="%>a %")


def test_render_shows_accounting(log_directory):
    console = Console(width=120, record=True, color_system=None)

    render_inspection(console, inspect_paths([str(log_directory)]))
    text = console.export_text()

    assert "3 = 2 parsed + 1 rejected + 0 header" in text
    assert "4 = 1 parsed + 0 rejected + 3 header" in text
    assert "gzip" in text
    assert "line 2: not a Squid native access.log line" in text


def test_cli_json(log_directory):
    result = run_proxyhunt("inspect", str(log_directory), "--json")
    document = json.loads(result.stdout)
    files = {Path(entry["path"]).name: entry for entry in document["files"]}

    assert result.returncode == 0
    assert files["access.log"]["format"] == "squid"
    assert files["access.log"]["runner_up"]["format"] != "squid"
    assert files["access.log"]["lines_read"] == 3
    assert files["access.log"]["parsed"] == 2
    assert files["access.log"]["rejected"] == 1
    assert files["access.log"]["header_lines"] == 0
    assert files["access.log"]["first_event"] == "2023-11-14T22:13:20.123000Z"
    assert files["u_ex240701.log.1.gz"]["compression"] == "gzip"
    assert files["u_ex240701.log.1.gz"]["header_lines"] == 3


def test_cli_rejects_file(log_directory, tmp_path):
    rejects = tmp_path / "rejects.jsonl"

    result = run_proxyhunt("inspect", str(log_directory), "--rejects", str(rejects))
    records = [json.loads(line) for line in rejects.read_text().splitlines()]

    assert result.returncode == 0
    assert len(records) == 1
    assert Path(records[0]["SourceFile"]).name == "access.log"
    assert records[0]["SourceLine"] == 2
    assert "not a Squid native" in records[0]["Reason"]


def test_cli_unrecognized_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Dear diary,\ntoday the proxy was quiet.\n")

    result = run_proxyhunt("inspect", str(path))

    assert result.returncode == 2
    assert "format not recognized" in result.stdout
    for name in format_names():
        assert f"{name} (" in result.stdout.replace("\n", " ") or name in result.stdout
    assert "--format" in result.stdout
    assert "--squid-logformat" in result.stdout


def test_cli_bad_logformat(log_directory):
    result = run_proxyhunt("inspect", str(log_directory), "--squid-logformat", "%>a %")

    assert result.returncode == 2
    assert "--squid-logformat" in result.stderr
    assert "not followed by a format code" in result.stderr


def test_cli_bad_mapping_names_line(log_directory, tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("format: csv\nfields:\n  HttpUserAgnt: ua\n")

    result = run_proxyhunt("inspect", str(log_directory), "--map", str(mapping))

    assert result.returncode == 2
    assert f"{mapping}:3: unknown WebSession column 'HttpUserAgnt'" in result.stderr.replace("\n", " ")


def test_cli_squid_logformat_hunt(tmp_path):
    line = (
        '1700000000.123    150 192.0.2.10 TCP_MISS/200 5120 PUT http://files.example/a.tar alice '
        'HIER_DIRECT/203.0.113.5 application/x-tar "rclone/v1.66.0"'
    )
    path = tmp_path / "access.log"
    path.write_text(line + "\n")
    logformat = 'logformat ua %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt "%{User-Agent}>h"'

    result = run_proxyhunt("hunt", str(path), "--squid-logformat", logformat, "--output", "-")
    findings = [json.loads(row) for row in result.stdout.splitlines() if row.startswith("{")]

    assert result.returncode == 1
    assert [finding["HttpUserAgent"] for finding in findings] == ["rclone/v1.66.0"]
    assert findings[0]["SourceLine"] == 1


class _DroppingFormat(LineFormat):
    """A defective format whose SELECT loses its second line."""

    name = "dropping"
    title = "drops lines"

    def detect(self, sample: list[str]) -> float:
        return 1.0

    def select_sql(self) -> str:
        return "SELECT SourceLine, RawEvent, NULL AS _reject, RawEvent AS Url FROM lines WHERE SourceLine <> 2"


def test_loader_enforces_accounting(tmp_path):
    path = tmp_path / "access.log"
    path.write_text("a\nb\nc\n")

    report = Loader(duckdb.connect(), [_DroppingFormat()]).load(str(path), format_name="dropping")

    assert report.parsed == 2
    assert report.error is not None
    assert "neither parsed, rejected nor skipped 1 line" in report.error
