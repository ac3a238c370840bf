"""Render a hunt result as tables in the terminal with rich.

Every value that comes from a log (user agents, URLs, user names, hosts) is
attacker-controlled: control characters, terminal escape sequences included,
are shown as ``\\xHH`` and values are rendered as plain text, never as markup.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from proxyhunt.hunt import HuntResult, SourceSummary

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Above this many skipped rules, the report counts them per reason instead of listing each.
SKIPPED_RULES_LISTED = 10
# Width of the Source / File:line column in the narrow layout.
NARROW_SOURCE_COLUMNS = 24
# Widest host and File:line cells in the wide layout; longer values are cut from the left.
WIDE_HOST_COLUMNS = 40
# An IPv6 address takes up to 39 characters, and the user name follows it.
WIDE_SOURCE_COLUMNS = 60
WIDE_LOCATION_COLUMNS = 40
# Terminals narrower than this get two lines per finding instead of one.
WIDE_LAYOUT_COLUMNS = 170
_LEVEL_STYLES = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}


def _count(number: int, noun: str) -> str:
    """Return '1 line' or '3 lines'."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


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


def _lines(*values: Any) -> Text:
    """Return values as one cell of several lines, each made safe on its own."""
    return Text("\n".join(safe_text(value) for value in values))


def _rule_key(finding: dict[str, Any]) -> str:
    """Return the key that ``LoadedRule.key`` gives the rule behind a finding."""
    return finding["RuleId"] or f"{finding['RuleSource']}:{finding['RuleTitle']}"


def _source(finding: dict[str, Any]) -> str:
    source = finding["SrcIpAddr"] or ""
    if finding["SrcUsername"]:
        source = f"{source} ({finding['SrcUsername']})"
    return source


def _location(finding: dict[str, Any], short_names: dict[str, str]) -> str:
    """Return file:line, naming the file as short as ``_short_file_names`` allows."""
    source_file = finding["SourceFile"]
    name = short_names.get(source_file) or Path(source_file).name
    damaged = " (damaged)" if finding.get("SourceDamaged") else ""
    return f"{name}:{finding['SourceLine']}{damaged}"


def _short_file_names(findings: list[dict[str, Any]]) -> dict[str, str]:
    """Return a short, unique name for each source file of the findings.

    A file is named by its base name unless another file shares it. Then the
    nearest directory that tells them apart is added, with ``…`` for the
    directories in between: ``proxy-eu-west/…/access.log``.
    """
    by_name: dict[str, set[str]] = {}
    for finding in findings:
        by_name.setdefault(Path(finding["SourceFile"]).name, set()).add(finding["SourceFile"])

    names: dict[str, str] = {}
    for base_name, paths in by_name.items():
        if len(paths) == 1:
            names[next(iter(paths))] = base_name
            continue
        parts = {path: Path(path).parts for path in paths}
        for path, own in parts.items():
            names[path] = path
            for depth in range(2, len(own) + 1):
                suffix = own[-depth:]
                if all(other[-depth:] != suffix for other_path, other in parts.items() if other_path != path):
                    middle = "/…/" if depth > 2 else "/"
                    names[path] = f"{own[-depth]}{middle}{base_name}"
                    break
    return names


