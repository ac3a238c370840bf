"""Squid's native access.log format.

Each line is ``time elapsed remotehost code/status bytes method URL rfc931
peerstatus/peerhost type``. The elapsed column is right-aligned with spaces, so
fields are separated by runs of whitespace. The format carries no User-Agent,
no referrer and no request size: HttpUserAgent and SrcBytes stay NULL.
"""

from __future__ import annotations

import re

from proxyhunt.formats.base import LineFormat, match_ratio, non_blank

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


class SquidNative(LineFormat):
    """Squid native access.log."""

    name = "squid"
    title = "Squid native access.log"
    product = "Squid"
    vendor = "Squid"

    def detect(self, sample: list[str]) -> float:
        ratio = match_ratio(non_blank(sample), lambda line: bool(_DETECT.match(line)))
        return 0.95 * ratio

    def select_sql(self) -> str:
        # A line that does not match gives empty strings in every group, and the
        # time group is never empty on a match, so the regular expression runs once.
        names = ", ".join(f"'{name}'" for name in _FIELDS)
        return f"""
        SELECT
            SourceLine,
            RawEvent,
            CASE WHEN f.time = ''
                 THEN 'not a Squid native access.log line: expected time, elapsed, client, code/status, '
                      || 'bytes, method, URL, user, hierarchy/peer and type separated by spaces' END AS _reject,
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
            CASE WHEN f.result ILIKE '%DENIED%' THEN 'Deny' WHEN f.result <> '-' THEN 'Allow' END AS DvcAction
        FROM (
            SELECT SourceLine, RawEvent, regexp_extract(RawEvent, '{_LINE}', [{names}]) AS f
            FROM lines
        )
        """
