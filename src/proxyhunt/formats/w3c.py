"""The W3C extended log format: Microsoft IIS, Blue Coat / Symantec ProxySG ELFF and Amazon CloudFront.

A W3C file describes itself in ``#`` directive lines: ``#Fields:`` names the
fields of the lines after it, ``#Software:``, ``#Version:``, ``#Date:``,
``#Start-Date:``, ``#End-Date:`` and ``#Remark:`` describe the log. Every
directive is counted as a header line. A ``#Fields:`` line may come again in
the middle of a file (IIS starts a new header when it restarts, and rotated
files get concatenated), and the lines after it are read with its layout.

Fields are separated by whitespace: one space for IIS, a tab for CloudFront,
and runs of spaces in some ProxySG exports. A field containing spaces is
quoted, and ``""`` inside it is one quote. ``-`` (also quoted, ``"-"``) is a
missing value. ``date`` and ``time`` are UTC, as the W3C draft specifies.

Decoding that depends on the writer:

- IIS, recognized by its ``#Software:`` line, writes the spaces of
  ``cs(User-Agent)`` and ``cs(Cookie)`` as ``+``. They are turned back into
  spaces.
- CloudFront, recognized by its ``x-edge-*`` fields, percent-encodes
  ``cs(User-Agent)`` and sometimes encodes it twice. It is decoded once.
- ProxySG writes ``s-ip`` for the proxy itself, so there the destination
  address comes from ``r-ip`` or ``s-supplier-ip`` only. For IIS, the web
  server is the destination, so ``s-ip`` and ``s-port`` fill DstIpAddr and
  DstPortNumber.

Every other value is stored as logged. RawEvent keeps the line as logged.

ProxySG can also send its access log without the header lines, as syslog
forwarders do. Format ``proxysg`` reads such lines in the field order of
ProxySG's ``main`` format (24 fields) or ``bcreportermain_v1`` format (27
fields), the latter optionally followed by the three fields that Microsoft
Sentinel's ProxySG connector appends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from proxyhunt.formats.base import LineFormat, LineParser, match_ratio, non_blank
from proxyhunt.formats.sql import quote_literal

# A field: a quoted string with "" for a quote inside, or a run of other non-space characters.
_TOKEN = r'"(?:[^"]|"")*"|[^\s"]\S*'
# A whole line of such fields. A line with an unbalanced quote does not match.
_TOKEN_LINE = r'\s*(?:(?:"(?:[^"]|"")*"|[^\s"]\S*)(?:\s+|$))*'

_DETECT_TOKEN = re.compile(_TOKEN)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(?:\.\d+)?$")

_VALUE_MACRO = """CREATE OR REPLACE MACRO ph_w3c_value(t) AS
    CASE WHEN t IS NULL OR t = '-' OR t = '"-"' THEN NULL
         WHEN len(t) >= 2 AND starts_with(t, '"') AND ends_with(t, '"') THEN replace(t[2:-2], '""', '"')
         ELSE t END"""

# ProxySG's bcreportermain_v1 access log format, and the three fields that the
# format string of Microsoft Sentinel's ProxySG connector adds after it.
BCREPORTERMAIN_V1 = (
    "date time time-taken c-ip cs-username cs-auth-group x-exception-id sc-filter-result cs-categories "
    "cs(Referer) sc-status s-action cs-method rs(Content-Type) cs-uri-scheme cs-host cs-uri-port cs-uri-path "
    "cs-uri-query cs-uri-extension cs(User-Agent) s-ip sc-bytes cs-bytes x-virus-id "
    "x-bluecoat-application-name x-bluecoat-application-operation"
).split()
SENTINEL_PROXYSG = BCREPORTERMAIN_V1 + ["cs-uri-port", "x-cs-client-ip-country", "cs-threat-risk"]
# ProxySG's default access log format, main.
PROXYSG_MAIN = (
    "date time time-taken c-ip sc-status s-action sc-bytes cs-bytes cs-method cs-uri-scheme cs-host cs-uri-port "
    "cs-uri-path cs-uri-query cs-username cs-auth-group s-supplier-name rs(Content-Type) cs(Referer) "
    "cs(User-Agent) sc-filter-result cs-categories x-virus-id s-ip"
).split()
# Field count -> position of sc-status, for detection.
_HEADERLESS_STATUS = {len(PROXYSG_MAIN): 4, len(BCREPORTERMAIN_V1): 10, len(SENTINEL_PROXYSG): 10}

# WebSession column -> W3C fields that fill it, the first present one winning.
# Identifiers are compared in lower case, as IIS and ProxySG spell them differently.
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "SrcIpAddr": ("c-ip",),
    "SrcUsername": ("cs-username", "cs-userdn", "cs-user"),
    "SrcHostname": ("c-dns",),
    "DstHostname": ("x-host-header", "cs-host", "cs(host)"),
    "HttpRequestMethod": ("cs-method",),
    "HttpVersion": ("cs-version", "cs-protocol-version"),
    "UrlPath": ("cs-uri-stem", "cs-uri-path"),
    "UrlExtension": ("cs-uri-extension",),
    "HttpUserAgent": ("cs(user-agent)",),
    "HttpReferrer": ("cs(referer)", "cs(referrer)"),
    "HttpCookie": ("cs(cookie)",),
    "HttpContentType": ("rs(content-type)", "sc(content-type)"),
    "UrlCategory": ("cs-categories", "cs-category"),
}
NUMBER_FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "SrcPortNumber": (("c-port",), "INTEGER"),
    "HttpStatusCode": (("sc-status",), "INTEGER"),
    "SrcBytes": (("cs-bytes",), "BIGINT"),
    "DstBytes": (("sc-bytes",), "BIGINT"),
}
# Fields that name the proxy's or web server's own side; see the module docstring.
PROXY_DESTINATION_IP = ("r-ip", "s-supplier-ip")
PROXY_DESTINATION_PORT = ("cs-uri-port", "r-port")
SERVER_DESTINATION_IP = ("s-ip",)
SERVER_DESTINATION_PORT = ("s-port",)
# Fields that only a proxy writes: a file with one of them is read as a proxy log.
_PROXY_FIELDS = ("s-action", "sc-filter-result", "cs-uri-scheme", "s-supplier-ip", "r-ip")


class W3CLayout:
    """The fields of one ``#Fields:`` line and the writer of the file, turned into the ``SELECT`` that reads them."""

    def __init__(self, fields: list[str], software: str | None = None, header_date: str | None = None) -> None:
        self.fields = fields
        self.names = [field.lower() for field in fields]
        self.software = software or ""
        self.header_date = header_date
        self.is_iis = "internet information services" in self.software.lower()
        self.is_cloudfront = any(name.startswith("x-edge-") for name in self.names)
        self.is_proxy = any(
            name in _PROXY_FIELDS or name.startswith("x-bluecoat") for name in self.names
        ) or "sgos" in self.software.lower()

    def _value(self, *names: str) -> str | None:
        """Return the SQL of the first of ``names`` in the layout, or None."""
        texts = [f"w{self.names.index(name)}" for name in names if name in self.names]
        if not texts:
            return None
        return texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"

    def product(self) -> tuple[str | None, str | None]:
        """Return EventProduct and EventVendor as the fields and the #Software line reveal them."""
        if self.is_iis:
            return "IIS", "Microsoft"
        if self.is_cloudfront:
            return "CloudFront", "AWS"
        if self.is_proxy:
            return "ProxySG", "Broadcom"
        return None, None

    def select_items(self) -> list[str]:
        """Return the select items of the WebSession columns, over the values ``w0``, ``w1`` … of the fields."""
        items: list[str] = []
        for column, names in TEXT_FIELDS.items():
            value = self._value(*names)
            if value is None:
                continue
            if column in ("HttpUserAgent", "HttpCookie") and self.is_iis:
                # NOTE: IIS writes a "+" of the header itself as "+" too, so that one also becomes a space.
                value = f"replace({value}, '+', ' ')"
            if column == "HttpVersion":
                # The WebSession column contains the version alone, as in 1.1.
                value = f"regexp_replace({value}, '^HTTP/', '')"
            if column == "HttpUserAgent" and self.is_cloudfront:
                value = f"CASE WHEN contains({value}, '%') THEN coalesce(try(url_decode({value})), {value}) ELSE {value} END"
            items.append(f"{value} AS {column}")

        for column, (names, sql_type) in NUMBER_FIELDS.items():
            value = self._value(*names)
            if value is not None:
                typed = f"TRY_CAST({value} AS {sql_type})"
                if column == "HttpStatusCode":
                    # ProxySG writes status 0 for a request that got no response.
                    typed = f"nullif({typed}, 0)"
                raw = f"nullif({value}, '0')" if column == "HttpStatusCode" else value
                items += [f"{typed} AS {column}", f"{raw} AS _raw_{column}"]

        items += self._destination_items()
        items += self._url_items()
        items += self._time_items()

        action = self._value("sc-filter-result")
        code = self._value("s-action")
        if action or code:
            decisions = " OR ".join(f"coalesce({value}, '') ILIKE '%DENIED%'" for value in (action, code) if value)
            present = " OR ".join(f"{value} IS NOT NULL" for value in (action, code) if value)
            items.append(f"CASE WHEN {decisions} THEN 'Deny' WHEN {present} THEN 'Allow' END AS DvcAction")

        product, vendor = self.product()
        if product:
            items.append(f"{quote_literal(product)} AS EventProduct")
            items.append(f"{quote_literal(vendor or '')} AS EventVendor")
        return items

    def _destination_items(self) -> list[str]:
        ip_names = PROXY_DESTINATION_IP if self.is_proxy else PROXY_DESTINATION_IP + SERVER_DESTINATION_IP
        port_names = PROXY_DESTINATION_PORT if self.is_proxy else PROXY_DESTINATION_PORT + SERVER_DESTINATION_PORT
        items = []
        address = self._value(*ip_names)
        if address:
            items.append(f"{address} AS DstIpAddr")
        port = self._value(*port_names)
        if port:
            items += [f"TRY_CAST({port} AS INTEGER) AS DstPortNumber", f"{port} AS _raw_DstPortNumber"]
        return items

    def _url_items(self) -> list[str]:
        """Return Url and UrlQuery; Url is ``cs-uri`` or is put together from its parts."""
        query = self._value("cs-uri-query")
        items = []
        if query:
            # ProxySG writes the query with its leading "?", IIS without it.
            items.append(f"nullif(ltrim({query}, '?'), '') AS UrlQuery")
        url = self._value("cs-uri")
        if url:
            return items + [f"{url} AS Url"]

        path = self._value("cs-uri-stem", "cs-uri-path")
        host = self._value("x-host-header", "cs-host", "cs(host)")
        scheme = self._value("cs-uri-scheme")
        port = self._value("cs-uri-port")
        method = self._value("cs-method")
        query_part = "''"
        if query:
            query_part = f"CASE WHEN nullif(ltrim({query}, '?'), '') IS NOT NULL THEN '?' || ltrim({query}, '?') ELSE '' END"
        if path is None and host is None:
            return items

        cases = []
        if host and port and (method or scheme):
            # A CONNECT tunnel or ProxySG's "tcp" scheme: the target is host:port.
            tunnel = " OR ".join(
                condition
                for condition in (
                    f"upper({method}) = 'CONNECT'" if method else None,
                    f"lower({scheme}) = 'tcp'" if scheme else None,
                )
                if condition
            )
            cases.append(f"WHEN {tunnel} THEN {host} || ':' || {port}")
        if scheme and host:
            default_port = _port_suffix(scheme, port) if port else "''"
            cases.append(
                f"WHEN {scheme} IS NOT NULL AND {host} IS NOT NULL "
                f"THEN lower({scheme}) || '://' || {host} || {default_port} || coalesce({path or 'NULL'}, '/') || {query_part}"
            )
        if path:
            cases.append(f"WHEN {path} IS NOT NULL THEN {path} || {query_part}")
        if not cases:
            return items
        return items + [f"CASE {' '.join(cases)} END AS Url"]

    def _time_items(self) -> list[str]:
        time = self._value("time")
        date = self._value("date")
        if time is None:
            return []
        if date is None and self.header_date:
            # A file without a date field takes the date from its #Date directive.
            date = quote_literal(self.header_date.split()[0])
        if date is None:
            return []
        text = f"{date} || ' ' || {time}"
        return [f"TRY_CAST({text} AS TIMESTAMP) AS TimeGenerated", f"{text} AS _raw_TimeGenerated"]


