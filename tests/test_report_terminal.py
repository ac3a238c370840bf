"""Terminal report: file names that tell files apart, and hosts that survive an 80-column terminal."""

from __future__ import annotations

import io
from datetime import datetime

from rich.console import Console

from proxyhunt.report.terminal import _cut_left, _narrow_findings_table, _short_file_names, safe_text


def finding(source_file: str, line: int = 10, host: str = "s3.eu-central-1.example-cloud.test") -> dict:
    return {
        "SourceFile": source_file,
        "SourceLine": line,
        "TimeGenerated": datetime(2026, 11, 3, 1, 58, 13),
        "SrcIpAddr": "10.20.3.7",
        "SrcUsername": None,
        "DstHostname": host,
        "DstIpAddr": None,
        "HttpRequestMethod": "PUT",
        "Url": "/finance-archive/q3/ledger.xlsx",
        "HttpUserAgent": "rclone/v1.68.2",
        "SrcBytes": 18874368,
        "DstBytes": 355,
    }


def test_short_names_unique_base_name() -> None:
    names = _short_file_names([finding("/logs/a/access.log"), finding("/logs/b/http.log")])

    assert names == {"/logs/a/access.log": "access.log", "/logs/b/http.log": "http.log"}


def test_short_names_add_telling_directory() -> None:
    paths = ["/x/proxy-eu-west/2026-11/access.log", "/x/proxy-us-east/2026-11/access.log", "/y/access.log"]

    names = _short_file_names([finding(path) for path in paths])

    assert names[paths[0]] == "proxy-eu-west/…/access.log"
    assert names[paths[1]] == "proxy-us-east/…/access.log"
    assert names[paths[2]] == "y/access.log"
    assert len(set(names.values())) == 3


def test_cut_left_keeps_the_end() -> None:
    assert _cut_left("s3.eu-central-1.example-cloud.test", 12) == "…-cloud.test"
    assert _cut_left("short", 12) == "short"


def test_narrow_table_shows_registered_domain() -> None:
    output = io.StringIO()
    console = Console(file=output, width=80, no_color=True)

    console.print(_narrow_findings_table([finding("/logs/access.log")], width=80))

    text = output.getvalue()
    assert "example-cloud.test" in text
    assert "access.log:10" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_safe_text_neutralizes_escapes() -> None:
    assert safe_text("rclone\x1b[2J/v1") == "rclone\\x1b[2J/v1"
    assert safe_text("a\u202eb") == "a\\u202eb"
