"""Read process-creation logs of any supported source and keep the rclone processes.

The format of each file is detected from its content: EVTX by its file
signature, Windows event XML, JSON (arrays, JSON Lines, evtx_dump output),
CSV with a header row, and auditd's raw log. Within JSON and CSV, each record
is recognized by its fields as a Windows event (Sysmon, Security), a Defender
``DeviceProcessEvents`` row or an ASIM process event, so one export may mix
sources.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from proxyhunt.formats.paths import find_files
from proxyhunt.formats.source import InputError
from proxyhunt.process import asim, defender, security4688, sysmon
from proxyhunt.process.auditd import is_audit_line, read_audit_lines
from proxyhunt.process.event import ProcessEvent, ProcessLogReport, ProcessLogSet, RejectedRecord
from proxyhunt.process.recognize import recognize_rclone
from proxyhunt.process.records import (
    EVTX_MAGIC,
    decode_text,
    iter_csv_rows,
    iter_evtx,
    iter_json_records,
    iter_xml_events,
    read_bytes,
)
from proxyhunt.process.windows import WindowsEvent, from_record, from_xml_element

log = logging.getLogger(__name__)

FORMATS = ("EVTX", "XML", "JSON", "CSV", "auditd")

EVTX_HEADER_SIZE = 0x1000
EVTX_CHUNK_SIZE = 0x10000


def read_process_logs(paths: Iterable[str], keep_others: bool = False) -> ProcessLogSet:
    """Read every process-creation log under ``paths`` (files, directories, glob patterns).

    Only rclone processes are kept, unless ``keep_others`` is true. Problems
    are reported per file in ``ProcessLogSet.reports``, never raised.
    """
    logs = ProcessLogSet()
    files, problems = find_files(list(paths))
    for problem in problems:
        logs.reports.append(ProcessLogReport(problem.path, error=problem.message))
    for path in files:
        if path == "-":
            logs.reports.append(ProcessLogReport(path, error="process-creation logs cannot be read from standard input"))
            continue
        logs.reports.append(_read_file(path, logs, keep_others))
    return logs


def _read_file(path: str, logs: ProcessLogSet, keep_others: bool = False) -> ProcessLogReport:
    report = ProcessLogReport(path)
    try:
        data = read_bytes(path)
    except InputError as error:
        report.error = str(error)
        return report

    kinds: Counter[str] = Counter()
    try:
        for number, item in _records(path, data, report):
            if isinstance(item, RejectedRecord):
                report.rejected.append(item)
                continue
            report.records += 1
            _collect(item, path, number, logs, report, kinds, keep_others)
    except InputError as error:
        report.error = str(error)
        return report

    if kinds:
        report.format += " (" + ", ".join(f"{kind}" for kind in sorted(kinds)) + ")"
    for rejected in report.rejected[:5]:
        log.warning("%s:%d: %s", path, rejected.line, rejected.reason)
    if len(report.rejected) > 5:
        log.warning("%s: %d more records rejected", path, len(report.rejected) - 5)
    if report.records and not report.process_events:
        log.info("%s: %d records, none of them a process creation", path, report.records)
    return report


def _records(path: str, data: bytes, report: ProcessLogReport) -> Iterator[tuple[int, Any]]:
    """Detect the file's format and yield its records as XML elements, dicts, process events or rejections."""
    if data.startswith(EVTX_MAGIC):
        report.format = "EVTX"
        yield from _evtx_records(path, data)
        return

    text = decode_text(data, path)
    head = text.lstrip()
    first_line = head.split("\n", 1)[0]
    if head.startswith("<"):
        report.format = "XML"
        yield from iter_xml_events(text)
    elif head.startswith(("{", "[")) or re.match(r"Record \d+\s", head):
        report.format = "JSON"
        yield from iter_json_records(text)
    elif is_audit_line(first_line):
        report.format = "auditd"
        rejected: list[RejectedRecord] = []
        # str.splitlines would also split at 0x1D, which separates the ENRICHED fields.
        records, processes = read_audit_lines(text.split("\n"), path, rejected)
        yield from ((item.line, item) for item in rejected)
        # Each process counts as one record here; the other audit records are counted below.
        report.records += max(records - len(processes), 0)
        yield from ((process.source_line, process) for process in processes)
    elif "," in first_line or "\t" in first_line:
        report.format = "CSV"
        yield from iter_csv_rows(text)
    elif not head:
        report.format = "empty"
    else:
        raise InputError(
            f"{path}: not a recognized process-creation log; expected EVTX, Windows event XML, JSON, CSV "
            "or an auditd log (see docs/exclusions.md)"
        )


