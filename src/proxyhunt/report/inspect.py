"""Render the result of ``proxyhunt inspect`` in the terminal with rich, or as JSON.

File names, formats of RawData values and reject reasons can carry text from
the logs, so every value goes through ``safe_text`` and is printed as plain
text, never as rich markup.
"""

from __future__ import annotations

import json
from typing import IO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from proxyhunt.formats.inspect import FileInspection, InspectResult
from proxyhunt.report.text import count_noun, format_time, safe_text


def _format_cell(file: FileInspection) -> str:
    if file.format is None:
        return "-"
    if file.runner_up is None:
        return f"{file.format} (forced)"
    name, score = file.runner_up
    return f"{file.format} {file.confidence:.0%} (next: {name} {score:.0%})"


def _lines_cell(file: FileInspection) -> Text:
    """Return 'read = parsed + rejected + headers', in red when the counts do not add up."""
    text = Text()
    text.append(f"{file.lines_read} = {file.parsed} parsed + ")
    text.append(f"{file.rejected} rejected", style="red" if file.rejected else "")
    text.append(f" + {file.header_lines} header")
    if not file.balanced:
        text.append("  (counts do not add up)", style="bold red")
    return text


def _file_table(file: FileInspection) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("Property", style="bold", no_wrap=True)
    table.add_column("Value", overflow="fold")

    table.add_row("Format", Text(safe_text(_format_cell(file))))
    if file.format_title:
        table.add_row("", Text(safe_text(file.format_title), style="dim"))
    table.add_row("Compression", file.compression or "none")
    table.add_row("Lines", _lines_cell(file))
    if file.first_seen:
        table.add_row("Time range (UTC)", f"{format_time(file.first_seen)} to {format_time(file.last_seen)}")
    table.add_row("Columns", Text(", ".join(file.columns) or "none"))

    remarks = []
    if file.invalid_utf8_lines:
        remarks.append(f"{count_noun(file.invalid_utf8_lines, 'line')} with invalid UTF-8, kept with U+FFFD")
    for column, count in sorted(file.invalid_values.items()):
        remarks.append(f"{count_noun(count, 'invalid value')} in {column}, stored as NULL")
    if file.ignored_text_lines:
        remarks.append(f"{count_noun(file.ignored_text_lines, 'line')} with text after the last field, kept in RawEvent")
    if file.suspect_lines:
        first, last = file.suspect_lines
        remarks.append(f"lines {first} to {last} came from damaged compressed data and may be garbled")
    for remark in remarks:
        table.add_row("Note", Text(remark, style="yellow"))
    for line, reason in file.first_rejects:
        table.add_row("Rejected", Text(safe_text(f"line {line}: {reason}")))
    if file.rejected > len(file.first_rejects):
        table.add_row("", Text(f"… {file.rejected - len(file.first_rejects)} more; write them all with --rejects FILE", style="dim"))
    if file.error:
        table.add_row("Error", Text(safe_text(file.error), style="red"))
    return table


def render_inspection(console: Console, result: InspectResult) -> None:
    """Print one block per file: format and runner-up, compression, line accounting, time range and columns."""
    for note in result.notes:
        console.print(Text(safe_text(f"note: {note}"), style="yellow"))
    for file in result.files:
        console.print(Text(safe_text(file.path), style="bold"))
        console.print(_file_table(file))
        console.print()

    totals = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Total", title_justify="left")
    for heading in ("Files", "Lines", "Parsed", "Rejected", "Header", "Failed files"):
        totals.add_column(heading, justify="right")
    totals.add_row(
        str(len(result.files)),
        str(sum(file.lines_read for file in result.files)),
        str(sum(file.parsed for file in result.files)),
        str(sum(file.rejected for file in result.files)),
        str(sum(file.header_lines for file in result.files)),
        str(len(result.failed_files)),
    )
    console.print(totals)


def write_inspection_json(result: InspectResult, stream: IO[str]) -> None:
    """Write the inspection as one JSON document with ``files`` and ``notes``."""
    document = {"files": [file.to_dict() for file in result.files], "notes": result.notes}
    json.dump(document, stream, ensure_ascii=False, indent=2)
    stream.write("\n")
