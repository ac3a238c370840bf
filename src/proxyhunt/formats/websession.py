"""JSON Lines and CSV files whose columns are already WebSession columns or Sigma proxy fields.

Column names are matched case-insensitively against the WebSession columns and
the Sigma proxy field names (``c-useragent``, ``cs-host`` …), plus the time
columns that exports use (``TimeGenerated [UTC]``, ``timestamp``). Columns that
match nothing are ignored. A value ``-``, the placeholder that W3C, Squid and the
combined format write for a missing value, is NULL, and so is an empty CSV field.

A CSV export of a Sentinel custom log table (``RawData`` contains the original log
line, as in ``SquidProxy_CL``) is unwrapped: each RawData value is parsed in the
format that fits it (see ``raw_data``), and keeps the CSV record's line number.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from proxyhunt.formats.base import LineFormat, LineParser, json_objects, non_blank
from proxyhunt.formats.json_fields import JsonFields
from proxyhunt.formats.raw_data import RawDataParser
from proxyhunt.formats.sql import query_arrow, quote_literal
from proxyhunt.schema import COLUMN_TYPES, PROVENANCE_COLUMNS, column_for_field

# The csv module rejects fields over 128 KiB by default, but a header or RawData line
# may be longer (a 1 MB URL is a valid line), so the limit is raised for the process.
csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))

_TIME_ALIASES = {"timegenerated [utc]", "timestamp", "@timestamp", "time", "eventtime"}
_RAW_DATA = "rawdata"

# Column names of Sentinel's CommonSecurityLog table (CEF as the agent parsed it),
# lower-cased. CommonSecurityLog keeps CEF's direction: ReceivedBytes is CEF "in",
# the bytes from source to destination, and SentBytes is CEF "out".
COMMON_SECURITY_LOG_NAMES: dict[str, str] = {
    "requesturl": "Url",
    "requestclientapplication": "HttpUserAgent",
    "requestmethod": "HttpRequestMethod",
    "requestcontext": "HttpReferrer",
    "requestcookies": "HttpCookie",
    "sourceip": "SrcIpAddr",
    "sourceport": "SrcPortNumber",
    "sourceusername": "SrcUsername",
    "sourcehostname": "SrcHostname",
    "destinationip": "DstIpAddr",
    "destinationport": "DstPortNumber",
    "destinationhostname": "DstHostname",
    "receivedbytes": "SrcBytes",
    "sentbytes": "DstBytes",
    "deviceaction": "DvcAction",
    "devicevendor": "EventVendor",
    "deviceproduct": "EventProduct",
}
# Names that other exports use: Cisco Umbrella's proxy log, and the columns that the
# Sentinel Syslog parser of Symantec ProxySG adds (the rest of its ELFF names become
# Sigma names when '_' is read as '-').
_OTHER_EXPORT_NAMES: dict[str, str] = {
    "internal ip": "SrcIpAddr",
    "destination ip": "DstIpAddr",
    "useragent": "HttpUserAgent",
    "referer": "HttpReferrer",
    "statuscode": "HttpStatusCode",
    "requestsize": "SrcBytes",
    "responsesize": "DstBytes",
    "content type": "HttpContentType",
    "verdict": "DvcAction",
    "cs_user_agent": "HttpUserAgent",
    "cs_userdn": "SrcUsername",
    "cs_uri_path": "UrlPath",
    "cs_uri_port": "DstPortNumber",
    "sc_filter_result": "DvcAction",
}


def column_for_key(key: str) -> str | None:
    """Return the WebSession column that a JSON key or CSV header names, or None.

    Besides WebSession and Sigma names, this accepts the CommonSecurityLog
    column names and the export names listed above.
    """
    name = key.strip()
    lowered = name.lower()
    if lowered in _TIME_ALIASES:
        return "TimeGenerated"
    column = (
        column_for_field(name)
        or COMMON_SECURITY_LOG_NAMES.get(lowered)
        or _OTHER_EXPORT_NAMES.get(lowered)
        or column_for_field(name.replace("_", "-"))
    )
    if column in PROVENANCE_COLUMNS:
        return None
    return column


def _typed_items(column: str, text: str, invalid: str | None = None) -> list[str]:
    """Return the select items for a column; ``invalid`` is text present in the record but unusable."""
    sql_type = COLUMN_TYPES[column]
    raw = f"coalesce({text}, {invalid})" if invalid else text
    if column == "TimeGenerated":
        return [f"ph_time({text}) AS {column}", f"{raw} AS _raw_{column}"]
    if sql_type in ("INTEGER", "BIGINT"):
        return [f"TRY_CAST(TRY_CAST({text} AS DOUBLE) AS {sql_type}) AS {column}", f"{raw} AS _raw_{column}"]
    if invalid:
        return [f"{text} AS {column}", f"{invalid} AS _raw_{column}"]
    return [f"{text} AS {column}"]


def _cef_unescaped(key: str, text: str) -> str:
    """Return SQL that decodes CEF's \\= and \\\\ escapes, which CommonSecurityLog columns keep, in a value."""
    if key.strip().lower() not in COMMON_SECURITY_LOG_NAMES:
        return text
    return f"regexp_replace({text}, '\\\\([=\\\\])', '\\1', 'g')"