def _port_suffix(scheme: str, port: str) -> str:
    """Return the SQL of ``:port`` for a URL, empty for the default port of the scheme."""
    default = f"({port} = '80' AND lower({scheme}) = 'http') OR ({port} = '443' AND lower({scheme}) = 'https')"
    return f"CASE WHEN {port} IS NULL OR {default} THEN '' ELSE ':' || {port} END"


def _items_by_alias(items: list[str]) -> dict[str, str]:
    """Return select items ``expression AS alias`` as a mapping from alias to expression."""
    by_alias = {}
    for item in items:
        expression, alias = item.rsplit(" AS ", 1)
        by_alias[alias] = expression
    return by_alias


def layouts_select_sql(layouts: list[W3CLayout], count_reason: str | None = None, repair_sql: str = "f") -> str:
    """Return the ``SELECT`` that reads ``lines`` in the first of ``layouts``.

    A line whose field count differs from the first layout is read with the
    first later layout that has its count. The parser passes the earlier
    ``#Fields:`` lines of the file there, so that lines of concatenated logs
    whose header lines were cut still find their layout. Other lines are
    rejected with ``count_reason``, SQL that by default names the count of
    the first layout. ``repair_sql`` is SQL over the field list ``f`` that
    returns it mended.
    """
    current = len(layouts[0].fields)
    count_reason = count_reason or f"'has ' || len(f) || ' fields but the #Fields header names {current}'"
    by_count: dict[int, dict[str, str]] = {}
    for layout in layouts:
        by_count.setdefault(len(layout.fields), _items_by_alias(layout.select_items()))
    counts = ", ".join(str(count) for count in by_count)

    aliases = list(dict.fromkeys(alias for items in by_count.values() for alias in items))
    items = [
        "SourceLine",
        "RawEvent",
        f"CASE WHEN NOT regexp_full_match(RawEvent, {quote_literal(_TOKEN_LINE)}) "
        "THEN 'a quoted field has no closing quote' "
        f"WHEN len(f) NOT IN ({counts}) THEN {count_reason} END AS _reject",
    ]
    for alias in aliases:
        if len(by_count) == 1:
            items.append(f"{by_count[current][alias]} AS {alias}")
            continue
        cases = " ".join(
            f"WHEN {count} THEN {expressions[alias]}" for count, expressions in by_count.items() if alias in expressions
        )
        items.append(f"CASE len(f) {cases} END AS {alias}")

    width = max(by_count)
    values = ", ".join(f"ph_w3c_value(f[{position + 1}]) AS w{position}" for position in range(width))
    select_list = ",\n            ".join(items)
    return f"""
        SELECT
            {select_list}
        FROM (
            SELECT SourceLine, RawEvent, f, {values}
            FROM (
                SELECT SourceLine, RawEvent, {repair_sql} AS f
                FROM (SELECT SourceLine, RawEvent, regexp_extract_all(RawEvent, {quote_literal(_TOKEN)}) AS f FROM lines)
            )
        )
        """


