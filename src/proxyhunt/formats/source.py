"""Open log files, undo their compression and cut them into batches of lines.

Compression is recognized from the first bytes of the file, never from its
name. Lines are split inside Arrow compute kernels, so no Python code runs per
line. A truncated or corrupt archive keeps every line decoded before the damage
and records what went wrong in ``LineReader.error``.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import zstandard

# Bytes requested from the file per read() call.
READ_SIZE = 4 * 1024 * 1024
# Compressed bytes passed to the decompressor per call. A decompressor that
# raises on corrupt data discards the output of that call, so this bounds the
# lines lost before the damage.
DECOMPRESS_INPUT_BYTES = 64 * 1024
# Target size of one batch of decoded lines. A line longer than this makes a
# longer batch, because a batch always ends at the end of a line.
BATCH_BYTES = 32 * 1024 * 1024
SAMPLE_BYTES = 256 * 1024
SAMPLE_READ_SIZE = 64 * 1024
# A line longer than this ends the detection sample, so that sampling a file
# made of one huge line does not read the whole file into memory.
SAMPLE_MAX_LINE_BYTES = 8 * 1024 * 1024

# Bytes that sniff_compression looks at.
MAGIC_BYTES = 10

UTF8_BOM = b"\xef\xbb\xbf"

# Rows per Arrow record batch handed to DuckDB.
ARROW_CHUNK_ROWS = 16_384

_BZIP2_BLOCK_MAGIC = b"\x31\x41\x59\x26\x53\x59"
_BZIP2_END_MAGIC = b"\x17\x72\x45\x38\x50\x90"

_DECOMPRESSION_ERRORS: tuple[type[Exception], ...] = (
    zlib.error,
    OSError,
    EOFError,
    lzma.LZMAError,
    ValueError,
    zstandard.ZstdError,
)


class InputError(Exception):
    """A file that cannot be read at all; the message names the file and the fix."""


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes) -> bytes: ...


def sniff_compression(head: bytes) -> str | None:
    """Return the compression named by the magic bytes at the start of a file, or None.

    ``head`` should be the first MAGIC_BYTES bytes. Besides the magic number,
    the checks include the gzip method byte (deflate) and the bzip2 block size
    digit and block or end-of-stream marker. So a text file that happens to
    start with ``BZh`` is not taken for bzip2. A zstd file may also start with
    a skippable frame, as pzstd writes it.
    """
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if (
        head.startswith(b"BZh")
        and head[3:4].isdigit()
        and head[3:4] != b"0"
        and head[4:10] in (_BZIP2_BLOCK_MAGIC, _BZIP2_END_MAGIC)
    ):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    # Skippable frames have the magic numbers 0x184D2A50 to 0x184D2A5F, little-endian.
    if len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18":
        return "zstd"
    return None


def _new_decompressor(compression: str) -> _Decompressor:
    if compression == "gzip":
        return zlib.decompressobj(wbits=31)
    if compression == "bzip2":
        return bz2.BZ2Decompressor()
    if compression == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    return zstandard.ZstdDecompressor().decompressobj()


@dataclass
class LineBatch:
    """Consecutive lines of one file; ``first_line`` is the 1-based number of ``lines[0]``."""

    first_line: int
    lines: pa.Array

    def table(self) -> pa.Table:
        """Return the batch as an Arrow table with SourceLine and RawEvent columns."""
        numbers = pa.array(range(self.first_line, self.first_line + len(self.lines)), type=pa.int64())
        table = pa.table({"SourceLine": numbers, "RawEvent": self.lines})
        # DuckDB scans an Arrow table one record batch per thread, so a batch cut
        # into smaller record batches is parsed on every core.
        return pa.Table.from_batches(table.to_batches(max_chunksize=ARROW_CHUNK_ROWS))


@dataclass
class CutOffLine:
    """The last, incomplete line of a file whose data ends at damage."""

    number: int
    text: str


class LineReader:
    """Iterate over the lines of a file in batches, after decompression and decoding.

    Invalid UTF-8 is decoded with U+FFFD replacement characters and counted in
    ``invalid_utf8_lines``; the line is kept. ``-`` reads standard input.

    When the data ends at damage (a truncated or corrupt archive, or a failed
    read), ``damaged`` is true, ``error`` describes the damage, and the batches
    hold every complete line before the damage. An incomplete last line is not
    yielded: it is stored in ``cut_off_line``, and ``lines_read`` counts it.
    Data after the end of a compressed stream is ignored and only sets
    ``error``.

    ``max_line_bytes`` stops reading at a line longer than that many bytes and
    records its number in ``long_line``; the lines before it are yielded. It
    must be at least ``batch_bytes``. By default line length is unlimited.
    """

    def __init__(
        self,
        path: str | Path,
        batch_bytes: int | None = None,
        read_size: int | None = None,
        max_line_bytes: int | None = None,
    ) -> None:
        self.path = str(path)
        # The module constants are read here, not bound as defaults, so that
        # tests can lower BATCH_BYTES for every reader the loader creates.
        self.batch_bytes = batch_bytes or BATCH_BYTES
        self.read_size = read_size or READ_SIZE
        if max_line_bytes is not None and max_line_bytes < self.batch_bytes:
            # A shorter line limit would need a search for the last newline on every read.
            raise ValueError(f"max_line_bytes ({max_line_bytes}) must be at least batch_bytes ({self.batch_bytes})")
        self.max_line_bytes = max_line_bytes
        self.compression: str | None = None
        self.error: str | None = None
        self.damaged = False
        self.cut_off_line: CutOffLine | None = None
        self.long_line: int | None = None
        self.invalid_utf8_lines = 0
        self.lines_read = 0
        self.bytes_read = 0
        self._stream: _ChunkedStream | None = None

    @property
    def raw_bytes_read(self) -> int:
        """Bytes read from the file so far, before decompression."""
        return self._stream.raw_bytes_read if self._stream else 0

    def _open(self) -> BinaryIO:
        if self.path == "-":
            import sys

            return sys.stdin.buffer
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.path}: file not found; check the path") from None
        except IsADirectoryError:
            raise InputError(f"{self.path}: is a directory; pass the files inside it") from None
        except PermissionError:
            raise InputError(f"{self.path}: permission denied; check the file's read permission") from None
        except OSError as error:
            raise InputError(f"{self.path}: cannot be opened ({error.strerror})") from None

    def __iter__(self) -> Iterator[LineBatch]:
        handle = self._open()
        try:
            yield from self._batches(handle)
        finally:
            if self.path != "-":
                handle.close()

    def _batches(self, handle: BinaryIO) -> Iterator[LineBatch]:
        try:
            head = handle.peek(MAGIC_BYTES)[:MAGIC_BYTES] if hasattr(handle, "peek") else b""
        except OSError as error:
            raise InputError(f"{self.path}: cannot be read ({error.strerror})") from None
        self.compression = sniff_compression(head)
        stream = _ChunkedStream(handle, self.compression, self.read_size)
        self._stream = stream

        pending = bytearray()
        # No newline occurs in pending before this position, so a long line is
        # not searched again for every block appended to it.
        no_newline_before = 0
        next_line = 1
        for block in stream.blocks():
            self.bytes_read += len(block)
            pending += block
            start = 0
            while len(pending) - start >= self.batch_bytes:
                limit = start + self.batch_bytes
                cut = pending.rfind(b"\n", start, limit)
                if cut < 0:
                    cut = pending.find(b"\n", max(limit, no_newline_before))
                if cut < 0:
                    no_newline_before = len(pending)
                    break
                with memoryview(pending) as view:
                    batch = self._make_batch(view[start : cut + 1], next_line)
                next_line += len(batch.lines)
                start = cut + 1
                yield batch
            if start:
                del pending[:start]
                no_newline_before = max(0, no_newline_before - start)
            if self.max_line_bytes is not None and len(pending) > self.max_line_bytes:
                if pending.find(b"\n", no_newline_before) < 0:
                    self.long_line = next_line
                    return

        self.error = stream.error
        self.damaged = stream.cut
        if not pending:
            return
        if stream.cut and not pending.endswith(b"\n"):
            # The last line stops where the data is damaged, so only the lines
            # before it are yielded and the incomplete one is set aside.
            cut = pending.rfind(b"\n")
            if cut >= 0:
                batch = self._make_batch(bytes(pending[: cut + 1]), next_line)
                next_line += len(batch.lines)
                yield batch
            text = bytes(pending[cut + 1 :]).decode("utf-8", errors="replace").rstrip("\r")
            self.cut_off_line = CutOffLine(next_line, text)
            self.lines_read += 1
            return
        yield self._make_batch(bytes(pending), next_line)

    def _make_batch(self, data: bytes | memoryview, first_line: int) -> LineBatch:
        if first_line == 1 and bytes(data[:3]) == UTF8_BOM:
            # Windows tools (Excel, PowerShell's Out-File) start UTF-8 files with a byte-order
            # mark; kept, it would become part of the first CSV header or client address.
            data = data[3:]
        lines, invalid = split_lines(data)
        self.invalid_utf8_lines += invalid
        self.lines_read += len(lines)
        return LineBatch(first_line, lines)


def split_lines(data: bytes | memoryview) -> tuple[pa.Array, int]:
    """Split UTF-8 data into lines and return them with the number of lines that are not valid UTF-8.

    A final newline does not start another line. Line endings are LF or CRLF,
    and the CR is removed. Invalid bytes become U+FFFD.
    """
    data = memoryview(data)
    if data[-1:] == b"\n":
        data = data[:-1]
    try:
        text = str(data, "utf-8")
        valid = True
    except UnicodeDecodeError:
        text = str(data, "utf-8", errors="replace")
        valid = False

    decoded = pc.split_pattern(pa.array([text], type=pa.large_string()), "\n").flatten()
    invalid = 0
    if not valid:
        # A line is invalid exactly when its decoded text does not encode back to
        # its bytes. A valid line that contains U+FFFD itself encodes back unchanged.
        raw = pc.split_pattern(pa.array([bytes(data)], type=pa.large_binary()), b"\n").flatten()
        invalid = pc.sum(pc.not_equal(decoded.cast(pa.large_binary()), raw)).as_py() or 0
    lines = pc.utf8_rtrim(decoded, characters="\r").cast(pa.string())
    return lines, invalid


class _ChunkedStream:
    """Decompressed blocks of a file; keeps the blocks before any damage.

    ``error`` describes damage or unexpected data. ``cut`` is true when the
    output stops at damage, so its last line may be incomplete. It stays false
    when only data after the end of the compressed stream was ignored.
    """

    def __init__(self, handle: BinaryIO, compression: str | None, read_size: int = READ_SIZE) -> None:
        self._handle = handle
        self.compression = compression
        self.read_size = read_size
        self.error: str | None = None
        self.cut = False
        self.raw_bytes_read = 0

    def _read(self) -> bytes | None:
        """Return the next bytes of the file, b"" at its end, or None after a read error."""
        try:
            data = self._handle.read(self.read_size)
        except OSError as error:
            self.error = f"reading the file failed after {self.raw_bytes_read} bytes ({error.strerror or error})"
            self.cut = True
            return None
        self.raw_bytes_read += len(data)
        return data

    def blocks(self) -> Iterator[bytes]:
        """Yield the file's data in blocks, decompressed if the file is compressed."""
        if self.compression is None:
            while data := self._read():
                yield data
            return
        yield from self._decompressed_blocks(self.compression)

    def _decompressed_blocks(self, compression: str) -> Iterator[bytes]:
        # A file may hold several compressed streams one after the other (gzip
        # members, bzip2 or xz streams, zstd frames), as `cat a.gz b.gz` makes.
        # Zero bytes between or after them are padding and are skipped, as gzip
        # and xz do. Anything else after the end of a stream is reported.
        decompressor: _Decompressor | None = None
        carry = b""
        while True:
            chunk = self._read()
            if chunk is None:
                return
            data = carry + chunk if carry else chunk
            carry = b""
            if not data:
                break

            view = memoryview(data)
            position = 0
            while position < len(data):
                if decompressor is None:
                    if data[position] == 0:
                        position = len(data) - len(data[position:].lstrip(b"\x00"))
                        if position == len(data):
                            break
                    if len(data) - position < MAGIC_BYTES and chunk:
                        # The next stream's magic number may continue in the next read.
                        carry = data[position:]
                        break
                    if sniff_compression(data[position : position + MAGIC_BYTES]) != compression:
                        offset = self.raw_bytes_read - len(data) + position
                        self.error = (
                            f"the bytes after the end of the {compression} data, from byte {offset} on, "
                            f"are not {compression} data"
                        )
                        return
                    decompressor = _new_decompressor(compression)

                piece = view[position : position + DECOMPRESS_INPUT_BYTES]
                try:
                    output = decompressor.decompress(piece)
                except _DECOMPRESSION_ERRORS as error:
                    self.error = f"the {compression} data is corrupt ({error})"
                    self.cut = True
                    return
                if output:
                    yield output
                if decompressor.eof:
                    position += len(piece) - len(decompressor.unused_data)
                    decompressor = None
                else:
                    position += len(piece)

        if decompressor is not None:
            self.error = f"the {compression} data ends before its end-of-stream marker (the file is truncated)"
            self.cut = True


