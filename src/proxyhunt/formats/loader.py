"""Load log files into the WebSession table of a DuckDB connection, accounting for every line.

Each line of a file ends up in exactly one of three counts: parsed (a row in
``websession``), rejected (a row in ``rejects`` with the reason) or skipped
(blank lines, headers, comments and the continuation lines of multi-line CSV
records). A value that is present but invalid, such as an unparseable time,
leaves its column NULL and is counted per column. The line itself is kept.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

import duckdb

from proxyhunt.formats import all_formats, format_names, get_format
from proxyhunt.formats.base import LineFormat
from proxyhunt.formats.detect import MIN_CONFIDENCE, score_formats
from proxyhunt.formats.paths import find_files
from proxyhunt.formats.own_reports import own_report_kind
from proxyhunt.formats.prefilter import LinePrefilter
from proxyhunt.formats.source import (
    READ_SIZE,
    SAMPLE_MAX_LINE_BYTES,
    UNIT_NAMES,
    CutOffLine,
    InputError,
    LineReader,
    open_file,
    read_head,
    read_sample,
)
from proxyhunt.formats.sql import create_macros, quote_identifier, quote_literal
from proxyhunt.formats.url_parts import url_column_sql, url_parts_sql
from proxyhunt.schema import COLUMN_NAMES, COLUMN_TYPES, create_table_sql

log = logging.getLogger(__name__)

TABLE = "websession"
# Optional stage column: text of a parsed line that the format does not map to any column.
IGNORED_TEXT_COLUMN = "_ignored_text"
REJECTS_TABLE = "rejects"
# Stage column with the parts of Url that url_parts_sql splits off.
URL_PARTS_COLUMN = "_url_parts"
# Rejected lines are stored up to this many characters; the count is always exact.
REJECT_TEXT_LIMIT = 4096
# A prefiltered file still parses this many lines from its start, so that the
# columns it fills and its share of CONNECT tunnels are known from a sample.
PREFILTER_SAMPLE_LINES = 1000
# Lines at the start of a damaged file's sample that detection falls back on.
DAMAGED_SAMPLE_LINES = 20
# POSIX tar headers carry "ustar" at this byte offset of each 512-byte header block.
TAR_MAGIC_OFFSET = 257


@dataclass
class FileReport:
    """Outcome of loading one input file: its format and where each of its lines went."""

    path: str
    format: str | None = None
    format_title: str | None = None
    confidence: float = 0.0
    compression: str | None = None
    lines_read: int = 0
    parsed: int = 0
    rejected: int = 0
    skipped: int = 0
    # Lines that contain none of the rules' literals, left unparsed by the prefilter of a hunt.
    prefiltered: int = 0
    invalid_utf8_lines: int = 0
    invalid_values: dict[str, int] = field(default_factory=dict)
    # Parsed lines with text after the format's last field; the text is kept in RawEvent only.
    ignored_text_lines: int = 0
    columns: list[str] = field(default_factory=list)
    # Every format tried by detection with its confidence, best first; empty when --format forced one.
    candidates: list[tuple[str, float]] = field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    error: str | None = None
    # First and last line, both included, decoded from a compressed member,
    # stream or frame that turned out corrupt: kept, but possibly garbled.
    suspect_lines: tuple[int, int] | None = None
    # The kind of proxyhunt report the file is, such as "HTML report", when the hunt skipped it as one.
    own_report: str | None = None
    # The dataset that contains this log unchanged, when the hunt read its events from there instead.
    held_by: str | None = None
    # The dataset that contains an older, shorter copy of this log, which the hunt left out.
    grown_from: str | None = None
    # What the hunt must report about the file besides its counts, one warning each.
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file was read to its end without a file-level error."""
        return self.error is None


ProgressCallback = Callable[[int], None]


