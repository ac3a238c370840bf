"""Terminal report: short file names, 80-column layout, hostile log values, suppressions, colours and progress."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import unicodedata
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from rich.progress import TransferSpeedColumn

from proxyhunt.cli import _ProgressBar
from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.report import terminal
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


# Hostile values, suppressions and correlations, rendered from real hunts.

HOSTILE_VALUES = {
    "OSC 8 hyperlink": "\x1b]8;;http://evil.test\x1b\\click\x1b]8;;\x1b\\",
    "window title": "\x1b]0;pwned\x07",
    "screen clear": "\x1b[2J\x1b[H",
    "C1 CSI": "\x9b31m",
    "C1 NEL": "a\x85b",
    "C1 OSC": "\x9d0;pwned\x9c",
    "right-to-left override": "invoice\u202etxt.exe",
    "isolates and marks": "\u2066a\u2069\u200e\u200f\u061c",
    "line separator": "a\u2028b\u2029c",
}
RAW_CHARACTERS = ["\x1b", "\x07", "\x9b", "\x85", "\x9c", "\x9d", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c", "\u2028", "\u2029"]


@pytest.mark.parametrize("name", sorted(HOSTILE_VALUES))
def test_safe_text_hostile_values(name: str) -> None:
    text = safe_text(HOSTILE_VALUES[name])

    for character in RAW_CHARACTERS:
        assert character not in text, f"{character!r} passed through"
    assert "\\x" in text or "\\u" in text


def test_safe_text_escapes_invisible_characters() -> None:
    # Zero-width characters, the soft hyphen, a byte-order mark and tag
    # characters can hide text inside a user agent that looks unchanged.
    assert safe_text("rclone\u200b/v1") == "rclone\\u200b/v1"
    assert safe_text("a\u200c\u200d\u2060\u00ad\ufeffb") == "a\\u200c\\u200d\\u2060\\xad\\ufeffb"
    assert safe_text("ua\U000e0041\U000e007f") == "ua\\U000e0041\\U000e007f"
    # Not format characters, but drawn as nothing: a variation selector, a Hangul filler, blank braille.
    assert safe_text("a\ufe0f\u3164\u2800\U000e0100b") == "a\\ufe0f\\u3164\\u2800\\U000e0100b"
    assert safe_text("caf\u00e9 \u4e2d\u6587 \U0001f600") == "caf\u00e9 \u4e2d\u6587 \U0001f600"


def test_safe_text_escapes_every_format_character() -> None:
    hidden = "".join(chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp"))

    escaped = safe_text(hidden)

    assert not any(unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") for character in escaped)
    assert escaped.count("\\") == len(hidden)


def test_safe_text_shows_sequences() -> None:
    assert safe_text("\x1b]8;;http://evil.test\x1b\\x") == "\\x1b]8;;http://evil.test\\x1b\\x"
    assert safe_text("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"
    assert safe_text("\x9b31m") == "\\x9b31m"
    assert safe_text(None) == ""
    assert safe_text(443) == "443"


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


SEED_RULE = str(Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")
MARKUP_HOST = "[link=http://evil.test]x.example[/link]"
MARKUP_AGENT = "rclone/v1.66.0 [bold red]loud[/] :skull:"
LONG_URL = "http://s3.eu-central-1.example-cloud.test/" + "finance-archive/" * 12 + "ledger.xlsx"
LONG_AGENT = "rclone/v1.66.0 " + "x" * 200


def run_hunt(tmp_path: Path, lines: list[str]) -> HuntResult:
    log = tmp_path / "proxy.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return hunt([str(log)])


@pytest.fixture
def hostile_result(tmp_path: Path) -> HuntResult:
    return run_hunt(
        tmp_path,
        [
            jsonl_line(DstHostname=MARKUP_HOST, HttpUserAgent=MARKUP_AGENT, SrcUsername="[link=http://evil.test]bob[/link]"),
            jsonl_line(
                TimeGenerated="2026-11-03T01:59:13Z",
                HttpUserAgent="rclone/v1.66.0 " + "".join(HOSTILE_VALUES.values()),
                SrcUsername="".join(HOSTILE_VALUES.values()),
            ),
            jsonl_line(TimeGenerated="2026-11-03T02:00:13Z", Url=LONG_URL, HttpUserAgent=LONG_AGENT, SrcUsername="svc_backup"),
        ],
    )


def add_verdicts(result: HuntResult) -> None:
    """Mark the last finding suppressed by a filter and add a correlation finding, as the tuning step will."""
    suppressed = result.findings[-1]
    suppressed["Verdict"] = "suppressed"
    suppressed["Suppressions"] = [
        {
            "filter_id": "9a7c0c43-0f0e-4a39-9a4f-2f3a1d9c6d10",
            "filter_title": "Known backup accounts",
            "filter_source": "filters/backup.yml",
            "values": {"SrcUsername": "svc_backup"},
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
        GroupBy={"SrcIpAddr": "10.0.0.5"},
        WindowStart=datetime(2026, 11, 3, 1, 55),
        WindowEnd=datetime(2026, 11, 3, 2, 5),
        Value=3,
        Events=[{"RuleId": "r", "SourceFile": suppressed["SourceFile"], "SourceLine": line} for line in (1, 2, 3)],
        SrcIpAddr="10.0.0.5",
    )
    result.findings.append(correlation)


def render_all(result: HuntResult, width: int, show_suppressed: bool = False) -> str:
    """Render every terminal section on a colour terminal of ``width`` columns and return the raw output."""
    output = io.StringIO()
    console = Console(file=output, width=width, force_terminal=True, color_system="truecolor", emoji=True)
    terminal.render_inputs(console, result)
    terminal.render_rules(console, result)
    terminal.render_findings(console, result, limit=200, show_suppressed=show_suppressed)
    terminal.render_sources(console, result)
    terminal.render_warnings(console, result)
    terminal.render_verdict(console, result)
    return output.getvalue()


@pytest.mark.parametrize("width", [80, 200])
def test_log_values_not_read_as_markup(hostile_result: HuntResult, width: int) -> None:
    text = render_all(hostile_result, width)

    assert "\x1b]8" not in text, "a log value became an OSC 8 hyperlink"
    assert "💀" not in text
    assert "[link=http://evil.test]" in text


@pytest.mark.parametrize("width", [80, 200])
def test_hostile_values_escaped_on_terminal(hostile_result: HuntResult, width: int) -> None:
    text = render_all(hostile_result, width)

    # rich writes its own SGR sequences (ESC [ ... m) on a colour terminal, so only other escapes count.
    others = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for character in RAW_CHARACTERS:
        assert character not in others, f"{character!r} reached the terminal"
    assert "\\x1b" in text
    assert "\\u202e" in text


def test_every_section_fits_80_columns(hostile_result: HuntResult) -> None:
    add_verdicts(hostile_result)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", render_all(hostile_result, 80, show_suppressed=True))

    # Warnings are printed unwrapped, so that the terminal wraps them and a path in one stays whole for copying.
    table_lines = [line for line in plain.splitlines() if not line.startswith(("warning: ", "error: ", "note: "))]
    widest = max(table_lines, key=len)
    assert len(widest) <= 80, widest
    assert "…" in plain
    assert LONG_AGENT not in plain
    assert "finance-archive/finance-archive/finance-archive/finance-archive/" not in plain


def test_alerts_shown_suppressed_counted(hostile_result: HuntResult) -> None:
    add_verdicts(hostile_result)

    text = re.sub(r"\x1b\[[0-9;]*m", "", render_all(hostile_result, 120))

    assert "Suppressed by filters" in text
    assert "Known backup accounts" in text
    assert "1 finding suppressed; list them with --show-suppressed" in text
    assert "svc_backup" not in text.split("Suppressed by filters")[0]
    # Two detection alerts and one correlation alert.
    assert "3 findings in 3 events; 1 more suppressed by filters." in text


def test_show_suppressed_lists_filter_values(hostile_result: HuntResult) -> None:
    add_verdicts(hostile_result)

    text = re.sub(r"\x1b\[[0-9;]*m", "", render_all(hostile_result, 80, show_suppressed=True))
    listing = text.split("Suppressed findings")[1]

    # At 80 columns the filter and its values wrap onto lines of their own.
    assert "Known backup accounts:" in listing
    assert "SrcUsername=svc_backup" in listing
    assert "Suppressed by" in listing
    assert "--show-suppressed" not in text


def test_correlation_findings_table(hostile_result: HuntResult) -> None:
    add_verdicts(hostile_result)

    text = re.sub(r"\x1b\[[0-9;]*m", "", render_all(hostile_result, 80))

    assert "Many rclone uploads from one source" in text
    assert "SrcIpAddr=10.0.0.5" in text
    assert "2026-11-03 01:55:00" in text
    assert "3 events" in text


def test_rules_table_counts_suppressed(hostile_result: HuntResult) -> None:
    add_verdicts(hostile_result)
    output = io.StringIO()

    terminal.render_rules(Console(file=output, width=100, no_color=True), hostile_result)

    lines = output.getvalue().splitlines()
    assert "Suppressed" in lines[2]
    rclone = next(line for line in lines if "Rclone Activity via Proxy" in line)
    assert rclone.split()[-2:] == ["2", "1"]


def test_sources_exclude_suppressed(hostile_result: HuntResult) -> None:
    add_verdicts(hostile_result)
    output = io.StringIO()

    terminal.render_sources(Console(file=output, width=100, no_color=True), hostile_result)

    assert "svc_backup" not in output.getvalue()
    assert "1.0 MiB" in output.getvalue()


def test_renderers_tolerate_missing_keys(hostile_result: HuntResult) -> None:
    for finding in hostile_result.findings:
        for key in ("Verdict", "RuleType", "Suppressions", "SourceDamaged", "SrcPortNumber"):
            finding.pop(key, None)

    text = render_all(hostile_result, 80, show_suppressed=True)

    assert "3 findings in 3 events." in text
    assert "Suppressed" not in text


# The command line on a pseudo-terminal: colours, --quiet and the progress bar.

COLOUR_SGR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|38|9[0-7])[;m]")


def run_on_terminal(arguments: list[str], environment: dict[str, str]) -> tuple[int, str]:
    """Run ``proxyhunt`` with stdout and stderr on a pseudo-terminal; return its exit status and output."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm-256color", **environment}
    if "NO_COLOR" not in environment:
        env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "proxyhunt", *arguments], stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    output = bytearray()
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(primary)
        returncode = process.wait(timeout=120)
    return returncode, output.decode("utf-8", errors="replace")


