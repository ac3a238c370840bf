"""Windows Security events 4688 (a new process has been created) and 4689 (a process has exited).

4688 records the command line only when the policy "Include command line in
process creation events" is on; without it ``CommandLine`` is absent and rclone
can be recognized only by the image name. Process ids are hexadecimal
(``0x242c``). The new process runs as ``TargetUserName`` when that is set,
else as the creator ``SubjectUserName``.
"""

from __future__ import annotations

from proxyhunt.process.event import ProcessEvent, ProcessExit
from proxyhunt.process.windows import WindowsEvent, to_int

PROCESS_CREATE = 4688
PROCESS_EXIT = 4689

SOURCE_KIND = "Security 4688"


def is_security_event(event: WindowsEvent, event_id: int) -> bool:
    """True when ``event`` is Security ``event_id``; flattened exports without a provider are judged by their fields."""
    if event.event_id != event_id:
        return False
    if event.is_security:
        return True
    if event.provider or event.channel:
        return False
    return "NewProcessName" in event.data or "ProcessName" in event.data


def process_event(event: WindowsEvent, source_file: str, source_line: int) -> ProcessEvent | None:
    """Return the process that a 4688 event records; None when it has no time."""
    if event.time_created is None:
        return None
    return ProcessEvent(
        time=event.time_created,
        hostname=event.computer,
        process_id=to_int(event.get("NewProcessId")),
        command_line=event.get("CommandLine"),
        image=event.get("NewProcessName"),
        original_file_name=None,
        user=_user(event),
        parent_image=event.get("ParentProcessName"),
        source_file=source_file,
        source_line=source_line,
        source_kind=SOURCE_KIND,
    )


def _user(event: WindowsEvent) -> str | None:
    for domain_key, name_key in (("TargetDomainName", "TargetUserName"), ("SubjectDomainName", "SubjectUserName")):
        name = event.get(name_key)
        if name:
            domain = event.get(domain_key)
            return f"{domain}\\{name}" if domain else name
    return None


def process_exit(event: WindowsEvent) -> ProcessExit | None:
    """Return the process end that a 4689 event records."""
    if event.time_created is None:
        return None
    return ProcessExit(event.time_created, event.computer, to_int(event.get("ProcessId")), None)
