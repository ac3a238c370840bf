"""Squid's native access.log format.

Each line is ``time elapsed remotehost code/status bytes method URL rfc931
peerstatus/peerhost type``. The elapsed column is right-aligned with spaces, so
fields are separated by runs of whitespace. The format carries no referrer, no
request size and no User-Agent, so HttpUserAgent, HttpReferrer and SrcBytes
stay NULL, except with ``log_mime_hdrs on``.

``log_mime_hdrs on`` appends `` [request headers] [reply headers]``. Squid
(``Format::QuoteMimeBlob``) writes CR and LF as the two-character escapes
``\\r`` and ``\\n`` and a backslash as ``\\\\``. It writes ``%``, ``[``, ``]``,
other control characters and bytes from 0x7F up as ``%xx``. Squid built with
``OLD_LOG_MIME`` writes CR and LF as ``%0d%0a`` and escapes more characters
the same way. The User-Agent and Referer request headers fill HttpUserAgent
and HttpReferrer. Any other text after the content type, such as a quoted user
agent that a customized logformat appends, is kept in RawEvent only and
reported as ignored text. Its meaning is unknown, so it is never taken for the
user agent.
"""

from __future__ import annotations

import re

import duckdb

from proxyhunt.formats.base import LineFormat, match_ratio, non_blank
from proxyhunt.formats.prefilter import Escape
from proxyhunt.formats.sql import register_function

_LINE = (
    r"^\s*(\d+(?:\.\d+)?)\s+(-?\d+)\s+(\S+)\s+([A-Za-z_]+|-)/(\d{1,3}|-)\s+(-?\d+)\s+(\S+)\s+(\S+)"
    r"\s+(\S+)\s+([A-Za-z_]+|-)/(\S+)\s+(\S+)(?:\s+(.*))?$"
)
_FIELDS = [
    "time", "elapsed", "client", "result", "status", "bytes", "method", "url",
    "user", "hierarchy", "peer", "type", "extra",
]
_DETECT = re.compile(_LINE)
# The peer field contains an address, or a host name for a cache peer. A dotted quad
# or text with a colon is an address, while "cafe" or "dead" is a host name.
_PEER_IP = r"\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"

# The two header blocks of log_mime_hdrs. Squid escapes "[" and "]" inside them.
_MIME_BLOCKS = r"\[[^\]]*\]\s+\[[^\]]*\]\s*"
# Text escaped by QuoteMimeBlob is read in tokens: a backslash escape or one
# other character. Reading whole tokens keeps an escaped backslash followed by
# "n" from being taken for a line break.
_MIME_TOKEN = r"(?:[^\\\]]|\\.)"
# A header value ends at the escaped CR or LF that ends its header line.
_MIME_VALUE_TOKEN = r"(?:[^\\\]%]|\\[^rn]|%[^0\]]|%0[^aAdD])"


def _request_header_pattern(name: str) -> str:
    """Return the pattern that finds the first ``name`` header in the request block.

    Its groups are the header name as written, empty when the header is absent,
    and the still escaped value.
    """
    line_start = r"(?:" + _MIME_TOKEN + r"*?(?:\\n|%0[aA]))?"
    return r"^\[" + line_start + r"((?i:" + re.escape(name) + r")):(?: |%09)*(" + _MIME_VALUE_TOKEN + r"*)"


_USER_AGENT = _request_header_pattern("User-Agent")
_REFERER = _request_header_pattern("Referer")
_PERCENT_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")


def unquote_mime_value(value: str | None) -> str | None:
    """Decode a header value escaped by Squid's QuoteMimeBlob, reading the bytes as UTF-8 with U+FFFD for invalid bytes."""
    if value is None:
        return None
    raw = value.encode("utf-8").replace(b"\\\\", b"\\")
    raw = _PERCENT_ESCAPE.sub(lambda match: bytes([int(match.group(1), 16)]), raw)
    return raw.decode("utf-8", errors="replace")


