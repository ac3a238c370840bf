"""Display rows of the HTML report: every value as text made safe, in the shape the template reads.

Values are made visible with ``safe_text`` here and HTML-escaped by the
template's autoescaping, so no view marks anything as safe HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from proxyhunt.report.findings import (
    describe_suppressions,
    describe_values,
    destinations_of,
    events_of,
    group_by_of,
    priority_reasons_of,
    rule_key_of,
    suppression_entries,
)
from proxyhunt.report.model import HuntReport
from proxyhunt.report.text import format_bytes, format_time, safe_text
from proxyhunt.tuning.triage import priority_rank

# Finding keys shown first in a finding's details; the others follow in their own order.
_DETAIL_ORDER = (
    "RuleTitle",
    "RuleId",
    "RuleLevel",
    "Priority",
    "RuleType",
    "Verdict",
    "TimeGenerated",
    "SourceFile",
    "SourceLine",
)
# Keys whose values the details show in a form of their own, or not at all.
_DETAIL_HIDDEN = {"Suppressions", "GroupBy", "Events", "PriorityReasons", "Destinations"}
# ATT&CK technique, group and software tags, as the Sigma tag specification writes them.
_ATTACK_TAG = re.compile(r"^attack\.(?P<kind>[tgs])(?P<number>\d{4})(?:\.(?P<sub>\d{3}))?$", re.IGNORECASE)
_ATTACK_PATHS = {"t": "techniques", "g": "groups", "s": "software"}


@dataclass(frozen=True)
class TagView:
    """A rule tag as the report shows it, linked to attack.mitre.org when it names an ATT&CK object."""

    name: str
    label: str
    href: str | None = None


@dataclass(frozen=True)
class FindingView:
    """One row of a findings table, every value as display text."""

    rule_key: str
    rule_title: str
    level: str
    time: str
    time_sort: str
    source_ip: str
    user: str
    host: str
    method: str
    url: str
    status: str
    user_agent: str
    priority: str
    priority_sort: int
    priority_reasons: str
    up: str
    up_sort: str
    down: str
    down_sort: str
    location: str
    location_full: str
    fields: list[tuple[str, str]]
    suppressions: list[dict[str, str]] = field(default_factory=list)


def attack_tag(tag: str) -> TagView:
    """Return a rule tag for display, linked to attack.mitre.org when it names a technique, group or software."""
    match = _ATTACK_TAG.match(tag)
    if not match:
        return TagView(tag, tag)
    kind = match["kind"].lower()
    identifier = f"{kind.upper()}{match['number']}"
    path = f"{_ATTACK_PATHS[kind]}/{identifier}/"
    if match["sub"]:
        identifier += f".{match['sub']}"
        path += f"{match['sub']}/"
    return TagView(tag, identifier, f"https://attack.mitre.org/{path}")


def _display(value: Any) -> str:
    """Return a finding value as display text: times in UTC, lists and mappings spelled out."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict):
        return safe_text(describe_values(value))
    if isinstance(value, (list, tuple)):
        return safe_text(", ".join(_display(item) for item in value))
    return safe_text(value)


def sort_number(value: Any) -> str:
    return "" if value is None else str(value)