def expand_paths(paths: Iterable[str]) -> tuple[list[str], list[FileReport]]:
    """Expand files, directories and glob patterns into a list of files.

    See ``proxyhunt.formats.paths.find_files`` for the rules. Returns the
    files and a report for each argument that yields no file and for each
    directory or file that could not be listed or found.
    """
    files, problems = find_files(paths)
    return files, [FileReport(path, error=message) for path, message in problems]


def custom_formats(squid_logformat: str | None = None, map_path: str | None = None) -> list[LineFormat]:
    """Return the formats that the user describes: a Squid ``logformat`` line and a ``--map`` file.

    Raises LogformatError or MappingError, whose messages name the problem and
    the fix, when a description cannot be read.
    """
    from proxyhunt.formats.mapped import MappedFormat
    from proxyhunt.formats.squid_logformat import SquidLogformat

    formats: list[LineFormat] = []
    if squid_logformat:
        formats.append(SquidLogformat(squid_logformat))
    if map_path:
        formats.append(MappedFormat.from_file(map_path))
    return formats


# Formats that exist only when the user describes them, with the option that does.
CUSTOM_FORMAT_OPTIONS = {"squid-logformat": "--squid-logformat", "mapped": "--map"}


def forcible_format_names() -> list[str]:
    """Return the names that ``--format`` accepts: the built-in formats and the described ones."""
    return [*format_names(), *CUSTOM_FORMAT_OPTIONS]


