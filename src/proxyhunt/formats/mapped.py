"""CSV, TSV and JSON Lines files described by a YAML mapping file (``--map``).

A mapping names, for each WebSession column, the source column (a CSV or TSV
header name, a name from ``columns``, or a JSON key, with dots for nested
keys) that fills it::

    format: csv              # csv, tsv or jsonl
    delimiter: ";"           # csv only; default ","
    header: true             # the first line names the columns; default true
    columns: [when, client, ua]   # the column names when header is false
    fields:
      TimeGenerated: when
      SrcIpAddr: client
      HttpUserAgent: ua
    timestamp:
      format: "%d.%m.%Y %H:%M:%S"   # strptime pattern, or iso8601 (default), epoch, epoch_ms
      timezone: Europe/Berlin       # zone of times that carry no offset; default UTC
    missing: ["-", "", "n/a"]       # values stored as NULL; default "-" and ""
    product: ExampleProxy
    vendor: Example

A field may also be named by its Sigma proxy field name (``c-useragent``).
CSV and TSV fields are read as Python's csv module reads them: a quoted field
may contain the delimiter, ``""`` is one quote, and a quoted field may span
lines.
"""

from __future__ import annotations

import csv
import difflib
import json
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterator

import duckdb
import pyarrow as pa
import yaml

from proxyhunt.formats.base import LineFormat, LineParser, json_objects, match_ratio, non_blank
from proxyhunt.formats.json_fields import JsonFields
from proxyhunt.formats.sql import quote_literal
# NOTE: _MappedCsvParser extends the private CSV reader of the csv format, so a
# change to _CsvParser's header and _record_select hooks must be made here too.
from proxyhunt.formats.websession import CsvDialect, _CsvParser
from proxyhunt.schema import COLUMN_NAMES, COLUMN_TYPES, PROVENANCE_COLUMNS, column_for_field