def _wide_findings_table(findings: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    table.add_column("Time (UTC)", no_wrap=True, min_width=19)
    table.add_column("Source", overflow="fold", max_width=WIDE_SOURCE_COLUMNS)
    table.add_column("Host", overflow="ellipsis", no_wrap=True, max_width=WIDE_HOST_COLUMNS)
    table.add_column("URL", overflow="ellipsis", no_wrap=True, ratio=3)
    table.add_column("User agent", overflow="ellipsis", no_wrap=True, ratio=2)
    table.add_column("Up", justify="right", no_wrap=True, min_width=9)
    table.add_column("Down", justify="right", no_wrap=True, min_width=9)
    table.add_column("File:line", overflow="ellipsis", no_wrap=True, min_width=12, max_width=WIDE_LOCATION_COLUMNS)
    short_names = _short_file_names(findings)
    for finding in findings:
        table.add_row(
            format_time(finding["TimeGenerated"]),
            _plain(_source(finding)),
            _cut_left(safe_text(finding["DstHostname"] or finding["DstIpAddr"]), WIDE_HOST_COLUMNS),
            _plain(finding["Url"]),
            _plain(finding["HttpUserAgent"]),
            format_bytes(finding["SrcBytes"]) or "-",
            format_bytes(finding["DstBytes"]) or "-",
            _cut_left(safe_text(_location(finding, short_names)), WIDE_LOCATION_COLUMNS),
        )
    return table


def _narrow_findings_table(findings: list[dict[str, Any]], width: int) -> Table:
    """Three lines per finding, so that all of it fits 80 columns.

    Host names and file paths are cut from the left, because their last part
    (the registered domain, the file name and line) tells most.
    """
    source_width = NARROW_SOURCE_COLUMNS
    # Four columns with their separators take 12 characters besides their contents.
    request_width = max(20, width - 10 - source_width - 10 - 12)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    table.add_column("Time (UTC)", no_wrap=True, width=10)
    table.add_column("Source IP\nUser\nFile:line", overflow="fold", width=source_width)
    table.add_column("Host\nRequest\nUser agent", overflow="ellipsis", no_wrap=True, ratio=1)
    table.add_column("Up\nDown", justify="right", no_wrap=True, width=10)
    short_names = _short_file_names(findings)
    for finding in findings:
        time = finding["TimeGenerated"]
        when = f"{time:%Y-%m-%d}\n{time:%H:%M:%S}" if time else ""
        host = finding["DstHostname"] or finding["DstIpAddr"] or ""
        request = f"{finding['HttpRequestMethod'] or ''} {finding['Url'] or ''}".strip()
        table.add_row(
            when,
            _lines(
                finding["SrcIpAddr"],
                finding["SrcUsername"] or "-",
                _cut_left(safe_text(_location(finding, short_names)), source_width),
            ),
            _lines(_cut_left(safe_text(host), request_width), request, finding["HttpUserAgent"]),
            f"{format_bytes(finding['SrcBytes']) or '-'}\n{format_bytes(finding['DstBytes']) or '-'}",
        )
    return table


def _cut_left(text: str, width: int) -> str:
    """Return ``text`` cut to ``width`` characters from the left, marked with an ellipsis."""
    if len(text) <= width:
        return text
    return "…" + text[len(text) - width + 1 :]


def render_findings(console: Console, result: HuntResult, limit: int | None = None) -> None:
    """Print the findings, one table per rule, in time order.

    Long values are cut with an ellipsis to fit the terminal; the JSON Lines
    output keeps them whole. Below WIDE_LAYOUT_COLUMNS each finding takes three lines.
    """
    shown = result.findings if limit is None else result.findings[:limit]
    narrow = console.width < WIDE_LAYOUT_COLUMNS

    by_rule: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for finding in shown:
        key = (finding["RuleTitle"] or "", finding["RuleLevel"] or "", _rule_key(finding))
        by_rule.setdefault(key, []).append(finding)

    for (title, level, rule_key), findings in by_rule.items():
        total = result.hits_per_rule.get(rule_key, len(findings))
        heading = Text()
        heading.append(safe_text(title), style="bold")
        heading.append(f"  {level}", style=_LEVEL_STYLES.get(level, ""))
        heading.append(f"  {total} finding{'s' if total != 1 else ''}")
        console.print(heading)

        table = _narrow_findings_table(findings, console.width) if narrow else _wide_findings_table(findings)
        console.print(table)

    if limit is not None and len(result.findings) > limit:
        console.print(f"… {len(result.findings) - limit} more findings; write them all with --output FILE.jsonl")


def _uploaded(source: SourceSummary) -> str:
    """Return the upload total, and how many hits it leaves out because their log has no request size."""
    total = format_bytes(source.bytes_uploaded) or "-"
    if source.upload_unknown and source.upload_unknown < source.hits:
        return f"{total}\n+{source.upload_unknown} unknown"
    if source.upload_unknown:
        return "unknown"
    return total


def render_sources(console: Console, result: HuntResult) -> None:
    """Print hits per client: how many, how much uploaded, to how many destinations, and when."""
    table = Table(title="Hits per source", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Source IP\nUser", overflow="fold", min_width=15, max_width=24)
    table.add_column("Hits", justify="right", no_wrap=True, min_width=4)
    table.add_column("Uploaded", justify="right", no_wrap=True)
    table.add_column("Downloaded", justify="right", no_wrap=True)
    table.add_column("Hosts", justify="right", no_wrap=True)
    table.add_column("First seen (UTC)\nLast seen (UTC)", no_wrap=True, min_width=19)
    for source in result.sources:
        table.add_row(
            _lines(source.src_ip, source.src_user),
            str(source.hits),
            _uploaded(source),
            format_bytes(source.bytes_downloaded),
            str(source.destinations),
            f"{format_time(source.first_seen)}\n{format_time(source.last_seen)}",
        )
    console.print(table)


def render_inputs(console: Console, result: HuntResult) -> None:
    """Print per-file accounting: format, lines read, parsed, rejected and skipped."""
    table = Table(title="Inputs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("File", overflow="fold", min_width=16, ratio=1)
    table.add_column("Format", overflow="fold")
    table.add_column("Lines", justify="right")
    table.add_column("Parsed", justify="right")
    table.add_column("Rejected", justify="right")
    table.add_column("Skipped", justify="right")

    # The time range needs 19 more columns, so an 80-column terminal leaves it out.
    show_times = console.width >= 100
    if show_times:
        table.add_column("First event (UTC)\nLast event (UTC)", no_wrap=True, min_width=19)

    for report in result.files:
        name = report.format or ("-" if report.error else "empty")
        if report.compression:
            name = f"{name} ({report.compression})"
        time_range = ""
        if report.first_seen:
            time_range = f"{format_time(report.first_seen)}\n{format_time(report.last_seen)}"

        rejected = str(report.rejected)
        cells = [
            _plain(report.path),
            _plain(name),
            str(report.lines_read),
            str(report.parsed),
            Text(rejected, style="red") if report.rejected else rejected,
            str(report.skipped),
        ]
        if show_times:
            cells.append(time_range)
        table.add_row(*cells)

    console.print(table)


def render_rules(console: Console, result: HuntResult) -> None:
    """Print each rule that ran with its level and hit count."""
    table = Table(title="Rules", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Rule", overflow="fold")
    table.add_column("Level")
    table.add_column("Hits", justify="right")
    for rule in result.compiled:
        if not rule.runnable:
            continue
        loaded = rule.loaded
        hits = result.hits_per_rule.get(loaded.key, 0)
        table.add_row(_plain(loaded.title), _plain(loaded.level, _LEVEL_STYLES.get(loaded.level)), str(hits))
    console.print(table)


def render_warnings(console: Console, result: HuntResult, rejects_written: bool = False) -> None:
    """Print file errors, rule problems, coverage gaps and visibility notes, each on one line."""
    lines: list[tuple[str, str]] = []
    for report in result.files:
        if report.error:
            lines.append(("error", f"{report.path}: {report.error}"))
        if report.rejected:
            lines.append(
                (
                    "warning",
                    f"{report.path}: {_count(report.rejected, 'line')} rejected"
                    + ("" if rejects_written else "; write them with --rejects FILE"),
                )
            )
        for column, count in sorted(report.invalid_values.items()):
            lines.append(("warning", f"{report.path}: {_count(count, f'invalid {column} value')} left empty (NULL)"))
        if report.ignored_text_lines:
            lines.append(
                (
                    "warning",
                    f"{report.path}: {_count(report.ignored_text_lines, 'line')} with text at the end that {report.format} "
                    "does not define; it is kept in RawEvent but matched by no field",
                )
            )
        if report.invalid_utf8_lines:
            lines.append(
                (
                    "warning",
                    f"{report.path}: {_count(report.invalid_utf8_lines, 'line')} not valid UTF-8, "
                    "decoded with U+FFFD",
                )
            )
    for problem in result.rule_problems:
        lines.append(("error", f"rule {problem}"))
    skipped = result.ruleset.skipped
    if len(skipped) > SKIPPED_RULES_LISTED:
        reasons: dict[str, int] = {}
        for problem in skipped:
            reasons[problem.message] = reasons.get(problem.message, 0) + 1
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            lines.append(("note", f"{count} rules skipped: {reason}"))
    else:
        for problem in skipped:
            lines.append(("note", f"rule skipped: {problem}"))
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
    events = _count(parsed, "event")
    caveats = []
    if result.failed_files:
        caveats.append(f"{_count(len(result.failed_files), 'input')} could not be read")
    if result.rule_problems:
        caveats.append(f"{_count(len(result.rule_problems), 'requested rule')} could not run")
    caveat = f" ({' and '.join(caveats)}; see the errors above)" if caveats else ""

    if result.findings:
        text = f"{_count(len(result.findings), 'finding')} in {events}{caveat}."
        console.print(Text(text, style="bold red"))
        return

    if not parsed:
        reason = "no event could be read" if result.failed_files else "the inputs contain no events"
        console.print(Text(f"No findings: {reason}{caveat}.", style="bold yellow"))
        return

    blind_files = {gap.path for gap in result.coverage if gap.blind}
    if result.blind:
        console.print(
            Text(
                f"No findings, but no file carries the fields the rules need ({events}): "
                f"the data could not have shown a hit{caveat}.",
                style="bold yellow",
            )
        )
        return

    message = f"No findings in {events}{caveat}."
    if blind_files:
        message += f" {_count(len(blind_files), 'file')} could not show some rules' hits; see the warnings above."
    style = "bold yellow" if caveats else "bold green"
    console.print(Text(message, style=style))
