"""Sysmon events: Event ID 1 (process creation), 3 (network connection) and 5 (process terminated).

Event ID 1 gives the process, its command line and the ``OriginalFileName``
from the binary's version resource, which survives renaming the binary.
Event ID 3 ties the host name to the address it connects from, which lets a
proxy log that records only client addresses be joined to the host. Event ID 5
ends a process, so it cannot have made a later request.
"""

from __future__ import annotations

from proxyhunt.process.event import HostAddress, ProcessEvent, ProcessExit
from proxyhunt.process.times import parse_time
from proxyhunt.process.windows import WindowsEvent, to_int

PROCESS_CREATE = 1
NETWORK_CONNECT = 3
PROCESS_TERMINATE = 5

SOURCE_KIND = "Sysmon 1"


def is_sysmon_event(event: WindowsEvent, event_id: int) -> bool:
    """True when ``event`` is Sysmon's ``event_id``; flattened exports without a provider are judged by their fields."""
    if event.event_id != event_id:
        return False
    if event.is_sysmon:
        return True
    if event.provider or event.channel:
        return False
    if event_id == PROCESS_CREATE:
        return "Image" in event.data and "CommandLine" in event.data
    return "UtcTime" in event.data and "ProcessGuid" in event.data


def process_event(event: WindowsEvent, source_file: str, source_line: int) -> ProcessEvent | None:
    """Return the process that Event ID 1 records; None when it has no time."""
    time = parse_time(event.get("UtcTime")) or event.time_created
    if time is None:
        return None
    return ProcessEvent(
        time=time,
        hostname=event.computer,
        process_id=to_int(event.get("ProcessId")),
        command_line=event.get("CommandLine"),
        image=event.get("Image"),
        original_file_name=event.get("OriginalFileName"),
        user=event.get("User"),
        parent_image=event.get("ParentImage"),
        source_file=source_file,
        source_line=source_line,
        source_kind=SOURCE_KIND,
        process_guid=event.get("ProcessGuid"),
    )


def host_address(event: WindowsEvent) -> HostAddress | None:
    """Return the host's own address from Event ID 3: ``SourceIp`` of a connection the host initiated."""
    if not event.computer:
        return None
    initiated = (event.get("Initiated") or "").lower()
    address = event.get("SourceIp") if initiated in ("true", "1") else None
    if not address or address in ("127.0.0.1", "::1", "0.0.0.0"):
        return None
    return HostAddress(event.computer, address, "Sysmon 3")


def process_exit(event: WindowsEvent) -> ProcessExit | None:
    """Return the process end that Event ID 5 records."""
    time = parse_time(event.get("UtcTime")) or event.time_created
    if time is None:
        return None
    return ProcessExit(time, event.computer, to_int(event.get("ProcessId")), event.get("ProcessGuid"))
