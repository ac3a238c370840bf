"""Open log files, undo their compression and cut them into batches of lines.

Compression is recognized from the first bytes of the file, never from its
name. Lines are split inside Arrow compute kernels, so no Python code runs per
line. A truncated or corrupt archive keeps every line decoded before the error
and records what went wrong in ``LineReader.error``.
"""

from __future__ import annotations

import bz2
import itertools
import lzma
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from proxyhunt.formats.blocks import Block, BlockReader
from proxyhunt.formats.prefilter import Buffer, LinePrefilter, Selection

# Bytes requested from the file per read() call.
READ_SIZE = 4 * 1024 * 1024
# Compressed bytes passed to the decompressor per call. A decompressor that
# raises on corrupt data discards the output of that call, so this bounds the
# lines lost before the error. gzip loses none, because its failed call is
# decoded again byte by byte.
DECOMPRESS_INPUT_BYTES = 64 * 1024
# Target size of one batch of decoded lines. A line longer than this makes a
# longer batch, because a batch always ends at the end of a line.
BATCH_BYTES = 32 * 1024 * 1024
# Size of each of the two blocks that a prefiltered read of an uncompressed file
# searches. Each block has four buffers of this size, faulted in once per file.
# At 32 MiB that was 256 MiB of fresh pages and up to 1 s of system time per
# file, and 8 MiB searched as fast (measured on the benchmark's 1 GB logs).
SEARCH_BLOCK_BYTES = 8 * 1024 * 1024
SAMPLE_BYTES = 256 * 1024
SAMPLE_READ_SIZE = 64 * 1024
# A line longer than this ends the detection sample, so that sampling a file
# made of one huge line does not read the whole file into memory.
SAMPLE_MAX_LINE_BYTES = 8 * 1024 * 1024

# Decoded bytes at the start of a file that decide its line ending: when they
# contain a CR but no LF, every CR ends a line, as in files from classic Mac OS.
LINE_ENDING_SAMPLE_BYTES = 1024 * 1024

# Bytes that sniff_compression looks at.
MAGIC_BYTES = 10

UTF8_BOM = b"\xef\xbb\xbf"
NEWLINE = ord("\n")

# Rows per Arrow record batch handed to DuckDB.
ARROW_CHUNK_ROWS = 16_384
# Seconds of reading an uncompressed file whose prefiltered lines are parsed as
# one batch, unless ARROW_CHUNK_ROWS lines were kept first. Each batch costs a
# few SQL queries (about 30 ms), and it also moves the progress display.
MERGE_SECONDS = 1.0

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


# Each compressed format's name for the self-contained units that a file may
# concatenate. LineReader.suspect_lines starts at the unit that failed, because
# the decompressor may have decoded damaged data anywhere in it before failing.
UNIT_NAMES = {"gzip": "member", "bzip2": "stream", "xz": "stream", "zstd": "frame"}


class InputError(Exception):
    """A file that cannot be read at all; the message names the file and the fix."""


