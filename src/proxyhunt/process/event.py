"""The records that process-creation readers produce, whatever log they come from.

Every reader turns its source (Sysmon Event ID 1, Security 4688, Defender
``DeviceProcessEvents``, ASIM ``imProcessCreate``, auditd ``EXECVE``) into
``ProcessEvent`` objects with the same fields, so correlation never needs to
know where a process record came from. Times are naive ``datetime`` values in
UTC, as in the WebSession table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxyhunt.process.recognize import RcloneProcess


@dataclass(frozen=True)
class ProcessEvent:
    """One process creation, with its provenance.

    ``argv`` is the argument vector when the log records it as such (auditd
    ``EXECVE``); Windows logs record only ``command_line``, which is split by
    the Windows rules when needed. ``source_line`` is the 1-based line of the
    record in ``source_file``, or the record number for EVTX files and JSON
    arrays.
    """

    time: datetime
    hostname: str | None
    process_id: int | None
    command_line: str | None
    image: str | None
    original_file_name: str | None
    user: str | None
    parent_image: str | None
    source_file: str
    source_line: int
    source_kind: str
    argv: tuple[str, ...] | None = None
    process_guid: str | None = None


@dataclass(frozen=True)
class HostAddress:
    """An IP address that a process log ties to a host name, such as Sysmon Event ID 3's ``SourceIp``."""

    hostname: str
    ip: str
    source: str


@dataclass(frozen=True)
class ProcessExit:
    """The end of a process (Sysmon Event ID 5, Security 4689), used to rule it out for later requests."""

    time: datetime
    hostname: str | None
    process_id: int | None
    process_guid: str | None


@dataclass(frozen=True)
class RejectedRecord:
    """A record that could not be read, with its line (or record number) and the reason."""

    line: int
    reason: str


@dataclass
class ProcessLogReport:
    """The outcome of reading one process-creation log: counts, rejected records, or the error that stopped it."""

    path: str
    format: str | None = None
    records: int = 0
    process_events: int = 0
    rclone_processes: int = 0
    rejected: list[RejectedRecord] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ProcessLogSet:
    """The rclone processes, host addresses and process exits read from all process-creation logs."""

    reports: list[ProcessLogReport] = field(default_factory=list)
    processes: list[RcloneProcess] = field(default_factory=list)
    addresses: list[HostAddress] = field(default_factory=list)
    exits: list[ProcessExit] = field(default_factory=list)
    # Process creations that are not rclone, kept only when the reader is asked to.
    other_processes: list[ProcessEvent] = field(default_factory=list)