def _finding_fields(finding: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [key for key in _DETAIL_ORDER if key in finding]
    keys += [key for key in finding if key not in _DETAIL_ORDER and key not in _DETAIL_HIDDEN]
    fields = [(key, _display(finding[key])) for key in keys if finding[key] not in (None, "", [], {})]
    reasons = priority_reasons_of(finding)
    if reasons:
        # A reason may contain a comma ("at Sat 04:00, outside working hours"), so they are joined with semicolons.
        fields.append(("PriorityReasons", safe_text("; ".join(reasons))))
    if finding.get("Suppressions"):
        fields.append(("Suppressions", safe_text(describe_suppressions(finding))))
    return fields


def _priority_fields(finding: dict[str, Any]) -> dict[str, Any]:
    return {
        "priority": safe_text(finding.get("Priority")),
        "priority_sort": priority_rank(finding),
        "priority_reasons": safe_text("; ".join(priority_reasons_of(finding))),
    }


def finding_view(finding: dict[str, Any]) -> FindingView:
    location = f"{Path(finding.get('SourceFile') or '').name}:{finding.get('SourceLine')}"
    full_location = f"{finding.get('SourceFile')}:{finding.get('SourceLine')}"
    if finding.get("SourceDamaged"):
        location += " (damaged)"
    time = finding.get("TimeGenerated")
    suppressions = [
        {"title": safe_text(title), "pairs": [safe_text(pair) for pair in pairs]}
        for title, pairs in suppression_entries(finding)
    ]
    return FindingView(
        rule_key=rule_key_of(finding),
        rule_title=safe_text(finding.get("RuleTitle")),
        level=safe_text(finding.get("RuleLevel")),
        time=format_time(time),
        time_sort=time.isoformat() if time else "",
        source_ip=safe_text(finding.get("SrcIpAddr")),
        user=safe_text(finding.get("SrcUsername")),
        host=safe_text(finding.get("DstHostname") or finding.get("DstIpAddr")),
        method=safe_text(finding.get("HttpRequestMethod")),
        url=safe_text(finding.get("Url")),
        status=safe_text(finding.get("HttpStatusCode")),
        user_agent=safe_text(finding.get("HttpUserAgent")),
        **_priority_fields(finding),
        up=format_bytes(finding.get("SrcBytes")),
        up_sort=sort_number(finding.get("SrcBytes")),
        down=format_bytes(finding.get("DstBytes")),
        down_sort=sort_number(finding.get("DstBytes")),
        location=safe_text(location),
        location_full=safe_text(full_location),
        fields=_finding_fields(finding),
        suppressions=suppressions,
    )


def _event_text(event: dict[str, Any]) -> str:
    """Return one event of a correlation as ``file:line (rule), host, bytes``."""
    parts = [f"{event.get('SourceFile')}:{event.get('SourceLine')} ({event.get('RuleId') or ''})"]
    if event.get("DstHostname"):
        parts.append(str(event["DstHostname"]))
    if event.get("SrcBytes") is not None:
        parts.append(f"{format_bytes(event['SrcBytes'])} up")
    return safe_text(", ".join(parts))


def correlation_view(finding: dict[str, Any], report: HuntReport) -> dict[str, Any]:
    """Return one row of the correlations table: window, group, value, bytes, destinations and events."""
    start, end = finding.get("WindowStart"), finding.get("WindowEnd")
    events = events_of(finding)
    fields = _finding_fields(finding)
    fields += [(f"Event {index}", _event_text(event)) for index, event in enumerate(events, start=1)]
    return {
        **_priority_fields(finding),
        "up": format_bytes(finding.get("SrcBytes")),
        "up_sort": sort_number(finding.get("SrcBytes")),
        "down": format_bytes(finding.get("DstBytes")),
        "down_sort": sort_number(finding.get("DstBytes")),
        "destinations": [safe_text(host) for host in destinations_of(finding)],
        "rule_key": rule_key_of(finding),
        "rule_title": safe_text(finding.get("RuleTitle")),
        "level": safe_text(finding.get("RuleLevel")),
        "correlation_type": safe_text(finding.get("CorrelationType")),
        "start": _display(start),
        "start_sort": start.isoformat() if isinstance(start, datetime) else _display(start),
        "end": _display(end),
        "end_sort": end.isoformat() if isinstance(end, datetime) else _display(end),
        "group": safe_text(describe_values(group_by_of(finding))),
        "value": safe_text(report.value_text(finding)),
        "value_sort": sort_number(finding.get("Value")),
        "events": events,
        "fields": fields,
    }


def rule_options(report: HuntReport, findings: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Return the rules behind ``findings`` as options of the rule selector, in the order the rules ran."""
    keys = {rule_key_of(finding) for finding in findings}
    return [{"key": rule.key, "title": safe_text(rule.title)} for rule in report.rules if rule.key in keys]


def table_rows(report: HuntReport) -> dict[str, list[dict[str, Any]]]:
    """Return the rows of the destinations, sources, rules, filters, inputs and warnings tables."""
    return {
        "destinations": [
            {
                "host": safe_text(item.host),
                "bytes": "unknown" if item.upload_unknown == item.hits else format_bytes(item.bytes_uploaded),
                "bytes_sort": item.bytes_uploaded,
                "hits": item.hits,
                "sources": item.sources,
                "upload_unknown": item.upload_unknown,
            }
            for item in report.destinations
        ],
        "sources": [
            {
                "source_ip": safe_text(item.src_ip),
                "user": safe_text(item.src_user),
                "hits": item.hits,
                "up": format_bytes(item.bytes_uploaded),
                "up_sort": sort_number(item.bytes_uploaded),
                "down": format_bytes(item.bytes_downloaded),
                "down_sort": sort_number(item.bytes_downloaded),
                "hosts": item.destinations,
                "first_seen": format_time(item.first_seen),
                "last_seen": format_time(item.last_seen),
            }
            for item in report.sources
        ],
        "rules": [
            {
                "title": safe_text(rule.title),
                "level": safe_text(rule.level),
                "rule_type": rule.rule_type,
                "tags": [attack_tag(safe_text(tag)) for tag in rule.tags],
                "alerts": rule.alerts,
                "suppressed": rule.suppressed,
                "source": safe_text(rule.source),
            }
            for rule in report.rules
        ],
        "filters": [
            {
                "title": safe_text(item.title),
                "filter_id": safe_text(item.filter_id),
                "source": safe_text(item.source),
                "suppressed": item.suppressed,
            }
            for item in report.filters
        ],
        "files": [
            {
                "path": safe_text(item.path),
                "format": safe_text(item.format or ("-" if item.error else "empty")),
                "compression": safe_text(item.compression),
                "lines_read": item.lines_read,
                "parsed": item.parsed,
                "rejected": item.rejected,
                "skipped": item.skipped,
                "unparsed": item.prefiltered,
                "invalid_utf8": item.invalid_utf8_lines,
                "first_seen": format_time(item.first_seen),
                "last_seen": format_time(item.last_seen),
                "error": safe_text(item.error),
            }
            for item in report.result.files
        ],
        "messages": [{"kind": message.kind, "text": safe_text(message.text)} for message in report.messages],
    }
