"""The common and combined log formats of Apache httpd, nginx and Squid.

Common: ``host ident authuser [time] "request" status bytes``. Combined adds
``"referer" "user-agent"``. Apache's ``vhost_combined`` (the format of Debian's
other_vhosts_access.log) starts with ``servername:port``. It fills DstHostname
and DstPortNumber only when the request target names no host, because for a
forward proxy the server name is the proxy itself. Squid's ``combined`` logformat appends
``code:hierarchy``, and some exports append more fields. Text after the
combined fields is kept in RawEvent only.

Quoted fields are unescaped. Apache httpd (``ap_escape_logitem``) writes ``\\"``
and ``\\\\``, C escapes such as ``\\t`` for whitespace and ``\\xHH`` for other
bytes. nginx writes ``\\xHH`` for ``"``, ``\\`` and bytes outside printable
ASCII. Neither server writes a bare backslash, so decoding is unambiguous. The
bytes are read as UTF-8, and invalid bytes become U+FFFD.

The bytes column (``%b``, ``%<st``) counts the response, so it fills DstBytes.
"""

from __future__ import annotations

import re

import duckdb

from proxyhunt.formats.base import LineFormat, match_ratio, non_blank

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
# The optional servername:port of vhost_combined. It is taken only when three
# more fields follow before the time, so an IPv6 client such as 2001:db8::1
# stays the client.
_COMMON = (
    r"^(?:(\S+):(\d+)\s+)?(\S+)\s+(\S+)\s+(.+?)\s+\[([^\]]+)\]\s+" + _QUOTED + r"\s+(\d{3}|-)\s+(\d+|-)"
)
_LINE = _COMMON + r"(?:\s+" + _QUOTED + r"\s+" + _QUOTED + r")?(?:\s+(.*))?$"
# The same line with the referer and user-agent fields required, to tell an
# empty header ("") from a line in the common format that has no such fields.
_COMBINED = _COMMON + r"\s+" + _QUOTED + r"\s+" + _QUOTED + r"(?:\s+(.*))?$"
_FIELDS = [
    "vhost", "port", "client", "ident", "user", "time", "request", "status", "bytes", "referrer", "agent", "extra",
]
# Method, request target and version. The target may contain spaces: servers log
# a malformed request line such as "GET /a b HTTP/1.1" as it was received.
_REQUEST = r"^(\S+)\s+(.+?)(?:\s+HTTP/(\S+))?$"
_DETECT = re.compile(_LINE)

_ESCAPE = re.compile(rb'\\(x[0-9A-Fa-f]{2}|[\\"bfnrtv])')
_C_ESCAPES = {b"\\": b"\\", b'"': b'"', b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _escaped_byte(match: re.Match[bytes]) -> bytes:
    sequence = match.group(1)
    if sequence.startswith(b"x"):
        return bytes([int(sequence[1:], 16)])
    return _C_ESCAPES[sequence]


def unescape_field(value: str | None) -> str | None:
    """Decode the backslash escapes that Apache httpd and nginx write inside quoted fields."""
    if value is None or "\\" not in value:
        return value
    raw = _ESCAPE.sub(_escaped_byte, value.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


def register_functions(connection: duckdb.DuckDBPyConnection) -> None:
    """Register ``ph_clf_unescape`` on a connection. Calling it again is harmless."""
    try:
        connection.create_function(
            "ph_clf_unescape", unescape_field, ["VARCHAR"], "VARCHAR", null_handling="special", side_effects=False
        )
    except (duckdb.NotImplementedException, duckdb.CatalogException):
        pass


class CombinedLog(LineFormat):
    """Common and combined log format (Apache httpd, nginx, Squid ``combined``)."""

    name = "combined"
    title = "Common/combined log format (Apache, nginx, Squid combined)"
    # The request line is split before its escapes are decoded; no escape
    # sequence contains a space, so the split is the same either way.
    escape_function = "ph_clf_unescape"
    escaped_columns = ("SrcUsername", "HttpRequestMethod", "Url", "HttpVersion", "HttpReferrer", "HttpUserAgent")
    product = None
    vendor = None

    def detect(self, sample: list[str]) -> float:
        ratio = match_ratio(non_blank(sample), lambda line: bool(_DETECT.match(line)))
        return 0.9 * ratio

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        register_functions(connection)

    def select_sql(self) -> str:
        # Each regular expression runs once per line: a line that does not match
        # gives empty strings in every group, and the time group is never empty
        # on a match. The stricter combined pattern runs only for lines whose
        # referer and user agent are both empty, to tell "" from a common-format line.
        names = ", ".join(f"'{name}'" for name in _FIELDS)
        has_agent = f"(f.agent <> '' OR f.referrer <> '' OR regexp_matches(RawEvent, '{_COMBINED}'))"
        return f"""
        SELECT
            SourceLine,
            RawEvent,
            CASE WHEN f.time = ''
                 THEN 'not a common or combined log line: expected host ident user [time] "request" status bytes, '
                      || 'optionally followed by "referer" "user-agent"' END AS _reject,
            CAST(try_strptime(f.time, '%d/%b/%Y:%H:%M:%S %z') AS TIMESTAMP) AS TimeGenerated,
            f.time AS _raw_TimeGenerated,
            ph_dash(f.client) AS SrcIpAddr,
            ph_dash(f.user) AS SrcUsername,
            coalesce(ph_url_host(r.target), nullif(f.vhost, '')) AS DstHostname,
            CASE WHEN ph_url_host(r.target) IS NOT NULL THEN ph_url_port(r.target)
                 ELSE TRY_CAST(nullif(f.port, '') AS INTEGER) END AS DstPortNumber,
            nullif(r.method, '') AS HttpRequestMethod,
            CASE WHEN r.method <> '' THEN r.target ELSE ph_dash(request) END AS Url,
            nullif(r.version, '') AS HttpVersion,
            TRY_CAST(ph_dash(f.status) AS INTEGER) AS HttpStatusCode,
            ph_dash(f.status) AS _raw_HttpStatusCode,
            TRY_CAST(ph_dash(f.bytes) AS BIGINT) AS DstBytes,
            CASE WHEN {has_agent} THEN nullif(f.referrer, '-') END AS HttpReferrer,
            CASE WHEN {has_agent} THEN nullif(f.agent, '-') END AS HttpUserAgent
        FROM (
            SELECT *, regexp_extract(request, '{_REQUEST}', ['method', 'target', 'version']) AS r
            FROM (
                SELECT SourceLine, RawEvent, f, f.request AS request
                FROM (SELECT SourceLine, RawEvent, regexp_extract(RawEvent, '{_LINE}', [{names}]) AS f FROM lines)
            )
        )
        """
