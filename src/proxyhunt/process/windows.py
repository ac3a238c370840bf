"""Windows event records in the shapes that exports write them, turned into one ``WindowsEvent``.

The same Sysmon or Security event reaches an analyst as EVTX, as XML
(``wevtutil qe /f:xml``, Event Viewer's "Save as XML", ``Get-WinEvent``'s
``ToXml()``), as evtx_dump-style JSON (``Event.System`` and ``Event.EventData``
nested), as Winlogbeat JSON (``winlog.event_data``), or flattened into one JSON
object or CSV row per event (the field names of ``EventData`` at the top level,
as Sentinel's ``SecurityEvent`` table and many SIEM exports write them).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from proxyhunt.process.times import parse_time

# Keys that name the event's provider, host and time in flattened exports, most specific first.
_PROVIDER_KEYS = ("ProviderName", "SourceName", "Provider", "EventSourceName", "Source")
_HOST_KEYS = ("Computer", "Hostname", "HostName", "computer_name", "ComputerName")
_TIME_KEYS = ("TimeCreated", "TimeGenerated", "@timestamp", "EventTime", "Timestamp")


@dataclass(frozen=True)
class WindowsEvent:
    """A Windows event: the ``System`` fields that matter here, and ``EventData`` by name."""

    event_id: int | None
    provider: str
    channel: str
    computer: str | None
    time_created: datetime | None
    data: dict[str, str] = field(default_factory=dict)

    @property
    def is_sysmon(self) -> bool:
        return "sysmon" in self.provider.lower() or "sysmon" in self.channel.lower()

    @property
    def is_security(self) -> bool:
        return "security-auditing" in self.provider.lower() or self.channel.lower() == "security"

    def get(self, name: str) -> str | None:
        """Return an ``EventData`` value, with ``-`` and empty values (Windows' "none") as None."""
        value = self.data.get(name)
        if value is None:
            return None
        text = str(value).strip()
        return None if text in ("", "-") else text


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def from_xml_element(element: ElementTree.Element) -> WindowsEvent:
    """Read an ``<Event>`` element, with or without the event namespace."""
    system: dict[str, Any] = {}
    data: dict[str, str] = {}
    for section in element:
        name = _local_name(section.tag)
        if name == "System":
            for item in section:
                system[_local_name(item.tag)] = item
        elif name in ("EventData", "UserData"):
            _collect_xml_data(section, data)

    provider = system.get("Provider")
    time_created = system.get("TimeCreated")
    return WindowsEvent(
        event_id=to_int(_text(system.get("EventID"))),
        provider=provider.get("Name", "") if provider is not None else "",
        channel=_text(system.get("Channel")) or "",
        computer=_text(system.get("Computer")),
        time_created=parse_time(time_created.get("SystemTime")) if time_created is not None else None,
        data=data,
    )


def _collect_xml_data(section: ElementTree.Element, data: dict[str, str]) -> None:
    for item in section.iter():
        if item is section:
            continue
        name = item.get("Name") or (_local_name(item.tag) if len(item) == 0 else None)
        if name and name != "Data":
            data[name] = item.text or ""


def parse_event_data_xml(text: str) -> dict[str, str]:
    """Read an ``EventData`` XML fragment, as Sentinel's ``Event`` table stores it, into a dict."""
    data: dict[str, str] = {}
    root = ElementTree.fromstring(f"<root>{text}</root>")
    _collect_xml_data(root, data)
    return data


def from_record(record: dict[str, Any]) -> WindowsEvent | None:
    """Read a JSON object or CSV row in any of the export shapes; None when it is not a Windows event."""
    nested = record.get("Event")
    if isinstance(nested, dict) and isinstance(nested.get("System"), dict):
        return _from_evtx_dump(nested)
    winlog = record.get("winlog")
    if isinstance(winlog, dict) and "event_id" in winlog:
        return _from_winlogbeat(record, winlog)
    if "EventID" in record or "EventId" in record or "event_id" in record:
        return _from_flat(record)
    return None


def _from_evtx_dump(event: dict[str, Any]) -> WindowsEvent:
    system = event["System"]
    provider = _attributes(system.get("Provider")).get("Name", "")
    time_created = _attributes(system.get("TimeCreated")).get("SystemTime")
    event_id = system.get("EventID")
    if isinstance(event_id, dict):
        event_id = event_id.get("#text")
    data = event.get("EventData") or event.get("UserData") or {}
    return WindowsEvent(
        event_id=to_int(event_id),
        provider=str(provider),
        channel=str(system.get("Channel") or ""),
        computer=_string(system.get("Computer")),
        time_created=parse_time(time_created),
        data={str(key): _string(value) or "" for key, value in data.items() if not str(key).startswith("#")}
        if isinstance(data, dict)
        else {},
    )


def _from_winlogbeat(record: dict[str, Any], winlog: dict[str, Any]) -> WindowsEvent:
    data = winlog.get("event_data") or {}
    return WindowsEvent(
        event_id=to_int(winlog.get("event_id")),
        provider=str(winlog.get("provider_name") or ""),
        channel=str(winlog.get("channel") or ""),
        computer=_string(winlog.get("computer_name")),
        time_created=parse_time(record.get("@timestamp")),
        data={str(key): _string(value) or "" for key, value in data.items()},
    )


def _from_flat(record: dict[str, Any]) -> WindowsEvent:
    event_id = record.get("EventID", record.get("EventId", record.get("event_id")))
    data = {str(key): _string(value) or "" for key, value in record.items() if not isinstance(value, (dict, list))}
    embedded = record.get("EventData")
    if isinstance(embedded, str) and embedded.lstrip().startswith("<"):
        try:
            data.update(parse_event_data_xml(embedded))
        except ElementTree.ParseError:
            pass
    elif isinstance(embedded, dict):
        data.update({str(key): _string(value) or "" for key, value in embedded.items()})
    return WindowsEvent(
        event_id=to_int(event_id),
        provider=next((str(record[key]) for key in _PROVIDER_KEYS if record.get(key)), ""),
        channel=str(record.get("Channel") or ""),
        computer=next((str(record[key]) for key in _HOST_KEYS if record.get(key)), None),
        time_created=next((parse_time(record[key]) for key in _TIME_KEYS if record.get(key)), None),
        data=data,
    )


def _attributes(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        attributes = value.get("#attributes")
        return attributes if isinstance(attributes, dict) else value
    return {}


def _text(element: ElementTree.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _string(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def to_int(value: Any) -> int | None:
    """Read a decimal or ``0x`` hexadecimal number, as Windows writes process ids."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if value is None:
        return None
    text = str(value).strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None

