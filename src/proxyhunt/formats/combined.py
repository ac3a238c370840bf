"""The common and combined log formats of Apache httpd, nginx and Squid.

Common: ``host ident authuser [time] "request" status bytes``. Combined adds
``"referer" "user-agent"``. Squid's ``combined`` logformat appends
``code:hierarchy``, and some exports append more fields; text after the
combined fields is kept in RawEvent only. Apache escapes ``"`` and ``\\`` inside
quoted fields with a backslash; those escapes are decoded.

The bytes column (``%b``, ``%<st``) counts the response, so it fills DstBytes.
"""

from __future__ import annotations

import re

from proxyhunt.formats.base import LineFormat, match_ratio, non_blank

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_LINE = (
    r"^(\S+)\s+(\S+)\s+(.+?)\s+\[([^\]]+)\]\s+" + _QUOTED + r"\s+(\d{3}|-)\s+(\d+|-)"
    r"(?:\s+" + _QUOTED + r"\s+" + _QUOTED + r")?(?:\s+(.*))?$"
)
# The same line with the referer and user-agent fields required, to tell an
# empty header ("") from a line in the common format that has no such fields.
_COMBINED = (
    r"^(\S+)\s+(\S+)\s+(.+?)\s+\[([^\]]+)\]\s+" + _QUOTED + r"\s+(\d{3}|-)\s+(\d+|-)"
    r"\s+" + _QUOTED + r"\s+" + _QUOTED + r"(?:\s+(.*))?$"
)
_FIELDS = ["client", "ident", "user", "time", "request", "status", "bytes", "referrer", "agent", "extra"]
_REQUEST = r"^(\S+)\s+(\S+)(?:\s+HTTP/(\S+))?$"
_DETECT = re.compile(_LINE)


def _unescape(expression: str) -> str:
    return f"regexp_replace({expression}, '\\\\([\"\\\\])', '\\1', 'g')"


class CombinedLog(LineFormat):
    """Common and combined log format (Apache httpd, nginx, Squid ``combined``)."""

    name = "combined"
    title = "Common/combined log format (Apache, nginx, Squid combined)"
    product = None
    vendor = None

    def detect(self, sample: list[str]) -> float:
        ratio = match_ratio(non_blank(sample), lambda line: bool(_DETECT.match(line)))
        return 0.9 * ratio

    def select_sql(self) -> str:
        names = ", ".join(f"'{name}'" for name in _FIELDS)
        request = _unescape("f.request")
        return f"""
        SELECT
            SourceLine,
            RawEvent,
            CASE WHEN NOT regexp_matches(RawEvent, '{_LINE}')
                 THEN 'not a common or combined log line: expected host ident user [time] "request" status bytes, '
                      || 'optionally followed by "referer" "user-agent"' END AS _reject,
            CAST(try_strptime(f.time, '%d/%b/%Y:%H:%M:%S %z') AS TIMESTAMP) AS TimeGenerated,
            f.time AS _raw_TimeGenerated,
            ph_dash(f.client) AS SrcIpAddr,
            ph_dash(f.user) AS SrcUsername,
            CASE WHEN regexp_matches({request}, '{_REQUEST}')
                 THEN regexp_extract({request}, '{_REQUEST}', 1) END AS HttpRequestMethod,
            CASE WHEN regexp_matches({request}, '{_REQUEST}')
                 THEN regexp_extract({request}, '{_REQUEST}', 2) ELSE ph_dash({request}) END AS Url,
            nullif(regexp_extract({request}, '{_REQUEST}', 3), '') AS HttpVersion,
            TRY_CAST(ph_dash(f.status) AS INTEGER) AS HttpStatusCode,
            ph_dash(f.status) AS _raw_HttpStatusCode,
            TRY_CAST(ph_dash(f.bytes) AS BIGINT) AS DstBytes,
            CASE WHEN regexp_matches(RawEvent, '{_COMBINED}')
                 THEN nullif({_unescape("f.referrer")}, '-') END AS HttpReferrer,
            CASE WHEN regexp_matches(RawEvent, '{_COMBINED}')
                 THEN nullif({_unescape("f.agent")}, '-') END AS HttpUserAgent
        FROM (
            SELECT SourceLine, RawEvent, regexp_extract(RawEvent, '{_LINE}', [{names}]) AS f
            FROM lines
        )
        """
