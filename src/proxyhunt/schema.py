"""The WebSession table: its columns, their types and the Sigma proxy field mapping.

Column names follow Microsoft Sentinel's ASIM WebSession schema, so that a rule
means the same in the local engine and in Sentinel. Times are UTC. A value that
the log does not carry is NULL, never a placeholder such as ``-``.

Bytes direction follows W3C and ASIM: ``cs-bytes`` (client to server) is
``SrcBytes``, the upload volume, and ``sc-bytes`` is ``DstBytes``. The Sigma
taxonomy appendix describes the two the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One WebSession column and the Sigma proxy field names that map to it."""

    name: str
    sql_type: str
    sigma_fields: tuple[str, ...] = ()
    description: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("TimeGenerated", "TIMESTAMP", (), "event time, UTC"),
    Column("SrcIpAddr", "VARCHAR", ("src_ip", "c-ip"), "client address"),
    Column("SrcPortNumber", "INTEGER", (), "client port"),
    Column("SrcUsername", "VARCHAR", ("cs-username",), "authenticated user, if any"),
    Column("SrcHostname", "VARCHAR", (), "client host name"),
    Column("DstIpAddr", "VARCHAR", ("dst_ip", "s-ip"), "server address"),
    Column("DstPortNumber", "INTEGER", (), "server port"),
    Column("DstHostname", "VARCHAR", ("cs-host", "r-dns"), "requested host"),
    Column("Url", "VARCHAR", ("c-uri", "cs-uri"), "full URL as logged"),
    Column("UrlPath", "VARCHAR", ("c-uri-stem", "cs-uri-stem"), "path part of Url"),
    Column("UrlQuery", "VARCHAR", ("c-uri-query", "cs-uri-query"), "query part of Url, without '?'"),
    Column("UrlExtension", "VARCHAR", ("c-uri-extension",), "extension of the last path segment, without '.'"),
    Column("HttpRequestMethod", "VARCHAR", ("cs-method",), "request method"),
    Column("HttpStatusCode", "INTEGER", ("sc-status",), "response status"),
    Column("HttpUserAgent", "VARCHAR", ("c-useragent", "cs(user-agent)"), "User-Agent request header"),
    Column("HttpReferrer", "VARCHAR", ("cs-referrer", "cs-referer", "cs(referer)"), "Referer request header"),
    Column("HttpVersion", "VARCHAR", ("cs-version",), "HTTP version, such as 1.1"),
    Column("HttpCookie", "VARCHAR", ("cs-cookie", "cs(cookie)"), "Cookie request header"),
    Column("HttpContentType", "VARCHAR", ("rs(content-type)",), "Content-Type of the response"),
    Column("SrcBytes", "BIGINT", ("cs-bytes",), "bytes sent by the client: the upload volume"),
    Column("DstBytes", "BIGINT", ("sc-bytes",), "bytes sent back to the client"),
    Column("DvcAction", "VARCHAR", ("s-action",), "Allow or Deny, as the proxy decided"),
    Column("UrlCategory", "VARCHAR", (), "URL category assigned by the proxy"),
    Column("EventProduct", "VARCHAR", (), "product that wrote the log, such as Squid or Zeek"),
    Column("EventVendor", "VARCHAR", (), "vendor of that product"),
    Column("SourceFile", "VARCHAR", (), "provenance: the file the event came from"),
    Column("SourceLine", "BIGINT", (), "provenance: 1-based line or record number in that file"),
    Column("RawEvent", "VARCHAR", (), "the original line; Sigma keyword searches run over it"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
COLUMN_TYPES: dict[str, str] = {column.name: column.sql_type for column in COLUMNS}

# Columns that describe where an event came from rather than what happened.
PROVENANCE_COLUMNS: frozenset[str] = frozenset({"SourceFile", "SourceLine", "RawEvent"})

# The column that Sigma keyword (field-less) searches run over.
KEYWORD_COLUMN = "RawEvent"


def _build_field_map() -> dict[str, str]:
    mapping: dict[str, str] = {}
    for column in COLUMNS:
        mapping[column.name.lower()] = column.name
        for field in column.sigma_fields:
            mapping[field.lower()] = column.name
    return mapping


# Lower-cased Sigma proxy field name or WebSession column name -> WebSession column.
# Field names are matched case-insensitively because public pipelines spell the
# same field differently (cs-referrer, cs-Referrer, cs-referer).
_FIELD_MAP: dict[str, str] = _build_field_map()


def column_for_field(field: str) -> str | None:
    """Return the WebSession column for a Sigma proxy field or column name, or None."""
    return _FIELD_MAP.get(field.lower())


def create_table_sql(table: str = "websession") -> str:
    """Return the DDL that creates the WebSession table."""
    columns = ",\n    ".join(f'"{column.name}" {column.sql_type}' for column in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns}\n)"