@pytest.fixture
def rclone_log(tmp_path: Path) -> Path:
    log = tmp_path / "proxy.jsonl"
    log.write_text(jsonl_line() + "\n" + jsonl_line(HttpUserAgent="curl/8.5.0") + "\n", encoding="utf-8")
    return log


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_colour_off_with_no_color(rclone_log: Path) -> None:
    _, coloured = run_on_terminal(["hunt", str(rclone_log)], {})
    _, by_variable = run_on_terminal(["hunt", str(rclone_log)], {"NO_COLOR": "1"})
    _, by_option = run_on_terminal(["hunt", str(rclone_log), "--no-color"], {})

    assert COLOUR_SGR.search(coloured), "the control run printed no colour, so this test cannot fail"
    assert not COLOUR_SGR.search(by_variable)
    assert not COLOUR_SGR.search(by_option)
    assert "1 finding in 2 events." in by_variable


def test_quiet_prints_closing_line_only(rclone_log: Path) -> None:
    result = subprocess.run(
        # Only the seed rule: the bundled pack's rules also read HttpReferrer and UrlQuery,
        # which this log lacks, and would add a warning about that.
        [sys.executable, "-m", "proxyhunt", "hunt", str(rclone_log), "--quiet", "--no-default-rules", "--rules", SEED_RULE],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert result.stdout.strip() == "1 finding in 2 events."
    assert result.stderr == ""


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_shows_speed(tmp_path: Path) -> None:
    # Above the progress threshold (8 MiB) the bar appears on a terminal, unless --quiet.
    line = jsonl_line(HttpUserAgent="curl/8.5.0 " + "x" * 200)
    large = tmp_path / "large.jsonl"
    large.write_text((line + "\n") * 35_000, encoding="utf-8")
    assert large.stat().st_size > 8 * 1024 * 1024

    _, with_bar = run_on_terminal(["hunt", str(large), "--limit", "0"], {})
    _, quiet = run_on_terminal(["hunt", str(large), "--quiet"], {})

    # The speed column shows "?" until rich has timed two updates, so only the column is checked here.
    assert any(isinstance(column, TransferSpeedColumn) for column in _ProgressBar(1, enabled=False)._progress.columns)
    assert "reading" in with_bar
    assert re.search(r"/\d+(\.\d+)? MB", with_bar), "no byte count on the progress bar"
    assert "reading" not in quiet
