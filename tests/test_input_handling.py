"""Reading input files: compression, damaged archives, encodings, odd lines, paths and batch boundaries.

Every test writes real files under tmp_path and reads them with the real
LineReader, Loader and DuckDB. Compressed files are made with the standard
gzip, bz2 and lzma modules and with zstandard.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import json
import logging
import lzma
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyhunt.formats import format_names
from proxyhunt.formats import source
from proxyhunt.formats.base import LineFormat
from proxyhunt.formats.detect import score_formats
from proxyhunt.formats.loader import FileReport, Loader, expand_paths
from proxyhunt.formats.source import LineReader, sniff_compression, split_lines
from proxyhunt.hunt import hunt

RCLONE_RULE = str(Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")
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
    # Truncation stops the data exactly at the damage, so no kept line is suspect.
    assert report.suspect_lines is None
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


def test_gzip_bit_flip_marks_suspect_lines(tmp_path):
    # zlib notices a flipped bit only where the garbled deflate data becomes
    # invalid, or at the member's checksum, so any kept line may be garbled.
    compressed = bytearray(gzip.compress(combined_text(20_000)))
    compressed[len(compressed) * 45 // 100] ^= 0x01
    path = tmp_path / "access.log.gz"
    path.write_bytes(bytes(compressed))

    report, _ = load(path)

    assert report.error is not None
    assert "the gzip data is corrupt" in report.error
    assert "before the damage" not in report.error
    assert "may be garbled" in report.error
    assert report.lines_read > 1000
    assert report.suspect_lines == (1, report.lines_read)
    assert "kept lines 1 to " in report.error
    assert_every_line_counted(report)


@pytest.mark.parametrize(
    ("trailer_offset", "zlib_message"),
    [(-8, "incorrect data check"), (-4, "incorrect length check")],
)
def test_gzip_trailer_error_keeps_every_line(tmp_path, trailer_offset, zlib_message):
    # The gzip trailer is the CRC-32 of the data, then its length. Damage in
    # either fails only after the last line was decoded.
    compressed = bytearray(gzip.compress(combined_text(20_000)))
    compressed[trailer_offset] ^= 0x01
    path = tmp_path / "access.log.gz"
    path.write_bytes(bytes(compressed))

    report, connection = load(path)

    assert zlib_message in report.error
    assert "before the damage" not in report.error
    assert "kept lines 1 to 20000, but they came from the damaged gzip member and may be garbled" in report.error
    assert report.suspect_lines == (1, 20_000)
    assert report.parsed == 20_000
    assert column(connection, "DstBytes") == {number: number for number in range(1, 20_001)}


def test_damaged_second_gzip_member_suspect_from_its_start(tmp_path):
    # The second member starts inside line 101, so that line is the first suspect one.
    data = combined_text(200)
    split = data.index(b"/item/101 ")
    second = bytearray(gzip.compress(data[split:]))
    second[-8] ^= 0x01
    path = tmp_path / "access.log.gz"
    path.write_bytes(gzip.compress(data[:split]) + bytes(second))

    report, _ = load(path)

    assert "incorrect data check" in report.error
    assert report.suspect_lines == (101, 200)
    assert "kept lines 101 to 200" in report.error
    assert report.parsed == 200


@pytest.mark.parametrize("compression", ["bzip2", "xz", "zstd"])
def test_corrupt_archive_marks_suspect_lines(tmp_path, compression):
    compressors = {**COMPRESSORS, "zstd": lambda data: zstandard.ZstdCompressor(write_checksum=True).compress(data)}
    compressed = bytearray(compressors[compression](combined_text(300_000)))
    middle = len(compressed) // 2
    compressed[middle : middle + 1000] = b"\xff" * 1000
    path = tmp_path / "access"
    path.write_bytes(bytes(compressed))

    report, _ = load(path)

    assert f"the {compression} data is corrupt" in report.error
    assert "before the damage" not in report.error
    assert report.lines_read > 1000
    assert report.suspect_lines == (1, report.lines_read)
    assert_every_line_counted(report)


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


# Bytes that line splitting must treat exactly: line ends, CRs inside and at
# the end of lines, invalid and multi-byte UTF-8, U+FFFD itself, NUL.
LINE_PIECES = [b"\n", b"\r", b"\r\n", b"\r\r\n", b"ab", b" ", b"\xff", b"\xc3", b"\xc3\xa9", b"\xef\xbf\xbd", b"\x00", b"\xe2\x82"]


@settings(max_examples=300)
@given(data=st.lists(st.sampled_from(LINE_PIECES), max_size=30).map(b"".join))
def test_split_lines_equals_line_by_line_decoding(data):
    pieces = data.split(b"\n")
    if data.endswith(b"\n"):
        pieces.pop()
    expected = [piece.rstrip(b"\r").decode("utf-8", errors="replace") for piece in pieces]
    invalid = sum(1 for piece in pieces if piece.decode("utf-8", errors="replace").encode("utf-8") != piece)

    lines, counted = split_lines(data)

    assert lines.type == pa.string()
    assert lines.to_pylist() == expected
    assert counted == invalid


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


def test_cr_line_endings(tmp_path):
    # Classic Mac OS ends lines with a lone CR.
    path = tmp_path / "access.log"
    path.write_bytes(combined_text(3).replace(b"\n", b"\r"))

    report, connection = load(path)

    assert report.lines_read == 3
    assert report.parsed == 3
    assert column(connection, "Url") == {1: "/item/1", 2: "/item/2", 3: "/item/3"}
    assert all("\r" not in raw for raw in column(connection, "RawEvent").values())


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_cr_line_endings_compressed_small_reads(tmp_path, compression):
    data = combined_text(50)
    path = tmp_path / "access"
    path.write_bytes(COMPRESSORS[compression](data.replace(b"\n", b"\r")))

    reader = LineReader(path, batch_bytes=300, read_size=17)

    assert read_all(reader) == data.decode().splitlines()
    assert reader.cr_line_endings


def test_lone_cr_inside_lf_file_kept(tmp_path):
    # A file with LF line endings keeps a lone CR inside a line as text.
    lines = [combined_line(1), combined_line(2, agent="odd\ragent"), combined_line(3)]
    path = tmp_path / "access.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    report, connection = load(path)

    assert report.lines_read == 3
    assert report.parsed == 3
    assert column(connection, "HttpUserAgent")[2] == "odd\ragent"


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


def test_first_line_over_detection_limit(tmp_path):
    # The limit is checked after each read, so the line exceeds it by more than one read.
    long_path = "/" + "x" * (source.SAMPLE_MAX_LINE_BYTES + 2 * source.SAMPLE_READ_SIZE)
    lines = [combined_line(1).replace("/item/1", long_path), combined_line(2)]
    path = tmp_path / "access.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    detected, _ = load(path)
    forced, connection = load(path, format_name="combined")

    assert detected.error is not None
    assert "line 1" in detected.error
    assert "longer than the detection limit of 8 MiB" in detected.error
    assert "--format" in detected.error
    assert forced.error is None
    assert forced.parsed == 2
    assert column(connection, "Url") == {1: long_path, 2: "/item/2"}


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


def test_symlink_loop_read_once(tmp_path):
    # mkdir d; cp a.log d/; ln -s . d/loop
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.log").write_bytes(combined_text(1))
    (tmp_path / "d" / "loop").symlink_to(".")

    from_glob, glob_problems = expand_paths([str(tmp_path / "d" / "**" / "*.log")])
    from_directory, directory_problems = expand_paths([str(tmp_path / "d")])

    assert from_glob == [str(tmp_path / "d" / "a.log")]
    assert glob_problems == []
    assert from_directory == [str(tmp_path / "d" / "a.log")]
    assert directory_problems == []


def test_same_file_under_other_names_listed_once(tmp_path):
    (tmp_path / "logs").mkdir()
    original = tmp_path / "logs" / "access.log"
    original.write_bytes(combined_text(1))
    (tmp_path / "logs" / "current.log").symlink_to("access.log")
    os.link(original, tmp_path / "hardlink.log")
    (tmp_path / "latest").symlink_to("logs")

    files, problems = expand_paths(
        [str(tmp_path / "hardlink.log"), str(tmp_path / "logs"), str(tmp_path / "latest" / "*.log")]
    )

    assert problems == []
    assert files == [str(tmp_path / "hardlink.log")]


def test_symlinked_directory_followed(tmp_path):
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "old.log").write_bytes(combined_text(1))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "new.log").write_bytes(combined_text(1))
    (tmp_path / "logs" / "archive").symlink_to(tmp_path / "archive")

    files, problems = expand_paths([str(tmp_path / "logs")])

    assert problems == []
    assert files == [str(tmp_path / "logs" / "archive" / "old.log"), str(tmp_path / "logs" / "new.log")]


@pytest.mark.parametrize(
    "pattern",
    ["squid/access.log*", "*/access.log.?", "**/*.log", "squid/**", "**/old", "s[q]uid/*/access*", "*", "**"],
)
def test_glob_matches_like_glob_module(tmp_path, monkeypatch, pattern):
    # Without links, expansion matches glob.glob(recursive=True) followed by a
    # recursive read of each matched directory, for relative and absolute patterns.
    (tmp_path / "squid" / "old").mkdir(parents=True)
    (tmp_path / "squid" / ".hidden").mkdir()
    (tmp_path / "zeek").mkdir()
    for name in [
        "squid/access.log",
        "squid/access.log.1",
        "squid/cache.log",
        "squid/.access.log",
        "squid/old/access.log.9",
        "squid/.hidden/access.log",
        "zeek/http.log",
        "top.log",
    ]:
        (tmp_path / name).write_bytes(combined_text(1))
    monkeypatch.chdir(tmp_path)

    for prefix in ["", str(tmp_path) + os.sep]:
        expected = []
        for match in sorted(glob.glob(prefix + pattern, recursive=True)):
            if os.path.isdir(match):
                expected.extend(sorted(str(path) for path in Path(match).rglob("*") if _visible_file(path, match)))
            else:
                expected.append(match)
        files, problems = expand_paths([prefix + pattern])

        assert problems == []
        assert sorted(files) == sorted({os.path.normpath(path) for path in expected}), prefix + pattern


def _visible_file(path: Path, root: str) -> bool:
    relative = path.relative_to(root)
    return path.is_file() and not any(part.startswith(".") for part in relative.parts)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and searches directories whatever their mode")
def test_unreadable_directory_reported(tmp_path, monkeypatch):
    (tmp_path / "perm" / "locked").mkdir(parents=True)
    (tmp_path / "perm" / "open").mkdir()
    (tmp_path / "perm" / "locked" / "in.log").write_bytes(combined_text(1))
    (tmp_path / "perm" / "open" / "a.log").write_bytes(combined_text(1))
    locked = tmp_path / "perm" / "locked"
    locked.chmod(0)
    monkeypatch.chdir(tmp_path)
    try:
        cases = {
            "perm/": ("perm/locked", "permission denied: the directory cannot be listed"),
            "perm/locked": ("perm/locked", "permission denied: the directory cannot be listed"),
            "perm/locked/in.log": (
                "perm/locked/in.log",
                "permission denied: the directory perm/locked cannot be searched",
            ),
            "perm/**/*.log": ("perm/locked", "permission denied: the directory cannot be listed"),
        }
        for argument, (reported_path, message) in cases.items():
            _, problems = expand_paths([argument])

            assert [problem.path for problem in problems] == [reported_path], argument
            assert problems[0].error.startswith(message), argument
    finally:
        locked.chmod(0o755)


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


class FailingDetector(LineFormat):
    """A format whose detector raises, as a defect in one format module would."""

    name = "failing"
    title = "Failing detector"

    def detect(self, sample: list[str]) -> float:
        raise ValueError("detector defect")

    def select_sql(self) -> str:
        return "SELECT SourceLine, RawEvent, NULL AS _reject FROM lines"


def test_failing_detector_logged_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="proxyhunt.formats.detect")

    [(candidate, confidence)] = score_formats(["line"], [FailingDetector()], path="logs/access.log")

    assert confidence == 0.0
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert "logs/access.log" in record.getMessage()
    assert "failing" in record.getMessage()
    assert "detector defect" in record.getMessage()


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


# Pipes and other files that can be read only once


@contextmanager
def feeding_fifo(path: Path, data: bytes) -> Iterator[None]:
    """Write ``data`` into the FIFO at ``path`` from a thread while the body runs.

    After the data is written, each later open of the FIFO for reading gets
    EOF at once, so code that opens the FIFO twice reads nothing the second
    time instead of blocking the test forever.
    """
    finished = threading.Event()

    def feed() -> None:
        try:
            with open(path, "wb") as pipe:
                pipe.write(data)
        except BrokenPipeError:
            pass
        while not finished.is_set():
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                # ENXIO: no reader has the FIFO open.
                time.sleep(0.005)
                continue
            os.close(descriptor)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        finished.set()
        thread.join(timeout=10)


@pytest.fixture
def spool_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tempfile at an empty directory, so that a test can see the loader's temporary copies."""
    directory = tmp_path / "spool"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def test_fifo_read_once(tmp_path, spool_directory):
    # More data than the detection sample, so a second open would lose its start.
    data = combined_text(5000)
    assert len(data) > source.SAMPLE_BYTES
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    with feeding_fifo(fifo, data):
        report, connection = load(fifo)

    assert report.error is None
    assert report.path == str(fifo)
    assert report.parsed == 5000
    assert column(connection, "DstBytes") == {number: number for number in range(1, 5001)}
    sources = connection.execute("SELECT DISTINCT SourceFile FROM websession").fetchall()
    assert sources == [(str(fifo),)]
    assert list(spool_directory.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_proc_fd_pipe_read_once(spool_directory):
    data = combined_text(5000)
    read_end, write_end = os.pipe()

    def feed() -> None:
        with open(write_end, "wb") as pipe:
            pipe.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        report, _ = load(Path(f"/proc/self/fd/{read_end}"))
    finally:
        writer.join(timeout=10)
        os.close(read_end)

    assert report.error is None
    assert report.path == f"/proc/self/fd/{read_end}"
    assert report.parsed == 5000
    assert list(spool_directory.iterdir()) == []


def test_dev_stdin_read_once(tmp_path):
    # cat access.log | proxyhunt hunt /dev/stdin
    result = subprocess.run(
        # The seed rclone rule alone: the bundled rclone pack's volume rules turn the prefilter off.
        [sys.executable, "-m", "proxyhunt", "hunt", "--quiet", "/dev/stdin", "--no-default-rules", "--rules", RCLONE_RULE],
        input=combined_text(5000),
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    # The first 1000 lines are parsed, and the prefilter skips the rest, which hold no rclone.
    assert b"No findings in 5000 lines (4000 without the rules' literals left unparsed)" in result.stdout



def test_closing_line_counts_rejected_lines(tmp_path):
    # Rejected and blank lines are lines read too; the closing line once left them out of the count.
    log = tmp_path / "access.log"
    log.write_bytes(combined_text(10) + b"not a log line\n\n" + combined_text(2000, start=11))

    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", "--quiet", str(log), "--no-default-rules", "--rules", RCLONE_RULE],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert b"No findings in 2012 lines (1012 without the rules' literals left unparsed)" in result.stdout

# Interrupts


def test_interrupt_in_progress_callback_propagates(tmp_path, spool_directory):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def interrupt(byte_count: int) -> None:
        raise KeyboardInterrupt

    with feeding_fifo(fifo, combined_text(100)):
        with pytest.raises(KeyboardInterrupt):
            load(fifo, progress=interrupt)

    assert list(spool_directory.iterdir()) == []


def test_duckdb_interrupt_raises_keyboard_interrupt(tmp_path, monkeypatch):
    # Connection.interrupt() makes the running DuckDB query raise InterruptException.
    monkeypatch.setattr(source, "BATCH_BYTES", 256 * 1024)
    path = tmp_path / "access.log"
    path.write_bytes(combined_text(40_000))
    connection = duckdb.connect()
    loader = Loader(connection)
    finished = threading.Event()

    def interrupt_queries() -> None:
        while not finished.is_set():
            connection.interrupt()
            time.sleep(0.0005)

    interrupter = threading.Thread(target=interrupt_queries, daemon=True)

    def start_interrupting(byte_count: int) -> None:
        if not interrupter.is_alive():
            interrupter.start()

    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            loader.load(str(path), progress=start_interrupting)
    finally:
        finished.set()
        interrupter.join(timeout=10)

    assert isinstance(raised.value.__cause__, duckdb.InterruptException)


def test_sigint_during_load_raises_keyboard_interrupt(tmp_path, monkeypatch):
    # Ctrl-C while DuckDB runs a query makes DuckDB raise RuntimeError("Query
    # interrupted") instead of KeyboardInterrupt. One SIGINT is sent shortly
    # after the first batch, while the loader is busy with the others. It lands
    # in a DuckDB query or in Python code, and both must stop the load.
    monkeypatch.setattr(source, "BATCH_BYTES", 1024 * 1024)
    path = tmp_path / "access.log"
    path.write_bytes(combined_text(100_000))
    armed = threading.Event()
    armed.set()

    def on_sigint(signal_number: int, frame: object) -> None:
        if armed.is_set():
            armed.clear()
            raise KeyboardInterrupt

    sender = threading.Timer(0.03, os.kill, (os.getpid(), signal.SIGINT))

    def start_sender(byte_count: int) -> None:
        if not sender.is_alive() and not sender.finished.is_set():
            sender.start()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with pytest.raises(KeyboardInterrupt):
            load(path, progress=start_sender)
    finally:
        sender.cancel()
        if sender.is_alive():
            sender.join()
        armed.clear()
        signal.signal(signal.SIGINT, previous)


def test_undetectable_damaged_gzip_names_damage(tmp_path):
    data = bytearray(gzip.compress(combined_text(200)))
    data[20] ^= 0xFF  # inside the first deflate block: nothing decodes cleanly
    path = tmp_path / "access.log.gz"
    path.write_bytes(bytes(data))

    report, _ = load(path)

    assert report.error is not None
    assert "damaged" in report.error or "corrupt" in report.error
    assert "gzip" in report.error


# Inputs of several formats, rotated names and time zones

W3C_TEXT = (
    "#Software: Microsoft Internet Information Services 10.0\n"
    "#Fields: date time c-ip cs-method cs-uri-stem sc-status cs(User-Agent)\n"
    "2015-05-17 10:05:03 192.0.2.1 GET /w3c 200 curl/8.5.0\n"
)
SQUID_TEXT = "1431857103.000 5 192.0.2.2 TCP_MISS/200 10 GET http://a.example/squid - HIER_DIRECT/203.0.113.1 text/plain\n"
ZEEK_TEXT = (
    "#separator \\x09\n"
    "#fields\tts\tuid\tid.orig_h\tmethod\thost\turi\tuser_agent\n"
    "1431857103.0\tC1\t192.0.2.3\tGET\ta.example\t/zeek\tcurl/8.5.0\n"
)


def test_rotated_names_read_by_content(tmp_path):
    directory = tmp_path / "squid"
    directory.mkdir()
    (directory / "access.log").write_bytes(combined_text(2))
    (directory / "access.log.1").write_bytes(combined_text(2, start=3))
    (directory / "access.log.2.gz").write_bytes(gzip.compress(combined_text(2, start=5)))

    files, problems = expand_paths([str(directory)])
    result = hunt([str(directory)])
    reports = {Path(report.path).name: report for report in result.files}

    assert problems == []
    assert [Path(path).name for path in files] == ["access.log", "access.log.1", "access.log.2.gz"]
    assert reports["access.log.2.gz"].compression == "gzip"
    assert all(report.format == "combined" and report.parsed == 2 for report in reports.values())


def test_several_formats_in_one_run(tmp_path):
    (tmp_path / "u_ex150517.log").write_text(W3C_TEXT)
    (tmp_path / "access.log").write_text(SQUID_TEXT)
    (tmp_path / "http.log").write_text(ZEEK_TEXT)
    (tmp_path / "apache.log").write_bytes(combined_text(1))

    result = hunt([str(tmp_path)])
    formats = {Path(report.path).name: report.format for report in result.files}

    assert formats == {"u_ex150517.log": "w3c", "access.log": "squid", "http.log": "zeek-tsv", "apache.log": "combined"}
    assert all(report.error is None for report in result.files)


def test_time_zones_stored_as_utc(tmp_path):
    # The same instant, 2015-05-17 10:05:03 UTC, written the way each format writes times.
    (tmp_path / "combined.log").write_bytes(combined_text(1).replace(b"10:05:03 +0000", b"12:05:03 +0200"))
    (tmp_path / "u_ex.log").write_text(W3C_TEXT)
    (tmp_path / "access.log").write_text(SQUID_TEXT)
    (tmp_path / "events.jsonl").write_text('{"TimeGenerated": "2015-05-17T05:05:03-05:00", "SrcIpAddr": "192.0.2.4", "Url": "/iso"}\n')
    connection = duckdb.connect()

    result = hunt([str(tmp_path)], connection=connection)
    times = connection.execute("SELECT DISTINCT TimeGenerated FROM websession").fetchall()

    assert all(report.parsed == 1 for report in result.files)
    assert times == [(datetime(2015, 5, 17, 10, 5, 3),)]


def test_w3c_from_stdin(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "inspect", "-", "--json"],
        input=W3C_TEXT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    [entry] = json.loads(result.stdout)["files"]

    assert result.returncode == 0
    assert entry["path"] == "-"
    assert entry["format"] == "w3c"
    assert (entry["lines_read"], entry["parsed"], entry["header_lines"]) == (3, 1, 2)


def test_nul_byte_does_not_end_w3c_file(tmp_path):
    path = tmp_path / "u_ex.log"
    path.write_text(W3C_TEXT.replace("/w3c", "/a\x00b") + "2015-05-17 10:05:04 192.0.2.1 GET /after 200 -\n")

    report, connection = load(path)

    assert report.lines_read == 4
    assert report.parsed == 2
    assert column(connection, "UrlPath") == {3: "/a\x00b", 4: "/after"}


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd"])
def test_truncated_w3c_archive_names_lines_read(tmp_path, compression):
    more = "".join(f"2015-05-17 10:05:04 192.0.2.1 GET /more/{number * 7919 % 100003} 200 -\n" for number in range(20000))
    body = (W3C_TEXT + more).encode()
    data = COMPRESSORS[compression](body)
    path = tmp_path / "u_ex.log.compressed"
    path.write_bytes(data[: len(data) * 2 // 3])

    report, _ = load(path)

    assert report.format == "w3c"
    assert report.compression == compression
    assert report.error is not None
    assert "line" in report.error
    assert report.parsed > 0
    assert_every_line_counted(report)


def test_tar_archive_is_named(tmp_path):
    # A tar.gz of logs: reading it as one text file would reject or misread its members.
    member = tmp_path / "access.log"
    member.write_text(combined_text(20).decode(), encoding="utf-8")
    archive = tmp_path / "logs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(member, arcname="access.log")

    report = Loader(duckdb.connect()).load(str(archive))
    forced = Loader(duckdb.connect()).load(str(archive), format_name="combined")

    assert report.parsed == 0
    assert "is a tar archive; extract it" in report.error
    assert forced.parsed == 0
    assert "is a tar archive" in forced.error


def test_zip_archive_is_named(tmp_path):
    archive = tmp_path / "logs.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("access.log", combined_text(20).decode())

    report = Loader(duckdb.connect()).load(str(archive))

    assert report.parsed == 0
    assert "is a zip archive" in report.error


def test_corrupt_gzip_detected_from_first_lines(tmp_path):
    # One flipped byte early in a gzip member garbles most of the sample. The lines decoded
    # before the damage still show the format, and those lines are kept.
    text = "".join(
        f'10.9.9.{n % 250} - u{n} [03/Nov/2026:01:00:13 +0100] "PUT http://up.example.test/f{n} HTTP/1.1" '
        f'200 {n} "-" "Mozilla/5.0"\n'
        for n in range(2000)
    ).encode()
    damaged = bytearray(gzip.compress(text, mtime=0))
    damaged[1500] ^= 0x55
    path = tmp_path / "corrupt.log.gz"
    path.write_bytes(bytes(damaged))

    report = Loader(duckdb.connect()).load(str(path))

    assert report.format == "combined"
    assert report.parsed >= 100
    assert "corrupt" in report.error
    assert report.parsed + report.rejected + report.skipped == report.lines_read