def _csv_value(field: str) -> str:
    # Log Analytics writes an empty number as 'null' in CSV exports.
    return f"CASE WHEN {field} IN ('', '-', 'null') THEN NULL ELSE {field} END"


def _columns_by_key(keys: list[str]) -> dict[str, list[str]]:
    """Group keys by the column they name; an exact WebSession name comes first."""
    grouped: dict[str, list[str]] = {}
    for key in keys:
        column = column_for_key(key)
        if column is not None:
            grouped.setdefault(column, []).append(key)
    for column, names in grouped.items():
        names.sort(key=lambda name: name != column)
    return grouped


class _JsonParser(LineParser):
    def __init__(self) -> None:
        super().__init__(select_sql="")

    def segments(self, table: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        table = self._drop_blank(table)
        if not table.num_rows:
            return
        connection.register("ph_json_keys", table)
        try:
            keys = [
                row[0]
                for row in connection.sql(
                    "SELECT DISTINCT unnest(json_keys(RawEvent)) FROM ph_json_keys "
                    "WHERE json_valid(RawEvent) AND json_type(RawEvent) = 'OBJECT'"
                ).fetchall()
            ]
        finally:
            connection.unregister("ph_json_keys")
        yield table, json_select(sorted(keys))


def json_select(keys: list[str]) -> str:
    """Return the ``SELECT`` that reads the WebSession columns named by ``keys`` from JSON-object lines."""
    fields = JsonFields()
    texts: dict[str, str] = {}
    invalids: dict[str, str] = {}
    for column, names in _columns_by_key(keys).items():
        column_texts = []
        column_invalids = []
        for name in names:
            text, invalid = fields.value(["$." + json.dumps(name)], dash_is_null=True)
            column_texts.append(_cef_unescaped(name, text))
            column_invalids.append(invalid)
        texts[column] = _coalesce(column_texts)
        invalids[column] = _coalesce(column_invalids)
    _swap_bytes_by_vendor(texts, keys)
    _strip_query_mark(texts)
    if "Url" not in texts and {"DstHostname", "UrlPath"} <= set(texts):
        scheme_key = next((key for key in keys if key.strip().lower() in _SCHEME_NAMES), None)
        scheme = fields.value(["$." + json.dumps(scheme_key)], dash_is_null=True)[0] if scheme_key else "NULL"
        texts["Url"] = _url_from_parts(texts, scheme)
        invalids["Url"] = "NULL"

    items: list[str] = []
    for column, text in texts.items():
        items.extend(_typed_items(column, text, invalid=invalids[column]))
    return fields.select(items)


def _strip_query_mark(texts: dict[str, str]) -> None:
    """Remove the leading '?' that ELFF's cs-uri-query keeps, because UrlQuery is the query without it."""
    if "UrlQuery" in texts:
        texts["UrlQuery"] = f"nullif(regexp_replace({texts['UrlQuery']}, '^\\?', ''), '')"


# Keys of the URL scheme in exports that log the URL in parts (ELFF cs-uri-scheme).
_SCHEME_NAMES = {"cs_uri_scheme", "cs-uri-scheme"}


def _url_from_parts(texts: dict[str, str], scheme: str) -> str:
    """Return SQL that builds Url from host, port, path and query, for exports that log the URL in parts.

    A CONNECT request becomes its target, host:port, as Squid logs it. A port
    is left out when it is the scheme's default.
    """
    host = texts["DstHostname"]
    path = texts["UrlPath"]
    port = texts.get("DstPortNumber", "NULL")
    query = texts.get("UrlQuery", "NULL")
    method = texts.get("HttpRequestMethod", "NULL")
    default_port = f"(lower({scheme}) = 'http' AND {port} = '80') OR (lower({scheme}) = 'https' AND {port} = '443')"
    return (
        f"CASE WHEN {host} IS NULL THEN NULL "
        f"WHEN upper({method}) = 'CONNECT' THEN {host} || coalesce(':' || {port}, '') "
        f"ELSE coalesce(lower({scheme}), 'http') || '://' || {host} "
        f"|| CASE WHEN {port} IS NULL OR {default_port} THEN '' ELSE ':' || {port} END "
        f"|| coalesce({path}, '/') || coalesce('?' || {query}, '') END"
    )


def _coalesce(texts: list[str]) -> str:
    return texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"


# Vendors whose CEF "out" (CommonSecurityLog SentBytes) counts the request, the bytes
# from client to server. Microsoft's ASIM parser for Zscaler ZIA reads SentBytes as
# SrcBytes. NOTE: other vendors may do the same; only Zscaler is listed because only
# its mapping was checked.
OUT_IS_REQUEST_VENDORS = ("Zscaler",)


def _swap_bytes_by_vendor(texts: dict[str, str], keys: list[str]) -> None:
    """Swap SrcBytes and DstBytes read from CommonSecurityLog columns for the vendors in OUT_IS_REQUEST_VENDORS."""
    lowered = {key.strip().lower() for key in keys}
    if not {"sentbytes", "receivedbytes", "devicevendor"} <= lowered:
        return
    if "SrcBytes" not in texts or "DstBytes" not in texts or "EventVendor" not in texts:
        return
    vendors = ", ".join(quote_literal(vendor) for vendor in OUT_IS_REQUEST_VENDORS)
    swapped = f"{texts['EventVendor']} IN ({vendors})"
    source, destination = texts["SrcBytes"], texts["DstBytes"]
    texts["SrcBytes"] = f"CASE WHEN {swapped} THEN {destination} ELSE {source} END"
    texts["DstBytes"] = f"CASE WHEN {swapped} THEN {source} ELSE {destination} END"


class WebSessionJson(LineFormat):
    """JSON Lines with WebSession columns or Sigma proxy field names as keys."""

    name = "jsonl"
    title = "JSON Lines with WebSession or Sigma proxy field names"

    def detect(self, sample: list[str]) -> float:
        records = json_objects(sample)
        if not records:
            return 0.0
        scores = []
        for record in records:
            if record is None:
                scores.append(0.0)
                continue
            mapped = {column_for_key(key) for key in record} - {None}
            scores.append(min(1.0, len(mapped) / 3))
        return 0.85 * sum(scores) / len(scores)

    def select_sql(self) -> str:
        return json_select([])

    def parser(self) -> LineParser:
        return _JsonParser()


def sniff_delimiter(header: str) -> str:
    counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t", "|")}
    return max(counts, key=lambda delimiter: counts[delimiter])


class CsvDialect:
    """RE2 patterns that read CSV as Python's csv module does with its default dialect.

    A field that starts with a quote is quoted: ``""`` inside it stands for one
    quote, and it ends at the first other quote. Text between that quote and
    the next delimiter is appended to the value as it is. Any other field is
    unquoted and runs to the next delimiter, keeping its quotes as text.
    """

    def __init__(self, delimiter: str) -> None:
        escaped = "\\t" if delimiter == "\t" else "\\" + delimiter
        body = '(?:[^"]|"")*'
        # The text after a closing quote. It cannot start with a quote, which
        # would make the two quotes one escaped quote.
        after_close = f'(?:[^"{escaped}][^{escaped}]*)?'
        field = f'(?:"{body}"{after_close}|[^"{escaped}][^{escaped}]*|)'
        # Matches a line that starts a record and ends inside a quoted field.
        self.opens_record = f'^(?:{field}{escaped})*"{body}$'
        # Matches a line that starts inside a quoted field and ends inside the same or a later one.
        self.stays_open = f'^{body}(?:"{after_close}(?:{escaped}{field})*{escaped}"{body})?$'
        # One field with the delimiter before it. A record is matched with a
        # delimiter put in front, so that no match is empty: after an empty
        # match at the start, regexp_extract_all would skip the next delimiter.
        self.field = f'{escaped}("{body}"{after_close}|[^{escaped}]*)'


# The old private name, which other format modules import.
_CsvDialect = CsvDialect

# A quoted field as the split yields it, with the quoted text and the text after the closing quote.
_QUOTED_FIELD = '(?s)^"((?:[^"]|"")*)"(.*)$'


def unquote_sql(field: str) -> str:
    """Return the SQL for the value of one split CSV field.

    The common case, a quoted field with nothing after its closing quote,
    needs no regular expression.
    """
    inner = f"{field}[2:-2]"
    return (
        f"CASE WHEN NOT starts_with({field}, '\"') THEN {field} "
        f"WHEN len({field}) >= 2 AND ends_with({field}, '\"') AND NOT contains(replace({inner}, '\"\"', ''), '\"') "
        f"THEN replace({inner}, '\"\"', '\"') "
        f"WHEN regexp_matches({field}, '{_QUOTED_FIELD}') "
        f"THEN replace(regexp_extract({field}, '{_QUOTED_FIELD}', 1), '\"\"', '\"') "
        f"|| regexp_extract({field}, '{_QUOTED_FIELD}', 2) "
        f"ELSE {field} END"
    )


def _first_non_blank(lines: pa.ChunkedArray) -> str | None:
    non_blank_lines = lines.filter(pc.invert(pc.equal(pc.utf8_trim_whitespace(lines), "")))
    return non_blank_lines[0].as_py() if len(non_blank_lines) else None


class _CsvParser(LineParser):
    """Joins CSV records that span lines, reads the header row, then parses by position.

    A record keeps the number of its first line, and its later lines are
    counted as skipped. Blank lines outside quoted fields are skipped too, so
    parsed + rejected + skipped is the number of lines read.
    """

    def __init__(self, inner_formats: Callable[[], list[LineFormat]]) -> None:
        super().__init__(select_sql="")
        self._inner_formats = inner_formats
        self.header: list[str] | None = None
        self.delimiter = ","
        self.dialect: CsvDialect | None = None
        self.carry: pa.Table | None = None
        self.raw_data = RawDataParser(inner_formats)

    def segments(self, table: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        if self.carry is not None:
            table = pa.concat_tables([self.carry, table])
            self.carry = None
        if self.dialect is None:
            # The delimiter is needed to join records, so it is sniffed from
            # the first line of the header row.
            first = _first_non_blank(table["RawEvent"])
            if first is None:
                self.skipped_lines += table.num_rows
                return
            self.delimiter = sniff_delimiter(first)
            self.dialect = CsvDialect(self.delimiter)

        records = self._join_records(table, connection)
        if not records.num_rows:
            return

        if self.header is None:
            first = records["RawEvent"][0].as_py()
            self.header = next(csv.reader([first], delimiter=self.delimiter))
            self.skipped_lines += 1
            records = records.slice(1)
            if not records.num_rows:
                return

        split = self._split_sql()
        if _RAW_DATA not in [name.strip().lower() for name in self.header]:
            yield records, self._record_select(split)
            return

        yield from self._unwrap_raw_data(records, split, connection)

    def finish(self, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        before = self.raw_data.skipped_lines
        yield from self.raw_data.finish(connection)
        self.skipped_lines += self.raw_data.skipped_lines - before
        if self.carry is None or not self.carry.num_rows:
            return
        first = self.carry["SourceLine"][0].as_py()
        held, self.carry = self.carry, None
        reason = quote_literal(
            f"unterminated quoted field: the CSV record that starts on line {first} never closes its quote"
        )
        yield held, f"SELECT SourceLine, RawEvent, {reason} AS _reject FROM lines"

    def _continuation_lines(self, lines: pa.ChunkedArray) -> tuple[np.ndarray | None, int | None]:
        """Find the lines that continue a record begun on an earlier line.

        Returns a mask of those lines, or None when every line starts a record,
        and the index of the first line of a record still open at the end of
        ``lines``, or None. Regular expressions classify every line, so Python
        loops only once per record that spans lines.
        """
        assert self.dialect is not None
        opens = pc.match_substring_regex(lines, self.dialect.opens_record).to_numpy()
        open_rows = np.flatnonzero(opens)
        if not len(open_rows):
            return None, None
        stays_open = pc.match_substring_regex(lines, self.dialect.stays_open).to_numpy()
        close_rows = np.flatnonzero(~stays_open)

        continuation = np.zeros(len(lines), dtype=bool)
        position = 0
        while True:
            next_open = np.searchsorted(open_rows, position)
            if next_open == len(open_rows):
                return continuation, None
            start = int(open_rows[next_open])
            next_close = np.searchsorted(close_rows, start + 1)
            if next_close == len(close_rows):
                continuation[start + 1 :] = True
                return continuation, start
            end = int(close_rows[next_close])
            continuation[start + 1 : end + 1] = True
            position = end + 1

    def _join_records(self, table: pa.Table, connection: duckdb.DuckDBPyConnection) -> pa.Table:
        """Return one row per CSV record, leaving out blank lines between records.

        Lines inside a quoted field are joined with LF, whatever the file's line
        endings, and blank ones are kept. A record still open at the end of the
        batch waits in ``carry`` for the next batch.
        """
        continuation, open_start = self._continuation_lines(table["RawEvent"])
        if open_start is not None:
            # NOTE: a quote that never closes keeps the rest of the file here,
            # in memory, until finish() rejects those lines.
            self.carry = table.slice(open_start)
            table = table.slice(0, open_start)
            continuation = continuation[:open_start]

        blank = pc.equal(pc.utf8_trim_whitespace(table["RawEvent"]), "").to_numpy()
        if continuation is not None:
            blank &= ~continuation
        if blank.any():
            self.skipped_lines += int(blank.sum())
            table = table.filter(pa.array(~blank))
            if continuation is not None:
                continuation = continuation[~blank]
        if continuation is None or not continuation.any():
            return table

        self.skipped_lines += int(continuation.sum())
        record_ids = pa.array(np.cumsum(~continuation))
        grouped = table.append_column("record", record_ids)
        connection.register("ph_csv_lines", grouped)
        try:
            return query_arrow(
                connection,
                "SELECT min(SourceLine) AS SourceLine, string_agg(RawEvent, chr(10) ORDER BY SourceLine) AS RawEvent "
                "FROM ph_csv_lines GROUP BY record ORDER BY SourceLine",
            )
        finally:
            connection.unregister("ph_csv_lines")

    def _split_sql(self) -> str:
        """Return SQL that splits RawEvent into the list ``f`` of CSV field values, as Python's csv module reads them."""
        assert self.dialect is not None
        record = f"{quote_literal(self.delimiter)} || RawEvent"
        pattern = quote_literal(self.dialect.field)
        return f"list_transform(regexp_extract_all({record}, {pattern}, 1), lambda x: {unquote_sql('x')}) AS f"

    def _field_count_reject(self) -> str:
        """Return the SQL reason for a record whose field count differs from the header row, else NULL."""
        count = len(self.header or [])
        return f"CASE WHEN len(f) <> {count} THEN 'has ' || len(f) || ' CSV fields but the header row names {count}' END"

    def _record_select(self, split: str) -> str:
        header = self.header or []
        items = ["SourceLine", "RawEvent", f"{self._field_count_reject()} AS _reject"]
        texts: dict[str, str] = {}
        for column, names in _columns_by_key(header).items():
            values = [_cef_unescaped(name, _csv_value(f"f[{header.index(name) + 1}]")) for name in names]
            texts[column] = f"coalesce({', '.join(values)})"
        _swap_bytes_by_vendor(texts, header)
        _strip_query_mark(texts)
        for column, text in texts.items():
            items.extend(_typed_items(column, text))
        select_list = ",\n            ".join(items)
        return f"SELECT\n            {select_list}\n        FROM (SELECT SourceLine, RawEvent, {split} FROM lines)"

    def _unwrap_raw_data(
        self, records: pa.Table, split: str, connection: duckdb.DuckDBPyConnection
    ) -> Iterator[tuple[pa.Table, str]]:
        header = self.header or []
        position = [name.strip().lower() for name in header].index(_RAW_DATA) + 1
        connection.register("ph_csv_records", records)
        try:
            # Custom-log agents keep the line terminator in RawData, so it is removed here.
            split_records = query_arrow(
                connection,
                f"SELECT SourceLine, RawEvent, {self._field_count_reject()} AS _reject, "
                f"regexp_replace(coalesce(f[{position}], ''), '[\\r\\n]+$', '') AS RawData "
                f"FROM (SELECT SourceLine, RawEvent, {split} FROM ph_csv_records) ORDER BY SourceLine",
            )
        finally:
            connection.unregister("ph_csv_records")

        malformed = pc.is_valid(split_records["_reject"])
        if pc.any(malformed).as_py():
            yield split_records.filter(malformed).select(["SourceLine", "RawEvent", "_reject"]), (
                "SELECT SourceLine, RawEvent, _reject FROM lines"
            )
            split_records = split_records.filter(pc.invert(malformed))
        inner = pa.table({"SourceLine": split_records["SourceLine"], "RawEvent": split_records["RawData"]})
        if not inner.num_rows:
            return

        before = self.raw_data.skipped_lines
        yield from self.raw_data.parse(inner, connection)
        self.skipped_lines += self.raw_data.skipped_lines - before
        if not self.raw_data.inner_names:
            self.error = "the RawData column holds lines of no known format"
        else:
            self.error = None

    @property
    def inner_name(self) -> str | None:
        """The formats of the RawData lines, joined by commas, or None when there is no RawData column."""
        return self.raw_data.inner_name


class WebSessionCsv(LineFormat):
    """CSV with WebSession columns or Sigma proxy field names in its header row."""

    name = "csv"
    title = "CSV with WebSession or Sigma proxy field names (RawData exports unwrapped)"

    def __init__(self, inner_formats: Callable[[], list[LineFormat]] | None = None) -> None:
        self._inner_formats = inner_formats or (lambda: [])

    def detect(self, sample: list[str]) -> float:
        lines = non_blank(sample)
        if not lines:
            return 0.0
        header_line = lines[0]
        delimiter = sniff_delimiter(header_line)
        if header_line.count(delimiter) == 0:
            return 0.0
        header = next(csv.reader([header_line], delimiter=delimiter))
        names = [name.strip().lower() for name in header]
        mapped = {column_for_key(name) for name in header} - {None}
        if _RAW_DATA in names:
            return 0.9
        if len(mapped) >= 2:
            return min(0.9, 0.5 + 0.1 * len(mapped))
        return 0.0

    def select_sql(self) -> str:
        return "SELECT SourceLine, RawEvent, 'CSV data before its header row' AS _reject FROM lines"

    def parser(self) -> LineParser:
        return _CsvParser(self._inner_formats)