class _W3CParser(LineParser):
    """Follows the directive lines of a W3C file while its batches are parsed."""

    def __init__(self, headerless_sql: str | None = None) -> None:
        super().__init__(select_sql="")
        # The SELECT for lines before any #Fields: directive; None rejects them.
        self.headerless_sql = headerless_sql
        # Every #Fields: layout of the file so far, the current one first.
        self.layouts: list[W3CLayout] = []
        self.software: str | None = None
        self.header_date: str | None = None

    def segments(self, table: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        table = self._drop_blank(table)
        directive_rows = pc.indices_nonzero(pc.starts_with(table["RawEvent"], "#")).to_pylist()

        start = 0
        for row in directive_rows:
            if row > start:
                yield table.slice(start, row - start), self._current_sql()
            self._read_directive(table["RawEvent"][row].as_py())
            self.skipped_lines += 1
            start = row + 1
        if start < table.num_rows:
            yield table.slice(start), self._current_sql()

    def _read_directive(self, line: str) -> None:
        name, _, value = line[1:].partition(":")
        name = name.strip().lower()
        value = value.strip()
        if name == "software":
            self.software = value
        elif name in ("date", "start-date"):
            self.header_date = value
        elif name == "fields":
            self.layouts.insert(0, W3CLayout(value.split(), self.software, self.header_date))

    def _current_sql(self) -> str:
        if not self.layouts and self.headerless_sql is not None:
            return self.headerless_sql
        if not self.layouts:
            return (
                "SELECT SourceLine, RawEvent, 'W3C data line before any #Fields: directive; the #Fields: line "
                "names the columns, so pass the file with its header lines' AS _reject FROM lines"
            )
        return layouts_select_sql(self.layouts)


def _fields_directive(sample: list[str]) -> list[str] | None:
    for line in sample:
        if line.lower().startswith("#fields:"):
            return line.split(":", 1)[1].split()
    return None


class _W3CFormat(LineFormat):
    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        connection.execute(_VALUE_MACRO)


class W3CExtended(_W3CFormat):
    """W3C extended log format with ``#Fields:`` directives (IIS, ProxySG ELFF, CloudFront)."""

    name = "w3c"
    title = "W3C extended log format (IIS, Blue Coat ProxySG ELFF, CloudFront)"

    def detect(self, sample: list[str]) -> float:
        fields = _fields_directive(sample)
        if not fields:
            return 0.0
        names = {field.lower() for field in fields}
        if not names & {"date", "time", "c-ip", "cs-uri-stem", "cs-uri", "cs-method", "cs(user-agent)"}:
            return 0.3
        # The directives are certain; the data lines must also split into the named fields.
        data = [line for line in non_blank(sample) if not line.startswith("#")]
        if not data:
            return 0.9
        return 0.5 + 0.5 * match_ratio(data, lambda line: line.count(" ") + line.count("\t") >= len(fields) - 1)

    def select_sql(self) -> str:
        return _W3CParser()._current_sql()

    def parser(self) -> LineParser:
        return _W3CParser()


# In bcreportermain_v1, rs(Content-Type) is field 14 and cs-uri-scheme field 15.
# Some forwarders and sanitizers replace the ";" of "text/html;charset=UTF-8" by
# a space and write the field unquoted, so it splits in two. The halves are
# joined back when the line has one field too many, the second half is a
# parameter and a scheme follows it.
_CONTENT_TYPE_REPAIR = f"""CASE
    WHEN len(f) IN ({len(BCREPORTERMAIN_V1) + 1}, {len(SENTINEL_PROXYSG) + 1})
         AND contains(f[15], '=') AND regexp_full_match(f[16], '[A-Za-z][A-Za-z0-9+.-]*')
    THEN list_concat(f[1:13], [f[14] || ' ' || f[15]], f[16:])
    ELSE f END"""


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*$")


def _repair_content_type(fields: list[str]) -> list[str]:
    """Join a split content type as ``_CONTENT_TYPE_REPAIR`` does, for detection."""
    if len(fields) in (len(BCREPORTERMAIN_V1) + 1, len(SENTINEL_PROXYSG) + 1):
        if "=" in fields[14] and _SCHEME.match(fields[15]):
            return fields[:13] + [fields[13] + " " + fields[14]] + fields[15:]
    return fields


class ProxySgHeaderless(_W3CFormat):
    """Blue Coat ProxySG access log lines without header lines, in a field order that ProxySG predefines.

    The field count picks the layout: 24 fields are ProxySG's ``main`` format,
    27 its ``bcreportermain_v1``, and 30 bcreportermain_v1 with the fields
    that Microsoft Sentinel's ProxySG connector appends.
    """

    name = "proxysg"
    title = "Blue Coat ProxySG access log without #Fields header (main, bcreportermain_v1, Sentinel connector)"
    product = "ProxySG"
    vendor = "Broadcom"

    def detect(self, sample: list[str]) -> float:
        def matches(line: str) -> bool:
            fields = _repair_content_type(_DETECT_TOKEN.findall(line))
            status = _HEADERLESS_STATUS.get(len(fields))
            return (
                status is not None
                and bool(_DATE.match(fields[0]))
                and bool(_TIME.match(fields[1]))
                and fields[2].isdigit()
                and (fields[status].isdigit() or fields[status] == "-")
            )

        lines = [line for line in non_blank(sample) if not line.startswith("#")]
        return 0.9 * match_ratio(lines, matches)

    def select_sql(self) -> str:
        layouts = [W3CLayout(fields, software="SGOS") for fields in (SENTINEL_PROXYSG, BCREPORTERMAIN_V1, PROXYSG_MAIN)]
        reason = (
            f"'has ' || len(f) || ' fields, but a ProxySG line without a #Fields header must have the "
            f"{len(PROXYSG_MAIN)} fields of the main format, the {len(BCREPORTERMAIN_V1)} of bcreportermain_v1 "
            f"or the {len(SENTINEL_PROXYSG)} of the Sentinel connector format; add the #Fields: line and read it as w3c'"
        )
        return layouts_select_sql(layouts, count_reason=reason, repair_sql=_CONTENT_TYPE_REPAIR)

    def parser(self) -> LineParser:
        # Directive lines are still followed, so a file that does start with
        # #Fields: is read with its own layout.
        return _W3CParser(headerless_sql=self.select_sql())
