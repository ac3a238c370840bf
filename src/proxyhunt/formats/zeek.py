"""Zeek http.log, in the default tab-separated form and as JSON lines.

The TSV form describes itself in ``#`` header lines: ``#separator``,
``#unset_field`` (usually ``-``, a missing value), ``#empty_field`` (usually
``(empty)``, an empty string) and ``#fields``. A header may change in the middle
of a file when logs are concatenated. Zeek writes a byte that would be ambiguous
as ``\\xHH`` and a backslash as ``\\\\``, so a literal value ``(empty)`` appears
as ``\\x28empty)`` and stays literal text after decoding.

The JSON form omits unset fields. Its ``ts`` is epoch seconds or, with
``JSON::TS_ISO8601``, an ISO 8601 string. Some exports flatten ``id.orig_h`` to
``id_orig_h``; both spellings are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from proxyhunt.formats.base import LineFormat, LineParser, json_objects, non_blank
from proxyhunt.formats.json_fields import JsonFields
from proxyhunt.formats.prefilter import Escape
from proxyhunt.formats.sql import quote_literal, register_function

# Zeek http.log field -> (WebSession column, SQL type or None for text).
FIELD_MAP: dict[str, tuple[str, str | None]] = {
    "ts": ("TimeGenerated", "time"),
    "id.orig_h": ("SrcIpAddr", None),
    "id.orig_p": ("SrcPortNumber", "INTEGER"),
    "id.resp_h": ("DstIpAddr", None),
    "id.resp_p": ("DstPortNumber", "INTEGER"),
    "method": ("HttpRequestMethod", None),
    "host": ("DstHostname", None),
    "uri": ("Url", None),
    "referrer": ("HttpReferrer", None),
    "version": ("HttpVersion", None),
    "user_agent": ("HttpUserAgent", None),
    "request_body_len": ("SrcBytes", "BIGINT"),
    "response_body_len": ("DstBytes", "BIGINT"),
    "status_code": ("HttpStatusCode", "INTEGER"),
    "username": ("SrcUsername", None),
}

_HTTP_FIELDS = {"method", "uri", "user_agent", "status_code", "host"}
# Zeek's ASCII writer (get_escaped_string in Zeek's src/util.cc) writes a
# backslash as \\ and any other escaped byte as \xHH. Older releases wrote the
# backslash as \x5c. One pass decodes both forms, so that the text \x41, written
# as \\x41, is not taken for the byte 0x41.
_ESCAPE = re.compile(rb"\\(\\|x[0-9A-Fa-f]{2})")


def _escaped_byte(match: re.Match[bytes]) -> bytes:
    sequence = match.group(1)
    if sequence == b"\\":
        return b"\\"
    return bytes([int(sequence[1:], 16)])


def unescape_zeek(value: str | None) -> str | None:
    """Decode Zeek's ``\\\\`` and ``\\xHH`` escapes, reading the bytes as UTF-8 with U+FFFD for invalid bytes."""
    if value is None or "\\" not in value:
        return value
    raw = _ESCAPE.sub(_escaped_byte, value.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


def _decode_separator(line: str) -> str:
    """Return the separator that a ``#separator \\x09`` header line declares; tab when it declares none."""
    value = line[len("#separator") :].strip()
    return value.encode("ascii", "backslashreplace").decode("unicode_escape") or "\t"


def register_functions(connection: duckdb.DuckDBPyConnection) -> None:
    """Register ``ph_zeek_unescape`` on a connection. Calling it again is harmless."""
    register_function(connection, "ph_zeek_unescape", unescape_zeek)


def _typed(column: str, sql_type: str | None, text: str, invalid: str | None = None) -> list[str]:
    """Return the select items for one column and its ``_raw_`` text; ``invalid`` is unusable text present."""
    raw = f"coalesce({text}, {invalid})" if invalid else text
    if sql_type is None:
        if invalid:
            return [f"{text} AS {column}", f"{invalid} AS _raw_{column}"]
        return [f"{text} AS {column}"]
    if sql_type == "time":
        return [f"ph_time({text}) AS {column}", f"{raw} AS _raw_{column}"]
    return [f"TRY_CAST({text} AS {sql_type}) AS {column}", f"{raw} AS _raw_{column}"]


class _TsvParser(LineParser):
    """Tracks the ``#`` header lines of a Zeek TSV file while its batches are parsed."""

    def __init__(self) -> None:
        super().__init__(select_sql="")
        self.separator = "\t"
        self.unset = "-"
        self.empty = "(empty)"
        self.fields: list[str] | None = None

    def segments(self, table: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        table = self._drop_blank(table)
        is_header = pc.starts_with(table["RawEvent"], "#")
        header_rows = pc.indices_nonzero(is_header).to_pylist()

        start = 0
        for row in header_rows:
            if row > start:
                yield table.slice(start, row - start), self._select_sql()
            self._read_header(table["RawEvent"][row].as_py())
            self.skipped_lines += 1
            start = row + 1
        if start < table.num_rows:
            yield table.slice(start), self._select_sql()

    def _read_header(self, line: str) -> None:
        if line.startswith("#separator"):
            self.separator = _decode_separator(line)
            return
        directive, _, value = line.partition(self.separator)
        if directive == "#fields":
            self.fields = value.split(self.separator)
        elif directive == "#unset_field":
            self.unset = value
        elif directive == "#empty_field":
            self.empty = value

    def _select_sql(self) -> str:
        if self.fields is None:
            return (
                "SELECT SourceLine, RawEvent, 'Zeek TSV data line before any #fields header; "
                "add the header lines or pass the file with its header' AS _reject FROM lines"
            )

        items = ["SourceLine", "RawEvent"]
        count = len(self.fields)
        items.append(
            f"CASE WHEN len(f) <> {count} THEN 'has ' || len(f) || ' fields (split at the #separator) but the #fields header "
            f"names {count}' END AS _reject"
        )
        for position, field in enumerate(self.fields, start=1):
            if field not in FIELD_MAP:
                continue
            column, sql_type = FIELD_MAP[field]
            raw = f"f[{position}]"
            text = (
                f"CASE WHEN {raw} = {quote_literal(self.unset)} THEN NULL "
                f"WHEN {raw} = {quote_literal(self.empty)} THEN '' ELSE {raw} END"
            )
            items.extend(_typed(column, sql_type, text))

        select_list = ",\n            ".join(items)
        return f"""
        SELECT
            {select_list}
        FROM (SELECT SourceLine, RawEvent, string_split(RawEvent, {quote_literal(self.separator)}) AS f FROM lines)
        """


class ZeekTsv(LineFormat):
    """Zeek http.log in Zeek's default tab-separated form."""

    name = "zeek-tsv"
    title = "Zeek http.log (TSV with #fields header)"
    # Escapes are decoded after the placeholder checks, so \x28empty) stays the text "(empty)".
    escape_function = "ph_zeek_unescape"
    escaped_columns = tuple(column for column, sql_type in FIELD_MAP.values() if sql_type is None)
    # Url is the uri field as logged, and UrlPath, UrlQuery and UrlExtension are parts of it.
    prefilter_columns = frozenset({*escaped_columns, "UrlPath", "UrlQuery", "UrlExtension"})
    prefilter_escapes = (Escape(b"\\x", hex_byte=True), Escape(b"\\", produces="\\"))
    prefilter_headers = (b"#",)
    product = "Zeek"
    vendor = "Zeek"

    def detect(self, sample: list[str]) -> float:
        separator = "\t"
        for line in non_blank(sample):
            if line.startswith("#separator"):
                separator = _decode_separator(line)
                continue
            if line.startswith("#fields"):
                fields = set(line.split(separator)[1:])
                if "ts" in fields and _HTTP_FIELDS & fields:
                    return 1.0
                return 0.1
        if any(line.startswith("#separator") for line in sample):
            return 0.3
        return 0.0

    def select_sql(self) -> str:
        return _TsvParser()._select_sql()

    def parser(self) -> LineParser:
        return _TsvParser()

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        register_functions(connection)


class ZeekJson(LineFormat):
    """Zeek http.log written by Zeek's JSON writer, one object per line."""

    name = "zeek-json"
    title = "Zeek http.log (JSON lines)"
    product = "Zeek"
    vendor = "Zeek"

    def detect(self, sample: list[str]) -> float:
        records = json_objects(sample)
        if not records:
            return 0.0
        hits = 0
        for record in records:
            if record is None:
                continue
            keys = set(record)
            has_id = "id.orig_h" in keys or "id_orig_h" in keys or "id" in keys
            if "uid" in keys and has_id and _HTTP_FIELDS & keys:
                hits += 1
        return hits / len(records)

    def select_sql(self) -> str:
        fields = JsonFields()
        items: list[str] = []
        for field, (column, sql_type) in FIELD_MAP.items():
            paths = [f'$."{field}"']
            if "." in field:
                parent, child = field.split(".", 1)
                paths.append(f'$."{field.replace(".", "_")}"')
                # Zeek's JSON writer can also nest the connection tuple as {"id": {"orig_h": ...}}.
                paths.append(f'$."{parent}"."{child}"')
            text, invalid = fields.value(paths)
            items.extend(_typed(column, sql_type, text, invalid))
        return fields.select(items)