class Loader:
    """Reads log files into the ``websession`` and ``rejects`` tables of one connection.

    ``extra_formats``, such as those of ``custom_formats``, are tried before
    the built-in formats, so that they win a tie in detection.

    ``prefilter_clauses`` maps a format's ``prefilter_columns`` to what a
    line worth parsing contains, or to None when the rules prove nothing: for
    each rule, sets of literals of which its events hold one of every set,
    the most selective set first (see
    ``proxyhunt.engines.prefilter.rule_clauses``). With it, a format that
    supports prefiltering parses only such lines, plus its first
    PREFILTER_SAMPLE_LINES lines so that the columns a file fills are still
    known. The skipped lines are counted in ``FileReport.prefiltered``.
    """

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        extra_formats: Sequence[LineFormat] = (),
        prefilter_clauses: Callable[[frozenset[str]], Sequence[Sequence[Iterable[str]]] | None] | None = None,
    ) -> None:
        self.connection = connection
        self.extra_formats = list(extra_formats)
        self.prefilter_clauses = prefilter_clauses
        self._line_filters: dict[tuple, LinePrefilter | None] = {}
        create_macros(connection)
        connection.execute(create_table_sql(TABLE))
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {REJECTS_TABLE} "
            "(SourceFile VARCHAR, SourceLine BIGINT, Reason VARCHAR, RawEvent VARCHAR)"
        )
        self._spooled: list[str] = []

    def close(self) -> None:
        """Remove temporary copies of input that are left; load removes its own when it returns or raises."""
        for path in self._spooled:
            _remove_quietly(path)
        self._spooled.clear()

    def load(self, path: str, format_name: str | None = None, progress: ProgressCallback | None = None) -> FileReport:
        """Load one file and return its report.

        Problems are recorded in the report and never raised. The exception is
        an interrupt (Ctrl-C), which raises KeyboardInterrupt so that the
        command stops, also when DuckDB reported it as its own error.
        Standard input (``-``) and other files that can be read only once,
        such as pipes, are first copied to a temporary file, which is removed
        before this returns or raises.
        """
        report = FileReport(path)
        read_path = path
        try:
            if _must_spool(path):
                read_path = self._spool(path)
            fmt = self._choose_format(read_path, format_name, report)
            if fmt is not None:
                self._ingest(read_path, fmt, report, progress)
        except InputError as error:
            report.error = str(error).removeprefix(f"{path}: ").removeprefix(f"{read_path}: ")
        except UnicodeError as error:
            report.error = f"cannot be decoded ({error})"
        except Exception as error:  # noqa: BLE001 - one file's failure must not stop the other files
            _raise_if_interrupt(error)
            report.error = _internal_error_message(path, error)
        finally:
            if read_path != path:
                _remove_quietly(read_path)
                self._spooled.remove(read_path)

        if report.error:
            log.warning("%s: %s", path, report.error)
        if report.parsed:
            try:
                self._describe_columns(report)
            except Exception as error:
                _raise_if_interrupt(error)
                raise
        return report

    def _spool(self, path: str) -> str:
        """Copy standard input or a pipe to a temporary file and return its path; remove the copy if copying fails."""
        handle = tempfile.NamedTemporaryFile(prefix="proxyhunt-spool-", delete=False)
        self._spooled.append(handle.name)
        try:
            with handle:
                source = sys.stdin.buffer if path == "-" else open_file(path)
                try:
                    _copy(source, handle, path)
                finally:
                    if source is not sys.stdin.buffer:
                        source.close()
        except BaseException:
            _remove_quietly(handle.name)
            self._spooled.remove(handle.name)
            raise
        return handle.name

    def _candidates(self) -> list[LineFormat]:
        return [*self.extra_formats, *all_formats()]

    def _forced_format(self, format_name: str) -> LineFormat:
        """Return the format named by --format; raise KeyError with the message when there is none."""
        for fmt in self.extra_formats:
            if fmt.name == format_name:
                return fmt
        if format_name in CUSTOM_FORMAT_OPTIONS:
            option = CUSTOM_FORMAT_OPTIONS[format_name]
            raise KeyError(f"--format {format_name} needs {option}, which describes the format; add {option}")
        return get_format(format_name)

    def _choose_format(self, path: str, format_name: str | None, report: FileReport) -> LineFormat | None:
        archive = _archive_kind(path)
        if archive:
            # Read as text, the members of an archive would be rejected line by line, or one
            # member's format would be forced on the others, with or without --format.
            report.error = f"is a {archive} archive; extract it and pass the extracted log files or their directory"
            return None
        if format_name:
            try:
                fmt = self._forced_format(format_name)
            except KeyError as error:
                report.error = str(error.args[0])
                return None
            report.format, report.format_title, report.confidence = fmt.name, fmt.title, 1.0
            return fmt

        sample = read_sample(path)
        report.compression = sample.reader.compression
        if not sample.lines and sample.complete:
            # The file has no line or only blank lines, so there is nothing to
            # detect and every line is skipped.
            self._account_blank_file(sample.reader, report)
            return None

        own_report = own_report_kind(sample.lines)
        if own_report:
            # A report written into a hunted directory must not be hunted again on the next run.
            report.own_report = own_report
            log.info("%s: skipped, because it is a proxyhunt %s, not a proxy log", report.path, own_report)
            return None

        long_line = sample.reader.long_line
        limit = f"the detection limit of {SAMPLE_MAX_LINE_BYTES // (1024 * 1024)} MiB"
        if not sample.lines and long_line is not None:
            report.error = (
                f"the first line (line {long_line}) is longer than {limit}, so the format cannot be detected; "
                f"pass --format with one of: {', '.join(format_names())}"
            )
            return None

        scores = score_formats(sample.lines, self._candidates(), path=report.path)
        report.candidates = [(candidate.name, score) for candidate, score in scores]
        fmt, confidence = scores[0]
        described = [(candidate, score) for candidate, score in scores if candidate in self.extra_formats]
        if described and described[0][1] >= MIN_CONFIDENCE:
            # A format the user described (--squid-logformat, --map) is what they mean whenever it fits at
            # all: a few odd lines must not hand the file to a built-in format that reads fewer columns.
            fmt, confidence = described[0]
        if confidence < MIN_CONFIDENCE and sample.reader.error:
            # A corrupt archive member decodes to garbled text until the decompressor
            # notices, so the sample mixes good and garbled lines. Its first lines,
            # decoded before the damage, still tell the format.
            head = score_formats(sample.lines[:DAMAGED_SAMPLE_LINES], self._candidates(), path=report.path)
            if head[0][1] >= MIN_CONFIDENCE:
                fmt, confidence = head[0]
                log.warning(
                    "%s: detected as %s from its first %d lines, because the data is damaged (%s)",
                    report.path, fmt.name, min(len(sample.lines), DAMAGED_SAMPLE_LINES), sample.reader.error,
                )
        if confidence < MIN_CONFIDENCE:
            tried = ", ".join(f"{candidate.name} ({score:.0%})" for candidate, score in scores)
            sampled = ""
            if long_line is not None:
                sampled = f"; only the lines before line {long_line} were tried, because it is longer than {limit}"
            if sample.reader.error:
                sampled += (
                    f"; the {sample.reader.compression or 'file'} data is damaged near its start "
                    f"({sample.reader.error}), which can explain it"
                )
            report.error = (
                f"format not recognized (tried {tried}){sampled}; "
                f"pass --format with one of: {', '.join(format_names())}, "
                "or describe the format with --squid-logformat LINE or --map FILE.yaml"
            )
            return None
        report.format, report.format_title, report.confidence = fmt.name, fmt.title, confidence
        return fmt

    def _ingest(self, path: str, fmt: LineFormat, report: FileReport, progress: ProgressCallback | None) -> None:
        fmt.prepare(self.connection)
        parser = fmt.parser()
        reader = LineReader(path, line_filter=self._line_filter(fmt))
        reported_bytes = 0

        for batch in reader:
            report.compression = reader.compression
            for segment, select_sql in parser.segments(batch.table(), self.connection):
                self._ingest_segment(segment, select_sql, fmt, parser, report)
            if progress is not None:
                progress(reader.raw_bytes_read - reported_bytes)
                reported_bytes = reader.raw_bytes_read
        for segment, select_sql in parser.finish(self.connection):
            self._ingest_segment(segment, select_sql, fmt, parser, report)

        inner = getattr(parser, "inner_name", None)
        if inner:
            report.format = f"{fmt.name}+{inner}"
            inner_format = getattr(parser, "inner_format", None)
            report.format_title = f"{fmt.title}, RawData in {inner_format.title if inner_format else inner}"
        # An assumption the parser had to make, such as the field order of a CSV without a header row.
        note = getattr(parser, "note", None)
        if note:
            log.warning("%s: %s", report.path, note)
        if reader.cut_off_line is not None:
            self._reject_cut_off_line(reader.cut_off_line, reader.compression, report)
        report.compression = reader.compression
        report.lines_read = reader.lines_read
        report.skipped = parser.skipped_lines
        report.prefiltered = reader.filtered_lines
        report.invalid_utf8_lines = reader.invalid_utf8_lines
        report.suspect_lines = reader.suspect_lines
        if reader.error:
            report.error = _damage_message(reader)
        elif parser.error:
            report.error = parser.error
        elif report.rejected and not report.parsed:
            report.error = (
                f"no line could be read as {report.format_title}; check the file, or force another format "
                f"with --format (one of: {', '.join(format_names())})"
            )

        unaccounted = report.lines_read - report.parsed - report.rejected - report.skipped - report.prefiltered
        if unaccounted:
            # A format parser that loses lines is a defect in proxyhunt. Report it
            # instead of silently listing fewer events than the file contains.
            problem = (
                f"internal error: the {fmt.name} parser neither parsed, rejected nor skipped {_lines(unaccounted)}; "
                "please report it with the file's first lines"
            )
            report.error = f"{report.error}; {problem}" if report.error else problem

    def _line_filter(self, fmt: LineFormat) -> LinePrefilter | None:
        if self.prefilter_clauses is None or not fmt.prefilter_columns:
            return None

        # Building compiles many expressions, which would dominate a hunt over thousands of small files.
        key = (fmt.name, fmt.prefilter_columns, repr(tuple(fmt.prefilter_escapes)), tuple(fmt.prefilter_headers))
        if key not in self._line_filters:
            clauses = self.prefilter_clauses(fmt.prefilter_columns)
            self._line_filters[key] = (
                LinePrefilter.from_clauses(
                    clauses, fmt.prefilter_escapes, fmt.prefilter_headers, keep_through_line=PREFILTER_SAMPLE_LINES
                )
                if clauses
                else None
            )
        return self._line_filters[key]

    def _ingest_segment(self, segment, select_sql: str, fmt: LineFormat, parser, report: FileReport) -> None:
        connection = self.connection
        connection.register("lines", segment)
        try:
            connection.execute(f"CREATE OR REPLACE TEMP TABLE ph_stage AS {select_sql}")
        finally:
            connection.unregister("lines")

        stage_columns = [row[0] for row in connection.sql("DESCRIBE ph_stage").fetchall()]
        inner_format = getattr(parser, "inner_format", None) or fmt
        if inner_format.escape_function:
            for column in inner_format.escaped_columns:
                if column in stage_columns:
                    quoted = quote_identifier(column)
                    connection.execute(
                        f"UPDATE ph_stage SET {quoted} = {inner_format.escape_function}({quoted}) "
                        f"WHERE contains({quoted}, '\\')"
                    )
        select_list = _finalize_select(stage_columns, inner_format)
        stage = "ph_stage"
        if "Url" in stage_columns:
            # The URL is split once here, and _finalize_select reads its parts.
            stage = f"(SELECT *, {url_parts_sql()} AS {URL_PARTS_COLUMN} FROM ph_stage)"
        connection.execute(
            f"INSERT INTO {TABLE} BY NAME SELECT {select_list} FROM {stage} WHERE _reject IS NULL",
            [report.path],
        )
        connection.execute(
            f"INSERT INTO {REJECTS_TABLE} SELECT ?, SourceLine, _reject, left(RawEvent, {REJECT_TEXT_LIMIT}) "
            "FROM ph_stage WHERE _reject IS NOT NULL",
            [report.path],
        )

        typed = [name.removeprefix("_raw_") for name in stage_columns if name.startswith("_raw_")]
        counts = [
            "count(*) FILTER (WHERE _reject IS NULL)",
            "count(*) FILTER (WHERE _reject IS NOT NULL)",
        ]
        counts += [
            f"count(*) FILTER (WHERE _reject IS NULL AND {quote_identifier('_raw_' + column)} IS NOT NULL "
            f"AND {quote_identifier(column)} IS NULL)"
            for column in typed
        ]
        has_ignored_text = IGNORED_TEXT_COLUMN in stage_columns
        if has_ignored_text:
            counts.append(f"count(*) FILTER (WHERE _reject IS NULL AND {IGNORED_TEXT_COLUMN} IS NOT NULL)")
        row = connection.execute(f"SELECT {', '.join(counts)} FROM ph_stage").fetchall()[0]
        report.parsed += row[0]
        report.rejected += row[1]
        for column, invalid in zip(typed, row[2 : 2 + len(typed)]):
            if invalid:
                report.invalid_values[column] = report.invalid_values.get(column, 0) + invalid
        if has_ignored_text:
            report.ignored_text_lines += row[-1]
        connection.execute("DROP TABLE ph_stage")

    def _account_blank_file(self, reader: LineReader, report: FileReport) -> None:
        if reader.cut_off_line is not None:
            self._reject_cut_off_line(reader.cut_off_line, reader.compression, report)
        report.lines_read = reader.lines_read
        report.skipped = reader.lines_read - report.rejected
        report.invalid_utf8_lines = reader.invalid_utf8_lines
        report.suspect_lines = reader.suspect_lines
        if reader.error:
            report.error = _damage_message(reader)

    def _reject_cut_off_line(self, line: CutOffLine, compression: str | None, report: FileReport) -> None:
        damage = f"the {compression} data is damaged" if compression else "reading the file failed"
        self.connection.execute(
            f"INSERT INTO {REJECTS_TABLE} VALUES (?, ?, ?, left(?, {REJECT_TEXT_LIMIT}))",
            [report.path, line.number, f"incomplete line: {damage} in the middle of it", line.text],
        )
        report.rejected += 1

    def _describe_columns(self, report: FileReport) -> None:
        counts = ", ".join(f"count({quote_identifier(column)})" for column in COLUMN_NAMES)
        row = self.connection.execute(
            f"SELECT {counts}, min(TimeGenerated), max(TimeGenerated) FROM {TABLE} WHERE SourceFile = ?",
            [report.path],
        ).fetchall()[0]
        report.columns = [column for column, count in zip(COLUMN_NAMES, row) if count]
        report.first_seen, report.last_seen = row[-2], row[-1]

    def rejects(self, path: str, limit: int = 5) -> list[tuple[int, str, str]]:
        """Return the first rejected lines of a file as (line, reason, text)."""
        return self.connection.execute(
            f"SELECT SourceLine, Reason, RawEvent FROM {REJECTS_TABLE} WHERE SourceFile = ? ORDER BY SourceLine LIMIT ?",
            [path, limit],
        ).fetchall()


