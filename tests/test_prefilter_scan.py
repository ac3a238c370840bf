"""The block search of the line prefilter: the same lines as a line-by-line search, on any bytes and any block size."""

from __future__ import annotations

import errno
import gc
import gzip
import io
import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyhunt.formats import blocks as blocks_module
from proxyhunt.formats import prefilter as prefilter_module
from proxyhunt.formats import source as source_module
from proxyhunt.formats.prefilter import Escape, LinePrefilter
from proxyhunt.formats.source import LineReader

# Every test runs with the Hyperscan literal search and with the re search.
pytestmark = pytest.mark.usefixtures("literal_search")

LITERAL = "rclone/v"
ESCAPES = (Escape(b"%", hex_byte=True), Escape(b"\\x", hex_byte=True), Escape(b"\\", produces="\\\r\n"))

# Pieces that lines are made of: the literal in several cases, escaped forms of
# it, escapes that hide nothing, bytes that fold onto letters, CR, NUL and
# invalid UTF-8.
PIECES = [
    b"rclone/v", b"RClone/V1.66", b"rCLONE/v", b"rclone%2Fv", b"%52clone/v", b"rclon%65%2f%76", b"\\x72clone/v",
    b"rclone\\x2Fv", b"?next=%2Fhome", b"%2f", b"\\x2f", b"\\\\", b"r", b"clone", b"/v", b"RCLONE", b"\x12\x03",
    b"@", b"`", b"\r", b"\x00", b"\xff\xfe", b"\xc3\xa9", b"#", b"#fields\t", b" ", b"GET /index.html", b"\t",
]
lines = st.lists(st.sampled_from(PIECES), max_size=6).map(b"".join)
blocks = st.lists(lines, max_size=40).map(b"\n".join)


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _reference(prefilter: LinePrefilter, data: bytes, first_line: int) -> list[tuple[int, bytes]]:
    """Return the lines that a line-by-line search keeps, without the share limit."""
    kept = []
    for offset, line in enumerate(data.split(b"\n")[: _line_count(data)]):
        number = first_line + offset
        lowered = line.lower()
        if (
            any(pattern.search(lowered) for pattern in prefilter.patterns)
            or any(line.startswith(prefix) for prefix in prefilter.header_prefixes)
            or number <= prefilter.keep_through_line
        ):
            kept.append((number, line))
    return kept


def _decoded_contains_literal(line: bytes) -> bool:
    """Return whether some run of the line, with its hex escapes decoded, contains the literal in any case."""
    decoded = re.sub(rb"(?:%|\\x)([0-9a-fA-F]{2})", lambda match: bytes([int(match.group(1), 16)]), line)
    return LITERAL.encode() in decoded.lower()


# Header prefixes with one first byte, as Zeek's, with two, and none.
HEADER_PREFIXES = [(b"#fields",), (b"#fields", b"@"), ()]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=blocks, first_line=st.integers(1, 5), sample=st.integers(0, 3), headers=st.sampled_from(HEADER_PREFIXES))
def test_select_equals_line_search(data, first_line, sample, headers):
    prefilter = LinePrefilter.build([LITERAL], ESCAPES, header_prefixes=headers, keep_through_line=sample)

    selection = prefilter.select(data, first_line)
    expected = _reference(prefilter, data, first_line)

    if selection is None:
        # Given up only when more than a quarter of the lines outside the sample are kept.
        assert len([number for number, _ in expected if number > sample]) > 0
        return
    assert [(number, data[start:end]) for number, start, end in selection.kept] == expected
    assert selection.lines == _line_count(data)


@settings(max_examples=300)
@given(line=lines)
def test_select_keeps_escaped_literal(line):
    prefilter = LinePrefilter.build([LITERAL], ESCAPES)
    # The line is padded with lines that keep nothing, so the selection is not given up.
    data = b"x\n" * 8 + line + b"\n" + b"x\n" * 8

    selection = prefilter.select(data, 1)

    assert selection is not None
    if _decoded_contains_literal(line):
        assert 9 in [number for number, _, _ in selection.kept]


def test_select_drops_unrelated_escapes():
    prefilter = LinePrefilter.build([LITERAL], ESCAPES)
    data = b"GET /login?next=%2Fhome\n" * 20 + b"ua \\x2f and %76 apart\n"

    selection = prefilter.select(data, 1)

    assert selection is not None
    assert selection.kept == []


CLAUSE_RULES = [[{":22", ":21"}, {"connect"}], [{"go-http-client/"}, {"connect"}], [{"rclone/v"}]]
CLAUSE_PIECES = [
    b"CONNECT", b"c%4fnnect", b"\\x43onnect", b":22", b"%3a21", b"\\x3a22", b"10:22:33", b"Go-http-client/1.1",
    b"go-http-client%2f", b"rclone/v", b"RClone%2Fv", b" ", b"GET", b"x", b"\xe2\x84\xaa",
]
clause_lines = st.lists(st.sampled_from(CLAUSE_PIECES), max_size=5).map(b" ".join)