def _evtx_records(path: str, data: bytes) -> Iterator[tuple[int, Any]]:
    """Read EVTX with python-evtx, which needs a file: a decompressed copy when the input was compressed."""
    # An EVTX file is a 4 KiB header followed by 64 KiB chunks, and python-evtx
    # silently skips a chunk that is cut off.
    chunk_bytes = len(data) - EVTX_HEADER_SIZE
    if chunk_bytes < EVTX_CHUNK_SIZE:
        raise InputError(f"{path}: truncated EVTX file ({len(data)} bytes, less than one 64 KiB chunk); export the log again")
    if chunk_bytes % EVTX_CHUNK_SIZE:
        log.warning("%s: the last EVTX chunk is cut off after %d bytes and is not read", path, chunk_bytes % EVTX_CHUNK_SIZE)
    with open(path, "rb") as handle:
        on_disk = handle.read(len(EVTX_MAGIC)) == EVTX_MAGIC
    if on_disk:
        yield from _guarded_evtx(path)
        return
    handle = tempfile.NamedTemporaryFile(suffix=".evtx", delete=False)
    try:
        with handle:
            handle.write(data)
        yield from _guarded_evtx(handle.name)
    finally:
        os.unlink(handle.name)


def _guarded_evtx(path: str) -> Iterator[tuple[int, Any]]:
    try:
        yield from iter_evtx(path)
    except (OSError, ValueError, IndexError, KeyError) as error:
        raise InputError(f"{path}: damaged EVTX file ({type(error).__name__}: {error}); export the log again") from None


def _collect(item: Any, path: str, number: int, logs: ProcessLogSet, report: ProcessLogReport, kinds: Counter,
             keep_others: bool) -> None:
    """Add what one record contributes: an rclone process, a host address or a process exit."""
    process: ProcessEvent | None = None
    if isinstance(item, ProcessEvent):
        process = item
        kinds[item.source_kind] += 1
    elif isinstance(item, ElementTree.Element):
        process = _from_windows(from_xml_element(item), path, number, logs, kinds)
    elif isinstance(item, dict):
        process = _from_record(item, path, number, logs, report, kinds)

    if process is None:
        return
    report.process_events += 1
    rclone = recognize_rclone(process)
    if rclone is None:
        if keep_others:
            logs.other_processes.append(process)
        return
    report.rclone_processes += 1
    logs.processes.append(rclone)


def _from_record(record: dict[str, Any], path: str, number: int, logs: ProcessLogSet,
                 report: ProcessLogReport, kinds: Counter) -> ProcessEvent | None:
    if defender.is_defender_record(record):
        kinds[defender.SOURCE_KIND] += 1
        return defender.process_event(record, path, number)
    if asim.is_asim_record(record):
        kinds[asim.SOURCE_KIND] += 1
        address = asim.host_address(record)
        if address:
            logs.addresses.append(address)
        return asim.process_event(record, path, number)
    event = from_record(record)
    if event is None:
        report.rejected.append(RejectedRecord(
            number, "not a process-creation record: no EventID, ProcessCommandLine or TargetProcessCommandLine field"
        ))
        return None
    return _from_windows(event, path, number, logs, kinds)


def _from_windows(event: WindowsEvent, path: str, number: int, logs: ProcessLogSet, kinds: Counter) -> ProcessEvent | None:
    if sysmon.is_sysmon_event(event, sysmon.PROCESS_CREATE):
        kinds[sysmon.SOURCE_KIND] += 1
        return sysmon.process_event(event, path, number)
    if sysmon.is_sysmon_event(event, sysmon.NETWORK_CONNECT):
        address = sysmon.host_address(event)
        if address:
            logs.addresses.append(address)
        return None
    if sysmon.is_sysmon_event(event, sysmon.PROCESS_TERMINATE):
        ended = sysmon.process_exit(event)
        if ended:
            logs.exits.append(ended)
        return None
    if security4688.is_security_event(event, security4688.PROCESS_CREATE):
        kinds[security4688.SOURCE_KIND] += 1
        return security4688.process_event(event, path, number)
    if security4688.is_security_event(event, security4688.PROCESS_EXIT):
        ended = security4688.process_exit(event)
        if ended:
            logs.exits.append(ended)
    return None