def _damage_message(reader: LineReader) -> str:
    """Return the file-level error for damaged data or ignored trailing data, saying which lines were read."""
    if not reader.damaged:
        return f"{reader.error}; read the {_lines(reader.lines_read)} before them and ignored the rest"
    if reader.suspect_lines is not None:
        return _corrupt_unit_message(reader, *reader.suspect_lines)
    complete = reader.lines_read - (1 if reader.cut_off_line else 0)
    if complete:
        message = f"{reader.error}; kept the {_lines(complete, 'complete ')} before the damage"
    else:
        message = f"{reader.error}; no complete line came before the damage"
    if reader.cut_off_line is not None:
        message += f" and rejected the incomplete line {reader.cut_off_line.number} after them"
    return message + "; copy or export the file again to read the rest"


def _corrupt_unit_message(reader: LineReader, first: int, last: int) -> str:
    """Return the error for a compressed unit that a decompressor rejected after lines ``first`` to ``last`` came from it."""
    unit = f"{reader.compression} {UNIT_NAMES.get(reader.compression or '', 'stream')}"
    cut_off = reader.cut_off_line.number if reader.cut_off_line is not None else None
    last_complete = last - 1 if cut_off is not None else last
    if first <= last_complete:
        plural = first < last_complete
        kept = f"lines {first} to {last_complete}" if plural else f"line {first}"
        message = (
            f"{reader.error}; kept {kept}, but {'they' if plural else 'it'} came from the damaged {unit} "
            "and may be garbled, because the damage can lie anywhere in it"
        )
        if cut_off is not None:
            message += f"; rejected the incomplete line {cut_off} after {'them' if plural else 'it'}"
    else:
        message = f"{reader.error}; rejected the incomplete line {cut_off}, which came from the damaged {unit}"
    return message + "; copy or export the file again to read it undamaged"