def _decoded(line: bytes) -> bytes:
    """Return the line lowercased, with the hex escapes of ESCAPES decoded."""
    return re.sub(rb"(?:%|\\x)([0-9a-fA-F]{2})", lambda match: bytes([int(match.group(1), 16)]), line).lower()


@settings(max_examples=300)
@given(line=clause_lines)
def test_select_clauses_keep_every_match(line):
    prefilter = LinePrefilter.from_clauses(CLAUSE_RULES, ESCAPES)
    data = b"x\n" * 8 + line + b"\n" + b"x\n" * 8
    decoded = _decoded(line)
    meets = any(all(any(literal.encode() in decoded for literal in clause) for clause in rule) for rule in CLAUSE_RULES)
    # Plainly written, with no escape or folded character, the line is kept exactly when it meets a rule.
    plain = not re.search(rb"%|\\|\xe2", line)

    selection = prefilter.select(data, 1)

    assert selection is not None
    kept = 9 in [number for number, _, _ in selection.kept]
    if meets:
        assert kept
    if plain:
        assert kept == meets


@pytest.mark.parametrize("window", [1, 2, 5, 7, 13])
def test_select_searches_in_windows(monkeypatch, window):
    # Lines of r bytes send the search from find() to re.search and its windows early.
    monkeypatch.setattr(prefilter_module, "SEARCH_WINDOW", window)
    prefilter = LinePrefilter.build([LITERAL], ESCAPES)
    hits = [b"RClone/V1", b"a rclone%2Fv", b"rclon%65%2f%76 b", b"rclone\\x2Fv", b"xx rclone/v"]
    lines = [b"r" * (index % 11) + b" ?next=%2Fhome" for index in range(400)]
    for index, hit in enumerate(hits * 4):
        lines[17 * index + 3] = b"r" * index + hit

    selection = prefilter.select(b"\n".join(lines), 1)

    assert selection is not None
    assert [number for number, _, _ in selection.kept] == [17 * index + 4 for index in range(20)]


def test_select_literal_across_search_window():
    # Wherever the search's first window ends, one of these placements puts the literal across it.
    prefilter = LinePrefilter.build([LITERAL], ESCAPES)
    filler = b"r" * 63 + b"\n"
    head = filler * (prefilter_module.SEARCH_WINDOW // len(filler) + 2)
    for shift in range(-120, 40, 3):
        data = head[: prefilter_module.SEARCH_WINDOW - shift] + b"\nx rclone/v1.66\n" + filler * 1000

        selection = prefilter.select(data, 1)

        assert selection is not None
        assert [data[start:end] for _, start, end in selection.kept] == [b"x rclone/v1.66"], shift


def _read(path, prefilter, batch_bytes):
    reader = LineReader(path, batch_bytes=batch_bytes, line_filter=prefilter)
    kept = []
    for batch in reader:
        if batch.numbers is not None:
            numbers = batch.numbers.to_pylist()
        else:
            numbers = list(range(batch.first_line, batch.first_line + len(batch.lines)))
        kept += list(zip(numbers, batch.lines.to_pylist()))
    return kept, reader


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=blocks, batch_bytes=st.sampled_from([8, 64, 256, 4096]), crlf=st.booleans())
def test_plain_reader_equals_general_reader(tmp_path_factory, monkeypatch, data, batch_bytes, crlf):
    # The plain-file reader (blocks prepared on a worker thread) and the general
    # reader (used for compressed files) keep the same lines with the same numbers.
    # Their batches differ, so a batch that keeps too many lines to pick them must not give up.
    monkeypatch.setattr(prefilter_module, "MAX_KEPT_SHARE", 1.0)
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    directory = tmp_path_factory.mktemp("scan")
    plain = directory / "plain.log"
    plain.write_bytes(data)
    compressed = directory / "plain.log.gz"
    compressed.write_bytes(gzip.compress(data))
    prefilter = LinePrefilter.build([LITERAL], ESCAPES, header_prefixes=[b"#fields"], keep_through_line=2)

    fast, fast_reader = _read(plain, prefilter, batch_bytes)
    general, general_reader = _read(compressed, prefilter, batch_bytes)

    assert fast == general
    assert fast_reader.lines_read == general_reader.lines_read
    assert fast_reader.filtered_lines == general_reader.filtered_lines
    assert fast_reader.invalid_utf8_lines == general_reader.invalid_utf8_lines
    assert fast_reader.bytes_read == general_reader.bytes_read


def test_plain_reader_literal_across_blocks(tmp_path, monkeypatch):
    # Blocks of 64 bytes: every line crosses a block boundary somewhere, and the literal is split by it.
    monkeypatch.setattr(source_module, "BATCH_BYTES", 64)
    filler = b"GET /index.html HTTP/1.1 200 curl/8.5.0 padding padding\n"
    data = filler * 30 + b"PUT /upload ua=RClone/V1.66.0 " + b"p" * 100 + b"\n" + filler * 30 + b"last rclone/v"
    log = tmp_path / "split.log"
    log.write_bytes(data)

    kept, reader = _read(log, LinePrefilter.build([LITERAL], ESCAPES), None)

    assert [number for number, _ in kept] == [31, 62]
    assert kept[1][1] == "last rclone/v"
    assert reader.lines_read == 62
    assert reader.filtered_lines == 60


