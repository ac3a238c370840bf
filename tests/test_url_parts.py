"""The one-pass URL split of ``url_parts`` against the ``ph_url_*`` macros it replaces, value for value."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyhunt.formats.loader import Loader
from proxyhunt.formats.sql import create_macros
from proxyhunt.formats.url_parts import url_column_sql, url_parts_sql

from corpus import CORPUS

MACROS = {
    "DstHostname": "ph_url_host(Url)",
    "DstPortNumber": "ph_url_port(Url)",
    "UrlPath": "ph_url_path(Url)",
    "UrlQuery": "ph_url_query(Url)",
}

HOSTILE_URLS = [
    None,
    "",
    "-",
    "/",
    "*",
    "/index.html?a=1#frag",
    "/a?b?c#d?e",
    "/#only-fragment",
    "http://example.com",
    "http://example.com/",
    "HTTP://Example.COM:8080/Path/File.TXT?q=1",
    "https://example.com:443",
    "https://example.com:/x",
    "https://example.com:abc/x",
    "https://example.com:80abc/x",
    "https://example.com:99999999999/x",
    "https://example.com:0080/x",
    "https://example.com:8080:9090/x",
    "http://user@example.com/",
    "http://user:pass@example.com:8080/",
    "http://u:123@h/",
    "http://a@b@c:81/",
    "http://[2001:db8::1]:8443/x",
    "http://[2001:db8::1]/x",
    "http://[abc]x:80/",
    "http://[a/b]/x",
    "http://[unterminated/x",
    "http://host]/x",
    "http://]/x",
    "http://:80/x",
    "http:///path",
    "http://?q",
    "http://#f",
    "http://host?q=1",
    "http://host#f?x",
    "svn+ssh://host.example:22/repo",
    "1http://host/x",
    "http:/host/x",
    "example.com:443",
    "[2001:db8::1]:443",
    "example.com",
    "http://host/path\nwith newline?q=\n#x",
    "http://host/path\r\n",
    "http://ho\x00st:80/nul\x00?q=\x00",
    "http://host/\ufffd\ufffd?bad=\ufffd",
    "http://ho\tst:8\t0/x",
    "http://hôst.example/ünïcode?ß=1",
    "http://host/a.b/c",
    "http://host/x.tar.gz",
    "http://host/x.",
]


def _compare(connection: duckdb.DuckDBPyConnection, urls: list[str | None]) -> list[tuple]:
    """Return the rows where a url_parts_sql column differs from its macro, as (url, column, new, old)."""
    new = ", ".join(f"{url_column_sql(column, 'p')} AS new_{column}" for column in MACROS)
    old = ", ".join(f"{macro} AS old_{column}" for column, macro in MACROS.items())
    rows = connection.execute(
        f"SELECT Url, {new}, {old} FROM (SELECT Url, {url_parts_sql()} AS p FROM (SELECT unnest(?::VARCHAR[]) AS Url))",
        [urls],
    ).fetchall()
    differences = []
    count = len(MACROS)
    for row in rows:
        for index, column in enumerate(MACROS):
            if row[1 + index] != row[1 + count + index]:
                differences.append((row[0], column, row[1 + index], row[1 + count + index]))
    return differences


@pytest.fixture(scope="module")
def connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    create_macros(connection)
    return connection


def test_hostile_urls_match_macros(connection: duckdb.DuckDBPyConnection) -> None:
    assert _compare(connection, HOSTILE_URLS) == []


def test_url_parts_split_absolute_url(connection: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(url_column_sql(column, "p") for column in MACROS)
    row = connection.execute(
        f"SELECT {columns} FROM (SELECT Url, {url_parts_sql()} AS p FROM (SELECT ? AS Url))",
        ["http://files.example:8080/up/load.bin?part=2#top"],
    ).fetchall()[0]

    assert row == ("files.example", 8080, "/up/load.bin", "part=2")


def test_url_parts_reject_unknown_column() -> None:
    with pytest.raises(ValueError, match="UrlExtension is not derived from Url"):
        url_column_sql("UrlExtension", "p")


URL_CHARACTERS = st.sampled_from(list("hH:/?#@[]. -%9a8\n\tüx"))
URL_TEXT = st.text(URL_CHARACTERS, max_size=24)
URLS = st.one_of(URL_TEXT, st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "HTTPS://", "a+b.c-d://"]), URL_TEXT))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(URLS, min_size=1, max_size=20))
def test_generated_urls_match_macros(connection: duckdb.DuckDBPyConnection, urls: list[str]) -> None:
    assert _compare(connection, urls) == []


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared log corpus is not present at {CORPUS}")
def test_corpus_urls_match_macros(connection: duckdb.DuckDBPyConnection) -> None:
    loading = duckdb.connect()
    loader = Loader(loading)
    for path in sorted(Path(CORPUS).rglob("*")):
        if path.is_file() and "sigma-rules" not in path.parts and "process-creation" not in path.parts:
            loader.load(str(path))
    urls = [row[0] for row in loading.execute("SELECT DISTINCT Url FROM websession").fetchall()]

    assert len(urls) > 100
    assert _compare(connection, urls) == []
