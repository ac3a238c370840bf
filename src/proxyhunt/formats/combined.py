"""The common and combined log formats of Apache httpd, nginx and Squid.

Common: ``host ident authuser [time] "request" status bytes``. Combined adds
``"referer" "user-agent"``. Apache's ``vhost_combined`` (the format of Debian's
other_vhosts_access.log) starts with ``servername:port``. It fills DstHostname
and DstPortNumber only when the request target names no host, because for a
forward proxy the server name is the proxy itself. Squid's ``common`` and
``combined`` logformats append ``code:hierarchy`` (``TCP_MISS:HIER_DIRECT``).
Other text after the last field, such as a field added to a custom log format,
is kept in RawEvent only and reported as ignored text. A line whose text after
the byte count starts with a quote but is not two quoted strings is rejected,
because the end of its user agent is unknown.

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
from proxyhunt.formats.prefilter import Escape
from proxyhunt.formats.sql import quote_literal, register_function
from proxyhunt.formats.url_parts import url_column_sql, url_parts_sql


def _quoted(possessive: bool) -> str:
    """Return the pattern of a quoted field, with its text in a group.

    RE2, which DuckDB uses, has no possessive quantifiers. Python's ``re`` needs
    them, because it otherwise keeps a backtracking entry per character of the
    field: a 5 MB user agent then takes more than 2 GB of memory.
    """
    if possessive:
        return r'"((?:[^"\\]++|\\.)*+)"'
    return r'"((?:[^"\\]|\\.)*)"'


def _line_pattern(possessive: bool) -> str:
    """Return the pattern of a common or combined line, for DuckDB or, with ``possessive``, for Python.

    The optional servername:port of vhost_combined is taken only when three
    more fields follow before the time, so an IPv6 client such as 2001:db8::1
    stays the client. The user field ends at a character that is not
    whitespace and the time contains no bracket. Both rules keep Python's
    backtracking linear on long runs of spaces or brackets.

    The referer and user agent are optional, to read the common format. The
    group before the referer captures the whitespace in front of it, so it is
    empty exactly when the two quoted fields are absent. The whitespace before
    any further text is captured too, so that text glued to the last field
    can be rejected.
    """
    quoted = _quoted(possessive)
    space = r"\s++" if possessive else r"\s+"
    time_text = r"[^\[\]]++" if possessive else r"[^\[\]]+"
    common = (
        r"^(?:(\S+):(\d+)\s+)?(\S+)\s+(\S+)\s+(.*?\S)" + space + r"\[(" + time_text + r")\]\s+"
        + quoted + r"\s+(\d{3}|-)\s+(\d+|-)"
    )
    return common + r"(?:(\s+)" + quoted + r"\s+" + quoted + r")?(\s*)(.*)$"


_LINE = _line_pattern(possessive=False)
_FIELDS = [
    "vhost", "port", "client", "ident", "user", "time", "request", "status", "bytes",
    "referrer_space", "referrer", "agent", "extra_space", "extra",
]
_DETECT = re.compile(_line_pattern(possessive=True), re.ASCII)
# Squid's common and combined logformats end with %Ss:%Sh, such as TCP_MISS:HIER_DIRECT.
_SQUID_SUFFIX = r"[A-Z][A-Z0-9_]*:[A-Z][A-Z0-9_]*"
_NOT_A_LINE = (
    'not a common or combined log line: expected host ident user [time] "request" status bytes, '
    'optionally followed by "referer" "user-agent"'
)
_NOT_TWO_QUOTED = (
    "the referer and user-agent fields are not two quoted strings: expected "
    '"referer" "user-agent" after the byte count, with any quote inside a field escaped as \\" or \\x22'
)
# Method, request target and version. The target may contain spaces: servers log
# a malformed request line such as "GET /a b HTTP/1.1" as it was received.
_REQUEST = r"^(\S+)\s+(.+?)(?:\s+HTTP/(\S+))?$"
# The whitespace that RE2's \s matches besides the space.
_RE2_SPACES_BUT_SPACE = ("\t", "\n", "\f", "\r")


def _request_sql(request: str, words: str) -> str:
    """Return the SQL that splits a request line into the struct (method, target, version) that _REQUEST extracts.

    ``words`` is the request split at single spaces. The common request
    ``METHOD TARGET HTTP/VERSION``, three non-empty words and no other
    whitespace, is read from the words. _REQUEST then matches the same three
    parts, because the lazy target cannot end before the first space after
    it. Any other request goes through _REQUEST.
    """
    no_other_space = " AND ".join(f"NOT contains({request}, chr({ord(space)}))" for space in _RE2_SPACES_BUT_SPACE)
    plain = (
        f"len({words}) = 3 AND {words}[1] <> '' AND {words}[2] <> '' "
        f"AND starts_with({words}[3], 'HTTP/') AND length({words}[3]) > 5 AND {no_other_space}"
    )
    return (
        f"CASE WHEN {plain} THEN {{'method': {words}[1], 'target': {words}[2], 'version': {words}[3][6:]}} "
        f"ELSE regexp_extract({request}, '{_REQUEST}', ['method', 'target', 'version']) END"
    )

# The head of a plain combined line, before its first quote: client, ident and
# user without brackets, the client also without a colon, then the time.
_PLAIN_HEAD = r"[^\s:\[\]]+ [^\s\[\]]+ [^\s\[\]]+ \[[^\[\]]+\] "
# The status and byte count between the request and the referer.
_PLAIN_MIDDLE = r" (\d{3}|-) (\d+|-) "


def _line_sql(line: str, quotes: str) -> str:
    """Return the SQL that reads a line into the struct of _FIELDS that _LINE extracts.

    ``quotes`` is the line split at double quotes. A plain combined line,
    ``client ident user [time] "request" status bytes "referer" "user-agent"``
    with single spaces, no backslash, no colon or bracket in the first three
    fields and nothing after the user agent, is read from the pieces. _LINE
    matches the same fields there: without a colon in the first field the
    servername:port group cannot match, without brackets the user ends right
    before the time, and without backslashes each quoted field ends at the
    next quote. Any other line goes through _LINE, whose 14 capture groups
    make RE2 several times slower than these splits.
    """
    head = f"{quotes}[1]"
    middle = f"{quotes}[3]"
    plain = (
        f"len({quotes}) = 7 AND {quotes}[5] = ' ' AND {quotes}[7] = '' AND NOT contains({line}, '\\') "
        f"AND regexp_full_match({head}, '{_PLAIN_HEAD}') AND regexp_full_match({middle}, '{_PLAIN_MIDDLE}')"
    )
    fields = {
        "vhost": "''",
        "port": "''",
        "client": f"split_part({head}, ' ', 1)",
        "ident": f"split_part({head}, ' ', 2)",
        "user": f"split_part({head}, ' ', 3)",
        "time": f"{head}[strpos({head}, '[') + 1 : -3]",
        "request": f"{quotes}[2]",
        "status": f"split_part({middle}, ' ', 2)",
        "bytes": f"split_part({middle}, ' ', 3)",
        "referrer_space": "' '",
        "referrer": f"{quotes}[4]",
        "agent": f"{quotes}[6]",
        "extra_space": "''",
        "extra": "''",
    }
    # The struct lists the fields in _LINE's order, so that both branches of the CASE have one type.
    struct = ", ".join(f"'{name}': {fields[name]}" for name in _FIELDS)
    names = ", ".join(f"'{name}'" for name in _FIELDS)
    return f"CASE WHEN {plain} THEN {{{struct}}} ELSE regexp_extract({line}, '{_LINE}', [{names}]) END"


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
    register_function(connection, "ph_clf_unescape", unescape_field)


def _is_accepted(line: str) -> bool:
    """Return True when the SELECT of CombinedLog would parse ``line``. The checks mirror its ``_reject`` column."""
    match = _DETECT.match(line)
    if match is None:
        return False
    fields = dict(zip(_FIELDS, match.groups(default="")))
    if not fields["referrer_space"] and fields["extra"].startswith('"'):
        return False
    return not (fields["extra"] and not fields["extra_space"])


class CombinedLog(LineFormat):
    """Common and combined log format (Apache httpd, nginx, Squid ``combined``)."""

    name = "combined"
    title = "Common/combined log format (Apache, nginx, Squid combined)"
    # The request line is split before its escapes are decoded; no escape
    # sequence contains a space, so the split is the same either way.
    escape_function = "ph_clf_unescape"
    # DstHostname comes from the request target, so it is decoded like Url: nginx may write \x2e for a dot.
    escaped_columns = (
        "SrcUsername", "HttpRequestMethod", "Url", "DstHostname", "HttpVersion", "HttpReferrer", "HttpUserAgent",
    )
    # The URL parts and the host come from the request line or the vhost field, unchanged.
    prefilter_columns = frozenset(
        {
            "SrcIpAddr", "SrcUsername", "HttpRequestMethod", "Url", "UrlPath", "UrlQuery", "UrlExtension",
            "DstHostname", "HttpVersion", "HttpReferrer", "HttpUserAgent",
        }
    )
    # Apache httpd and nginx write \xHH for any byte and \", \\ and C escapes such as \n.
    prefilter_escapes = (Escape(b"\\x", hex_byte=True), Escape(b"\\", produces='"\\\a\b\f\n\r\t\v'))
    product = None
    vendor = None

    def detect(self, sample: list[str]) -> float:
        ratio = match_ratio(non_blank(sample), _is_accepted)
        return 0.9 * ratio

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        register_functions(connection)

    def select_sql(self) -> str:
        # The line pattern runs once per line. A line that does not match gives
        # empty strings in every group, and the time group is never empty on a
        # match. The checks for rejection and ignored text read only its groups.
        # The Squid suffix pattern runs only on lines with text after the last field.
        has_agent = "f.referrer_space <> ''"
        # The request target is split once, and its host and port read from the parts.
        target_host = url_column_sql("DstHostname", "u", url="r.target")
        target_port = url_column_sql("DstPortNumber", "u", url="r.target")
        return f"""
        SELECT
            SourceLine,
            RawEvent,
            CASE WHEN f.time = '' THEN {quote_literal(_NOT_A_LINE)}
                 WHEN f.referrer_space = '' AND starts_with(f.extra, '"') THEN {quote_literal(_NOT_TWO_QUOTED)}
                 WHEN f.extra <> '' AND f.extra_space = '' AND {has_agent} THEN {quote_literal(_NOT_TWO_QUOTED)}
                 WHEN f.extra <> '' AND f.extra_space = '' THEN {quote_literal(_NOT_A_LINE)}
            END AS _reject,
            CASE WHEN f.extra = '' THEN NULL
                 WHEN regexp_full_match(f.extra, '{_SQUID_SUFFIX}') THEN NULL
                 ELSE f.extra END AS _ignored_text,
            CAST(try_strptime(f.time, '%d/%b/%Y:%H:%M:%S %z') AS TIMESTAMP) AS TimeGenerated,
            f.time AS _raw_TimeGenerated,
            -- Some log writers put an IPv6 client in brackets, as in URLs: [2001:db8::2].
            CASE WHEN starts_with(f.client, '[') AND ends_with(f.client, ']') THEN trim(f.client, '[]')
                 ELSE ph_dash(f.client) END AS SrcIpAddr,
            ph_dash(f.user) AS SrcUsername,
            coalesce({target_host}, nullif(f.vhost, '')) AS DstHostname,
            CASE WHEN {target_host} IS NOT NULL THEN {target_port}
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
            SELECT *, {url_parts_sql("r.target")} AS u
            FROM (
                SELECT *, {_request_sql("request", "words")} AS r
                FROM (
                    SELECT *, string_split(request, ' ') AS words
                    FROM (
                        SELECT SourceLine, RawEvent, f, f.request AS request
                        FROM (
                            SELECT SourceLine, RawEvent, {_line_sql("RawEvent", "quotes")} AS f
                            FROM (SELECT SourceLine, RawEvent, string_split(RawEvent, '"') AS quotes FROM lines)
                        )
                    )
                )
            )
        )
        """