def test_plain_reader_byte_order_mark(tmp_path):
    log = tmp_path / "bom.log"
    log.write_bytes(b"\xef\xbb\xbfrclone/v1 first\n" + b"other\n" * 10)

    kept, _ = _read(log, LinePrefilter.build([LITERAL], ESCAPES), None)

    assert kept == [(1, "rclone/v1 first")]


def test_plain_reader_cr_line_endings(tmp_path):
    # A file with CR line endings only takes the general path, which splits lines at each CR.
    log = tmp_path / "mac.log"
    log.write_bytes(b"one\rRCLONE/V1 two\r" + b"three\r" * 10)

    kept, reader = _read(log, LinePrefilter.build([LITERAL], ESCAPES), None)

    assert kept == [(2, "RCLONE/V1 two")]
    assert reader.cr_line_endings


class _FailingFile(io.BytesIO):
    """A file whose reads fail with EIO once ``limit`` bytes have been read."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    def peek(self, size: int = 0) -> bytes:
        return self.getvalue()[self.tell() : self.tell() + max(size, 1)]

    def _check(self, size: int) -> int:
        if self.tell() >= self.limit:
            raise OSError(errno.EIO, "Input/output error")
        return min(size, self.limit - self.tell())

    def read(self, size: int = -1) -> bytes:
        return super().read(self._check(size if size >= 0 else len(self.getvalue())))

    def readinto(self, buffer) -> int:
        with memoryview(buffer) as view:
            return super().readinto(view[: self._check(len(view))])


def test_plain_reader_read_error(monkeypatch):
    # A read that fails mid-line: the lines before it are kept, and the incomplete one is set aside.
    data = b"GET /a curl\n" * 50 + b"PUT RClone/V1 upload\n" + b"GET /b curl\n" * 50
    limit = data.index(b"GET /b curl\n" * 3) + 16
    monkeypatch.setattr(LineReader, "_open", lambda self: _FailingFile(data, limit))
    prefilter = LinePrefilter.build([LITERAL], ESCAPES)

    filtered, filtered_reader = _read("failing.log", prefilter, 64)
    full, full_reader = _read("failing.log", None, 64)

    assert filtered == [(51, "PUT RClone/V1 upload")]
    assert filtered_reader.damaged and full_reader.damaged
    assert filtered_reader.error == full_reader.error
    assert "reading the file failed" in filtered_reader.error
    assert filtered_reader.cut_off_line == full_reader.cut_off_line
    assert filtered_reader.cut_off_line.number == 53
    assert filtered_reader.lines_read == full_reader.lines_read == len(full) + 1


@pytest.fixture
def small_blocks_log(tmp_path, monkeypatch):
    """Return a log read in 64-byte blocks, with the process's switch interval at 4 ms until the test ends."""
    monkeypatch.setattr(source_module, "BATCH_BYTES", 64)
    log = tmp_path / "plain.log"
    # A block whose lines are all kept is yielded at once, while later blocks are still read.
    log.write_bytes(b"PUT rclone/v1.66\n" * 40 + b"GET /index.html HTTP/1.1 200 curl/8.5.0 padding\n" * 40)
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    yield log
    sys.setswitchinterval(before)


@pytest.mark.parametrize("stop_early", [False, True])
def test_block_reader_restores_switch_interval(small_blocks_log, stop_early):
    # The reader lowers Python's switch interval so that its worker thread gets
    # the GIL back quickly, and must give the rest of the process its own back,
    # also when the caller stops reading before the end.
    reader = LineReader(small_blocks_log, line_filter=LinePrefilter.build([LITERAL]))
    during = []
    for _ in reader:
        during.append(sys.getswitchinterval())
        if stop_early:
            break
    if stop_early:
        reader = None
        gc.collect()

    assert during and max(during) <= blocks_module.SWITCH_INTERVAL
    assert sys.getswitchinterval() == pytest.approx(0.004)


def test_overlapping_readers_restore_switch_interval(small_blocks_log):
    # Two hunts in threads of one process run readers at the same time. The
    # interval must stay low while either reads and come back once both end,
    # whichever ends first.
    first = iter(LineReader(small_blocks_log, line_filter=LinePrefilter.build([LITERAL])))
    second = iter(LineReader(small_blocks_log, line_filter=LinePrefilter.build([LITERAL])))
    next(first)
    next(second)
    first.close()
    while_second_reads = sys.getswitchinterval()
    second.close()

    assert while_second_reads <= blocks_module.SWITCH_INTERVAL
    assert sys.getswitchinterval() == pytest.approx(0.004)