def _archive_kind(path: str) -> str | None:
    """Return "tar" or "zip" when the file, once decompressed, is such an archive, else None."""
    try:
        head = read_head(path, TAR_MAGIC_OFFSET + 8)
    except InputError:
        return None
    if head[TAR_MAGIC_OFFSET:].startswith(b"ustar"):
        return "tar"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    return None


def _lines(count: int, adjective: str = "") -> str:
    """Return "1 line" or "N lines", with an optional adjective before the noun."""
    return f"{count} {adjective}line" if count == 1 else f"{count} {adjective}lines"


def _must_spool(path: str) -> bool:
    """Return whether a path can be read only once, so it must be copied before detection reads its start.

    That is standard input (``-``), pipes (also as /dev/stdin or
    /proc/self/fd/N), character devices and sockets. Regular files, block
    devices and directories can be read again. A path that cannot be examined
    is not copied, so that opening it reports the error.
    """
    if path == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISBLK(mode))


def _copy(source: BinaryIO, target: BinaryIO, path: str) -> None:
    """Copy ``source`` to the temporary file ``target``; raise InputError naming the side that failed."""
    while True:
        try:
            data = source.read(READ_SIZE)
        except OSError as error:
            raise InputError(f"{path}: reading failed ({error.strerror or error})") from None
        if not data:
            return
        try:
            target.write(data)
        except OSError as error:
            raise InputError(
                f"{path}: cannot copy the input to a temporary file in {tempfile.gettempdir()} "
                f"({error.strerror or error}); free space there or set TMPDIR to a directory with room"
            ) from None


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _raise_if_interrupt(error: Exception) -> None:
    """Raise KeyboardInterrupt from ``error`` if it is DuckDB's report of an interrupted query.

    DuckDB raises InterruptException when Connection.interrupt() stops a
    query. DuckDB 2.0.1 raises RuntimeError("Query interrupted") when Ctrl-C
    (SIGINT) arrives while it runs a query, and the KeyboardInterrupt is lost.
    """
    interrupted = isinstance(error, duckdb.InterruptException) or (
        type(error) is RuntimeError and str(error) == "Query interrupted"
    )
    if interrupted:
        raise KeyboardInterrupt from error


