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
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.compute as pc

READ_SIZE = 4 * 1024 * 1024
BATCH_BYTES = 32 * 1024 * 1024
SAMPLE_BYTES = 256 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


class InputError(Exception):
    """A file that cannot be read at all; the message names the file and the fix."""


class _Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


def sniff_compression(head: bytes) -> str | None:
    """Return the compression named by the magic bytes at the start of a file, or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _new_decompressor(compression: str) -> _Decompressor:
    if compression == "gzip":
        return zlib.decompressobj(wbits=47)
    if compression == "bzip2":
        return bz2.BZ2Decompressor()
    if compression == "xz":
        return lzma.LZMADecompressor()
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


@dataclass
class LineBatch:
    """Consecutive lines of one file; ``first_line`` is the 1-based number of ``lines[0]``."""

    first_line: int
    lines: pa.Array

    def table(self) -> pa.Table:
        """Return the batch as an Arrow table with SourceLine and RawEvent columns."""
        numbers = pa.array(range(self.first_line, self.first_line + len(self.lines)), type=pa.int64())
        return pa.table({"SourceLine": numbers, "RawEvent": self.lines})


class LineReader:
    """Iterate over the lines of a file in batches, after decompression and decoding.

    Invalid UTF-8 is decoded with U+FFFD replacement characters and counted in
    ``invalid_utf8_lines``; the line is kept. ``-`` reads standard input.
    """

    def __init__(self, path: str | Path, batch_bytes: int = BATCH_BYTES) -> None:
        self.path = str(path)
        self.batch_bytes = batch_bytes
        self.compression: str | None = None
        self.error: str | None = None
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
        head = handle.peek(8)[:8] if hasattr(handle, "peek") else b""
        self.compression = sniff_compression(head)
        stream = _ChunkedStream(handle, self.compression)
        self._stream = stream

        pending = b""
        next_line = 1
        for block in stream.blocks():
            self.bytes_read += len(block)
            pending += block
            if len(pending) < self.batch_bytes:
                continue
            cut = pending.rfind(b"\n")
            if cut < 0:
                continue
            batch = self._make_batch(pending[: cut + 1], next_line)
            pending = pending[cut + 1 :]
            next_line += len(batch.lines)
            yield batch

        self.error = stream.error
        if pending:
            batch = self._make_batch(pending, next_line)
            yield batch

    def _make_batch(self, data: bytes, first_line: int) -> LineBatch:
        try:
            text = data.decode("utf-8")
            invalid = False
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            invalid = True

        if text.endswith("\n"):
            text = text[:-1]
        pieces = pc.split_pattern(pa.array([text], type=pa.large_string()), "\n")
        lines = pc.utf8_rtrim(pieces.flatten(), characters="\r").cast(pa.string())

        if invalid:
            self.invalid_utf8_lines += pc.sum(pc.match_substring(lines, "\ufffd")).as_py() or 0
        self.lines_read += len(lines)
        return LineBatch(first_line, lines)


class _ChunkedStream:
    """Decompressed blocks of a file; keeps the blocks before any damage."""

    def __init__(self, handle: BinaryIO, compression: str | None) -> None:
        self._handle = handle
        self.compression = compression
        self.error: str | None = None
        self.raw_bytes_read = 0

    def _read(self) -> bytes:
        data = self._handle.read(READ_SIZE)
        self.raw_bytes_read += len(data)
        return data

    def blocks(self) -> Iterator[bytes]:
        if self.compression is None:
            while data := self._read():
                yield data
            return

        decompressor = _new_decompressor(self.compression)
        fed = False
        try:
            while data := self._read():
                while data:
                    fed = True
                    output = decompressor.decompress(data)
                    if output:
                        yield output
                    if not getattr(decompressor, "eof", False):
                        break
                    # Another gzip member, bzip2 stream or xz stream may follow.
                    data = getattr(decompressor, "unused_data", b"")
                    decompressor = _new_decompressor(self.compression)
                    fed = False
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as error:
            self.error = f"the {self.compression} data is corrupt ({error})"
            return
        except Exception as error:
            if type(error).__name__ != "ZstdError":
                raise
            self.error = f"the {self.compression} data is corrupt ({error})"
            return

        if fed and not getattr(decompressor, "eof", False):
            self.error = f"the {self.compression} data ends before its end-of-stream marker (the file is truncated)"


def read_sample(path: str | Path, max_bytes: int = SAMPLE_BYTES) -> tuple[list[str], str | None]:
    """Return the first decoded lines of a file (up to about ``max_bytes``) and its compression."""
    reader = LineReader(path, batch_bytes=max_bytes)
    lines: list[str] = []
    for batch in reader:
        lines = batch.lines.to_pylist()
        break
    return lines, reader.compression
