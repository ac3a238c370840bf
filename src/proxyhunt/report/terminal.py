"""Render a hunt result as tables in the terminal with rich.

Every value that comes from a log (user agents, URLs, user names, hosts) is
attacker-controlled: control characters, terminal escape sequences included,
are shown as ``\\xHH`` and values are rendered as plain text, never as markup.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from proxyhunt.hunt import HuntResult

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_LEVEL_STYLES = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}


def safe_text(value: Any) -> str:
    """Return a value as text with control and bidirectional-override characters made visible."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}" if ord(match.group()) < 0x100 else f"\\u{ord(match.group()):04x}", text)


def format_bytes(value: int | None) -> str:
    """Return a byte count in B, KiB, MiB or GiB, or an empty string for NULL."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def format_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _plain(value: Any, style: str | None = None) -> Text:
    return Text(safe_text(value), style=style or "")


def render_findings(console: Console, result: HuntResult, limit: int | None = None) -> None:
    """Print the findings table, newest rule hits in time order."""
    findings = result.findings if limit is None else result.findings[:limit]
    table = Table(title=f"Findings ({len(result.findings)})", title_justify="left", expand=False)
    table.add_column("Time (UTC)", no_wrap=True)
    table.add_column("Rule", overflow="ellipsis", max_width=28)
    table.add_column("Level", no_wrap=True)
    table.add_column("Source", overflow="ellipsis", max_width=24)
    table.add_column("Host", overflow="ellipsis", max_width=28)
    table.add_column("URL", overflow="ellipsis", max_width=40)
    table.add_column("User agent", overflow="ellipsis", max_width=28)
    table.add_column("Up", justify="right", no_wrap=True)
    table.add_column("Down", justify="right", no_wrap=True)
    table.add_column("File:line", overflow="ellipsis", max_width=36)

    for finding in findings:
        source = finding["SrcIpAddr"] or ""
        if finding["SrcUsername"]:
            source = f"{source} ({finding['SrcUsername']})"
        level = finding["RuleLevel"] or ""
        table.add_row(
            format_time(finding["TimeGenerated"]),
            _plain(finding["RuleTitle"]),
            _plain(level, _LEVEL_STYLES.get(level)),
            _plain(source),
            _plain(finding["DstHostname"] or finding["DstIpAddr"]),
            _plain(finding["Url"]),
            _plain(finding["HttpUserAgent"]),
            format_bytes(finding["SrcBytes"]),
            format_bytes(finding["DstBytes"]),
            _plain(f"{finding['SourceFile']}:{finding['SourceLine']}"),
        )
    console.print(table)
    if limit is not None and len(result.findings) > limit:
        console.print(f"… {len(result.findings) - limit} more findings; write them all with --output FILE.jsonl")


def render_sources(console: Console, result: HuntResult) -> None:
    """Print hits per client: how many, how much uploaded, to how many destinations, and when."""
    table = Table(title="Hits per source", title_justify="left")
    table.add_column("Source IP", overflow="ellipsis")
    table.add_column("User", overflow="ellipsis")
    table.add_column("Hits", justify="right")
    table.add_column("Uploaded", justify="right")
    table.add_column("Downloaded", justify="right")
    table.add_column("Destinations", justify="right")
    table.add_column("First seen (UTC)", no_wrap=True)
    table.add_column("Last seen (UTC)", no_wrap=True)
    for source in result.sources:
        table.add_row(
            _plain(source.src_ip),
            _plain(source.src_user),
            str(source.hits),
            format_bytes(source.bytes_uploaded),
            format_bytes(source.bytes_downloaded),
            str(source.destinations),
            format_time(source.first_seen),
            format_time(source.last_seen),
        )
    console.print(table)


def render_inputs(console: Console, result: HuntResult) -> None:
    """Print per-file accounting: format, lines read, parsed, rejected and skipped."""
    table = Table(title="Inputs", title_justify="left")
    table.add_column("File", overflow="fold")
    table.add_column("Format", overflow="fold")
    table.add_column("Lines", justify="right")
    table.add_column("Parsed", justify="right")
    table.add_column("Rejected", justify="right")
    table.add_column("Skipped", justify="right")
    table.add_column("Time range (UTC)", overflow="fold")
    for report in result.files:
        name = report.format or ("-" if report.error else "empty")
        if report.compression:
            name = f"{name} ({report.compression})"
        time_range = ""
        if report.first_seen:
            time_range = f"{format_time(report.first_seen)} to {format_time(report.last_seen)}"
        rejected = str(report.rejected)
        table.add_row(
            _plain(report.path),
            _plain(name),
            str(report.lines_read),
            str(report.parsed),
            Text(rejected, style="red") if report.rejected else rejected,
            str(report.skipped),
            time_range,
        )
    console.print(table)


def render_rules(console: Console, result: HuntResult) -> None:
    """Print each rule that ran with its level and hit count."""
    table = Table(title="Rules", title_justify="left")
    table.add_column("Rule", overflow="fold")
    table.add_column("Level")
    table.add_column("Hits", justify="right")
    for rule in result.compiled:
        if not rule.runnable:
            continue
        loaded = rule.loaded
        hits = result.hits_per_rule.get(loaded.rule_id or loaded.title, 0)
        table.add_row(_plain(loaded.title), _plain(loaded.level, _LEVEL_STYLES.get(loaded.level)), str(hits))
    console.print(table)


def render_warnings(console: Console, result: HuntResult) -> None:
    """Print file errors, rule problems, coverage gaps and visibility notes, each on one line."""
    lines: list[tuple[str, str]] = []
    for report in result.files:
        if report.error:
            lines.append(("error", f"{report.path}: {report.error}"))
        if report.rejected:
            lines.append(("warning", f"{report.path}: {report.rejected} lines rejected (see --rejects)"))
        for column, count in sorted(report.invalid_values.items()):
            lines.append(("warning", f"{report.path}: {count} invalid {column} values were left empty"))
        if report.invalid_utf8_lines:
            lines.append(
                ("warning", f"{report.path}: {report.invalid_utf8_lines} lines are not valid UTF-8 and were decoded with U+FFFD")
            )
    for problem in result.rule_problems:
        lines.append(("error", f"rule {problem}"))
    for gap in result.coverage:
        lines.append(("warning", str(gap)))
    for note in result.notes:
        lines.append(("note", note))

    styles = {"error": "bold red", "warning": "yellow", "note": "cyan"}
    for kind, message in lines:
        text = Text(f"{kind}: ", style=styles[kind])
        text.append(safe_text(message))
        console.print(text, soft_wrap=True)


def render_verdict(console: Console, result: HuntResult) -> None:
    """Print one closing line: the number of findings, or why none could be found."""
    parsed = sum(report.parsed for report in result.files)
    if result.findings:
        console.print(Text(f"{len(result.findings)} findings in {parsed} events.", style="bold red"))
        return
    blind = [gap for gap in result.coverage if gap.blind]
    blind_files = {gap.path for gap in blind}
    if parsed and len(blind_files) == len([report for report in result.files if report.parsed]):
        console.print(
            Text(
                f"No findings, but no file carries the fields the rules need ({parsed} events): "
                "the data could not have shown a hit.",
                style="bold yellow",
            )
        )
        return
    message = f"No findings in {parsed} events."
    if blind_files:
        message += f" {len(blind_files)} file(s) could not show some rules' hits; see the warnings above."
    console.print(Text(message, style="bold green"))
