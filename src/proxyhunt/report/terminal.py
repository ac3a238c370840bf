"""Render a hunt result as tables in the terminal with rich.

Every value that comes from a log (user agents, URLs, user names, hosts) is
attacker-controlled. Control characters, terminal escape sequences included,
are shown as ``\\xHH`` by ``safe_text``, and every such value reaches rich as a
``Text`` object, never as a string, because rich parses strings for markup
such as ``[link=…]``, which would write an OSC 8 hyperlink.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from proxyhunt.hunt import HuntResult
from proxyhunt.report.findings import (
    describe_suppressions,
    describe_values,
    destinations_of,
    events_of,
    group_by_of,
    is_correlation,
    rule_key_of,
    source_label,
    suppression_entries,
)
from proxyhunt.report.model import HuntReport, build_report
from proxyhunt.report.text import count_noun, format_bytes, format_time, safe_text

__all__ = [
    "render_findings",
    "render_inputs",
    "render_rules",
    "render_sources",
    "render_verdict",
    "render_warnings",
    "safe_text",
]

# Width of the Source / File:line column in the narrow layout.
NARROW_SOURCE_COLUMNS = 24
# Widest host and File:line cells in the wide layout; longer values are cut from the left.
WIDE_HOST_COLUMNS = 40
# An IPv6 address takes up to 39 characters, and the user name follows it.
WIDE_SOURCE_COLUMNS = 60
WIDE_LOCATION_COLUMNS = 40
# Terminals narrower than this get three lines per finding instead of one.
WIDE_LAYOUT_COLUMNS = 170
# A correlation row names this many destinations and counts the rest; the HTML report lists them all.
LISTED_DESTINATIONS = 3
# Under each correlation table: its byte columns add up the counted events, not whole transfers.
COUNTED_BYTES_CAPTION = "* Up and Down add up the events each finding counts, not the whole transfer."
_LEVEL_STYLES = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}
_MESSAGE_STYLES = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def _plain(value: Any, style: str | None = None) -> Text:
    return Text(safe_text(value), style=style or "")


def _lines(*values: Any) -> Text:
    """Return values as one cell of several lines, each made safe on its own."""
    return Text("\n".join(safe_text(value) for value in values))


def _report(result: HuntResult | HuntReport) -> HuntReport:
    return result if isinstance(result, HuntReport) else build_report(result)


def _location(finding: dict[str, Any], short_names: dict[str, str]) -> str:
    """Return file:line, naming the file as short as ``_short_file_names`` allows."""
    source_file = finding.get("SourceFile") or ""
    name = short_names.get(source_file) or Path(source_file).name
    damaged = " (damaged)" if finding.get("SourceDamaged") else ""
    return f"{name}:{finding.get('SourceLine')}{damaged}"


def _short_file_names(findings: list[dict[str, Any]]) -> dict[str, str]:
    """Return a short, unique name for each source file of the findings.

    A file is named by its base name unless another file shares it. Then the
    nearest directory that tells them apart is added, with ``…`` for the
    directories in between: ``proxy-eu-west/…/access.log``.
    """
    by_name: dict[str, set[str]] = {}
    for finding in findings:
        source_file = finding.get("SourceFile") or ""
        by_name.setdefault(Path(source_file).name, set()).add(source_file)

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


def _cut_left(text: str, width: int) -> str:
    """Return ``text`` cut to ``width`` characters from the left, marked with an ellipsis."""
    if len(text) <= width:
        return text
    return "…" + text[len(text) - width + 1 :]


def _wide_findings_table(findings: list[dict[str, Any]], with_suppressions: bool = False) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    table.add_column("Time (UTC)", no_wrap=True, min_width=19)
    table.add_column("Priority", no_wrap=True)
    table.add_column("Source", overflow="fold", max_width=WIDE_SOURCE_COLUMNS)
    table.add_column("Host", overflow="ellipsis", no_wrap=True, max_width=WIDE_HOST_COLUMNS)
    table.add_column("URL", overflow="ellipsis", no_wrap=True, ratio=3)
    table.add_column("User agent", overflow="ellipsis", no_wrap=True, ratio=2)
    table.add_column("Up", justify="right", no_wrap=True, min_width=9)
    table.add_column("Down", justify="right", no_wrap=True, min_width=9)
    table.add_column("File:line", overflow="ellipsis", no_wrap=True, min_width=12, max_width=WIDE_LOCATION_COLUMNS)
    if with_suppressions:
        table.add_column("Suppressed by", overflow="fold", ratio=2)

    short_names = _short_file_names(findings)
    for finding in findings:
        cells = [
            format_time(finding.get("TimeGenerated")),
            _priority(finding),
            _plain(source_label(finding.get("SrcIpAddr"), finding.get("SrcUsername"))),
            _plain(_cut_left(safe_text(finding.get("DstHostname") or finding.get("DstIpAddr")), WIDE_HOST_COLUMNS)),
            _plain(finding.get("Url")),
            _plain(finding.get("HttpUserAgent")),
            format_bytes(finding.get("SrcBytes")) or "-",
            format_bytes(finding.get("DstBytes")) or "-",
            _plain(_cut_left(safe_text(_location(finding, short_names)), WIDE_LOCATION_COLUMNS)),
        ]
        if with_suppressions:
            cells.append(_plain(describe_suppressions(finding)))
        table.add_row(*cells)
    return table


def _narrow_findings_table(findings: list[dict[str, Any]], width: int, with_suppressions: bool = False) -> Table:
    """Three lines per finding, so that all of it fits 80 columns.

    Host names and file paths are cut from the left, because their last part
    (the registered domain, the file name and line) tells most. With
    ``with_suppressions`` a fourth line names the filters that suppressed it
    and the values they matched, folded over as many lines as it needs.
    """
    source_width = NARROW_SOURCE_COLUMNS
    # The date takes 10 characters; only "informational" needs more.
    time_width = max([10, *(len(finding.get("Priority") or "") for finding in findings)])
    # Four columns with their separators take 12 characters besides their contents.
    request_width = max(20, width - time_width - source_width - 10 - 12)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    table.add_column("Time (UTC)\n\nPriority", no_wrap=True, width=time_width)
    table.add_column("Source IP\nUser\nFile:line", overflow="fold", width=source_width)
    heading = "Host\nRequest\nUser agent" + ("\nSuppressed by" if with_suppressions else "")
    table.add_column(heading, overflow="ellipsis", no_wrap=True, ratio=1)
    table.add_column("Up\nDown", justify="right", no_wrap=True, width=10)

    short_names = _short_file_names(findings)
    for finding in findings:
        time = finding.get("TimeGenerated")
        when = Text(f"{time:%Y-%m-%d}\n{time:%H:%M:%S}\n" if time else "\n\n")
        when.append_text(_priority(finding))
        host = finding.get("DstHostname") or finding.get("DstIpAddr") or ""
        request = f"{finding.get('HttpRequestMethod') or ''} {finding.get('Url') or ''}".strip()
        details = _lines(_cut_left(safe_text(host), request_width), request, finding.get("HttpUserAgent"))
        if with_suppressions:
            # The filters and their values matter more than one line's width, so they wrap
            # here: the column itself cuts every line at its width.
            details.append("\n" + "\n".join(_suppression_lines(finding, request_width)))
        table.add_row(
            when,
            _lines(
                finding.get("SrcIpAddr"),
                finding.get("SrcUsername") or "-",
                _cut_left(safe_text(_location(finding, short_names)), source_width),
            ),
            details,
            f"{format_bytes(finding.get('SrcBytes')) or '-'}\n{format_bytes(finding.get('DstBytes')) or '-'}",
        )
    return table


def _suppression_lines(finding: dict[str, Any], width: int) -> list[str]:
    """Return each filter title followed by its matched values, one per line, indented and wrapped at ``width``."""
    lines = []
    for name, pairs in suppression_entries(finding):
        lines += textwrap.wrap(safe_text(name) + ":", width, break_on_hyphens=False)
        for pair in pairs:
            lines += textwrap.wrap(safe_text(pair), width, initial_indent="  ", subsequent_indent="    ")
    return lines


def _priority(finding: dict[str, Any]) -> Text:
    priority = finding.get("Priority") or ""
    return _plain(priority, _LEVEL_STYLES.get(priority))


def _destination_lines(finding: dict[str, Any], width: int) -> list[str]:
    """Return the first LISTED_DESTINATIONS hosts, cut from the left to ``width``, and how many more there are."""
    hosts = destinations_of(finding)
    lines = [_cut_left(safe_text(host), width) for host in hosts[:LISTED_DESTINATIONS]]
    if len(hosts) > LISTED_DESTINATIONS:
        lines.append(f"+{len(hosts) - LISTED_DESTINATIONS} more")
    return lines


def _correlation_table(findings: list[dict[str, Any]], width: int, report: HuntReport) -> Table:
    """Return a table with one row per correlation finding.

    Each row shows the window and priority, the group and the destinations,
    the aggregated value with the bytes sent up and down, and the events.
    Up and Down add up only the events the finding counts (for a chunk rule,
    the matching chunks), so the caption states that they are not transfer sizes.
    """
    # The destinations tell more than the file names of the events, so they get the room.
    events_width = max(13, width // 6)
    # The table's two edges and three column gaps take 11 characters besides the columns.
    host_width = max(16, width - 19 - 10 - events_width - 11)
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        expand=True,
        caption=COUNTED_BYTES_CAPTION,
        caption_justify="left",
    )
    table.add_column("Window (UTC)\n\nPriority", no_wrap=True, width=19, vertical="top")
    table.add_column("Group\nDestinations\n", overflow="fold", width=host_width)
    table.add_column("Value\nUp*\nDown*", justify="right", no_wrap=True, width=10)
    table.add_column("Events\n\n", overflow="ellipsis", no_wrap=True, width=events_width)
    short_names = _short_file_names([event for finding in findings for event in events_of(finding)])
    for finding in findings:
        events = events_of(finding)
        first = f"first {_location(events[0], short_names)}" if events else ""
        window = Text(f"{format_time(finding.get('WindowStart'))}\n{format_time(finding.get('WindowEnd'))}\n")
        window.append_text(_priority(finding))
        destinations = _destination_lines(finding, host_width)
        table.add_row(
            window,
            _lines(describe_values(group_by_of(finding)), *(destinations or ["-"])),
            "\n".join(
                [
                    report.value_text(finding),
                    format_bytes(finding.get("SrcBytes")) or "-",
                    format_bytes(finding.get("DstBytes")) or "-",
                ]
            ),
            _lines(count_noun(len(events), "event"), _cut_left(safe_text(first), events_width)),
        )
    return table


def _group_by_rule(findings: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for finding in findings:
        key = (finding.get("RuleTitle") or "", finding.get("RuleLevel") or "", rule_key_of(finding))
        groups.setdefault(key, []).append(finding)
    return groups


def _print_rule_heading(console: Console, title: str, level: str, total: int, noun: str) -> None:
    heading = Text()
    heading.append(safe_text(title), style="bold")
    heading.append(f"  {safe_text(level)}", style=_LEVEL_STYLES.get(level, ""))
    heading.append(f"  {count_noun(total, noun)}")
    console.print(heading)


def _print_findings(
    console: Console,
    report: HuntReport,
    findings: list[dict[str, Any]],
    totals: dict[str, int],
    noun: str,
    with_suppressions: bool,
) -> None:
    """Print one table per rule: correlation findings in their own layout, the others as events.

    The rule of the highest-priority finding comes first, as ``findings`` are in triage order.
    """
    narrow = console.width < WIDE_LAYOUT_COLUMNS
    for (title, level, rule_key), group in _group_by_rule(findings).items():
        _print_rule_heading(console, title, level, totals.get(rule_key, len(group)), noun)
        if is_correlation(group[0]):
            console.print(_correlation_table(group, console.width, report))
        elif narrow:
            console.print(_narrow_findings_table(group, console.width, with_suppressions))
        else:
            console.print(_wide_findings_table(group, with_suppressions))


def render_findings(
    console: Console, result: HuntResult | HuntReport, limit: int | None = None, show_suppressed: bool = False
) -> None:
    """Print the alerts, one table per rule, by triage priority and then time, then what the filters suppressed.

    Long values are cut with an ellipsis to fit the terminal; the JSON Lines,
    CSV and HTML outputs keep them whole. Below WIDE_LAYOUT_COLUMNS each
    finding takes three lines. Suppressed findings are counted per filter;
    ``show_suppressed`` also lists them, each with its filters and the values
    they matched. ``limit`` caps the rows of each of the two lists.
    """
    report = _report(result)
    alert_totals = {rule.key: rule.alerts for rule in report.rules}
    listed_alerts = report.alerts if limit is None else report.alerts[:limit]
    _print_findings(console, report, listed_alerts, alert_totals, "finding", with_suppressions=False)
    if limit is not None and len(report.alerts) > limit:
        console.print(
            f"… {len(report.alerts) - limit} more findings; write them all with --output FILE.jsonl, --csv or --html"
        )

    if not report.suppressed:
        return
    _print_suppression_summary(console, report, show_suppressed)
    if not show_suppressed:
        return
    suppressed_totals = {rule.key: rule.suppressed for rule in report.rules}
    listed_suppressed = report.suppressed if limit is None else report.suppressed[:limit]
    console.print(Text("Suppressed findings", style="bold"))
    _print_findings(console, report, listed_suppressed, suppressed_totals, "suppressed finding", with_suppressions=True)
    if limit is not None and len(report.suppressed) > limit:
        console.print(f"… {len(report.suppressed) - limit} more suppressed findings; write them all with --csv or --html")


def _print_suppression_summary(console: Console, report: HuntReport, listed: bool) -> None:
    table = Table(title="Suppressed by filters", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Filter", overflow="fold", ratio=2)
    table.add_column("File", overflow="fold", ratio=1)
    table.add_column("Findings", justify="right", no_wrap=True)
    for summary in report.filters:
        if summary.suppressed:
            table.add_row(_plain(summary.title), _plain(summary.source), str(summary.suppressed))
    console.print(table)
    if not listed:
        console.print(
            f"{count_noun(len(report.suppressed), 'finding')} suppressed; list them with --show-suppressed", soft_wrap=True
        )


def _uploaded(bytes_uploaded: int | None, upload_unknown: int, hits: int) -> str:
    """Return the upload total, and how many hits it leaves out because their log has no request size."""
    total = format_bytes(bytes_uploaded) or "-"
    if upload_unknown and upload_unknown < hits:
        return f"{total}\n+{upload_unknown} unknown"
    if upload_unknown:
        return "unknown"
    return total


def render_sources(console: Console, result: HuntResult | HuntReport) -> None:
    """Print alert events per client: how many, how much uploaded, to how many destinations, and when.

    The events are those of detection alerts and those that correlation alerts count, each line once.
    """
    report = _report(result)
    if not report.sources:
        return
    table = Table(title="Hits per source", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Source IP\nUser", overflow="fold", min_width=15, max_width=24)
    table.add_column("Hits", justify="right", no_wrap=True, min_width=4)
    table.add_column("Uploaded", justify="right", no_wrap=True)
    table.add_column("Downloaded", justify="right", no_wrap=True)
    table.add_column("Hosts", justify="right", no_wrap=True)
    table.add_column("First seen (UTC)\nLast seen (UTC)", no_wrap=True, min_width=19)
    for source in report.sources:
        table.add_row(
            _lines(source.src_ip, source.src_user),
            str(source.hits),
            _uploaded(source.bytes_uploaded, source.upload_unknown, source.hits),
            format_bytes(source.bytes_downloaded),
            str(source.destinations),
            f"{format_time(source.first_seen)}\n{format_time(source.last_seen)}",
        )
    console.print(table)


def render_inputs(console: Console, result: HuntResult | HuntReport) -> None:
    """Print per-file accounting: format, lines read, parsed, rejected, header lines and lines left unparsed."""
    report = _report(result)
    prefiltered = report.lines_prefiltered > 0
    table = Table(title="Inputs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("File", overflow="fold", min_width=16, ratio=1)
    table.add_column("Format", overflow="fold")
    table.add_column("Lines", justify="right")
    table.add_column("Parsed", justify="right")
    table.add_column("Rejected", justify="right")
    # Header, comment and blank lines.
    table.add_column("Header", justify="right")
    if prefiltered:
        table.add_column("Unparsed", justify="right")

    # The time range needs 19 more columns, so an 80-column terminal leaves it out.
    show_times = console.width >= 100
    if show_times:
        table.add_column("First event (UTC)\nLast event (UTC)", no_wrap=True, min_width=19)

    for file_report in report.result.files:
        name = file_report.format or ("-" if file_report.error or file_report.held_by or file_report.own_report else "empty")
        if file_report.compression:
            name = f"{name} ({file_report.compression})"
        time_range = ""
        if file_report.first_seen:
            time_range = f"{format_time(file_report.first_seen)}\n{format_time(file_report.last_seen)}"

        rejected = str(file_report.rejected)
        cells = [
            _plain(file_report.path),
            _plain(name),
            str(file_report.lines_read),
            str(file_report.parsed),
            Text(rejected, style="red") if file_report.rejected else rejected,
            str(file_report.skipped),
        ]
        if prefiltered:
            cells.append(str(file_report.prefiltered))
        if show_times:
            cells.append(time_range)
        table.add_row(*cells)

    console.print(table)
    if prefiltered:
        console.print(
            "Unparsed: lines that contain none of the literals the rules need, so no rule could match them; "
            "--no-prefilter parses them too.",
            style="dim",
        )


def render_rules(console: Console, result: HuntResult | HuntReport) -> None:
    """Print each rule that ran with its level, alerts and, when a filter suppressed any, suppressed findings."""
    report = _report(result)
    any_suppressed = any(rule.suppressed for rule in report.rules)
    table = Table(title="Rules", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Rule", overflow="fold")
    table.add_column("Level")
    table.add_column("Alerts" if any_suppressed else "Hits", justify="right")
    if any_suppressed:
        table.add_column("Suppressed", justify="right")
    for rule in report.rules:
        title = _plain(rule.title)
        if rule.feeds and not rule.alerts and not rule.suppressed:
            # Its events appear only inside the correlation's findings, so a count of 0 would mislead.
            title.append(f"\n  events counted by {', '.join(rule.feeds)}", style="dim")
        cells: list[Text | str] = [
            title,
            _plain(rule.level, _LEVEL_STYLES.get(rule.level)),
            "-" if rule.feeds and not rule.alerts else str(rule.alerts),
        ]
        if any_suppressed:
            cells.append(str(rule.suppressed))
        table.add_row(*cells)
    console.print(table)


def render_warnings(console: Console, result: HuntResult | HuntReport, rejects_written: bool = False) -> None:
    """Print file errors, rule problems, coverage gaps and visibility notes, each on one line."""
    report = _report(result) if isinstance(result, HuntReport) else build_report(result, rejects_written)
    for message in report.messages:
        text = Text(f"{message.kind}: ", style=_MESSAGE_STYLES[message.kind])
        text.append(safe_text(message.text))
        console.print(text, soft_wrap=True)


def render_verdict(console: Console, result: HuntResult | HuntReport) -> None:
    """Print one closing line: the number of findings that are alerts, or why there are none.

    Findings suppressed by filters are counted after the alerts, never in their number.
    """
    report = _report(result)
    hunt_result = report.result
    events = report.scanned_text
    caveats = []
    if hunt_result.failed_files:
        caveats.append(f"{count_noun(len(hunt_result.failed_files), 'input')} could not be read")
    if hunt_result.rule_problems:
        caveats.append(f"{count_noun(len(hunt_result.rule_problems), 'requested rule')} could not run")
    caveat = f" ({' and '.join(caveats)}; see the errors above)" if caveats else ""
    suppressed = f"; {len(report.suppressed)} more suppressed by filters" if report.suppressed else ""

    if report.alerts:
        console.print(Text(f"{count_noun(len(report.alerts), 'finding')} in {events}{caveat}{suppressed}.", style="bold red"))
        return

    if not report.events_parsed and not report.lines_prefiltered:
        reason = "no event could be read" if hunt_result.failed_files else "the inputs contain no events"
        console.print(Text(f"No findings: {reason}{caveat}.", style="bold yellow"))
        return

    if hunt_result.blind:
        console.print(
            Text(
                f"No findings, but no file carries the fields the rules need ({events}): "
                f"the data could not have shown a hit{caveat}.",
                style="bold yellow",
            )
        )
        return

    suppressed = f"; {count_noun(len(report.suppressed), 'finding')} suppressed by filters" if report.suppressed else ""
    message = f"No findings in {events}{caveat}{suppressed}."
    blind_files = {gap.path for gap in hunt_result.coverage if gap.blind}
    if blind_files:
        message += f" {count_noun(len(blind_files), 'file')} could not show some rules' hits; see the warnings above."
    style = "bold yellow" if caveats else "bold green"
    console.print(Text(message, style=style))