def _internal_error_message(path: str, error: Exception) -> str:
    if isinstance(error, duckdb.OutOfMemoryException):
        # Very long lines need more memory than the limit allows; the file is fine.
        first_line = str(error).splitlines()[0]
        return f"out of memory while parsing ({first_line}); raise --memory-limit, such as 2GB, and read the file again"
    if isinstance(error, duckdb.Error):
        # A parse statement that fails is a defect in proxyhunt, not in the log,
        # so the other files are still read and the message names this one.
        return f"internal error while parsing ({error}); please report it with the file's first lines"
    log.debug("loading %s failed", path, exc_info=True)
    return (
        f"internal error while reading ({type(error).__name__}: {error}); "
        "please report it with the file's first lines"
    )


def _finalize_select(stage_columns: list[str], fmt: LineFormat) -> str:
    """Return the select list that turns a stage table into complete WebSession rows.

    Columns that the format did not fill are derived where the WebSession
    schema defines them (UrlPath, UrlQuery and UrlExtension from Url, the
    destination host and port from an absolute URL or CONNECT target) and NULL
    otherwise.
    """
    present = set(stage_columns)

    derived: dict[str, str] = {
        "SourceFile": "?",
        "EventProduct": quote_literal(fmt.product) if fmt.product is not None else "NULL",
        "EventVendor": quote_literal(fmt.vendor) if fmt.vendor is not None else "NULL",
    }
    if "Url" in present:
        path_expr = "UrlPath" if "UrlPath" in present else url_column_sql("UrlPath", URL_PARTS_COLUMN)
        derived["UrlPath"] = path_expr
        derived["UrlQuery"] = url_column_sql("UrlQuery", URL_PARTS_COLUMN)
        derived["UrlExtension"] = f"ph_url_extension({path_expr})"
        derived["DstHostname"] = url_column_sql("DstHostname", URL_PARTS_COLUMN)
        derived["DstPortNumber"] = url_column_sql("DstPortNumber", URL_PARTS_COLUMN)
    elif "UrlPath" in present:
        derived["UrlExtension"] = "ph_url_extension(UrlPath)"

    items = []
    for column in COLUMN_NAMES:
        quoted = quote_identifier(column)
        sql_type = COLUMN_TYPES[column]
        if column in present and column in derived and column not in ("SourceFile",):
            expression = f"coalesce({quoted}, {derived[column]})"
        elif column in present:
            expression = quoted
        elif column in derived:
            expression = derived[column]
        else:
            expression = "NULL"
        items.append(f"CAST({expression} AS {sql_type}) AS {quoted}")
    return ", ".join(items)