KINDS = ("csv", "tsv", "jsonl")
TIME_KEYWORDS = ("iso8601", "epoch", "epoch_ms")
_KEYS = ("name", "format", "delimiter", "header", "columns", "fields", "timestamp", "missing", "product", "vendor")
_TIMESTAMP_KEYS = ("format", "timezone")
# An ISO 8601 time that ends with its offset; one without it is in the mapping's time zone.
_HAS_OFFSET = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file, the line and the fix."""


@dataclass
class Mapping:
    """A validated mapping file."""

    path: str
    kind: str
    fields: dict[str, str]
    delimiter: str = ","
    header: bool = True
    columns: list[str] | None = None
    time_format: str = "iso8601"
    timezone: str | None = None
    missing: list[str] = field(default_factory=lambda: ["-", ""])
    name: str | None = None
    product: str | None = None
    vendor: str | None = None


def _mark_line(node: yaml.Node | None, key: str | None = None) -> int | None:
    """Return the 1-based line of ``key`` in a YAML mapping node, or of the node itself."""
    if node is None:
        return None
    if key is not None and isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == key:
                return key_node.start_mark.line + 1
    return node.start_mark.line + 1


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    return None


class _Validator:
    """Reads a mapping document and raises MappingError naming the line of the first problem."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        try:
            self.root = yaml.compose(text)
            self.data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f"{path}:{mark.line + 1}" if mark else path
            raise MappingError(f"{where}: invalid YAML: {error.problem or error}; fix the mapping file") from None
        except yaml.YAMLError as error:
            raise MappingError(f"{path}: invalid YAML: {error}; fix the mapping file") from None

    def fail(self, message: str, node: yaml.Node | None = None, key: str | None = None) -> MappingError:
        line = _mark_line(node, key)
        where = f"{self.path}:{line}" if line else self.path
        return MappingError(f"{where}: {message}")

    def mapping(self) -> Mapping:
        data = self.data
        if not isinstance(data, dict):
            raise self.fail("a mapping file is a YAML mapping with at least 'format' and 'fields'", self.root)
        for key in data:
            if key not in _KEYS:
                raise self.fail(f"unknown key {key!r}; the keys are: {', '.join(_KEYS)}", self.root, str(key))

        kind = data.get("format")
        if "format" not in data:
            raise self.fail(f"'format' is missing; set it to one of: {', '.join(KINDS)}")
        if kind not in KINDS:
            raise self.fail(f"'format' is {kind!r}; set it to one of: {', '.join(KINDS)}", self.root, "format")
        mapping = Mapping(self.path, kind, self._fields(data))
        mapping.name = self._text(data, "name")
        mapping.product = self._text(data, "product")
        mapping.vendor = self._text(data, "vendor")
        if kind == "tsv":
            mapping.delimiter = "\t"
        delimiter = data.get("delimiter")
        if delimiter is not None:
            if kind != "csv" or not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
                raise self.fail("'delimiter' must be one character other than a quote or a line break, and only with format csv", self.root, "delimiter")
            mapping.delimiter = delimiter
        self._layout(data, mapping)
        self._timestamp(data, mapping)
        missing = data.get("missing", mapping.missing)
        if not isinstance(missing, list) or not all(isinstance(value, (str, int, float)) for value in missing):
            raise self.fail("'missing' must be a list of values, such as ['-', '', 'n/a']", self.root, "missing")
        mapping.missing = [str(value) for value in missing]
        return mapping

    def _text(self, data: dict, key: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"'{key}' must be text", self.root, key)
        return value

    def _fields(self, data: dict) -> dict[str, str]:
        fields = data.get("fields")
        node = _child(self.root, "fields")
        if not isinstance(fields, dict) or not fields:
            message = "'fields' must map WebSession columns to source columns, such as 'SrcIpAddr: client'"
            if "fields" not in data:
                raise self.fail(f"'fields' is missing; {message}")
            raise self.fail(message, self.root, "fields")
        resolved: dict[str, str] = {}
        mappable = [name for name in COLUMN_NAMES if name not in PROVENANCE_COLUMNS]
        for key, source in fields.items():
            column = column_for_field(str(key))
            if column is None or column in PROVENANCE_COLUMNS:
                close = difflib.get_close_matches(str(key), mappable, n=1)
                hint = f"; did you mean {close[0]}?" if close else f"; the columns are: {', '.join(mappable)}"
                raise self.fail(f"unknown WebSession column {key!r}{hint}", node, str(key))
            if not isinstance(source, str) or not source:
                raise self.fail(f"the source of {key} must be a column name or JSON key", node, str(key))
            if column in resolved:
                raise self.fail(f"{key} maps to {column}, which another entry already fills", node, str(key))
            resolved[column] = source
        return resolved

    def _layout(self, data: dict, mapping: Mapping) -> None:
        header = data.get("header", True)
        if not isinstance(header, bool):
            raise self.fail("'header' must be true or false", self.root, "header")
        columns = data.get("columns")
        if mapping.kind == "jsonl":
            if "header" in data or columns is not None:
                raise self.fail("'header' and 'columns' apply to csv and tsv only", self.root, "header" if "header" in data else "columns")
            return
        if columns is not None:
            if header:
                raise self.fail("'columns' names the columns of a file without a header row; also set 'header: false'", self.root, "columns")
            if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns) or not columns:
                raise self.fail("'columns' must be a list of column names", self.root, "columns")
        elif not header:
            raise self.fail("a file without a header row ('header: false') needs 'columns' with the column names", self.root, "header")
        mapping.header = header
        mapping.columns = columns
        if columns is not None:
            for column, source in mapping.fields.items():
                if source not in columns:
                    raise self.fail(
                        f"{column} maps to {source!r}, which is not in 'columns' ({', '.join(columns)})",
                        _child(self.root, "fields"),
                    )

    def _timestamp(self, data: dict, mapping: Mapping) -> None:
        timestamp = data.get("timestamp")
        if timestamp is None:
            return
        node = _child(self.root, "timestamp")
        if not isinstance(timestamp, dict):
            raise self.fail("'timestamp' must be a mapping with 'format' and 'timezone'", self.root, "timestamp")
        for key in timestamp:
            if key not in _TIMESTAMP_KEYS:
                raise self.fail(f"unknown key {key!r} under 'timestamp'; the keys are: format, timezone", node, str(key))
        time_format = timestamp.get("format", "iso8601")
        if not isinstance(time_format, str) or not time_format:
            raise self.fail("'timestamp.format' must be a strptime pattern or one of: " + ", ".join(TIME_KEYWORDS), node, "format")
        if time_format not in TIME_KEYWORDS:
            if "%" not in time_format:
                raise self.fail(
                    f"'timestamp.format' {time_format!r} is neither a strptime pattern such as '%d/%m/%Y %H:%M:%S' "
                    f"nor one of: {', '.join(TIME_KEYWORDS)}",
                    node,
                    "format",
                )
            try:
                duckdb.sql(f"SELECT try_strptime('', {quote_literal(time_format)})").fetchall()
            except duckdb.Error as error:
                raise self.fail(f"'timestamp.format' {time_format!r} is not a valid strptime pattern ({error})", node, "format") from None
        mapping.time_format = time_format
        zone = timestamp.get("timezone")
        if zone is not None:
            try:
                zoneinfo.ZoneInfo(str(zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise self.fail(f"unknown time zone {zone!r}; use an IANA name such as UTC or Europe/Berlin", node, "timezone") from None
            mapping.timezone = str(zone)


def load_mapping(path: str) -> Mapping:
    """Read and validate a mapping file; raise MappingError naming the file, line and fix."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found; check the path given to --map") from None
    except (OSError, UnicodeError) as error:
        raise MappingError(f"{path}: the mapping file cannot be read ({error})") from None
    return _Validator(path, text).mapping()


def _time_sql(value: str, mapping: Mapping) -> str:
    """Return the SQL that turns the text ``value`` into a UTC TIMESTAMP as the mapping describes."""
    zone = quote_literal(mapping.timezone) if mapping.timezone else None
    if mapping.time_format == "epoch":
        return f"ph_epoch({value})"
    if mapping.time_format == "epoch_ms":
        return f"ph_epoch(CAST(TRY_CAST({value} AS DOUBLE) / 1000 AS VARCHAR))"
    if mapping.time_format == "iso8601":
        if zone is None:
            return f"ph_time({value})"
        return (
            f"CASE WHEN regexp_matches(trim({value}), '{_HAS_OFFSET}') THEN ph_time({value}) "
            f"ELSE CAST(timezone({zone}, TRY_CAST(trim({value}) AS TIMESTAMP)) AS TIMESTAMP) END"
        )
    pattern = quote_literal(mapping.time_format)
    if "%z" in mapping.time_format or "%Z" in mapping.time_format or zone is None:
        return f"CAST(try_strptime(trim({value}), {pattern}) AS TIMESTAMP)"
    return f"CAST(timezone({zone}, CAST(try_strptime(trim({value}), {pattern}) AS TIMESTAMP)) AS TIMESTAMP)"


def _column_items(mapping: Mapping, values: dict[str, str]) -> list[str]:
    """Return the select items of the mapped columns, given the SQL of each column's source text."""
    missing = ", ".join(quote_literal(value) for value in mapping.missing)
    items = []
    for column, text in values.items():
        value = f"CASE WHEN {text} IN ({missing}) THEN NULL ELSE {text} END" if missing else text
        sql_type = COLUMN_TYPES[column]
        if column == "TimeGenerated":
            items += [f"{_time_sql(value, mapping)} AS {column}", f"{value} AS _raw_{column}"]
        elif sql_type in ("INTEGER", "BIGINT"):
            items += [f"TRY_CAST(TRY_CAST({value} AS DOUBLE) AS {sql_type}) AS {column}", f"{value} AS _raw_{column}"]
        else:
            items.append(f"{value} AS {column}")
    if mapping.product is not None:
        items.append(f"{quote_literal(mapping.product)} AS EventProduct")
    if mapping.vendor is not None:
        items.append(f"{quote_literal(mapping.vendor)} AS EventVendor")
    return items


def _json_path(source: str) -> str:
    """Return the JSON path of a key; dots separate nested keys."""
    return "$" + "".join("." + json.dumps(part) for part in source.split("."))


class _MappedCsvParser(_CsvParser):
    """The CSV reader of the ``csv`` format, reading columns by the mapping instead of by their names."""

    def __init__(self, mapping: Mapping) -> None:
        super().__init__(inner_formats=lambda: [])
        self.mapping = mapping
        self.delimiter = mapping.delimiter
        self.dialect = CsvDialect(mapping.delimiter)
        if not mapping.header:
            self.header = list(mapping.columns or [])
        self._checked = False

    def _record_select(self, split: str) -> str:
        header = [name.strip() for name in self.header or []]
        if not self._checked:
            self._checked = True
            absent = [source for source in self.mapping.fields.values() if source not in header]
            if absent:
                self.error = (
                    f"the header row has no column {', '.join(repr(name) for name in absent)} that the mapping "
                    f"{self.mapping.path} names; it has: {', '.join(header)}"
                )
        values = {
            column: f"f[{header.index(source) + 1}]" for column, source in self.mapping.fields.items() if source in header
        }
        items = ["SourceLine", "RawEvent", f"{self._field_count_reject()} AS _reject", *_column_items(self.mapping, values)]
        select_list = ",\n            ".join(items)
        return f"SELECT\n            {select_list}\n        FROM (SELECT SourceLine, RawEvent, {split} FROM lines)"

    def _unwrap_raw_data(
        self, records: pa.Table, split: str, connection: duckdb.DuckDBPyConnection
    ) -> Iterator[tuple[pa.Table, str]]:
        # A mapped file names its own columns, so a RawData column is an ordinary column here.
        yield records, self._record_select(split)


class MappedFormat(LineFormat):
    """A CSV, TSV or JSON Lines file read as its mapping file describes."""

    name = "mapped"
    title = "CSV, TSV or JSON Lines described by a --map file"

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        label = mapping.name or Path(mapping.path).name
        self.title = f"{mapping.kind.upper()} described by {label}"  # type: ignore[misc]

    @classmethod
    def from_file(cls, path: str) -> MappedFormat:
        """Return the format described by the mapping file at ``path``; raise MappingError when it is invalid."""
        return cls(load_mapping(path))

    def detect(self, sample: list[str]) -> float:
        sources = set(self.mapping.fields.values())
        if self.mapping.kind == "jsonl":
            records = json_objects(sample)
            if not records:
                return 0.0
            tops = {source.split(".")[0] for source in sources}
            return 0.98 * sum(1 for record in records if record and tops & set(record)) / len(records)

        lines = non_blank(sample)
        if not lines:
            return 0.0
        if self.mapping.header:
            header = next(csv.reader([lines[0]], delimiter=self.mapping.delimiter))
            return 0.98 * len(sources & {name.strip() for name in header}) / len(sources)
        count = len(self.mapping.columns or [])
        reader = _field_counter(self.mapping.delimiter)
        return 0.9 * match_ratio(lines, lambda line: reader(line) == count)

    def select_sql(self) -> str:
        if self.mapping.kind == "jsonl":
            fields = JsonFields()
            values = {}
            for column, source in self.mapping.fields.items():
                text, _ = fields.value([_json_path(source)])
                values[column] = text
            return fields.select(_column_items(self.mapping, values))
        return "SELECT SourceLine, RawEvent, 'CSV data before its header row' AS _reject FROM lines"

    def parser(self) -> LineParser:
        if self.mapping.kind == "jsonl":
            return LineParser(self.select_sql())
        return _MappedCsvParser(self.mapping)


def _field_counter(delimiter: str) -> Callable[[str], int]:
    def count(line: str) -> int:
        try:
            return len(next(csv.reader([line], delimiter=delimiter)))
        except (csv.Error, StopIteration):
            return -1

    return count


__all__ = ["Mapping", "MappedFormat", "MappingError", "load_mapping"]
