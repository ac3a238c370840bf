"""SQL that derives DstHostname, DstPortNumber, UrlPath, UrlQuery and UrlExtension from Url in one pass.

The ``ph_url_*`` macros in ``proxyhunt.formats.sql`` define these columns, and
each of them runs its own regular expressions over the whole URL. For an
absolute URL (``http://host:port/path?query``), ``url_parts_sql`` splits the URL
once into scheme, authority, path and query, and the columns are read from
those parts. The results equal the macros' results:

- the path is the text after the authority up to the first ``?`` or ``#``, as
  in ``ph_url_path``;
- the query is the text after that ``?`` up to the first ``#``, as in
  ``ph_url_query``;
- when the authority contains neither ``@`` nor ``[``, the host is the
  authority up to its first ``:``, and the port is the digits right after that
  colon, as in ``ph_url_host`` and ``ph_url_port``.

The macros still read the host and port of an authority with user
information or an IPv6 literal, because there they backtrack in ways that a
plain split does not reproduce. They also read every part of a URL that is not
absolute, such as an origin-form ``/path`` or a CONNECT ``host:port``. ``tests/test_url_parts.py`` compares both ways on hostile URLs.
"""

from __future__ import annotations

# Groups: scheme with "://", authority, path, query. A URL that is not absolute
# gives empty strings in every group, and an absolute one a non-empty scheme.
_URL_PATTERN = r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#]*)([^?#]*)(?:\?([^#]*))?"


def url_parts_sql(url: str = "Url") -> str:
    """Return the SQL that splits the URL ``url`` into the struct of parts that ``url_column_sql`` reads."""
    return f"regexp_extract({url}, '{_URL_PATTERN}', ['scheme', 'authority', 'path', 'query'])"


def url_column_sql(column: str, parts: str, url: str = "Url") -> str:
    """Return the SQL for one URL-derived ``column``, given the struct ``parts`` that ``url_parts_sql(url)`` built.

    ``column`` is one of DstHostname, DstPortNumber, UrlPath, UrlQuery. The
    result equals the ``ph_url_*`` macro of that column applied to ``url``.
    """
    absolute = f"{parts}.scheme <> ''"
    plain_authority = f"{absolute} AND NOT contains({parts}.authority, '@') AND NOT contains({parts}.authority, '[')"
    if column == "UrlPath":
        return f"CASE WHEN {absolute} THEN nullif({parts}.path, '') ELSE ph_url_path({url}) END"
    if column == "UrlQuery":
        return f"CASE WHEN {absolute} THEN nullif({parts}.query, '') ELSE ph_url_query({url}) END"
    if column == "DstHostname":
        return (
            f"CASE WHEN {plain_authority} THEN nullif(trim(split_part({parts}.authority, ':', 1), '[]'), '') "
            f"ELSE ph_url_host({url}) END"
        )
    if column == "DstPortNumber":
        digits = f"regexp_extract({parts}.authority, '^[^:]*:(\\d+)', 1)"
        return (
            f"CASE WHEN {plain_authority} THEN "
            f"CASE WHEN contains({parts}.authority, ':') THEN TRY_CAST(nullif({digits}, '') AS INTEGER) END "
            f"ELSE ph_url_port({url}) END"
        )
    raise ValueError(f"{column} is not derived from Url; expected DstHostname, DstPortNumber, UrlPath or UrlQuery")
