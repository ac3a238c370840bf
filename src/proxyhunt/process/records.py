"""Read the records of a process-creation export: EVTX, Windows event XML, JSON and CSV.

Each iterator yields ``(number, record)`` pairs. ``number`` is the 1-based
line that the record starts on, or its record number for EVTX files and JSON
arrays. A record that cannot be read comes as ``(number, RejectedRecord)``,
so one bad record never stops the rest of the file.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import logging
import lzma
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from typing import Any

import zstandard

from proxyhunt.formats.source import InputError, open_file, sniff_compression
from proxyhunt.process.event import RejectedRecord

log = logging.getLogger(__name__)

EVTX_MAGIC = b"ElfFile\x00"

# Sentinel's portal writes time columns of a CSV export as "TimeGenerated [UTC]".
_CSV_UTC_SUFFIX = " [UTC]"

# evtx_dump separates its JSON records with lines such as "Record 12".
_EVTX_DUMP_SEPARATOR = re.compile(r"Record \d+\s*")

_XML_EVENT = re.compile(r"<Event[\s>].*?</Event>", re.DOTALL)


def read_bytes(path: str) -> bytes:
    """Return the file's content, decompressed when gzip, bzip2, xz or zstd; raise InputError when unreadable."""
    with open_file(path) as handle:
        try:
            data = handle.read()
        except OSError as error:
            raise InputError(f"{path}: cannot be read ({error.strerror})") from None

    compression = sniff_compression(data[:16])
    if compression is None:
        return data
    try:
        if compression == "gzip":
            return gzip.decompress(data)
        if compression == "bzip2":
            return bz2.decompress(data)
        if compression == "xz":
            return lzma.decompress(data)
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zstandard.ZstdError) as error:
        raise InputError(f"{path}: the {compression} data is damaged ({error}); export the log again") from None


def decode_text(data: bytes, path: str) -> str:
    """Decode UTF-8 or UTF-16 (with a byte order mark, as Windows PowerShell 5 writes exports).

    Invalid UTF-8 bytes are replaced by U+FFFD so that the rest of the file is
    still read, and the first such line is logged.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        log.warning("%s:%d: invalid UTF-8 (byte %d); invalid bytes are read as U+FFFD", path, line, error.start)
        return data.decode("utf-8-sig", errors="replace")


def iter_evtx(path: str) -> Iterator[tuple[int, ElementTree.Element | RejectedRecord]]:
    """Yield each EVTX record's ``<Event>`` element, read with python-evtx, by record number."""
    import Evtx.Evtx as evtx

    with evtx.Evtx(path) as log_file:
        for number, record in enumerate(log_file.records(), start=1):
            try:
                yield number, ElementTree.fromstring(record.xml())
            except Exception as error:  # noqa: BLE001 - python-evtx raises many types for a damaged record
                yield number, RejectedRecord(number, f"damaged EVTX record ({type(error).__name__}: {error})")


def iter_xml_events(text: str) -> Iterator[tuple[int, ElementTree.Element | RejectedRecord]]:
    """Yield each ``<Event>`` element of an XML export, parsed one by one, by the line it starts on."""
    line = 1
    position = 0
    for match in _XML_EVENT.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        try:
            yield line, ElementTree.fromstring(match.group(0))
        except ElementTree.ParseError as error:
            yield line, RejectedRecord(line, f"invalid XML in this event ({error})")


def iter_json_records(text: str) -> Iterator[tuple[int, dict[str, Any] | RejectedRecord]]:
    """Yield the objects of a JSON array, of JSON Lines, or of concatenated (pretty-printed) JSON objects."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _iter_json_array(text)
        return

    decoder = json.JSONDecoder()
    position = 0
    line = 1
    length = len(text)
    while position < length:
        start = _skip_space(text, position)
        line += text.count("\n", position, start)
        position = start
        if position >= length:
            break
        separator = _EVTX_DUMP_SEPARATOR.match(text, position)
        if separator:
            line += text.count("\n", position, separator.end())
            position = separator.end()
            continue
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            yield line, RejectedRecord(line, f"invalid JSON ({error.msg})")
            end = text.find("\n", position)
            end = length if end < 0 else end
        else:
            if isinstance(value, dict):
                yield line, value
            else:
                yield line, RejectedRecord(line, "a JSON value that is not an object")
        line += text.count("\n", position, end)
        position = end


def _iter_json_array(text: str) -> Iterator[tuple[int, dict[str, Any] | RejectedRecord]]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        yield error.lineno, RejectedRecord(error.lineno, f"invalid JSON array ({error.msg}); the whole array is unread")
        return
    if isinstance(values, dict):
        values = [values]
    for number, value in enumerate(values, start=1):
        if isinstance(value, dict):
            yield number, value
        else:
            yield number, RejectedRecord(number, "an array element that is not an object")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n,":
        position += 1
    return position


def iter_csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | RejectedRecord]]:
    """Yield each CSV row as a dict keyed by the header, by the line it starts on."""
    # StringIO with newline='' keeps line breaks inside quoted fields, as the csv module expects.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return
    names = [name.strip().removesuffix(_CSV_UTC_SUFFIX) for name in header]
    next_line = reader.line_num + 1
    while True:
        start = next_line
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            next_line = reader.line_num + 1
            yield start, RejectedRecord(start, f"invalid CSV ({error})")
            continue
        next_line = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield start, RejectedRecord(start, f"{len(row)} fields where the header has {len(names)}")
            continue
        yield start, dict(zip(names, row))
