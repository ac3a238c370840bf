"""Microsoft Sentinel and Log Analytics JSON exports: a JSON array, as the Log Analytics UI exports, or JSON Lines.

Records of ``imWebSession``, ``ASimWebSessionLogs`` and ``CommonSecurityLog`` map
column by column (see ``websession.column_for_key``). A record of a custom log
or Syslog table carries the original log line in ``RawData``, ``SyslogMessage``
or ``message`` (Corelight). When a batch has fewer than three columns that map,
besides the time, the original lines are parsed in the format that fits each
of them (see ``raw_data``), and keep the record's line number. Without such a
column, each record's own JSON text is parsed that way, so that an array of
Zeek JSON records is read as Zeek.

A Zeek record whose stream (``_path``, or the file named in Corelight's
``log_file``) is not ``http`` is rejected: conn, dns or ssl records are not
web sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from proxyhunt.formats.base import LineFormat, LineParser, json_objects, non_blank
from proxyhunt.formats.json_array import JsonArraySplitter, SplitResult
from proxyhunt.formats.raw_data import RawDataParser
from proxyhunt.formats.sql import query_arrow, quote_literal
from proxyhunt.formats.websession import COMMON_SECURITY_LOG_NAMES, column_for_key, json_select

# Columns that contain the original log line, in the order they are looked for.
RAW_COLUMNS = ("RawData", "SyslogMessage", "message")
# Columns that only a Log Analytics export has.
_SENTINEL_MARKERS = {"tenantid", "_resourceid", "sourcesystem", "timegenerated [utc]", "type", "mg"}
# With this many mapped columns besides the time, a record is read from its
# columns even when it also has a raw line.
_MIN_MAPPED_COLUMNS = 3
_REJECT_SELECT = "SELECT SourceLine, RawEvent, _reject FROM lines"


def _first_non_blank(sample: list[str]) -> str | None:
    lines = non_blank(sample)
    return lines[0].strip() if lines else None


class SentinelJson(LineFormat):
    """A Log Analytics JSON export, as a JSON array or as JSON Lines."""

    name = "sentinel-json"
    title = "Microsoft Sentinel / Log Analytics JSON export (JSON array or JSON Lines)"

    def __init__(self, inner_formats: Callable[[], list[LineFormat]] | None = None) -> None:
        self._inner_formats = inner_formats or (lambda: [])

    def detect(self, sample: list[str]) -> float:
        first = _first_non_blank(sample)
        if first is None:
            return 0.0
        if first.startswith("["):
            text = "".join(non_blank(sample)[:50])
            return 0.9 if "{" in text else 0.0
        records = json_objects(sample)
        if not records:
            return 0.0
        hits = 0
        for record in records:
            if record is None:
                continue
            keys = {key.lower() for key in record}
            has_marker = bool(keys & _SENTINEL_MARKERS) or bool(keys & set(COMMON_SECURITY_LOG_NAMES))
            has_raw = bool({column.lower() for column in RAW_COLUMNS[:2]} & keys)
            if has_marker or has_raw:
                hits += 1
        return 0.9 * hits / len(records)

    def select_sql(self) -> str:
        return json_select([])

    def parser(self) -> LineParser:
        return _SentinelJsonParser(self._inner_formats)


class _SentinelJsonParser(LineParser):
    """Splits the export into records, then reads each batch from its columns or from its raw lines."""

    def __init__(self, inner_formats: Callable[[], list[LineFormat]]) -> None:
        super().__init__(select_sql="")
        self.splitter: JsonArraySplitter | None = None
        self.is_array: bool | None = None
        self.raw_data = RawDataParser(inner_formats)

    @property
    def inner_name(self) -> str | None:
        """The formats of the raw lines, joined by commas, or None when no record was unwrapped."""
        return self.raw_data.inner_name

    def segments(self, table: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        if self.is_array is None:
            first = _first_non_blank(table["RawEvent"].to_pylist())
            if first is None:
                self.skipped_lines += table.num_rows
                return
            self.is_array = first.startswith("[")
            if self.is_array:
                self.splitter = JsonArraySplitter()

        if self.splitter is None:
            yield from self._records(self._drop_blank(table), connection)
            return
        before = self.splitter.skipped_lines
        result = self.splitter.feed(table["SourceLine"].to_pylist(), table["RawEvent"].to_pylist())
        self.skipped_lines += self.splitter.skipped_lines - before
        yield from self._split_result(result, connection)

    def finish(self, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        if self.splitter is not None:
            before = self.splitter.skipped_lines
            result = self.splitter.finish()
            self.skipped_lines += self.splitter.skipped_lines - before
            yield from self._split_result(result, connection)
        before = self.raw_data.skipped_lines
        yield from self.raw_data.finish(connection)
        self.skipped_lines += self.raw_data.skipped_lines - before

    def _split_result(self, result: SplitResult, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        if result.rejected:
            yield result.rejected_table(), _REJECT_SELECT
        if result.records:
            yield from self._records(result.records_table(), connection)

    def _records(self, records: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        if not records.num_rows:
            return
        keys = _distinct_keys(records, connection)
        raw_column = next((column for column in RAW_COLUMNS if column in keys), None)
        mapped = {column_for_key(key) for key in keys} - {None, "TimeGenerated"}
        if len(mapped) >= _MIN_MAPPED_COLUMNS:
            yield records, json_select(sorted(keys))
        elif raw_column is not None:
            yield from self._unwrap(records, raw_column, connection)
        else:
            # An array of records in a JSON line format, such as Zeek's: each element is read as one line.
            before = self.raw_data.skipped_lines
            yield from self.raw_data.parse(records, connection)
            self.skipped_lines += self.raw_data.skipped_lines - before

    def _unwrap(
        self, records: pa.Table, raw_column: str, connection: duckdb.DuckDBPyConnection
    ) -> Iterator[tuple[pa.Table, str]]:
        """Reject records without a usable raw line, and parse the raw lines of the others."""
        path = quote_literal("$." + f'"{raw_column}"')
        connection.register("ph_sentinel_records", records)
        try:
            unwrapped = query_arrow(
                connection,
                f"""
                SELECT SourceLine, RawEvent, inner_line,
                       CASE
                           WHEN NOT coalesce(json_valid(RawEvent), false) THEN 'invalid JSON'
                           WHEN json_type(RawEvent) <> 'OBJECT' THEN 'not a JSON object'
                           WHEN inner_line IS NULL OR trim(inner_line) = ''
                               THEN 'the record has no {raw_column} value'
                           WHEN stream IS NOT NULL AND NOT starts_with(stream, 'http')
                               THEN 'Zeek ' || stream || ' record: only http.log records are web sessions'
                       END AS _reject
                FROM (
                    SELECT *,
                           coalesce(
                               CASE WHEN json_valid(inner_line) THEN json_extract_string(inner_line, '$._path') END,
                               nullif(regexp_extract(log_file, '([A-Za-z0-9]+(?:_[A-Za-z]+)*)(?:_\\d{{8}}[^/]*)?(?:\\.log)?$', 1), '')
                           ) AS stream
                    FROM (
                        SELECT SourceLine, RawEvent,
                               regexp_replace(record ->> {path}, '[\\r\\n]+$', '') AS inner_line,
                               record ->> '$.log_file' AS log_file
                        FROM (
                            SELECT SourceLine, RawEvent,
                                   CASE WHEN json_valid(RawEvent) AND json_type(RawEvent) = 'OBJECT'
                                        THEN RawEvent::JSON END AS record
                            FROM ph_sentinel_records
                        )
                    )
                )
                ORDER BY SourceLine
                """,
            )
        finally:
            connection.unregister("ph_sentinel_records")

        is_rejected = pc.is_valid(unwrapped["_reject"])
        if pc.any(is_rejected).as_py():
            yield unwrapped.filter(is_rejected).select(["SourceLine", "RawEvent", "_reject"]), _REJECT_SELECT
        kept = unwrapped.filter(pc.invert(is_rejected))
        if kept.num_rows:
            inner = pa.table({"SourceLine": kept["SourceLine"], "RawEvent": kept["inner_line"]})
            before = self.raw_data.skipped_lines
            yield from self.raw_data.parse(inner, connection)
            self.skipped_lines += self.raw_data.skipped_lines - before


def _distinct_keys(records: pa.Table, connection: duckdb.DuckDBPyConnection) -> list[str]:
    connection.register("ph_sentinel_keys", records)
    try:
        return [
            row[0]
            for row in connection.sql(
                "SELECT DISTINCT unnest(json_keys(RawEvent)) FROM ph_sentinel_keys "
                "WHERE json_valid(RawEvent) AND json_type(RawEvent) = 'OBJECT'"
            ).fetchall()
        ]
    finally:
        connection.unregister("ph_sentinel_keys")