def register_functions(connection: duckdb.DuckDBPyConnection) -> None:
    """Register ``ph_squid_unquote`` on a connection. Calling it again is harmless."""
    register_function(connection, "ph_squid_unquote", unquote_mime_value)


def _header_value(header: str) -> str:
    """Return the SQL that decodes the header value a ``_request_header_pattern`` extracted into ``header``.

    DuckDB's url_decode decodes most values. It raises on bytes that are not
    UTF-8, and then the Python function decodes them with replacement characters.
    """
    value = f"{header}.value"
    return (
        f"CASE WHEN {header} IS NULL OR {header}.name = '' THEN NULL "
        f"WHEN NOT (contains({value}, '%') OR contains({value}, '\\')) THEN {value} "
        f"ELSE coalesce(try(url_decode(replace({value}, '\\\\', '\\'))), ph_squid_unquote({value})) END"
    )


class SquidNative(LineFormat):
    """Squid native access.log."""

    name = "squid"
    title = "Squid native access.log"
    # The log_mime_hdrs values are decoded from %xx and backslash escapes; the other fields are copied.
    prefilter_columns = frozenset(
        {
            "SrcIpAddr", "SrcUsername", "HttpRequestMethod", "Url", "UrlPath", "UrlQuery", "UrlExtension",
            "DstHostname", "DstIpAddr", "HttpContentType", "HttpUserAgent", "HttpReferrer",
        }
    )
    prefilter_escapes = (Escape(b"%", hex_byte=True), Escape(b"\\", produces="\\\r\n"))
    product = "Squid"
    vendor = "Squid"

    def detect(self, sample: list[str]) -> float:
        ratio = match_ratio(non_blank(sample), lambda line: bool(_DETECT.match(line)))
        return 0.95 * ratio

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        register_functions(connection)

    def select_sql(self) -> str:
        # A line that does not match gives empty strings in every group, and the
        # time group is never empty on a match, so the line pattern runs once.
        # The header patterns run only on lines that end with log_mime_hdrs blocks.
        names = ", ".join(f"'{name}'" for name in _FIELDS)
        return f"""
        SELECT
            SourceLine,
            RawEvent,
            CASE WHEN f.time = ''
                 THEN 'not a Squid native access.log line: expected time, elapsed, client, code/status, '
                      || 'bytes, method, URL, user, hierarchy/peer and type separated by spaces' END AS _reject,
            CASE WHEN f.extra = '' OR mime THEN NULL ELSE f.extra END AS _ignored_text,
            ph_epoch(f.time) AS TimeGenerated,
            f.time AS _raw_TimeGenerated,
            ph_dash(f.client) AS SrcIpAddr,
            ph_dash(f.user) AS SrcUsername,
            CASE WHEN regexp_full_match(f.peer, '{_PEER_IP}') THEN f.peer END AS DstIpAddr,
            ph_dash(f.url) AS Url,
            ph_dash(f.method) AS HttpRequestMethod,
            nullif(TRY_CAST(f.status AS INTEGER), 0) AS HttpStatusCode,
            TRY_CAST(f.bytes AS BIGINT) AS DstBytes,
            ph_dash(f.type) AS HttpContentType,
            CASE WHEN f.result ILIKE '%DENIED%' THEN 'Deny' WHEN f.result <> '-' THEN 'Allow' END AS DvcAction,
            {_header_value("agent")} AS HttpUserAgent,
            {_header_value("referer")} AS HttpReferrer
        FROM (
            SELECT *,
                   CASE WHEN mime THEN regexp_extract(f.extra, '{_USER_AGENT}', ['name', 'value']) END AS agent,
                   CASE WHEN mime THEN regexp_extract(f.extra, '{_REFERER}', ['name', 'value']) END AS referer
            FROM (
                SELECT *,
                       CASE WHEN starts_with(f.extra, '[') THEN regexp_full_match(f.extra, '{_MIME_BLOCKS}')
                            ELSE false END AS mime
                FROM (SELECT SourceLine, RawEvent, regexp_extract(RawEvent, '{_LINE}', [{names}]) AS f FROM lines)
            )
        )
        """
