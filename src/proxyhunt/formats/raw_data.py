"""Parse the original log lines that a Sentinel table keeps in a column such as ``RawData``.

A custom log table (``SquidProxy_CL``, ``NGINX_CL``, ``Tomcat_CL``) or the
``Syslog`` table may mix lines of several formats, such as access lines and
error lines. Each batch is parsed in rounds: the best format for the lines
still unparsed is chosen from a sample of them, parses what it can, and the
lines it rejects go to the next round. A file in one format takes one round,
so picking the format per record costs nothing there. A line that no format
parses is rejected, naming the format that fits the batch best and why that
format rejected the line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from proxyhunt.formats.base import LineFormat, LineParser
from proxyhunt.formats.sql import query_arrow, quote_identifier, quote_literal

# Rounds per batch; lines still unparsed after them are rejected.
MAX_ROUNDS = 4
SAMPLE_SIZE = 200
NO_FORMAT_REASON = "the original log line is in no known format"


class RawDataParser:
    """Parses batches of original log lines, picking the format per line as described in the module docstring.

    ``parse`` yields stage tables that are already parsed, each with the
    ``SELECT`` that passes them through. ``inner_names`` lists the formats
    used, in the order they were first used.
    """

    def __init__(self, inner_formats: Callable[[], list[LineFormat]]) -> None:
        self._inner_formats = inner_formats
        self._parsers: dict[str, tuple[LineFormat, LineParser]] = {}
        self.inner_names: list[str] = []
        self.skipped_lines = 0

    @property
    def inner_name(self) -> str | None:
        """The formats used, joined by commas (``combined`` or ``combined,squid``), or None before any line parsed."""
        return ",".join(self.inner_names) or None

    def parse(self, lines: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        """Parse ``lines`` (SourceLine, RawEvent) and yield (stage table, SELECT) pairs for the loader."""
        from proxyhunt.formats.detect import score_formats

        remaining = lines
        reason = NO_FORMAT_REASON
        closest: str | None = None
        tried: set[str] = set()
        for _ in range(MAX_ROUNDS):
            if not remaining.num_rows:
                return
            sample = remaining["RawEvent"].slice(0, SAMPLE_SIZE).to_pylist()
            candidates = [fmt for fmt in self._inner_formats() if fmt.name not in tried]
            scores = score_formats(sample, candidates)
            if not scores or scores[0][1] <= 0.0:
                break
            fmt = scores[0][0]
            tried.add(fmt.name)
            accepted, rejected = self._parse_with(fmt, remaining, connection)
            if accepted is not None and accepted.num_rows:
                if fmt.name not in self.inner_names:
                    self.inner_names.append(fmt.name)
                yield accepted, "SELECT * FROM lines"
            if rejected is None or not rejected.num_rows:
                return
            if closest is None:
                closest = f"{fmt.name}: {rejected['_reject'][0].as_py()}"
                reason = f"{NO_FORMAT_REASON} (closest is {closest})"
            remaining = rejected.select(["SourceLine", "RawEvent"])
        if remaining.num_rows:
            yield remaining, f"SELECT SourceLine, RawEvent, {quote_literal(reason)} AS _reject FROM lines"

    def finish(self, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        """Yield what the formats used still hold back at the end of the file, parsed or rejected by them."""
        for fmt, parser in self._parsers.values():
            before = parser.skipped_lines
            for segment, select_sql in parser.finish(connection):
                yield self._stage(fmt, segment, select_sql, connection), "SELECT * FROM lines"
            self.skipped_lines += parser.skipped_lines - before

    def _parse_with(
        self, fmt: LineFormat, lines: pa.Table, connection: duckdb.DuckDBPyConnection
    ) -> tuple[pa.Table | None, pa.Table | None]:
        """Parse ``lines`` with ``fmt``; return the parsed stage rows and the rejected lines with their reason."""
        if fmt.name not in self._parsers:
            fmt.prepare(connection)
            self._parsers[fmt.name] = (fmt, fmt.parser())
        _, parser = self._parsers[fmt.name]

        accepted_parts: list[pa.Table] = []
        rejected_parts: list[pa.Table] = []
        before = parser.skipped_lines
        for segment, select_sql in parser.segments(lines, connection):
            stage = self._stage(fmt, segment, select_sql, connection)
            is_rejected = pc.is_valid(stage["_reject"])
            accepted_parts.append(stage.filter(pc.invert(is_rejected)))
            rejected_parts.append(stage.filter(is_rejected).select(["SourceLine", "RawEvent", "_reject"]))
        self.skipped_lines += parser.skipped_lines - before

        accepted = _concat(accepted_parts)
        rejected = _concat(rejected_parts)
        return accepted, rejected

    @staticmethod
    def _stage(fmt: LineFormat, segment: pa.Table, select_sql: str, connection: duckdb.DuckDBPyConnection) -> pa.Table:
        """Run a format's SELECT, decode its escapes and add its product and vendor, as the loader does for a plain file."""
        connection.register("lines", segment)
        try:
            connection.execute(f"CREATE OR REPLACE TEMP TABLE ph_raw_stage AS {select_sql}")
        finally:
            connection.unregister("lines")
        try:
            columns = [row[0] for row in connection.sql("DESCRIBE ph_raw_stage").fetchall()]
            if fmt.escape_function:
                for column in fmt.escaped_columns:
                    if column in columns:
                        quoted = quote_identifier(column)
                        connection.execute(
                            f"UPDATE ph_raw_stage SET {quoted} = {fmt.escape_function}({quoted}) "
                            f"WHERE contains({quoted}, '\\')"
                        )
            extra = []
            for column, value in (("EventProduct", fmt.product), ("EventVendor", fmt.vendor)):
                if column not in columns:
                    extra.append(f"{quote_literal(value) if value else 'NULL'}::VARCHAR AS {column}")
            select_list = ", ".join(["*", *extra])
            return query_arrow(connection, f"SELECT {select_list} FROM ph_raw_stage ORDER BY SourceLine")
        finally:
            connection.execute("DROP TABLE IF EXISTS ph_raw_stage")


def _concat(parts: list[pa.Table]) -> pa.Table | None:
    parts = [part for part in parts if part.num_rows]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts, promote_options="permissive")
