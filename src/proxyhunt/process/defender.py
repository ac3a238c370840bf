"""Microsoft Defender for Endpoint ``DeviceProcessEvents`` rows, as advanced hunting or Sentinel exports them.

``FolderPath`` is the full path of the new process's image file,
``ProcessVersionInfoOriginalFileName`` its original name from the version
resource (which survives renaming), and ``ProcessCreationTime`` its start;
``Timestamp`` (advanced hunting) or ``TimeGenerated`` (Sentinel) is the time of
the record.
"""

from __future__ import annotations

from typing import Any

from proxyhunt.process.event import ProcessEvent
from proxyhunt.process.fields import account, first_time, text_value
from proxyhunt.process.windows import to_int

SOURCE_KIND = "DeviceProcessEvents"


def is_defender_record(record: dict[str, Any]) -> bool:
    """True when the keys are those of ``DeviceProcessEvents``."""
    return "ProcessCommandLine" in record and "DeviceName" in record


def process_event(record: dict[str, Any], source_file: str, source_line: int) -> ProcessEvent | None:
    """Return the process that a ``DeviceProcessEvents`` row records; None for other actions or without a time."""
    action = text_value(record, "ActionType")
    if action and action != "ProcessCreated":
        return None
    time = first_time(record, "ProcessCreationTime", "Timestamp", "TimeGenerated")
    if time is None:
        return None

    image = text_value(record, "FolderPath")
    file_name = text_value(record, "FileName")
    if image and file_name and not image.lower().endswith(file_name.lower()):
        # Some exports give the folder only; the image path is the folder and the file name.
        separator = "\\" if "\\" in image else "/"
        image = image.rstrip("\\/") + separator + file_name
    return ProcessEvent(
        time=time,
        hostname=text_value(record, "DeviceName"),
        process_id=to_int(record.get("ProcessId")),
        command_line=text_value(record, "ProcessCommandLine"),
        image=image or file_name,
        original_file_name=text_value(record, "ProcessVersionInfoOriginalFileName"),
        user=account(record, "AccountDomain", "AccountName"),
        parent_image=text_value(record, "InitiatingProcessFolderPath") or text_value(record, "InitiatingProcessFileName"),
        source_file=source_file,
        source_line=source_line,
        source_kind=SOURCE_KIND,
    )