def open_file(path: str) -> BinaryIO:
    """Open a file for binary reading; raise InputError with the cause and the fix when it cannot be opened."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory; pass the files inside it") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied; check the file's read permission") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be opened ({error.strerror})") from None


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
    """Lines of one file; ``first_line`` is the 1-based number of ``lines[0]``.

    The lines are consecutive unless ``numbers`` gives each one's number,
    as it does for the lines that a prefilter kept.
    """

    first_line: int
    lines: pa.Array
    numbers: pa.Array | None = None
    # Lines of the file that the batch covers, kept or not; None means len(lines).
    covered_lines: int | None = None

    @property
    def line_count(self) -> int:
        """Return how many lines of the file the batch covers, including lines a prefilter left out."""
        return len(self.lines) if self.covered_lines is None else self.covered_lines

    def table(self) -> pa.Table:
        """Return the batch as an Arrow table with SourceLine and RawEvent columns."""
        numbers = self.numbers
        if numbers is None:
            numbers = pa.array(range(self.first_line, self.first_line + len(self.lines)), type=pa.int64())
        table = pa.table({"SourceLine": numbers, "RawEvent": self.lines})
        if table.num_rows == 0:
            # A prefilter may keep no line of a batch; from_batches needs at least one batch.
            return table
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
    Lines end with LF or CRLF. A file whose first LINE_ENDING_SAMPLE_BYTES
    decoded bytes contain a CR but no LF has CR line endings, and
    ``cr_line_endings`` is true.

    When the data ends at damage (a truncated or corrupt archive, or a failed
    read), ``damaged`` is true, ``error`` describes the damage, and the batches
    hold every complete line decoded before the error. An incomplete last line
    is not yielded: it is stored in ``cut_off_line``, and ``lines_read`` counts
    it. Data after the end of a compressed stream is ignored and only sets
    ``error``.

    A truncated file or a failed read stops the data exactly where it is
    damaged. A decompressor that rejects corrupt data, by contrast, may have
    decoded garbled data before it noticed. Its checksum error, for example,
    comes only at the end of a gzip member. Then ``suspect_lines`` is the
    range of line numbers, first and last included, decoded from the damaged
    member, stream or frame. Those lines are kept but may be garbled.

    ``max_line_bytes`` stops reading at a line longer than that many bytes and
    records its number in ``long_line``; the lines before it are yielded. It
    must be at least ``batch_bytes``. By default line length is unlimited.

    With a ``line_filter``, only the lines it keeps are decoded and yielded,
    ``lines_read`` still counts every line, and ``filtered_lines`` counts the
    lines left out. ``invalid_utf8_lines`` then counts only the kept lines.
    An uncompressed file is then read by ``BlockReader``, which prepares the
    next block on a worker thread, and the kept lines of several blocks may
    share one batch.
    """

    def __init__(
        self,
        path: str | Path,
        batch_bytes: int | None = None,
        read_size: int | None = None,
        max_line_bytes: int | None = None,
        line_filter: LinePrefilter | None = None,
    ) -> None:
        self.path = str(path)
        self.line_filter = line_filter
        self.filtered_lines = 0
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
        self.suspect_lines: tuple[int, int] | None = None
        self.cr_line_endings = False
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
            return sys.stdin.buffer
        return open_file(self.path)

    def __iter__(self) -> Iterator[LineBatch]:
        handle = self._open()
        try:
            yield from self._batches(handle)
        finally:
            if self.path != "-":
                handle.close()

    def _batches(self, handle: BinaryIO) -> Iterator[LineBatch]:
        stream = _decompressed_stream(handle, self.path, self.read_size)
        self.compression = stream.compression
        self._stream = stream
        if stream.compression is None and self.line_filter is not None and self.max_line_bytes is None:
            yield from self._prefiltered_plain_batches(stream)
        else:
            yield from self._split_batches(stream, stream.blocks())

    def _prefiltered_plain_batches(self, stream: _ChunkedStream) -> Iterator[LineBatch]:
        """Yield the kept lines of an uncompressed file, read in blocks that a worker thread prepares.

        A file with CR line endings takes the general path, which turns each CR
        into LF.
        """
        buffer = bytearray(LINE_ENDING_SAMPLE_BYTES)
        filled = 0
        with memoryview(buffer) as view:
            while filled < len(buffer) and (count := stream.read_into(view[filled:])):
                filled += count
        head = bytes(buffer[:filled])
        if b"\n" not in head and b"\r" in head:
            yield from self._split_batches(stream, itertools.chain([head], stream.blocks()))
            return

        next_line = 1
        # Parsing a batch has a fixed cost of a few SQL queries, so the few
        # lines kept from each block are collected and yielded together.
        kept: list[LineBatch] = []
        merged_at = time.monotonic()
        if not stream.cut:
            for block in BlockReader(stream.read_into, min(self.batch_bytes, SEARCH_BLOCK_BYTES), self.line_filter, head):
                self.bytes_read += block.end
                if block.end:
                    batch = self._block_batch(block, next_line)
                    next_line += batch.line_count
                    if batch.numbers is None:
                        # Every line of the block is yielded, after the lines kept before it.
                        yield from _merged(kept)
                        kept, merged_at = [], time.monotonic()
                        yield batch
                    else:
                        kept.append(batch)
                kept_lines = sum(len(batch.lines) for batch in kept)
                if kept and (time.monotonic() - merged_at >= MERGE_SECONDS or kept_lines >= ARROW_CHUNK_ROWS):
                    yield from _merged(kept)
                    kept, merged_at = [], time.monotonic()
                if block.read_failed:
                    head = bytes(block.tail)
        yield from _merged(kept)
        if stream.cut:
            # The bytes after the last newline before a failed read are an incomplete line.
            self.bytes_read += len(head)
            yield from self._final_batches(bytearray(head), next_line, cut=True)
        self.error = stream.error
        self.damaged = stream.cut

    def _block_batch(self, block: Block, first_line: int) -> LineBatch:
        """Return the lines of the block that the line filter keeps, or all of them when it keeps many."""
        selection = self.line_filter.select(block.data, first_line, block.end, block.index)
        if selection is not None:
            return self._selected_batch(block.data, selection, first_line)
        lines, invalid = split_lines(block.view[: block.end])
        self.invalid_utf8_lines += invalid
        self.lines_read += len(lines)
        return LineBatch(first_line, lines)

    def _split_batches(self, stream: _ChunkedStream, blocks: Iterator[bytes]) -> Iterator[LineBatch]:
        """Yield the lines of decoded ``blocks`` in batches of about ``batch_bytes``."""
        pending = bytearray()
        # Offset of pending[0] in the decoded data, and the line it belongs to.
        pending_offset = 0
        next_line = 1
        # No newline occurs in pending before this position, so a long line is
        # not searched again for every block appended to it.
        no_newline_before = 0
        # (offset, line number) of the start of the compressed unit being
        # decoded, such as a gzip member, once that start has left pending.
        unit_first_line: tuple[int, int] | None = None
        for block in self._line_ending_blocks(blocks):
            self.bytes_read += len(block)
            pending += block
            start = 0
            pending_first_line = next_line
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
                next_line += batch.line_count
                start = cut + 1
                yield batch
            if start:
                unit_start = stream.unit_start
                if pending_offset <= unit_start < pending_offset + start:
                    line = pending_first_line + pending.count(b"\n", 0, unit_start - pending_offset)
                    unit_first_line = (unit_start, line)
                del pending[:start]
                pending_offset += start
                no_newline_before = max(0, no_newline_before - start)
            if self.max_line_bytes is not None and len(pending) > self.max_line_bytes:
                if pending.find(b"\n", no_newline_before) < 0:
                    self.long_line = next_line
                    return

        self.error = stream.error
        self.damaged = stream.cut
        suspect_from: int | None = None
        if stream.corrupt and stream.unit_start < stream.output_bytes:
            if unit_first_line is not None and unit_first_line[0] == stream.unit_start:
                suspect_from = unit_first_line[1]
            else:
                suspect_from = next_line + pending.count(b"\n", 0, stream.unit_start - pending_offset)
        yield from self._final_batches(pending, next_line, stream.cut)
        if suspect_from is not None:
            self.suspect_lines = (suspect_from, self.lines_read)

    def _final_batches(self, pending: bytearray, next_line: int, cut: bool) -> Iterator[LineBatch]:
        """Yield the lines left at the end of the data, setting an incomplete last line aside when the data is cut."""
        if not pending:
            return
        if cut and not pending.endswith(b"\n"):
            # The last line stops where the data is damaged, so only the lines
            # before it are yielded and the incomplete one is set aside.
            end = pending.rfind(b"\n")
            if end >= 0:
                batch = self._make_batch(bytes(pending[: end + 1]), next_line)
                next_line += batch.line_count
                yield batch
            text = bytes(pending[end + 1 :]).decode("utf-8", errors="replace").rstrip("\r")
            self.cut_off_line = CutOffLine(next_line, text)
            self.lines_read += 1
            return
        yield self._make_batch(bytes(pending), next_line)

    def _line_ending_blocks(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        """Yield the decoded blocks, with each CR turned into LF when the file has CR line endings."""
        head: list[bytes] = []
        head_bytes = 0
        for block in blocks:
            head.append(block)
            head_bytes += len(block)
            if head_bytes >= LINE_ENDING_SAMPLE_BYTES:
                break
        has_lf = any(b"\n" in block for block in head)
        self.cr_line_endings = not has_lf and any(b"\r" in block for block in head)
        if not self.cr_line_endings:
            yield from head
            yield from blocks
            return
        # NOTE: a LF after the sample still ends a line, so a file that mixes
        # both endings gets a line per CR and per LF, and a CRLF pair there
        # makes an extra blank line.
        for block in head:
            yield block.replace(b"\r", b"\n")
        for block in blocks:
            yield block.replace(b"\r", b"\n")

    def _make_batch(self, data: bytes | memoryview, first_line: int) -> LineBatch:
        if first_line == 1 and bytes(data[:3]) == UTF8_BOM:
            # Windows tools (Excel, PowerShell's Out-File) start UTF-8 files with a byte-order
            # mark; kept, it would become part of the first CSV header or client address.
            data = data[3:]
        if self.line_filter is not None:
            batch = self._filtered_batch(bytes(data), first_line)
            if batch is not None:
                return batch
        lines, invalid = split_lines(data)
        self.invalid_utf8_lines += invalid
        self.lines_read += len(lines)
        return LineBatch(first_line, lines)

    def _filtered_batch(self, data: bytes, first_line: int) -> LineBatch | None:
        """Return the lines of ``data`` that the line filter keeps, or None when it keeps too many to pick."""
        selection = self.line_filter.select(data, first_line) if data else None
        if selection is None:
            return None
        return self._selected_batch(data, selection, first_line)

    def _selected_batch(self, data: Buffer, selection: Selection, first_line: int) -> LineBatch:
        """Decode the lines of ``data`` that ``selection`` kept, and count the lines it left out."""
        texts = []
        for _, start, end in selection.kept:
            raw = data[start:end].rstrip(b"\r")
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(raw.decode("utf-8", errors="replace"))
                self.invalid_utf8_lines += 1
        self.lines_read += selection.lines
        self.filtered_lines += selection.lines - len(selection.kept)
        numbers = pa.array([number for number, _, _ in selection.kept], type=pa.int64())
        return LineBatch(first_line, pa.array(texts, type=pa.string()), numbers, selection.lines)


def _merged(batches: list[LineBatch]) -> Iterator[LineBatch]:
    """Yield one batch with the lines of consecutive prefiltered ``batches``, or nothing when there are none."""
    if not batches:
        return
    yield LineBatch(
        batches[0].first_line,
        pa.concat_arrays([batch.lines for batch in batches]),
        pa.concat_arrays([batch.numbers for batch in batches]),
        sum(batch.line_count for batch in batches),
    )


def split_lines(data: bytes | memoryview) -> tuple[pa.Array, int]:
    """Split UTF-8 data into lines and return them with the number of lines that are not valid UTF-8.

    A final newline does not start another line. Line endings are LF or CRLF,
    and every CR at the end of a line is removed. LineReader turns CR line
    endings into LF before calling this. Invalid bytes become U+FFFD.
    """
    data = bytes(data)
    if data.endswith(b"\n"):
        data = data[:-1]
    if len(data) >= 2**31:
        # Offsets of Arrow's string type are 32-bit; a line this long takes the general path.
        return _split_decoded_lines(data)

    # The newlines are found in NumPy and the lines become an Arrow array over
    # the same bytes, so validating UTF-8 and trimming run in Arrow's kernels.
    # On 32 MB batches of the benchmark's logs this took 40% less time than
    # decoding in Python and splitting in Arrow, and no second copy of the text.
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
    offsets = np.empty(len(newlines) + 2, dtype=np.int32)
    offsets[0] = 0
    offsets[1:-1] = newlines + 1
    offsets[-1] = len(data)
    raw = pa.BinaryArray.from_buffers(pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        lines = raw.cast(pa.string())
    except pa.ArrowInvalid:
        return _split_decoded_lines(data)

    # Each line but the last still ends with its LF, and UTF-8 is valid, so
    # trimming ASCII bytes from the end cuts no character.
    return pc.ascii_rtrim(lines, characters="\r\n"), 0


def _split_decoded_lines(data: bytes) -> tuple[pa.Array, int]:
    """Split ``data``, which has no final newline, after decoding it with U+FFFD for invalid bytes."""
    text = str(data, "utf-8", errors="replace")
    decoded = pc.split_pattern(pa.array([text], type=pa.large_string()), "\n").flatten()

    # A line is invalid exactly when its decoded text does not encode back to
    # its bytes. A valid line that contains U+FFFD itself encodes back unchanged.
    raw = pc.split_pattern(pa.array([data], type=pa.large_binary()), b"\n").flatten()
    invalid = pc.sum(pc.not_equal(decoded.cast(pa.large_binary()), raw)).as_py() or 0
    return pc.utf8_rtrim(decoded, characters="\r").cast(pa.string()), invalid


class _ChunkedStream:
    """Decompressed blocks of a file; keeps the blocks before any damage.

    ``error`` describes damage or unexpected data. ``cut`` is true when the
    output stops at damage, so its last line may be incomplete. It stays false
    when only data after the end of the compressed stream was ignored.
    ``corrupt`` is true when a decompressor rejected the data. The damage then
    lies somewhere in the output of the current unit, which begins at byte
    ``unit_start`` of the ``output_bytes`` yielded.
    """

    def __init__(self, handle: BinaryIO, compression: str | None, read_size: int = READ_SIZE) -> None:
        self._handle = handle
        self.compression = compression
        self.read_size = read_size
        self.error: str | None = None
        self.cut = False
        self.corrupt = False
        self.raw_bytes_read = 0
        self.output_bytes = 0
        self.unit_start = 0

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

    def read_into(self, buffer: memoryview) -> int | None:
        """Read the next bytes of an uncompressed file into ``buffer``.

        Returns the number of bytes read, 0 at the end of the file, or None
        after a read error, which sets ``error`` and ``cut``.
        """
        try:
            count = self._handle.readinto(buffer) or 0
        except OSError as error:
            self.error = f"reading the file failed after {self.raw_bytes_read} bytes ({error.strerror or error})"
            self.cut = True
            return None
        self.raw_bytes_read += count
        self.output_bytes += count
        return count

    def blocks(self) -> Iterator[bytes]:
        """Yield the file's data in blocks, decompressed if the file is compressed."""
        if self.compression is None:
            while data := self._read():
                self.output_bytes += len(data)
                yield data
            return
        for block in self._decompressed_blocks(self.compression):
            self.output_bytes += len(block)
            yield block

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
                    self.unit_start = self.output_bytes

                piece = view[position : position + DECOMPRESS_INPUT_BYTES]
                # zlib can copy its state, so the output of a piece that fails
                # can be decoded again up to the failing byte.
                backup = decompressor.copy() if compression == "gzip" else None
                try:
                    output = decompressor.decompress(piece)
                except _DECOMPRESSION_ERRORS as error:
                    self.error = f"the {compression} data is corrupt ({error})"
                    self.cut = True
                    self.corrupt = True
                    if backup is not None and (salvaged := _decompress_until_error(backup, piece)):
                        yield salvaged
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


def _decompress_until_error(decompressor: _Decompressor, data: memoryview) -> bytes:
    """Return the output of ``data`` fed one byte at a time, up to the byte at which the decompressor fails.

    A gzip member whose checksum does not match fails only at its last bytes,
    so this keeps everything decoded before them.
    """
    output = []
    for index in range(len(data)):
        try:
            output.append(decompressor.decompress(data[index : index + 1]))
        except _DECOMPRESSION_ERRORS:
            break
        if decompressor.eof:
            break
    return b"".join(output)


def _decompressed_stream(handle: BinaryIO, path: str, read_size: int = READ_SIZE) -> _ChunkedStream:
    """Return the decompressed blocks of an open file, its compression recognized from its first bytes."""
    try:
        head = handle.peek(MAGIC_BYTES)[:MAGIC_BYTES] if hasattr(handle, "peek") else b""
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from None
    return _ChunkedStream(handle, sniff_compression(head), read_size)


def read_head(path: str | Path, size: int) -> bytes:
    """Return up to ``size`` bytes from the start of a file, after decompression; raise InputError when it cannot be read."""
    with open_file(str(path)) as handle:
        data = bytearray()
        for block in _decompressed_stream(handle, str(path)).blocks():
            data += block
            if len(data) >= size:
                break
        return bytes(data[:size])


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
