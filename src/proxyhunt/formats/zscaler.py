"""Zscaler Internet Access web logs as an NSS feed writes them: name=value, JSON, CSV or tab-separated.

A feed's output format is a template of NSS fields such as ``%s{login}`` or
``%s{ua}``. The reader accepts the NSS field names (``login``, ``ua``, ``eurl``,
``cip`` …) and the names of the common SIEM templates (``user``, ``useragent``,
``url``, ``ClientIP`` …), wherever names are in the data:

- name=value: ``key=value`` pairs separated by tabs, as in the Splunk template,
  optionally after a syslog prefix;
- JSON: one object per line, the fields at the top level or inside ``event``
  (``{"sourcetype": "zscalernss-web", "event": {...}}``);
- CSV or tab-separated with a header row of field names.

A CSV or tab-separated feed without a header row is read as the default web log
template that Zscaler documents, ``DEFAULT_TEMPLATE``, and a warning is
logged. NSS writes ``None``, ``NA`` and ``N/A`` for a value it does not have, so
they are NULL. NSS writes ``%s{time}`` in the feed's time zone without naming
it, so that time is taken as UTC.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from proxyhunt.formats.base import LineFormat, LineParser, json_objects, non_blank
from proxyhunt.formats.cef import register_macros
from proxyhunt.formats.sql import quote_literal
from proxyhunt.formats.websession import CsvDialect, unquote_sql

# The fields of the sample web log in Zscaler's "NSS Feed Output Format: Web Logs"
# page, in order: the default CSV template.
DEFAULT_TEMPLATE = (
    "time", "login", "proto", "eurl", "action", "appname", "appclass", "reqsize", "respsize",
    "stime", "ctime", "urlclass", "urlsupercat", "urlcat", "malwarecat", "threatname", "riskscore",
    "dlpeng", "dlpdict", "location", "dept", "cip", "sip", "reqmethod", "respcode", "ua", "ereferer",
    "ruletype", "rulelabel", "contenttype", "unscannabletype", "deviceowner", "devicehostname",
    "keyprotectiontype",
)

# Field names per column, lower-cased: NSS names first, then SIEM template names.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "SrcUsername": ("login", "ologin", "user"),
    "SrcIpAddr": ("cip", "clientip", "clientinternalip"),
    "DstIpAddr": ("sip", "serverip"),
    "Url": ("eurl", "url"),
    "DstHostname": ("ehost", "host", "hostname"),
    "HttpRequestMethod": ("reqmethod", "requestmethod"),
    "HttpStatusCode": ("respcode", "status", "statuscode"),
    "HttpUserAgent": ("ua", "useragent"),
    "HttpReferrer": ("ereferer", "referer", "refererurl"),
    "HttpContentType": ("contenttype",),
    "SrcBytes": ("reqsize", "requestsize"),
    "DstBytes": ("respsize", "responsesize"),
    "DvcAction": ("action",),
    "UrlCategory": ("urlcat", "urlcategory"),
}
_TIME_NAMES = ("epochtime", "time", "datetime")
_TYPES = {"HttpStatusCode": "INTEGER", "SrcBytes": "BIGINT", "DstBytes": "BIGINT"}
_KNOWN_NAMES = {name for names in FIELD_NAMES.values() for name in names} | set(_TIME_NAMES)
# Names that Zscaler web logs use and other proxy logs rarely do. A header, record or
# name=value line needs two of them to count as Zscaler.
_TELLTALE_NAMES = {
    "eurl", "ehost", "urlcat", "urlsupercat", "urlclass", "reqmethod", "respcode", "cip", "sip", "ua",
    "reqsize", "respsize", "appclass", "malwarecat", "dlpeng", "ruletype", "rulelabel", "urlsupercategory",
    "threatcategory", "clientpublicip", "pagerisk", "transactionsize", "dlpengine", "unscannabletype",
    "clienttranstime", "servertranstime", "refererurl", "keyprotectiontype", "urlcategory", "serverip",
    "clientip", "requestmethod", "requestsize", "responsesize",
}
_NSS_TIME = re.compile(r"^\w{3} \w{3} +\d{1,2} \d{2}:\d{2}:\d{2} \d{4}$")
_KEY_VALUE = re.compile(r"(?:^|\t)([A-Za-z_]+)=")
_PLACEHOLDERS = "('', '-', 'None', 'NA', 'N/A', 'null')"
_VENDOR = "Zscaler"
_PRODUCT = "Zscaler Internet Access"


def _key_value_names(line: str) -> set[str]:
    return {name.lower() for name in _KEY_VALUE.findall(line)}


def _header_names(line: str) -> list[str] | None:
    delimiter = "\t" if line.count("\t") >= line.count(",") else ","
    names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter))]
    return names if len(set(names) & _TELLTALE_NAMES) >= 2 and len(set(names) & _KNOWN_NAMES) >= 3 else None


def _is_headerless_record(line: str) -> bool:
    for delimiter in (",", "\t"):
        fields = next(csv.reader([line], delimiter=delimiter))
        if len(fields) == len(DEFAULT_TEMPLATE) and _NSS_TIME.match(fields[0].strip()):
            return True
    return False


def _json_record(record: dict | None) -> dict | None:
    if record is None:
        return None
    event = record.get("event")
    return event if isinstance(event, dict) else record


def classify(line: str) -> str | None:
    """Return the feed output type of one line: ``json``, ``key-value``, ``header``, ``headerless`` or None."""
    stripped = line.strip()
    if stripped.startswith("{"):
        [record] = json_objects([stripped]) or [None]
        event = _json_record(record)
        if event is None:
            return None
        names = {key.lower() for key in event}
        sourcetype = str(record.get("sourcetype", "")) if record else ""
        if sourcetype.startswith("zscalernss-web") or len(names & _TELLTALE_NAMES) >= 2:
            return "json"
        return None
    if len(_key_value_names(line) & _TELLTALE_NAMES) >= 2:
        return "key-value"
    if _header_names(line) is not None:
        return "header"
    if _is_headerless_record(line):
        return "headerless"
    return None


class ZscalerNss(LineFormat):
    """Zscaler NSS web log feed: name=value, JSON, CSV or tab-separated."""

    name = "zscaler"
    title = "Zscaler NSS web log feed (name=value, JSON, CSV or tab-separated)"
    product = _PRODUCT
    vendor = _VENDOR

    def detect(self, sample: list[str]) -> float:
        lines = non_blank(sample)[:50]
        if not lines:
            return 0.0
        if classify(lines[0]) == "header":
            return 0.9
        kinds = [classify(line) for line in lines]
        return 0.92 * sum(1 for kind in kinds if kind is not None) / len(kinds)

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        register_macros(connection)

    def select_sql(self) -> str:
        return _select(_key_value_pairs())

    def parser(self) -> LineParser:
        return _ZscalerParser()


def _key_value_pairs() -> str:
    """SQL for the keys ``k`` and values ``v`` of a tab-separated name=value line."""
    return (
        "SELECT SourceLine, RawEvent, "
        "list_transform(items, lambda i: lower(regexp_extract(i, '([A-Za-z_]+)=', 1))) AS k, "
        "list_transform(items, lambda i: regexp_extract(i, '^[^=]*?[A-Za-z_]+=(.*)$', 1)) AS v, "
        "len(list_filter(items, lambda i: regexp_matches(i, '[A-Za-z_]+='))) = 0 AS unreadable "
        "FROM (SELECT SourceLine, RawEvent, str_split(RawEvent, chr(9)) AS items FROM lines)"
    )


def _json_pairs() -> str:
    """SQL for the keys and values of a JSON record, taken from its ``event`` object when it has one."""
    return (
        "SELECT SourceLine, RawEvent, "
        "list_transform(json_keys(event), lambda key: lower(key)) AS k, "
        "list_transform(json_keys(event), lambda key: json_extract_string(event, '$.\"' || key || '\"')) AS v, "
        "event IS NULL AS unreadable "
        "FROM (SELECT SourceLine, RawEvent, "
        "CASE WHEN NOT coalesce(json_valid(RawEvent), false) OR json_type(RawEvent) <> 'OBJECT' THEN NULL "
        "WHEN json_type(RawEvent, '$.event') = 'OBJECT' THEN json_extract(RawEvent, '$.event') "
        "ELSE RawEvent::JSON END AS event FROM lines)"
    )


def _csv_pairs(names: list[str], delimiter: str) -> str:
    """SQL for the fields of a CSV or tab-separated record, named by ``names``."""
    dialect = CsvDialect(delimiter)
    name_list = "[" + ", ".join(quote_literal(name.lower()) for name in names) + "]"
    split = (
        f"list_transform(regexp_extract_all({quote_literal(delimiter)} || RawEvent, {quote_literal(dialect.field)}, 1), "
        f"lambda x: {unquote_sql('x')})"
    )
    return (
        f"SELECT SourceLine, RawEvent, {name_list} AS k, f AS v, len(f) <> {len(names)} AS unreadable "
        f"FROM (SELECT SourceLine, RawEvent, {split} AS f FROM lines)"
    )


def _select(pairs_sql: str, reject_reason: str = "not a Zscaler NSS web log record") -> str:
    def value(*names: str) -> str:
        found = [f"list_extract(v, list_position(k, '{name}'))" for name in names]
        return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"

    time_text = value(*_TIME_NAMES)
    nss_time = (
        "CAST(try_strptime(regexp_replace(trim(" + value("time", "datetime") + "), '\\s+', ' ', 'g'), "
        "'%a %b %d %H:%M:%S %Y') AS TIMESTAMP)"
    )
    url = value(*FIELD_NAMES["Url"])
    items = [
        "SourceLine",
        "RawEvent",
        f"CASE WHEN unreadable THEN {quote_literal(reject_reason)} END AS _reject",
        f"coalesce(ph_epoch({value('epochtime')}), {nss_time}, ph_time({value('time', 'datetime')})) AS TimeGenerated",
        f"{time_text} AS _raw_TimeGenerated",
        # NSS logs the URL without its scheme (ebay.com/), so the host is the text before the first '/'.
        f"coalesce({value(*FIELD_NAMES['DstHostname'])}, "
        f"CASE WHEN NOT regexp_matches({url}, '^[A-Za-z][A-Za-z0-9+.-]*://') "
        f"THEN nullif(regexp_extract({url}, '^([^/?#:]+)', 1), '') END) AS DstHostname",
        f"ph_action({value('action')}) AS DvcAction",
    ]
    for column, names in FIELD_NAMES.items():
        if column in ("DstHostname", "DvcAction"):
            continue
        text = value(*names)
        sql_type = _TYPES.get(column)
        if sql_type:
            items.append(f"TRY_CAST(TRY_CAST({text} AS DOUBLE) AS {sql_type}) AS {column}")
            items.append(f"{text} AS _raw_{column}")
        else:
            items.append(f"{text} AS {column}")
    select_list = ",\n            ".join(items)
    # Placeholders become NULL once per record, before the columns look their fields up.
    cleaned = (
        f"SELECT SourceLine, RawEvent, k, unreadable, list_transform(v, lambda x: "
        f"CASE WHEN trim(x) IN {_PLACEHOLDERS} THEN NULL ELSE trim(x) END) AS v FROM ({pairs_sql})"
    )
    return f"SELECT\n            {select_list}\n        FROM ({cleaned})"


class _ZscalerParser(LineParser):
    """Picks the feed output type from the first non-blank line and keeps it for the file.

    ``note`` states the field order assumed for a file without a header row;
    the loader logs it as a warning naming the file.
    """

    def __init__(self) -> None:
        super().__init__(select_sql="")
        self.kind: str | None = None
        self.note: str | None = None

    def segments(self, table: pa.Table, connection: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.Table, str]]:
        table = self._drop_blank(table)
        if not table.num_rows:
            return
        if self.kind is None:
            first = table["RawEvent"][0].as_py()
            self.kind = classify(first) or "key-value"
            if self.kind == "header":
                delimiter = "\t" if first.count("\t") >= first.count(",") else ","
                names = next(csv.reader([first], delimiter=delimiter))
                self.select_sql = _select(_csv_pairs(names, delimiter), "field count differs from the header row")
                self.skipped_lines += 1
                table = table.slice(1)
            elif self.kind == "headerless":
                delimiter = "\t" if first.count("\t") >= first.count(",") else ","
                self.select_sql = _select(
                    _csv_pairs(list(DEFAULT_TEMPLATE), delimiter),
                    f"not {len(DEFAULT_TEMPLATE)} fields of the default NSS web log template",
                )
                self.note = (
                    "the Zscaler NSS feed has no header row, so its fields are read in the order of Zscaler's "
                    f"default web log template ({', '.join(DEFAULT_TEMPLATE)})"
                )
            elif self.kind == "json":
                self.select_sql = _select(_json_pairs(), "not a JSON object")
            else:
                self.select_sql = _select(_key_value_pairs(), "no name=value fields")
        if table.num_rows:
            yield table, self.select_sql

