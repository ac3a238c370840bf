"""IBM QRadar Log Event Extended Format (LEEF) 1.0 and 2.0, bare or over syslog.

``LEEF:1.0|Vendor|Product|Version|EventID|`` is followed by ``key=value``
attributes separated by tabs. LEEF 2.0 may name another delimiter in a sixth
header field: one character such as ``^``, or its code in hex (``x09``,
``0x5E``). A value runs to the next delimiter and may contain ``=``.

``devTime`` is read with ``devTimeFormat`` when the event has one. That is a
Java ``SimpleDateFormat`` pattern, translated to strptime. Without it,
``devTime`` is epoch milliseconds or the CEF-style ``MMM dd yyyy HH:mm:ss``.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone

import duckdb

from proxyhunt.formats.base import LineFormat, match_ratio, non_blank
from proxyhunt.formats.cef import register_macros, typed_items

_HEADER_FIELD = r"((?:[^|\\]|\\.)*)"
# The optional LEEF 2.0 delimiter field: a hex code or one character.
_LINE = (
    r"^(.*?)LEEF:\s*([12](?:\.0)?)\|" + r"\|".join([_HEADER_FIELD] * 4) + r"\|"
    r"(?:(0?[xX][0-9A-Fa-f]{1,4}|[^|\s=])\|)?(.*)$"
)
_HEADER_NAMES = ["prefix", "version", "vendor", "product", "device_version", "event_id", "delimiter", "attributes"]
_DETECT = re.compile(r"(?:^|[\s>:])LEEF:\s*[12](?:\.0)?\|(?:(?:[^|\\]|\\.)*\|){4}")

# Java SimpleDateFormat letters -> strptime directives, longest first.
_JAVA_DIRECTIVES = [
    ("yyyy", "%Y"), ("yy", "%y"), ("MMMM", "%B"), ("MMM", "%b"), ("MM", "%m"), ("M", "%m"),
    ("dd", "%d"), ("d", "%d"), ("HH", "%H"), ("H", "%H"), ("hh", "%I"), ("h", "%I"),
    ("mm", "%M"), ("m", "%M"), ("ss", "%S"), ("s", "%S"), ("SSSSSS", "%f"), ("SSS", "%f"),
    ("a", "%p"), ("XXX", "%z"), ("XX", "%z"), ("X", "%z"), ("ZZZ", "%z"), ("Z", "%z"),
    ("zzzz", "%Z"), ("zzz", "%Z"), ("z", "%Z"), ("EEEE", "%A"), ("EEE", "%a"),
]
_JAVA_TOKEN = re.compile("'[^']*'|" + "|".join(re.escape(java) for java, _ in _JAVA_DIRECTIVES) + "|.", re.S)


@functools.lru_cache(maxsize=64)
def java_date_format_to_strptime(pattern: str | None) -> str | None:
    """Translate a Java SimpleDateFormat pattern into a Python strptime format; quoted text stays literal."""
    if pattern is None:
        return None
    directives = dict(_JAVA_DIRECTIVES)
    parts = []
    for token in _JAVA_TOKEN.findall(pattern):
        if token.startswith("'") and len(token) >= 2:
            parts.append(token[1:-1].replace("%", "%%") or "'")
        elif token in directives:
            parts.append(directives[token])
        else:
            parts.append(token.replace("%", "%%"))
    return "".join(parts)


def parse_dev_time(value: str | None, pattern: str | None) -> str | None:
    """Read ``value`` with the Java pattern ``pattern`` and return it as ISO 8601 text, or None if it does not fit."""
    if value is None or pattern is None:
        return None
    try:
        parsed = datetime.strptime(value.strip(), java_date_format_to_strptime(pattern))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed.isoformat()


def _register_dev_time(connection: duckdb.DuckDBPyConnection) -> None:
    try:
        connection.create_function(
            "ph_leef_dev_time", parse_dev_time, ["VARCHAR", "VARCHAR"], "VARCHAR",
            null_handling="special", side_effects=False,
        )
    except (duckdb.NotImplementedException, duckdb.CatalogException):
        pass


# Attribute names per column; the first present wins. The LEEF 2.0 standard
# names come first, then names that web gateways use.
_ATTRIBUTES: list[tuple[str, tuple[str, ...]]] = [
    ("SrcIpAddr", ("src", "srcPreNAT", "identSrc")),
    ("SrcPortNumber", ("srcPort",)),
    ("SrcUsername", ("usrName", "identUsrName", "accountName", "user", "userName")),
    ("SrcHostname", ("identHostName", "srcHostName", "srcHost")),
    ("DstIpAddr", ("dst", "dstPreNAT")),
    ("DstPortNumber", ("dstPort",)),
    ("DstHostname", ("dstHost", "dstHostName", "host", "hostname")),
    ("Url", ("url", "URL", "requestUrl", "uri")),
    ("HttpRequestMethod", ("method", "httpMethod", "requestMethod", "reqMethod")),
    ("HttpStatusCode", ("httpStatus", "httpStatusCode", "statusCode", "responseCode", "status")),
    ("HttpUserAgent", ("userAgent", "useragent", "UserAgent", "httpUserAgent", "ua")),
    ("HttpReferrer", ("referrer", "referer", "httpReferrer", "httpReferer")),
    ("HttpContentType", ("contentType", "mimeType")),
    ("SrcBytes", ("srcBytes", "bytesOut", "requestSize")),
    ("DstBytes", ("dstBytes", "bytesIn", "responseSize")),
    ("UrlCategory", ("urlCategory", "urlcategory", "urlCat")),
]
_TYPES = {
    "SrcPortNumber": "INTEGER",
    "DstPortNumber": "INTEGER",
    "HttpStatusCode": "INTEGER",
    "SrcBytes": "BIGINT",
    "DstBytes": "BIGINT",
}


class Leef(LineFormat):
    """LEEF 1.0 and 2.0 lines, bare or after a syslog header."""

    name = "leef"
    title = "LEEF (Log Event Extended Format) 1.0 or 2.0, bare or over syslog"

    def detect(self, sample: list[str]) -> float:
        ratio = match_ratio(non_blank(sample), lambda line: bool(_DETECT.search(line)))
        return 0.95 * ratio

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        register_macros(connection)
        _register_dev_time(connection)

    def select_sql(self) -> str:
        def value(*keys: str) -> str:
            found = [f"list_extract(attr_values, list_position(attr_keys, '{key}'))" for key in keys]
            return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"

        dev_time = value("devTime")
        time_format = value("devTimeFormat")
        time_sql = (
            f"coalesce(CASE WHEN {time_format} IS NOT NULL "
            f"THEN CAST(ph_leef_dev_time({dev_time}, {time_format}) AS TIMESTAMP) END, "
            f"ph_cef_time({dev_time}))"
        )
        items = [
            "SourceLine",
            "RawEvent",
            "CASE WHEN h.version = '' THEN 'not a LEEF line: expected LEEF:Version|Vendor|Product|Version|EventID| "
            "followed by key=value attributes' END AS _reject",
            "nullif(ph_cef_header(h.vendor), '') AS EventVendor",
            "nullif(ph_cef_header(h.product), '') AS EventProduct",
            f"{time_sql} AS TimeGenerated",
            f"{dev_time} AS _raw_TimeGenerated",
            f"ph_action({value('action', 'act')}) AS DvcAction",
        ]
        for column, keys in _ATTRIBUTES:
            items.extend(typed_items(column, value(*keys), _TYPES.get(column, "VARCHAR")))
        select_list = ",\n            ".join(items)
        names = ", ".join(f"'{name}'" for name in _HEADER_NAMES)
        delimiter = (
            "CASE WHEN h.delimiter = '' THEN chr(9) "
            "WHEN regexp_full_match(h.delimiter, '0?[xX][0-9A-Fa-f]+') "
            "THEN chr(TRY_CAST('0x' || regexp_extract(h.delimiter, '([0-9A-Fa-f]+)$', 1) AS INTEGER)) "
            "ELSE h.delimiter END"
        )
        return f"""
        SELECT
            {select_list}
        FROM (
            SELECT *,
                   list_transform(attributes, lambda a: trim(split_part(a, '=', 1))) AS attr_keys,
                   list_transform(attributes, lambda a: CASE WHEN contains(a, '=')
                                                        THEN ph_cef_value(a[strpos(a, '=') + 1:]) END) AS attr_values
            FROM (
                SELECT *, CASE WHEN h.attributes = '' THEN [] ELSE str_split(h.attributes, {delimiter}) END AS attributes
                FROM (SELECT SourceLine, RawEvent, regexp_extract(RawEvent, '{_LINE}', [{names}]) AS h FROM lines)
            )
        )
        """