@dataclass
class Sample:
    """The first non-blank lines of a file, for format detection."""

    # The reader that read the sample, with its compression, counts and error.
    reader: LineReader
    lines: list[str] = field(default_factory=list)
    # True when the whole file was read for the sample.
    complete: bool = False


def read_sample(path: str | Path, max_bytes: int = SAMPLE_BYTES) -> Sample:
    """Read the first non-blank lines of a file, up to about ``max_bytes`` of text.

    Blank lines are left out of the sample, so a file that starts with blank
    lines is still detected by its content. The sample ends before a line
    longer than SAMPLE_MAX_LINE_BYTES. Raises InputError when the file cannot
    be opened.
    """
    reader = LineReader(path, batch_bytes=max_bytes, read_size=SAMPLE_READ_SIZE, max_line_bytes=SAMPLE_MAX_LINE_BYTES)
    sample = Sample(reader)
    sampled_bytes = 0
    for batch in reader:
        non_blank = batch.lines.filter(pc.invert(pc.equal(pc.utf8_trim_whitespace(batch.lines), "")))
        sample.lines.extend(non_blank.to_pylist())
        sampled_bytes += pc.sum(pc.binary_length(non_blank)).as_py() or 0
        if sampled_bytes >= max_bytes:
            return sample
    sample.complete = reader.long_line is None
    return sample
