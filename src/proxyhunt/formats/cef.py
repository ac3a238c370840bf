"""ArcSight Common Event Format (CEF) over syslog, as proxies, firewalls and WAFs send it.

A line is an optional syslog prefix (RFC 3164 or RFC 5424), then
``CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension``.
In the header, ``\\|`` is a literal pipe and ``\\\\`` a backslash. The extension is
``key=value`` pairs separated by spaces, where a value runs up to the space
before the next ``key=`` and so may contain spaces. In values, ``\\=``, ``\\\\``,
``\\n`` and ``\\r`` stand for ``=``, a backslash, LF and CR.

Extension keys are the CEF key names (``request``, ``requestClientApplication``,
``src`` …). The custom fields ``cs1``..``cs6``, ``cn1``..``cn3`` and ``flexString1``..``2``
fill a column when their label (``cs1Label`` …) names it, such as ``User-Agent``
or ``URL Category``, and the standard key is absent.
"""

from __future__ import annotations

import re

import duckdb

from proxyhunt.formats.base import LineFormat, match_ratio, non_blank
from proxyhunt.formats.sql import quote_literal
from proxyhunt.formats.websession import OUT_IS_REQUEST_VENDORS

# One header field: any character but an unescaped pipe.
_HEADER_FIELD = r"((?:[^|\\]|\\.)*)"
_LINE = r"^(.*?)CEF:\s*(\d+)\|" + r"\|".join([_HEADER_FIELD] * 6) + r"\|(.*)$"
_HEADER_NAMES = ["prefix", "version", "vendor", "product", "device_version", "signature", "name", "severity", "extension"]
_DETECT = re.compile(r"(?:^|[\s>:])CEF:\s*\d+\|(?:(?:[^|\\]|\\.)*\|){6}")

# A key in a key=value extension: a name made of letters, digits, '_', '.', '-',
# '[' and ']', preceded by whitespace. A value's '=' is escaped, so it never
# ends a key.
EXTENSION_KEY = r"[A-Za-z_][A-Za-z0-9_.\[\]-]*"

# An RFC 5424 header: <PRI>VERSION TIMESTAMP. An RFC 3164 time has no year, so
# only the RFC 5424 time is used, and only when the extension carries none.
_RFC5424_TIME = r"^\s*(?:<\d{1,3}>)?\d{1,2}\s+(\d{4}-\d{2}-\d{2}T\S+)\s"

MACROS = (
    # CEF extension escapes: \= \\ \n \r, and \| which some devices write although
    # CEF does not require it. A lone trailing backslash stays as it is.
    r"""CREATE OR REPLACE MACRO ph_cef_unescape(v) AS
        CASE WHEN v IS NULL OR NOT contains(v, '\') THEN v
             ELSE array_to_string(list_transform(regexp_extract_all(v, '(?s)\\.|[^\\]+|\\'),
                                                 lambda t: CASE t WHEN '\n' THEN chr(10) WHEN '\r' THEN chr(13)
                                                             WHEN '\=' THEN '=' WHEN '\\' THEN '\'
                                                             WHEN '\|' THEN '|' ELSE t END), '')
        END""",
    # CEF header escapes: \| and \\ only.
    r"""CREATE OR REPLACE MACRO ph_cef_header(v) AS
        CASE WHEN contains(v, '\') THEN regexp_replace(v, '\\([|\\])', '\1', 'g') ELSE v END""",
    # The placeholders that devices write for a value they do not have.
    """CREATE OR REPLACE MACRO ph_cef_value(v) AS
        CASE WHEN rtrim(v) IN ('', '-', '"-"', '""', 'null', 'None', 'N/A') THEN NULL ELSE rtrim(v) END""",
    # CEF times: epoch milliseconds, "MMM dd yyyy HH:mm:ss[.SSS][ zzz]" or ISO 8601.
    # A zone name other than UTC, GMT or Z is not known to strptime, so the value is invalid.
    r"""CREATE OR REPLACE MACRO ph_cef_time(v) AS
        coalesce(
            ph_time(v),
            CAST(try_strptime(regexp_replace(trim(v), '\s+(UTC|GMT|Z)$', ''),
                              ['%b %d %Y %H:%M:%S.%g', '%b %d %Y %H:%M:%S', '%b %d %Y %H:%M:%S.%g %z',
                               '%b %d %Y %H:%M:%S %z']) AS TIMESTAMP))""",
    # The DvcAction of ASIM, Allow or Deny, for the usual action words; any other word as logged.
    """CREATE OR REPLACE MACRO ph_action(v) AS
        CASE
            WHEN lower(v) IN ('allow', 'allowed', 'accept', 'accepted', 'permit', 'permitted', 'pass', 'passed',
                              'observed', 'not blocked', 'proxied', 'success', 'alert', 'monitor') THEN 'Allow'
            WHEN lower(v) IN ('deny', 'denied', 'block', 'blocked', 'drop', 'dropped', 'reject', 'rejected',
                              'reset', 'reset-both', 'reset-client', 'reset-server', 'failure', 'quarantine')
                THEN 'Deny'
            ELSE v
        END""",
)

