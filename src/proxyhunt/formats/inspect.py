"""Inspect log files without hunting: format, compression and where every line went.

>>> from proxyhunt.formats.inspect import inspect_paths
>>> result = inspect_paths(["samples/"])   # doctest: +SKIP
>>> [(file.path, file.format, file.parsed) for file in result.files]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from proxyhunt.formats.loader import FileReport, Loader, ProgressCallback, custom_formats, expand_paths
from proxyhunt.schema import PROVENANCE_COLUMNS

# Columns that every parsed file fills, so they tell nothing about its content.
_ALWAYS_FILLED = PROVENANCE_COLUMNS | {"EventProduct", "EventVendor"}


@dataclass
class FileInspection:
    """The outcome of reading one file: its format, its line accounting and the WebSession columns it fills."""

    path: str
    format: str | None
    format_title: str | None
    confidence: float
    # The next best format by detection, with its confidence; None when --format forced the format.
    runner_up: tuple[str, float] | None
    compression: str | None
    lines_read: int
    parsed: int
    rejected: int
    # Header, comment and blank lines, and continuation lines of multi-line CSV records.
    header_lines: int
    invalid_utf8_lines: int
    invalid_values: dict[str, int]
    ignored_text_lines: int
    first_seen: datetime | None
    last_seen: datetime | None
    columns: list[str]
    error: str | None
    suspect_lines: tuple[int, int] | None = None
    # The first rejected lines, as (line number, reason).
    first_rejects: list[tuple[int, str]] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """True when parsed + rejected + header lines is the number of lines read."""
        return self.parsed + self.rejected + self.header_lines == self.lines_read

    @classmethod
    def from_report(cls, report: FileReport, first_rejects: list[tuple[int, str]]) -> FileInspection:
        """Return the inspection of a file that Loader.load reported on."""
        runner_up = report.candidates[1] if len(report.candidates) > 1 else None
        return cls(
            path=report.path,
            format=report.format,
            format_title=report.format_title,
            confidence=report.confidence,
            runner_up=runner_up,
            compression=report.compression,
            lines_read=report.lines_read,
            parsed=report.parsed,
            rejected=report.rejected,
            header_lines=report.skipped,
            invalid_utf8_lines=report.invalid_utf8_lines,
            invalid_values=dict(report.invalid_values),
            ignored_text_lines=report.ignored_text_lines,
            first_seen=report.first_seen,
            last_seen=report.last_seen,
            columns=[column for column in report.columns if column not in _ALWAYS_FILLED],
            error=report.error,
            suspect_lines=report.suspect_lines,
            first_rejects=first_rejects,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the inspection as JSON-compatible values; times are ISO 8601 in UTC with a Z suffix."""
        return {
            "path": self.path,
            "format": self.format,
            "format_title": self.format_title,
            "confidence": round(self.confidence, 4),
            "runner_up": {"format": self.runner_up[0], "confidence": round(self.runner_up[1], 4)} if self.runner_up else None,
            "compression": self.compression,
            "lines_read": self.lines_read,
            "parsed": self.parsed,
            "rejected": self.rejected,
            "header_lines": self.header_lines,
            "invalid_utf8_lines": self.invalid_utf8_lines,
            "invalid_values": self.invalid_values,
            "ignored_text_lines": self.ignored_text_lines,
            "first_event": _utc_text(self.first_seen),
            "last_event": _utc_text(self.last_seen),
            "columns": self.columns,
            "error": self.error,
            "suspect_lines": list(self.suspect_lines) if self.suspect_lines else None,
            "first_rejects": [{"line": line, "reason": reason} for line, reason in self.first_rejects],
        }


def _utc_text(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


@dataclass
class InspectResult:
    """The inspection of every file that the paths name, and remarks about the format descriptions."""

    files: list[FileInspection]
    notes: list[str] = field(default_factory=list)

    @property
    def failed_files(self) -> list[FileInspection]:
        """Files with a file-level error: not found, format not recognized, damaged data."""
        return [file for file in self.files if file.error]


# Rejected lines listed per file in an inspection; --rejects writes them all.
REJECTS_SHOWN = 3


def inspect_paths(
    paths: list[str],
    format_name: str | None = None,
    squid_logformat: str | None = None,
    map_path: str | None = None,
    progress: ProgressCallback | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> InspectResult:
    """Read the logs at ``paths`` into ``connection`` and return what each file contains.

    The options mean what they mean for ``hunt``. Problems with single files
    are reported in the result. A ``squid_logformat`` or ``map_path`` that
    cannot be read raises LogformatError or MappingError, because no file
    could be read as the user meant. The rejected lines stay in the
    connection's ``rejects`` table, for ``write_rejects``.
    """
    connection = connection or duckdb.connect()
    extra_formats = custom_formats(squid_logformat, map_path)
    notes = [note for fmt in extra_formats for note in getattr(fmt, "notes", [])]

    loader = Loader(connection, extra_formats)
    files, missing = expand_paths(paths)
    inspections = [FileInspection.from_report(report, []) for report in missing]
    try:
        for path in files:
            report = loader.load(path, format_name=format_name, progress=progress)
            first_rejects = [(line, reason) for line, reason, _ in loader.rejects(path, REJECTS_SHOWN)]
            inspections.append(FileInspection.from_report(report, first_rejects))
    finally:
        loader.close()
    return InspectResult(inspections, notes)
