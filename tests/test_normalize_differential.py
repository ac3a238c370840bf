"""Fast paths of the full parse against the slow expressions they bypass, and chunked normalize against one load.

Each fast path reads common values with plain string functions and sends the
rest to the regular expression it replaces, so both must give the same
struct for every input. A normalize run that writes its input in several
chunks must write exactly the rows that loading the file at once gives.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyhunt.formats.combined import _FIELDS, _LINE, _REQUEST, _line_sql, _request_sql
from proxyhunt.formats.loader import Loader
from proxyhunt.formats.parquet import PARTITION_COLUMN
from proxyhunt.normalize import normalize

from corpus import CORPUS

HOSTILE_REQUESTS = [
    None,
    "",
    "-",
    "GET / HTTP/1.1",
    "GET http://example.com/a?b=1 HTTP/1.0",
    "CONNECT example.com:443 HTTP/1.1",
    "GET / HTTP/",
    "GET / HTTP/1.1 extra",
    "GET  / HTTP/1.1",
    " GET / HTTP/1.1",
    "GET / HTTP/1.1 ",
    "GET /a b HTTP/1.1",
    "GET\t/ HTTP/1.1",
    "GET /\tx HTTP/1.1",
    "GET / HTTP/1.1\r",
    "GET / HTTP/1.1\n",
    "GET /\fx HTTP/1.1",
    "GET /\vx HTTP/1.1",
    "GET / http/1.1",
    "GET / HTTP/1.1/2",
    "GET /",
    "GET",
    "GET / HTTPS/1.1",
    "GET /ünïcode HTTP/2",
    "GET / HTTP/ü",
    "\\x16\\x03\\x01",
    'GET /\\"q\\" HTTP/1.1',
    "GET /nul\x00 HTTP/1.1",
    "GET /bad\ufffd HTTP/1.1",
    "GET / HTTP/1.1\r\n",
]


@pytest.fixture(scope="module")
def connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _request_differences(connection: duckdb.DuckDBPyConnection, requests: list[str | None]) -> list[tuple]:
    """Return (request, fast, slow) for every request where the fast split differs from _REQUEST."""
    rows = connection.execute(
        f"SELECT request, {_request_sql('request', 'words')} AS fast, "
        f"regexp_extract(request, '{_REQUEST}', ['method', 'target', 'version']) AS slow "
        "FROM (SELECT request, string_split(request, ' ') AS words FROM (SELECT unnest(?::VARCHAR[]) AS request))",
        [requests],
    ).fetchall()
    return [row for row in rows if row[1] != row[2]]


def test_hostile_requests_match_regex(connection: duckdb.DuckDBPyConnection) -> None:
    assert _request_differences(connection, HOSTILE_REQUESTS) == []


def test_request_split_reads_common_request(connection: duckdb.DuckDBPyConnection) -> None:
    row = connection.execute(
        f"SELECT {_request_sql('request', 'words')} FROM (SELECT ? AS request, string_split(?, ' ') AS words)",
        ["PUT /upload HTTP/1.1", "PUT /upload HTTP/1.1"],
    ).fetchall()[0][0]

    assert row == {"method": "PUT", "target": "/upload", "version": "1.1"}


REQUEST_WORDS = st.text(st.sampled_from(list("GETP/x.1HT ü\t\r\n\f\v")), max_size=8)
REQUESTS = st.one_of(
    st.text(st.sampled_from(list("GET /HTP1. \t\r\n\f\vxü")), max_size=24),
    st.builds(lambda method, target, version: f"{method} {target} HTTP/{version}", REQUEST_WORDS, REQUEST_WORDS, REQUEST_WORDS),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(REQUESTS, min_size=1, max_size=20))
def test_generated_requests_match_regex(
    connection: duckdb.DuckDBPyConnection, requests: list[str]
) -> None:
    assert _request_differences(connection, requests) == []


# Fields of a combined line, each plain or in a shape that the line pattern reads
# differently from a split at quotes and spaces. The shapes are colons and brackets in
# the first fields, escaped and stray quotes, other whitespace, a short status and text
# after the user agent.
LINE_PIECES = {
    "client": ["10.0.0.1", "2001:db8::1", "[2001:db8::2]", "proxy.example:8080", "a[b", "-", ""],
    "ident": ["-", "id", "a]b", "x:1"],
    "user": ["-", "bob", "bob smith", "[x]", "a:b", "\t"],
    "time": ["[04/Dec/2026:10:00:00 +0000]", "[x]", "[]", "[a[b]", "04/Dec/2026"],
    "request": ['"GET / HTTP/1.1"', '"GET /\\"x\\" HTTP/1.1"', '""', '"a"b"', '"GET /a b HTTP/1.1"', '"\t"'],
    "status": ["200", "-", "2000", "20", "x"],
    "bytes": ["123", "-", "", "12a"],
    "referrer": ['"-"', '"http://r.example/"', '""', '"a\\\\b"', '"x"y"', "", '"x\\"', '"r [t2] "'],
    "agent": ['"curl/8.5.0"', '"rclone/v1.66.0"', '""', '"a\\"b"', '"Mozilla/5.0 (X11)"', ""],
    "tail": ["", " ", " TCP_MISS:HIER_DIRECT", "x", ' "extra"', "\t", "\r"],
}


@st.composite
def combined_lines(draw) -> str:
    """Draw a combined line whose fields and separators are plain but for one or two, so most lines are near misses."""
    hostile = draw(st.sets(st.sampled_from([*LINE_PIECES, "separator"]), max_size=2))
    pieces = {
        name: draw(st.sampled_from(values if name in hostile else values[:2])) for name, values in LINE_PIECES.items()
    }
    separators = [" ", "  ", "\t"] if "separator" in hostile else [" "]
    order = ["client", "ident", "user", "time", "request", "status", "bytes", "referrer", "agent"]
    line = "".join(pieces[name] + draw(st.sampled_from(separators)) for name in order[:-1]) + pieces["agent"]
    return line + pieces["tail"]


def _line_differences(connection: duckdb.DuckDBPyConnection, lines: list[str]) -> tuple[list[tuple], int]:
    """Return (line, fast, slow) for every line where the split differs from _LINE, and how many lines were split."""
    names = ", ".join(f"'{name}'" for name in _FIELDS)
    rows = connection.execute(
        f"SELECT line, {_line_sql('line', 'quotes')} AS fast, regexp_extract(line, '{_LINE}', [{names}]) AS slow, "
        "len(quotes) = 7 AND NOT contains(line, '\\') AS maybe_plain "
        "FROM (SELECT line, string_split(line, '\"') AS quotes FROM (SELECT unnest(?::VARCHAR[]) AS line))",
        [lines],
    ).fetchall()
    differences = [row[:3] for row in rows if row[1] != row[2]]
    return differences, sum(1 for row in rows if row[3] and row[2]["time"])


PLAIN = '10.0.0.1 - bob [04/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8.5.0"'
HOSTILE_COMBINED_LINES = [
    PLAIN,
    PLAIN.replace(" 200 ", " 2000 "),
    PLAIN.replace(" 200 ", " 20 "),
    PLAIN.replace(" 12 ", " 1a "),
    PLAIN.replace('"-"', '"x\\"'),
    PLAIN.replace('"-"', '"a\\\\b"'),
    PLAIN.replace("10.0.0.1", "2001:db8::1"),
    PLAIN.replace("10.0.0.1 - bob", "proxy.example:8080 10.0.0.1 -"),
    PLAIN.replace("10.0.0.1 - bob", "h:80 i u").replace('"-"', '"r [t2] "'),
    PLAIN.replace("bob", "bob smith"),
    PLAIN.replace("bob", "[bob]"),
    PLAIN.replace(" [", "\t["),
    PLAIN.replace(" - ", "  - "),
    PLAIN + " TCP_MISS:HIER_DIRECT",
    PLAIN + " ",
    PLAIN + "x",
    PLAIN.rsplit(" ", 2)[0],
    PLAIN.replace("[04/Dec/2026:10:00:00 +0000]", "[]"),
    PLAIN.replace("GET / HTTP/1.1", ""),
]


def test_hostile_combined_lines_match_regex(connection: duckdb.DuckDBPyConnection) -> None:
    differences, plain = _line_differences(connection, HOSTILE_COMBINED_LINES)

    assert differences == []
    assert plain >= 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(combined_lines(), min_size=1, max_size=30))
def test_generated_lines_match_regex(connection: duckdb.DuckDBPyConnection, lines: list[str]) -> None:
    differences, _ = _line_differences(connection, lines)

    assert differences == []


def test_line_split_reads_plain_lines(connection: duckdb.DuckDBPyConnection) -> None:
    # A check that the split is taken at all: plain lines give the regex's fields.
    line = '10.0.0.1 - bob [04/Dec/2026:10:00:00 +0000] "PUT /up HTTP/1.1" 200 12 "-" "rclone/v1.66.0"'

    differences, plain = _line_differences(connection, [line])
    row = connection.execute(
        f"SELECT {_line_sql('line', 'quotes')} FROM (SELECT ? AS line, string_split(?, '\"') AS quotes)", [line, line]
    ).fetchall()[0][0]

    assert differences == []
    assert plain == 1
    assert row["agent"] == "rclone/v1.66.0"
    assert row["time"] == "04/Dec/2026:10:00:00 +0000"


def _rows_missing(connection: duckdb.DuckDBPyConnection, lake: Path) -> tuple[int, int]:
    """Return how many loaded rows the dataset at ``lake`` lacks, and how many rows it has that were not loaded."""
    dataset = f"read_parquet('{lake}/{PARTITION_COLUMN}=*/*.parquet', hive_partitioning = false)"
    missing = connection.execute(f"SELECT count(*) FROM (SELECT * FROM websession EXCEPT ALL SELECT * FROM {dataset})")
    missing_count = missing.fetchall()[0][0]
    extra = connection.execute(f"SELECT count(*) FROM (SELECT * FROM {dataset} EXCEPT ALL SELECT * FROM websession)")
    return missing_count, extra.fetchall()[0][0]


def _write_big_log(path: Path, lines: int) -> None:
    """Write ``lines`` combined-format lines over three days, a few of them malformed or with escaped quotes."""
    with path.open("w", encoding="utf-8") as handle:
        for number in range(lines):
            day = 1 + number * 3 // lines
            if number % 9973 == 0:
                handle.write("not a log line\n")
                continue
            # Hash digits compress poorly, so the table fills memory as a real log would.
            digest = hashlib.sha256(str(number).encode()).hexdigest()
            referrer = f'http://ref.example/\\"{digest[24:]}\\"' if number % 1000 == 0 else "-"
            agent = "rclone/v1.66.0" if number % 2000 == 0 else f"Mozilla/5.0 (X11; Linux x86_64) build/{digest[:24]}"
            handle.write(
                f'10.0.{number % 200}.{number % 250} - user{number % 7} [{day:02d}/Nov/2026:12:{number % 60:02d}:00 +0000] '
                f'"GET http://host{number % 50}.example:8080/p/{digest}.bin?x={digest[:16]} HTTP/1.1" 200 {number} '
                f'"{referrer}" "{agent}"\n'
            )


def test_normalize_chunks_equal_one_load(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    _write_big_log(log, 150_000)

    result = normalize([str(log)], str(tmp_path / "lake"), memory_limit="64MB")
    connection = duckdb.connect()
    report = Loader(connection).load(str(log))

    assert not result.failed_files
    assert result.rows == report.parsed
    assert result.files[0].columns == report.columns
    assert (result.files[0].first_seen, result.files[0].last_seen) == (report.first_seen, report.last_seen)
    assert max(len(list(partition.iterdir())) for partition in (tmp_path / "lake").glob(f"{PARTITION_COLUMN}=*")) > 1
    assert _rows_missing(connection, tmp_path / "lake") == (0, 0)


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared log corpus is not present at {CORPUS}")
def test_normalize_corpus_equals_load(tmp_path: Path) -> None:
    paths = [
        str(path)
        for path in sorted(CORPUS.rglob("*"))
        if path.is_file() and "sigma-rules" not in path.parts and "process-creation" not in path.parts
    ]
    normalize(paths, str(tmp_path / "lake"))
    connection = duckdb.connect()
    loader = Loader(connection)
    for path in paths:
        loader.load(path)

    assert connection.execute("SELECT count(*) FROM websession").fetchall()[0][0] > 1000
    assert _rows_missing(connection, tmp_path / "lake") == (0, 0)


HOSTILE_LINES = [
    b'10.0.0.1 - - [01/Nov/2026:10:00:00 +0000] "GET http://a.example/x HTTP/1.1" 200 5 "-" "rclone/v1.66.0"\r\n',
    b'10.0.0.2 - - [01/Nov/2026:10:00:01 +0000] "GET http://b.example/\x00nul HTTP/1.1" 200 5 "-" "curl/8"\n',
    b'10.0.0.3 - - [01/Nov/2026:10:00:02 +0000] "GET http://c.example/\xff\xfe HTTP/1.1" 200 5 "-" "bad \xc3("\n',
    b'10.0.0.4 - - [01/Nov/2026:10:00:03 +0000] "PUT http://u@d.example:81/x?q HTTP/1.1" - - "-" "-"\n',
    b'10.0.0.5 - - [01/Nov/2026:10:00:04 +0000] "CONNECT e.example:443 HTTP/1.1" 200 0 "-" "Go-http-client/1.1"\n',
    b'10.0.0.6 - - [01/Nov/2026:10:00:05 +0000] "GET /a b HTTP/1.1" 400 0 "-" "x\\"y"\n',
    b"short line\n",
    b"\n",
]


def test_normalize_hostile_lines_equal_load(tmp_path: Path) -> None:
    log = tmp_path / "hostile.log"
    log.write_bytes(b"".join(HOSTILE_LINES))

    result = normalize([str(log)], str(tmp_path / "lake"), format_name="combined")
    connection = duckdb.connect()
    report = Loader(connection).load(str(log), format_name="combined")

    assert result.rows == report.parsed == 6
    assert result.files[0].rejected == report.rejected == 1
    assert _rows_missing(connection, tmp_path / "lake") == (0, 0)