# Normalized label of a custom field (lower case, letters and digits only) -> the column it fills.
LABEL_COLUMNS: dict[str, str] = {
    "useragent": "HttpUserAgent",
    "httpuseragent": "HttpUserAgent",
    "referer": "HttpReferrer",
    "referrer": "HttpReferrer",
    "httpreferer": "HttpReferrer",
    "httpreferrer": "HttpReferrer",
    "contenttype": "HttpContentType",
    "urlcategory": "UrlCategory",
    "urlcat": "UrlCategory",
    "category": "UrlCategory",
    "httpstatus": "HttpStatusCode",
    "httpstatuscode": "HttpStatusCode",
    "statuscode": "HttpStatusCode",
    "responsecode": "HttpStatusCode",
    "protocolversion": "HttpVersion",
    "httpversion": "HttpVersion",
    "httpmethod": "HttpRequestMethod",
    "requestmethod": "HttpRequestMethod",
    "url": "Url",
    "requesturl": "Url",
}
_CUSTOM_FIELDS = [f"cs{number}" for number in range(1, 7)] + [f"cn{number}" for number in range(1, 4)] + [
    "flexString1",
    "flexString2",
    "flexNumber1",
    "flexNumber2",
]


def register_macros(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the CEF and LEEF macros on a connection; calling it again is harmless."""
    for statement in MACROS:
        connection.execute(statement)


def labelled_value(lookup, column: str) -> str:
    """Return SQL for the first custom field whose label names ``column``, else NULL.

    ``lookup(key)`` returns the SQL of the raw value of an extension key.
    """
    labels = [label for label, target in LABEL_COLUMNS.items() if target == column]
    label_list = ", ".join(f"'{label}'" for label in labels)
    cases = [
        f"CASE WHEN regexp_replace(lower({lookup(field + 'Label')}), '[^a-z0-9]', '', 'g') IN ({label_list}) "
        f"THEN {lookup(field)} END"
        for field in _CUSTOM_FIELDS
    ]
    return f"coalesce({', '.join(cases)})"


def typed_items(column: str, value: str, sql_type: str) -> list[str]:
    """Return the select items of a column read from text ``value``, with ``_raw_`` for typed columns."""
    if column == "TimeGenerated":
        return [f"ph_cef_time({value}) AS TimeGenerated", f"{value} AS _raw_TimeGenerated"]
    if sql_type in ("INTEGER", "BIGINT"):
        return [f"TRY_CAST(TRY_CAST({value} AS DOUBLE) AS {sql_type}) AS {column}", f"{value} AS _raw_{column}"]
    return [f"{value} AS {column}"]


class Cef(LineFormat):
    """CEF lines, bare or after a syslog header."""

    name = "cef"
    title = "CEF (Common Event Format), bare or over syslog"

    def detect(self, sample: list[str]) -> float:
        ratio = match_ratio(non_blank(sample), lambda line: bool(_DETECT.search(line)))
        return 0.95 * ratio

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        register_macros(connection)

    def select_sql(self) -> str:
        def decoded(key: str) -> str:
            return f"list_extract(ext_decoded, list_position(ext_keys, '{key}') + 1)"

        def value(*keys: str) -> str:
            found = [decoded(key) for key in keys]
            return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"

        def with_label(column: str, *keys: str) -> str:
            labelled = labelled_value(decoded, column)
            return f"coalesce({value(*keys)}, {labelled})" if keys else labelled

        status = with_label("HttpStatusCode")
        # Some WAFs (Barracuda) write the HTTP status in outcome, which CEF defines as success or failure.
        outcome_status = f"CASE WHEN regexp_full_match({value('outcome')}, '[1-5]\\d\\d') THEN {value('outcome')} END"
        syslog_time = f"nullif(regexp_extract(h.prefix, '{_RFC5424_TIME}', 1), '')"
        bytes_in, bytes_out = value("in", "bytesIn"), value("out", "bytesOut")
        vendors = ", ".join(quote_literal(vendor) for vendor in OUT_IS_REQUEST_VENDORS)
        out_is_request = f"ph_cef_header(h.vendor) IN ({vendors})"
        items = [
            "SourceLine",
            "RawEvent",
            "CASE WHEN h.version = '' THEN 'not a CEF line: expected CEF:Version|Device Vendor|Device Product|"
            "Device Version|Signature ID|Name|Severity|Extension' END AS _reject",
            "nullif(trim(ext_values[1]), '') AS _ignored_text",
            "nullif(ph_cef_header(h.vendor), '') AS EventVendor",
            "nullif(ph_cef_header(h.product), '') AS EventProduct",
            *typed_items("TimeGenerated", f"coalesce({value('rt', 'end', 'start')}, {syslog_time})", "TIMESTAMP"),
            f"{value('src', 'c6a2', 'sourceTranslatedAddress')} AS SrcIpAddr",
            *typed_items("SrcPortNumber", value("spt"), "INTEGER"),
            f"{value('suser', 'sourceUserName')} AS SrcUsername",
            f"{value('shost')} AS SrcHostname",
            f"{value('dst', 'c6a3')} AS DstIpAddr",
            *typed_items("DstPortNumber", value("dpt"), "INTEGER"),
            f"{value('dhost', 'destinationDnsDomain')} AS DstHostname",
            f"{with_label('Url', 'request', 'requestURL')} AS Url",
            f"{with_label('HttpRequestMethod', 'requestMethod', 'method')} AS HttpRequestMethod",
            f"{with_label('HttpUserAgent', 'requestClientApplication')} AS HttpUserAgent",
            f"{with_label('HttpReferrer', 'requestContext')} AS HttpReferrer",
            f"{value('requestCookies')} AS HttpCookie",
            f"{with_label('HttpContentType')} AS HttpContentType",
            f"regexp_replace({with_label('HttpVersion')}, '^HTTP/', '') AS HttpVersion",
            # CEF's "in" counts bytes from source to destination and "out" the other way,
            # except for the vendors whose "out" is the request (see OUT_IS_REQUEST_VENDORS).
            *typed_items("SrcBytes", f"CASE WHEN {out_is_request} THEN {bytes_out} ELSE {bytes_in} END", "BIGINT"),
            *typed_items("DstBytes", f"CASE WHEN {out_is_request} THEN {bytes_in} ELSE {bytes_out} END", "BIGINT"),
            *typed_items("HttpStatusCode", f"coalesce({status}, {outcome_status})", "INTEGER"),
            f"ph_action({value('act', 'deviceAction')}) AS DvcAction",
            f"{with_label('UrlCategory')} AS UrlCategory",
        ]
        select_list = ",\n            ".join(items)
        names = ", ".join(f"'{name}'" for name in _HEADER_NAMES)
        boundary = f"\\s+{EXTENSION_KEY}="
        # Values are decoded once per line, and each column looks its key up in the decoded list.
        return f"""
        SELECT
            {select_list}
        FROM (
            SELECT *, list_transform(ext_values, lambda x: ph_cef_unescape(ph_cef_value(x))) AS ext_decoded
            FROM (
                SELECT *,
                       regexp_extract_all(' ' || h.extension, '\\s+({EXTENSION_KEY})=', 1) AS ext_keys,
                       regexp_split_to_array(' ' || h.extension, '{boundary}') AS ext_values
                FROM (SELECT SourceLine, RawEvent, regexp_extract(RawEvent, '{_LINE}', [{names}]) AS h FROM lines)
            )
        )
        """
