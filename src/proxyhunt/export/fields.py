"""The field of each WebSession column in each target: ASIM, Splunk CIM Web, ECS, SQL.

One table drives every target, so that a Sigma proxy field means the same in
every query. The Sigma field to WebSession column step is
``proxyhunt.schema``; this module is the second step, from the column to the
target's field. A column that a target's schema does not have is ``None``
with the reason, and a rule that reads it cannot be converted for that target.

Derived fields are computed in the query from the URL, as the local loader
computes UrlPath, UrlQuery and UrlExtension (see ``proxyhunt.formats.sql``).
Path and query come from an absolute URL or an origin-form request target
(``/path?query``), never from a CONNECT target (``host:port``). The extension
is that of the last path segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

# A URL in absolute form starts with a scheme, such as http:// or https://.
SCHEME_REGEX = r"^[A-Za-z][A-Za-z0-9+.\-]*://"
PATH_OF_ABSOLUTE_REGEX = SCHEME_REGEX + r"[^/?#]*([^?#]*)"
PATH_OF_ORIGIN_FORM_REGEX = r"^([^?#]*)"
QUERY_REGEX = r"^[^?#]*\?([^#]*)"
EXTENSION_REGEX = r"\.([^./]+)$"


@dataclass(frozen=True)
class TargetField:
    """A WebSession column in one target: its field name there, or why it has none.

    ``derived`` is True when the target has no such field and the query
    computes it from other fields under the column's own name.
    """

    column: str
    name: str | None
    derived: bool = False
    missing_reason: str = ""


def _fields(mapping: dict[str, str | None], derived: set[str], missing: dict[str, str]) -> dict[str, TargetField]:
    fields = {}
    for column, name in mapping.items():
        if name is None:
            fields[column] = TargetField(column, None, missing_reason=missing[column])
        else:
            fields[column] = TargetField(column, name, derived=column in derived)
    return fields


# Filters may test the process-correlation columns (RcloneSubcommand,
# ProcessCommandLine, CommandLine …), which only the local hunt fills.
_NOT_WEBSESSION = (
    "it is not a WebSession field; process-correlation fields such as RcloneSubcommand or CommandLine "
    "exist only in proxyhunt hunt"
)
_NO_PROVENANCE = "proxyhunt's provenance column has no counterpart in a SIEM"

# Microsoft Sentinel ASIM WebSession (imWebSession / _Im_WebSession). Our column
# names are the ASIM names; the three URL parts are not ASIM fields.
ASIM_FIELDS = _fields(
    {
        "TimeGenerated": "TimeGenerated",
        "SrcIpAddr": "SrcIpAddr",
        "SrcPortNumber": "SrcPortNumber",
        "SrcUsername": "SrcUsername",
        "SrcHostname": "SrcHostname",
        "DstIpAddr": "DstIpAddr",
        "DstPortNumber": "DstPortNumber",
        "DstHostname": "DstHostname",
        "Url": "Url",
        "UrlPath": "UrlPath",
        "UrlQuery": "UrlQuery",
        "UrlExtension": "UrlExtension",
        "HttpRequestMethod": "HttpRequestMethod",
        "HttpStatusCode": "HttpStatusCode",
        "HttpUserAgent": "HttpUserAgent",
        "HttpReferrer": "HttpReferrer",
        "HttpVersion": "HttpVersion",
        "HttpCookie": None,
        "HttpContentType": "HttpContentType",
        "SrcBytes": "SrcBytes",
        "DstBytes": "DstBytes",
        "DvcAction": "DvcAction",
        "UrlCategory": "UrlCategory",
        "EventProduct": "EventProduct",
        "EventVendor": "EventVendor",
        "SourceFile": None,
        "SourceLine": None,
        "RawEvent": None,
    },
    derived={"UrlPath", "UrlQuery", "UrlExtension"},
    missing={
        "HttpCookie": "the ASIM WebSession schema has no cookie field, so no ASIM parser keeps the Cookie header",
        "SourceFile": _NO_PROVENANCE,
        "SourceLine": _NO_PROVENANCE,
        "RawEvent": "ASIM keeps no raw event; keywords search every column instead",
    },
)

# Splunk CIM Web data model, fields as `| datamodel Web Web search` returns them.
CIM_WEB_FIELDS = _fields(
    {
        "TimeGenerated": "_time",
        "SrcIpAddr": "Web.src",
        "SrcPortNumber": None,
        "SrcUsername": "Web.user",
        "SrcHostname": None,
        "DstIpAddr": "Web.dest",
        "DstPortNumber": "Web.dest_port",
        "DstHostname": "Web.site",
        "Url": "Web.url",
        "UrlPath": "Web.uri_path",
        "UrlQuery": "Web.uri_query",
        "UrlExtension": "UrlExtension",
        "HttpRequestMethod": "Web.http_method",
        "HttpStatusCode": "Web.status",
        "HttpUserAgent": "Web.http_user_agent",
        "HttpReferrer": "Web.http_referrer",
        "HttpVersion": None,
        "HttpCookie": "Web.cookie",
        "HttpContentType": "Web.http_content_type",
        "SrcBytes": "Web.bytes_out",
        "DstBytes": "Web.bytes_in",
        "DvcAction": "Web.action",
        "UrlCategory": "Web.category",
        "EventProduct": "Web.vendor_product",
        "EventVendor": None,
        "SourceFile": None,
        "SourceLine": None,
        "RawEvent": "_raw",
    },
    derived={"UrlExtension"},
    missing={
        "SrcPortNumber": "the CIM Web data model has no client port field",
        "SrcHostname": "the CIM Web data model keeps the client in src, which proxyhunt maps to SrcIpAddr",
        "HttpVersion": "the CIM Web data model has no HTTP version field",
        "EventVendor": "the CIM Web data model combines vendor and product in vendor_product",
        "SourceFile": _NO_PROVENANCE,
        "SourceLine": _NO_PROVENANCE,
    },
)

# Elastic Common Schema, as ES|QL reads it.
ECS_FIELDS = _fields(
    {
        "TimeGenerated": "@timestamp",
        "SrcIpAddr": "source.ip",
        "SrcPortNumber": "source.port",
        "SrcUsername": "user.name",
        "SrcHostname": "source.domain",
        "DstIpAddr": "destination.ip",
        "DstPortNumber": "destination.port",
        "DstHostname": "url.domain",
        "Url": "url.original",
        "UrlPath": "url.path",
        "UrlQuery": "url.query",
        "UrlExtension": "url.extension",
        "HttpRequestMethod": "http.request.method",
        "HttpStatusCode": "http.response.status_code",
        "HttpUserAgent": "user_agent.original",
        "HttpReferrer": "http.request.referrer",
        "HttpVersion": "http.version",
        "HttpCookie": None,
        "HttpContentType": "http.response.mime_type",
        "SrcBytes": "http.request.bytes",
        "DstBytes": "http.response.bytes",
        "DvcAction": "event.action",
        "UrlCategory": None,
        "EventProduct": "observer.product",
        "EventVendor": "observer.vendor",
        "SourceFile": None,
        "SourceLine": None,
        "RawEvent": "event.original",
    },
    derived=set(),
    missing={
        "HttpCookie": "ECS has no cookie field",
        "UrlCategory": "ECS has no URL category field",
        "SourceFile": _NO_PROVENANCE,
        "SourceLine": _NO_PROVENANCE,
    },
)


def target_field(fields: dict[str, TargetField], column: str, target: str) -> TargetField:
    """Return the target's field for a WebSession column.

    Raises SigmaFeatureNotSupportedByBackendError, naming the column and the
    reason, when the target's schema has no such field.
    """
    found = fields.get(column)
    if found is None or found.name is None:
        reason = found.missing_reason if found else _NOT_WEBSESSION
        raise SigmaFeatureNotSupportedByBackendError(f"{target} cannot read {column}: {reason}")
    return found
