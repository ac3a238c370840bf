"""Sentinel ASIM process events, as ``imProcessCreate`` (or a normalized table) exports them.

ASIM names the new process ``TargetProcess*`` and its parent ``ParentProcess*``
or ``ActingProcess*``. The device is ``DvcHostname`` (or ``Dvc``) and its
address ``DvcIpAddr``, which also ties the host to a proxy client address.
"""

from __future__ import annotations

from typing import Any

from proxyhunt.process.event import HostAddress, ProcessEvent
from proxyhunt.process.fields import first_time, text_value
from proxyhunt.process.windows import to_int

SOURCE_KIND = "imProcessCreate"


def is_asim_record(record: dict[str, Any]) -> bool:
    """True when the keys are those of the ASIM process event schema."""
    return "TargetProcessCommandLine" in record or "TargetProcessName" in record


def process_event(record: dict[str, Any], source_file: str, source_line: int) -> ProcessEvent | None:
    """Return the process that an ASIM row records; None for other event types or without a time."""
    event_type = text_value(record, "EventType")
    if event_type and event_type != "ProcessCreated":
        return None
    time = first_time(record, "TargetProcessCreationTime", "EventStartTime", "TimeGenerated")
    if time is None:
        return None
    return ProcessEvent(
        time=time,
        hostname=_hostname(record),
        process_id=to_int(record.get("TargetProcessId")),
        command_line=text_value(record, "TargetProcessCommandLine"),
        image=text_value(record, "TargetProcessName"),
        original_file_name=text_value(record, "TargetProcessFileOriginalName"),
        user=text_value(record, "TargetUsername") or text_value(record, "ActorUsername"),
        parent_image=text_value(record, "ParentProcessName") or text_value(record, "ActingProcessName"),
        source_file=source_file,
        source_line=source_line,
        source_kind=SOURCE_KIND,
        process_guid=text_value(record, "TargetProcessGuid"),
    )


def host_address(record: dict[str, Any]) -> HostAddress | None:
    """Return the device's address from ``DvcIpAddr``."""
    hostname = _hostname(record)
    address = text_value(record, "DvcIpAddr")
    if not hostname or not address:
        return None
    return HostAddress(hostname, address, "imProcessCreate DvcIpAddr")


def _hostname(record: dict[str, Any]) -> str | None:
    return text_value(record, "DvcHostname") or text_value(record, "DvcFQDN") or text_value(record, "Dvc")
