"""The contract that every log format module fulfils.

A format has a name, a ``detect`` method that scores a sample of decoded lines,
and a parser. Line formats turn a relation ``lines(SourceLine, RawEvent)`` into
WebSession columns with one DuckDB ``SELECT``. A parser may keep state between
batches, such as the current Zeek ``#fields`` header.

The ``SELECT`` of a format returns any subset of the WebSession columns, plus:

- ``SourceLine`` and ``RawEvent``, passed through;
- ``_reject``: NULL for a parsed line, or the reason the line was rejected;
- ``_raw_<Column>`` (optional): the text a typed column was decoded from, so
  that the loader can count values that were present but invalid;
- ``_ignored_text`` (optional): text of a parsed line that no column takes,
  such as fields appended by a customized log format, so that the loader can
  count such lines. NULL when there is none.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from proxyhunt.formats.prefilter import Escape


class LogFormat(ABC):
    """A log format that proxyhunt can detect and read."""

    name: ClassVar[str]
    title: ClassVar[str]
    product: ClassVar[str | None] = None
    vendor: ClassVar[str | None] = None

    @abstractmethod
    def detect(self, sample: list[str]) -> float:
        """Return the confidence, from 0.0 to 1.0, that the sampled lines are in this format."""


class LineParser:
    """Per-file parsing state of a line format; the default one has none.

    ``segments`` receives each batch of lines and yields the slices to parse
    together with the ``SELECT`` that parses them. It may query the connection,
    for example to list the keys of JSON records. Lines it consumes itself
    (blank lines, headers, comments) are counted in ``skipped_lines``.
    """

    def __init__(self, select_sql: str) -> None:
        self.select_sql = select_sql
        self.skipped_lines = 0
        self.error: str | None = None

    def segments(self, table: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        table = self._drop_blank(table)
        if table.num_rows:
            yield table, self.select_sql

    def finish(self, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        """Yield the lines still held back at the end of the file, with the SELECT that rejects or parses them."""
        return iter(())

    def _drop_blank(self, table: pa.Table) -> pa.Table:
        blank = pc.equal(pc.utf8_trim_whitespace(table["RawEvent"]), "")
        blank_count = pc.sum(blank).as_py() or 0
        if not blank_count:
            return table
        self.skipped_lines += blank_count
        return table.filter(pc.invert(blank))


class LineFormat(LogFormat):
    """A format whose records are single lines, parsed by one ``SELECT`` over ``lines``.

    ``escape_function`` names a SQL function, registered by ``prepare``, that
    decodes the format's backslash escapes. The loader applies it afterwards
    to the ``escaped_columns`` values that contain a backslash. Keeping a
    Python function out of the parsing ``SELECT`` lets DuckDB run that on
    every core.

    ``prefilter_columns`` are the columns whose values the reader copies from
    the raw line: once the format's ``prefilter_escapes`` are decoded, a
    value is a substring of the line. A
    hunt may then skip lines that contain none of its rules' literals without
    parsing them (see ``proxyhunt.formats.prefilter``). A format that leaves
    the set empty is always parsed in full. Lines starting with one of
    ``prefilter_headers`` are always parsed, because they set the layout.
    """

    escape_function: ClassVar[str | None] = None
    escaped_columns: ClassVar[tuple[str, ...]] = ()
    prefilter_columns: ClassVar[frozenset[str]] = frozenset()
    prefilter_escapes: ClassVar[tuple[Escape, ...]] = ()
    prefilter_headers: ClassVar[tuple[bytes, ...]] = ()

    @abstractmethod
    def select_sql(self) -> str:
        """Return the ``SELECT`` that parses the relation ``lines``."""

    def parser(self) -> LineParser:
        """Return a fresh parser for one file."""
        return LineParser(self.select_sql())

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Register the SQL functions this format needs on a connection; most need none."""


def non_blank(sample: list[str]) -> list[str]:
    """Return the sampled lines that are not blank."""
    return [line for line in sample if line.strip()]


def json_objects(sample: list[str], limit: int = 50) -> list[dict | None]:
    """Parse up to ``limit`` non-blank sampled lines as JSON; None stands for a line that is not an object."""
    records: list[dict | None] = []
    for line in non_blank(sample)[:limit]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        records.append(record if isinstance(record, dict) else None)
    return records


def match_ratio(lines: list[str], predicate) -> float:
    """Return the share of ``lines`` for which ``predicate`` is true, 0.0 for no lines."""
    if not lines:
        return 0.0
    return sum(1 for line in lines if predicate(line)) / len(lines)
