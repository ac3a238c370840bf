"""DuckDB macros shared by the format readers.

Readers parse inside DuckDB, so the helpers that decode placeholders, times and
URLs are SQL macros, created once per connection by ``create_macros``.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa

# A URL in absolute form starts with a scheme, such as http:// or https://.
_SCHEME = r"^[A-Za-z][A-Za-z0-9+.\-]*://"

MACROS: tuple[str, ...] = (
    # W3C, Squid, Zeek and the combined format write '-' for a value they do not have.
    "CREATE OR REPLACE MACRO ph_dash(v) AS CASE WHEN v = '-' OR v = '' THEN NULL ELSE v END",
    # Epoch seconds (with any fraction) to a UTC TIMESTAMP, NULL when not a number.
    """CREATE OR REPLACE MACRO ph_epoch(v) AS
        CASE WHEN TRY_CAST(v AS DOUBLE) BETWEEN -62135596800 AND 253402300799
             THEN make_timestamp(CAST(round(TRY_CAST(v AS DOUBLE) * 1000000) AS BIGINT)) END""",
    # A time in any of the textual forms that exports use, to a UTC TIMESTAMP.
    # ISO 8601 offsets are honoured; a time without an offset is taken as UTC.
    r"""CREATE OR REPLACE MACRO ph_time(v) AS
        CASE
            WHEN v IS NULL THEN NULL
            WHEN regexp_full_match(v, '\s*-?\d{1,11}(\.\d+)?\s*') THEN ph_epoch(trim(v))
            WHEN regexp_full_match(v, '\s*\d{12,14}\s*') THEN ph_epoch(CAST(TRY_CAST(trim(v) AS DOUBLE) / 1000 AS VARCHAR))
            ELSE coalesce(
                CAST(TRY_CAST(trim(v) AS TIMESTAMPTZ) AS TIMESTAMP),
                CAST(try_strptime(trim(v), ['%m/%d/%Y, %I:%M:%S.%g %p', '%m/%d/%Y, %I:%M:%S %p',
                                            '%d/%b/%Y:%H:%M:%S %z', '%Y-%m-%dT%H:%M:%S.%f%z']) AS TIMESTAMP))
        END""",
    f"""CREATE OR REPLACE MACRO ph_url_host(u) AS
        CASE
            WHEN regexp_matches(u, '{_SCHEME}')
                THEN nullif(trim(regexp_extract(u, '{_SCHEME}(?:[^/?#@]*@)?(\\[[^\\]]*\\]|[^:/?#]*)', 1), '[]'), '')
            WHEN regexp_full_match(u, '(\\[[^\\]/]*\\]|[^:/\\s\\[]+):\\d+')
                THEN trim(regexp_extract(u, '^(\\[[^\\]]*\\]|[^:]+):\\d+$', 1), '[]')
        END""",
    f"""CREATE OR REPLACE MACRO ph_url_port(u) AS
        CASE
            WHEN regexp_matches(u, '{_SCHEME}')
                THEN TRY_CAST(nullif(regexp_extract(u, '{_SCHEME}(?:[^/?#@]*@)?(?:\\[[^\\]]*\\]|[^:/?#]*):(\\d+)', 1), '') AS INTEGER)
            WHEN regexp_full_match(u, '(\\[[^\\]/]*\\]|[^:/\\s\\[]+):\\d+')
                THEN TRY_CAST(regexp_extract(u, ':(\\d+)$', 1) AS INTEGER)
        END""",
    # The path of an absolute URL or of an origin-form request target (/path?query).
    # A CONNECT target (host:port) has no path.
    f"""CREATE OR REPLACE MACRO ph_url_path(u) AS
        CASE
            WHEN regexp_matches(u, '{_SCHEME}') THEN nullif(regexp_extract(u, '{_SCHEME}[^/?#]*([^?#]*)', 1), '')
            WHEN starts_with(u, '/') OR starts_with(u, '*') THEN regexp_extract(u, '^([^?#]*)', 1)
        END""",
    f"""CREATE OR REPLACE MACRO ph_url_query(u) AS
        CASE
            WHEN regexp_matches(u, '{_SCHEME}') OR starts_with(u, '/')
                THEN nullif(regexp_extract(u, '^[^?#]*\\?([^#]*)', 1), '')
        END""",
    "CREATE OR REPLACE MACRO ph_url_extension(p) AS nullif(regexp_extract(p, '\\.([^./]*)$', 1), '')",
)


def create_macros(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the ``ph_*`` macros on a connection and set its time zone to UTC."""
    connection.execute("SET TimeZone = 'UTC'")
    # DuckDB draws its own progress bar on stdout for long queries, which would
    # break the report and JSON written to stdout.
    connection.execute("SET enable_progress_bar = false")
    for statement in MACROS:
        connection.execute(statement)


def quote_literal(text: str) -> str:
    """Return ``text`` as a DuckDB string literal; DuckDB does not treat backslashes specially."""
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """Return ``name`` as a quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def query_arrow(connection: duckdb.DuckDBPyConnection, query: str) -> pa.Table:
    """Run a query and return its result as one Arrow table."""
    return connection.sql(query).to_arrow_table()


def register_function(connection: duckdb.DuckDBPyConnection, name: str, function: Callable[[str | None], str | None]) -> None:
    """Register a Python VARCHAR -> VARCHAR function under ``name``; a second call on one connection is harmless."""
    try:
        connection.create_function(name, function, ["VARCHAR"], "VARCHAR", null_handling="special", side_effects=False)
    except (duckdb.NotImplementedException, duckdb.CatalogException):
        pass
