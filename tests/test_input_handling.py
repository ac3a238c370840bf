"""Reading input files: compression, damaged archives, encodings, odd lines, paths and batch boundaries.

Every test writes real files under tmp_path and reads them with the real
LineReader, Loader and DuckDB. Compressed files are made with the standard
gzip, bz2 and lzma modules and with zstandard.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import zstandard

from proxyhunt.formats import format_names
from proxyhunt.formats import source
from proxyhunt.formats.loader import FileReport, Loader, expand_paths
from proxyhunt.formats.source import LineReader, sniff_compression, split_lines
from proxyhunt.hunt import hunt

COMPRESSORS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lambda data: lzma.compress(data, preset=0),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def combined_line(number: int, agent: str = "curl/8.5.0") -> str:
    """Return a combined log line whose URL and byte count both carry ``number``."""
    return (
        f'10.0.{number // 250 % 250}.{number % 250} - - [17/May/2015:10:05:03 +0000] '
        f'"GET /item/{number} HTTP/1.1" 200 {number} "-" "{agent}"'
    )


def combined_text(count: int, start: int = 1) -> bytes:
    """Return ``count`` combined log lines numbered from ``start``, each ending with a newline."""
    return "".join(combined_line(number) + "\n" for number in range(start, start + count)).encode()


def load(
    path: Path, format_name: str | None = None, progress: Callable[[int], None] | None = None
) -> tuple[FileReport, duckdb.DuckDBPyConnection]:
    """Load one file into a fresh in-memory database and return its report and the connection."""
    connection = duckdb.connect()
    report = Loader(connection).load(str(path), format_name=format_name, progress=progress)
    return report, connection


def column(connection: duckdb.DuckDBPyConnection, name: str) -> dict[int, Any]:
    """Return the values of column ``name`` in every websession row, keyed by SourceLine."""
    rows = connection.execute(f'SELECT SourceLine, "{name}" FROM websession ORDER BY SourceLine').fetchall()
    return dict(rows)


def rejects(connection: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
    return connection.execute("SELECT SourceLine, Reason, RawEvent FROM rejects ORDER BY SourceLine").fetchall()


def assert_every_line_counted(report: FileReport) -> None:
    assert report.parsed + report.rejected + report.skipped == report.lines_read


def read_all(reader: LineReader) -> list[str]:
    lines: list[str] = []
    for batch in reader:
        lines.extend(batch.lines.to_pylist())
    return lines


# Compression


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_compression_detected_from_content(tmp_path, compression):
    path = tmp_path / "access"
    path.write_bytes(COMPRESSORS[compression](combined_text(300)))

    report, connection = load(path)

    assert report.compression == compression
    assert report.format == "combined"
    assert report.error is None
    assert report.lines_read == 300
    assert report.parsed == 300
    assert column(connection, "DstBytes") == {number: number for number in range(1, 301)}


def test_gz_name_on_plain_file(tmp_path):
    path = tmp_path / "access.log.gz"
    path.write_bytes(combined_text(5))

    report, connection = load(path)

    assert report.compression is None
    assert report.error is None
    assert report.parsed == 5
    assert column(connection, "Url")[5] == "/item/5"


def test_text_starting_with_bzh_is_not_bzip2(tmp_path):
    # Only the magic number, block size digit and block marker together mean bzip2.
    path = tmp_path / "access.log"
    path.write_bytes(b'BZh9.example - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8.5.0"\n')

    report, connection = load(path)

    assert report.compression is None
    assert report.parsed == 1
    assert column(connection, "SrcIpAddr") == {1: "BZh9.example"}


def test_zstd_with_leading_skippable_frame(tmp_path):
    # pzstd writes a skippable frame before the data frames.
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"meta"
    path = tmp_path / "access.log.zst"
    path.write_bytes(skippable + zstandard.ZstdCompressor().compress(combined_text(3)))

    report, _ = load(path)

    assert report.compression == "zstd"
    assert report.error is None
    assert report.parsed == 3


def test_sniff_compression_magic_numbers():
    assert sniff_compression(gzip.compress(b"x")[:10]) == "gzip"
    assert sniff_compression(bz2.compress(b"x")[:10]) == "bzip2"
    assert sniff_compression(bz2.compress(b"")[:10]) == "bzip2"
    assert sniff_compression(lzma.compress(b"x")[:10]) == "xz"
    assert sniff_compression(zstandard.ZstdCompressor().compress(b"x")[:10]) == "zstd"
    assert sniff_compression(b"BZh9 not bzip2") is None
    assert sniff_compression(b"\x1f\x8b") is None
    assert sniff_compression(b"") is None


def test_multi_member_gzip(tmp_path):
    # `cat a.gz b.gz c.gz` makes one valid gzip file of three members.
    data = combined_text(100)
    members = [data[:1000], data[1000:1001], data[1001:]]
    path = tmp_path / "access.log.gz"
    path.write_bytes(b"".join(gzip.compress(member) for member in members))

    report, connection = load(path)

    assert report.compression == "gzip"
    assert report.error is None
    assert report.parsed == 100
    assert column(connection, "DstBytes") == {number: number for number in range(1, 101)}


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_concatenated_streams_with_tiny_reads(tmp_path, compression):
    # A read size of 3 bytes splits every magic number across reads.
    data = combined_text(40)
    path = tmp_path / "access"
    path.write_bytes(COMPRESSORS[compression](data[:500]) + COMPRESSORS[compression](data[500:]))

    reader = LineReader(path, read_size=3)
    lines = read_all(reader)

    assert reader.error is None
    assert lines == data.decode().splitlines()


def test_gzip_zero_padding_ignored(tmp_path):
    # Tape and block devices pad files with zero bytes, which gzip ignores.
    path = tmp_path / "access.log.gz"
    path.write_bytes(gzip.compress(combined_text(10)) + b"\x00" * 4096)

    report, _ = load(path)

    assert report.error is None
    assert report.parsed == 10


def test_gzip_trailing_garbage_reported(tmp_path):
    compressed = gzip.compress(combined_text(10))
    path = tmp_path / "access.log.gz"
    path.write_bytes(compressed + b"this is not gzip data\n")

    report, _ = load(path)

    assert report.parsed == 10
    assert report.rejected == 0
    assert report.error is not None
    assert "not gzip data" in report.error
    assert f"from byte {len(compressed)}" in report.error


# Damaged archives


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd"])
def test_truncated_archive_keeps_lines_before_damage(tmp_path, compression):
    data = combined_text(20_000)
    compressed = COMPRESSORS[compression](data)
    path = tmp_path / "access"
    path.write_bytes(compressed[: len(compressed) // 2])

    report, connection = load(path)

    assert report.compression == compression
    assert report.error is not None
    assert f"the {compression} data ends before its end-of-stream marker" in report.error
    assert "truncated" in report.error
    assert report.parsed > 1000
    assert_every_line_counted(report)
    # Every line kept is the line written there, complete.
    assert column(connection, "DstBytes") == {number: number for number in range(1, report.parsed + 1)}


def test_truncated_gzip_rejects_cut_off_line(tmp_path):
    data = combined_text(100)
    cut = data.index(b"/item/50 ")
    # A sync flush makes every byte up to the cut decodable, but the stream has
    # no end, as if its writer stopped in the middle of line 50.
    compressor = zlib.compressobj(wbits=31)
    path = tmp_path / "access.log.gz"
    path.write_bytes(compressor.compress(data[:cut]) + compressor.flush(zlib.Z_SYNC_FLUSH))

    report, connection = load(path)

    assert report.lines_read == 50
    assert report.parsed == 49
    assert report.rejected == 1
    assert_every_line_counted(report)
    assert "kept the 49 complete lines before the damage" in report.error
    assert "rejected the incomplete line 50" in report.error
    [(line, reason, text)] = rejects(connection)
    assert line == 50
    assert "incomplete line" in reason
    assert text == data[:cut].decode().splitlines()[-1]


def test_corrupt_gzip_keeps_lines_before_damage(tmp_path):
    data = combined_text(20_000)
    compressed = bytearray(gzip.compress(data))
    middle = len(compressed) // 2
    compressed[middle : middle + 1000] = b"\xff" * 1000
    path = tmp_path / "access.log.gz"
    path.write_bytes(bytes(compressed))

    report, connection = load(path)

    assert report.error is not None
    assert "the gzip data is corrupt" in report.error
    assert_every_line_counted(report)
    # The decompressor gets at most 64 KiB at a time, so the lines decoded from
    # the input before the damaged piece are kept.
    assert report.parsed > 5000
    urls = column(connection, "Url")
    assert all(urls[number] == f"/item/{number}" for number in range(1, 5001))


def test_empty_gzip_member(tmp_path):
    path = tmp_path / "empty.gz"
    path.write_bytes(gzip.compress(b""))

    report, _ = load(path)

    assert report.error is None
    assert report.compression == "gzip"
    assert report.lines_read == 0


# Encodings and line endings


def test_invalid_utf8_kept_and_counted(tmp_path):
    lines = [
        combined_line(1).encode(),
        combined_line(2).replace("/item/2", "/caf\xe9").encode("latin-1"),
        # Valid UTF-8 that contains U+FFFD itself is not invalid.
        combined_line(3).replace("/item/3", "/\ufffd").encode(),
        combined_line(4).replace("curl/8.5.0", "agent \xff\xfe").encode("latin-1"),
        combined_line(5).encode(),
    ]
    path = tmp_path / "access.log"
    path.write_bytes(b"\n".join(lines) + b"\n")

    report, connection = load(path)

    assert report.invalid_utf8_lines == 2
    assert report.parsed == 5
    urls = column(connection, "Url")
    assert urls[2] == "/caf\ufffd"
    assert urls[3] == "/\ufffd"
    assert column(connection, "HttpUserAgent")[4] == "agent \ufffd\ufffd"


def test_split_lines_counts_invalid_lines_only():
    lines, invalid = split_lines(b"ok\n\xff bad\n\xef\xbf\xbd valid\r\nlast \xc3")

    assert lines.to_pylist() == ["ok", "\ufffd bad", "\ufffd valid", "last \ufffd"]
    assert invalid == 2


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(combined_text(3).replace(b"\n", b"\r\n"))

    report, connection = load(path)

    assert report.parsed == 3
    assert column(connection, "HttpUserAgent") == {1: "curl/8.5.0", 2: "curl/8.5.0", 3: "curl/8.5.0"}
    assert all(not raw.endswith("\r") for raw in column(connection, "RawEvent").values())


def test_zeek_tsv_with_crlf(tmp_path):
    header = zeek_header(["ts", "id.orig_h", "uri", "user_agent"])
    path = tmp_path / "http.log"
    text = header + "1517336154.078555\t10.0.0.1\t/a\tcurl/8.5.0\n"
    path.write_bytes(text.replace("\n", "\r\n").encode())

    report, connection = load(path)

    assert report.format == "zeek-tsv"
    assert report.parsed == 1
    assert column(connection, "HttpUserAgent") == {len(header.splitlines()) + 1: "curl/8.5.0"}


def test_file_without_final_newline(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(combined_text(3).rstrip(b"\n"))

    report, connection = load(path)

    assert report.lines_read == 3
    assert report.parsed == 3
    assert column(connection, "Url")[3] == "/item/3"


def test_empty_file(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"")

    report, _ = load(path)

    assert report.error is None
    assert report.format is None
    assert report.lines_read == 0
    assert report.parsed == 0


def test_one_megabyte_line(tmp_path):
    long_path = "/" + "x" * 1_000_000
    lines = [combined_line(1), combined_line(2).replace("/item/2", long_path), combined_line(3)]
    path = tmp_path / "access.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    report, connection = load(path)

    assert report.parsed == 3
    urls = column(connection, "Url")
    assert urls[2] == long_path
    assert urls[3] == "/item/3"


def test_one_megabyte_first_line(tmp_path):
    # The first line decides detection, and its user agent contains a comma
    # as real browser user agents do.
    long_path = "/" + "x" * 1_000_000
    agent = "Mozilla/5.0 (KHTML, like Gecko)"
    lines = [combined_line(1, agent).replace("/item/1", long_path), combined_line(2, agent)]
    path = tmp_path / "access.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    report, connection = load(path)

    assert report.format == "combined"
    assert report.parsed == 2
    assert column(connection, "Url")[1] == long_path


def test_nul_byte_inside_line(tmp_path):
    lines = [combined_line(1), combined_line(2).replace("/item/2", "/a\x00b"), combined_line(3)]
    path = tmp_path / "access.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    report, connection = load(path)

    assert report.lines_read == 3
    assert report.parsed == 3
    assert column(connection, "Url") == {1: "/item/1", 2: "/a\x00b", 3: "/item/3"}


def test_blank_lines_skipped(tmp_path):
    text = b"\n" + combined_text(1) + b"\n   \n\t\r\n" + combined_text(1, start=2) + b"\n"
    path = tmp_path / "access.log"
    path.write_bytes(text)

    report, connection = load(path)

    assert report.lines_read == 7
    assert report.parsed == 2
    assert report.skipped == 5
    assert report.rejected == 0
    assert sorted(column(connection, "Url")) == [2, 6]


def test_blank_only_file_skipped(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"\n  \n\r\n")

    report, _ = load(path)

    assert report.error is None
    assert report.lines_read == 3
    assert report.skipped == 3


def test_content_after_many_blank_lines(tmp_path):
    # More blank lines than one read and the detection sample hold come before the first entry.
    blank_count = max(source.READ_SIZE, source.SAMPLE_BYTES) + 10
    path = tmp_path / "access.log"
    path.write_bytes(b"\n" * blank_count + combined_text(2))

    report, connection = load(path)

    assert report.format == "combined"
    assert report.skipped == blank_count
    assert sorted(column(connection, "Url")) == [blank_count + 1, blank_count + 2]


# Paths


def test_directory_read_recursively(tmp_path):
    (tmp_path / "logs" / "2024" / "05").mkdir(parents=True)
    (tmp_path / "logs" / ".git").mkdir()
    (tmp_path / "logs" / "b.log").write_bytes(combined_text(1))
    (tmp_path / "logs" / "2024" / "a.log").write_bytes(combined_text(1))
    (tmp_path / "logs" / "2024" / "05" / "c.log.gz").write_bytes(gzip.compress(combined_text(1)))
    (tmp_path / "logs" / ".hidden.log").write_bytes(combined_text(1))
    (tmp_path / "logs" / ".git" / "config").write_bytes(b"[core]\n")

    files, missing = expand_paths([str(tmp_path / "logs")])

    assert missing == []
    assert files == [
        str(tmp_path / "logs" / "2024" / "05" / "c.log.gz"),
        str(tmp_path / "logs" / "2024" / "a.log"),
        str(tmp_path / "logs" / "b.log"),
    ]


def test_globs_expanded(tmp_path):
    (tmp_path / "squid" / "old").mkdir(parents=True)
    (tmp_path / "squid" / "access.log").write_bytes(combined_text(1))
    (tmp_path / "squid" / "access.log.1").write_bytes(combined_text(1))
    (tmp_path / "squid" / "cache.log").write_bytes(b"not selected\n")
    (tmp_path / "squid" / "old" / "access.log.9").write_bytes(combined_text(1))

    files, missing = expand_paths([str(tmp_path / "squid" / "access.log*"), str(tmp_path / "**" / "old")])

    assert missing == []
    assert files == [
        str(tmp_path / "squid" / "access.log"),
        str(tmp_path / "squid" / "access.log.1"),
        str(tmp_path / "squid" / "old" / "access.log.9"),
    ]


def test_file_named_twice_listed_once(tmp_path):
    (tmp_path / "access.log").write_bytes(combined_text(1))

    files, _ = expand_paths([str(tmp_path / "access.log"), str(tmp_path), str(tmp_path / "*.log")])

    assert files == [str(tmp_path / "access.log")]


def test_missing_path_reported(tmp_path):
    missing_file = str(tmp_path / "nope.log")
    missing_glob = str(tmp_path / "nope-*.log")
    (tmp_path / "empty").mkdir()
    present = tmp_path / "access.log"
    present.write_bytes(combined_text(2))

    result = hunt([missing_file, missing_glob, str(tmp_path / "empty"), str(present)])

    reports = {report.path: report for report in result.files}
    assert reports[missing_file].error == "file not found; check the path"
    assert "no file matches this glob pattern" in reports[missing_glob].error
    assert "contains no files" in reports[str(tmp_path / "empty")].error
    assert reports[str(present)].error is None
    assert reports[str(present)].parsed == 2


def test_loader_reports_missing_file(tmp_path):
    report, _ = load(tmp_path / "nope.log")

    assert report.error is not None
    assert "not found" in report.error


def test_loader_reports_directory(tmp_path):
    report, _ = load(tmp_path)

    assert report.error is not None
    assert "directory" in report.error


# Formats


def test_undetectable_file_lists_formats(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"Dear diary,\ntoday the proxy was quiet.\n")

    report, _ = load(path)

    assert report.format is None
    assert report.error is not None
    assert report.error.startswith("format not recognized")
    for name in format_names():
        assert f"{name} (" in report.error
    assert "--format" in report.error


def test_unknown_format_name_reported(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(combined_text(1))

    report, _ = load(path, format_name="no-such-format")

    assert report.error is not None
    assert "no-such-format" in report.error
    assert "combined" in report.error


def test_forced_format_never_raises(tmp_path):
    # Python's csv module raises on a field longer than 128 KiB. Loading must
    # report such a failure for the file instead of raising.
    agent = "Mozilla/5.0 (KHTML, like Gecko)"
    lines = [combined_line(1, agent).replace("/item/1", "/" + "x" * 200_000), combined_line(2, agent)]
    path = tmp_path / "access.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    for name in format_names():
        report, _ = load(path, format_name=name)

        accounted = report.parsed + report.rejected + report.skipped == report.lines_read
        assert report.error is not None or accounted, f"format {name}"


def test_deeply_nested_json_is_undetectable(tmp_path):
    # json.loads raises RecursionError here, and detection must score the line anyway.
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 100_000 + b"\n")

    report, _ = load(path)

    assert report.format is None
    assert report.error.startswith("format not recognized")


# Batch boundaries


def test_line_reader_small_batches(tmp_path):
    data = combined_text(50).replace(b"\n", b"\r\n")
    path = tmp_path / "access.log.gz"
    path.write_bytes(gzip.compress(data))

    reader = LineReader(path, batch_bytes=300, read_size=17)
    batches = list(reader)

    assert len(batches) > 10
    next_line = 1
    for batch in batches:
        assert batch.first_line == next_line
        next_line += len(batch.lines)
    lines = [line for batch in batches for line in batch.lines.to_pylist()]
    assert lines == data.decode().splitlines()
    assert reader.lines_read == 50


def test_line_reader_small_batches_invalid_utf8(tmp_path):
    lines = [f"line {number} caf\xe9".encode("latin-1") if number % 3 == 0 else b"line %d" % number for number in range(1, 31)]
    path = tmp_path / "access.log"
    path.write_bytes(b"\n".join(lines) + b"\n")

    reader = LineReader(path, batch_bytes=40, read_size=5)
    decoded = read_all(reader)

    assert decoded == [line.decode("utf-8", errors="replace") for line in lines]
    assert reader.invalid_utf8_lines == 10


def test_line_reader_line_longer_than_batch(tmp_path):
    lines = [combined_line(1), "y" * 5000, combined_line(3)]
    path = tmp_path / "access.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    reader = LineReader(path, batch_bytes=100, read_size=7)

    assert read_all(reader) == lines


def test_line_reader_stops_at_long_line(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"short\n" + b"z" * 10_000 + b"\nafter\n")

    reader = LineReader(path, batch_bytes=100, read_size=64, max_line_bytes=1000)

    assert read_all(reader) == ["short"]
    assert reader.long_line == 2


def test_loader_small_batches_combined(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "BATCH_BYTES", 200)
    text = combined_text(30) + b"\n" + combined_text(10, start=32)
    path = tmp_path / "access.log"
    path.write_bytes(text)

    batch_sizes: list[int] = []
    report, connection = load(path, progress=batch_sizes.append)

    # The loader reports progress once per batch.
    assert len(batch_sizes) > 5
    assert sum(batch_sizes) == len(text)
    assert report.lines_read == 41
    assert report.parsed == 40
    assert report.skipped == 1
    expected = {number: number for number in range(1, 42) if number != 31}
    assert column(connection, "DstBytes") == expected


def zeek_header(fields: list[str]) -> str:
    """Return the header lines of a Zeek http.log in TSV form with these fields."""
    return (
        "#separator \\x09\n"
        "#set_separator\t,\n"
        "#empty_field\t(empty)\n"
        "#unset_field\t-\n"
        "#path\thttp\n"
        "#fields\t" + "\t".join(fields) + "\n"
        "#types\t" + "\t".join("string" for _ in fields) + "\n"
    )


@pytest.mark.parametrize("batch_bytes", [1, 90, 250])
def test_loader_small_batches_zeek_headers(tmp_path, monkeypatch, batch_bytes):
    # Two logs concatenated: the second header changes the field order, and
    # small batches cut the file between and inside the header blocks.
    monkeypatch.setattr(source, "BATCH_BYTES", batch_bytes)
    first_fields = ["ts", "id.orig_h", "uri", "user_agent"]
    second_fields = ["user_agent", "ts", "uri", "id.orig_h"]
    lines = zeek_header(first_fields).splitlines()
    expected: dict[int, tuple[str, str]] = {}
    for number in range(1, 6):
        lines.append(f"1517336154.{number:06d}\t10.0.0.{number}\t/first/{number}\tagent-{number}")
        expected[len(lines)] = (f"/first/{number}", f"agent-{number}")
    lines.append("#close\t2019-02-28-12-07-01")
    lines.extend(zeek_header(second_fields).splitlines())
    for number in range(6, 11):
        lines.append(f"agent-{number}\t1517336154.{number:06d}\t/second/{number}\t10.0.0.{number}")
        expected[len(lines)] = (f"/second/{number}", f"agent-{number}")
    path = tmp_path / "http.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    batch_sizes: list[int] = []
    report, connection = load(path, progress=batch_sizes.append)

    # The loader reports progress once per batch.
    assert len(batch_sizes) >= 3
    assert report.format == "zeek-tsv"
    assert report.rejected == 0
    assert report.parsed == 10
    assert report.skipped == len(lines) - 10
    assert_every_line_counted(report)
    urls = column(connection, "Url")
    agents = column(connection, "HttpUserAgent")
    assert {line: (urls[line], agents[line]) for line in urls} == expected
    addresses = column(connection, "SrcIpAddr")
    assert addresses[max(expected)] == "10.0.0.10"
