"""Accessors that give a finding dict its meaning, whatever proxyhunt step produced it.

Findings produced before verdicts, filters or correlations existed lack some
keys. These accessors give those keys their default meaning: an alert from a
detection rule, suppressed by nothing. Nested values (suppressions, group-by
values, correlation events) may arrive as Python objects from DuckDB or as JSON
text, and both are accepted.
"""

from __future__ import annotations

import json
from typing import Any

ALERT = "alert"
SUPPRESSED = "suppressed"
DETECTION = "detection"
CORRELATION = "correlation"


def verdict_of(finding: dict[str, Any]) -> str:
    """Return ``alert`` or ``suppressed``; a finding without a verdict is an alert."""
    return finding.get("Verdict") or ALERT


def rule_type_of(finding: dict[str, Any]) -> str:
    """Return ``detection`` or ``correlation``; a finding without a rule type comes from a detection rule."""
    return finding.get("RuleType") or DETECTION


def is_correlation(finding: dict[str, Any]) -> bool:
    return rule_type_of(finding) == CORRELATION


def suppressions_of(finding: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the filters that suppressed a finding, each with its ``values``; empty for an alert."""
    return _list_of_dicts(finding.get("Suppressions"))


def events_of(finding: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the events (RuleId, SourceFile, SourceLine) that make up a correlation finding."""
    return _list_of_dicts(finding.get("Events"))


def destinations_of(finding: dict[str, Any]) -> list[str]:
    """Return a correlation finding's destination hosts, most bytes uploaded first."""
    value = _decoded(finding.get("Destinations"))
    return [str(item) for item in value if item is not None] if isinstance(value, (list, tuple)) else []


def priority_reasons_of(finding: dict[str, Any]) -> list[str]:
    """Return why a finding has its triage priority: the rule's level, then each adjustment."""
    value = _decoded(finding.get("PriorityReasons"))
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else []


def group_by_of(finding: dict[str, Any]) -> dict[str, Any]:
    """Return the group-by field values of a correlation finding."""
    value = _decoded(finding.get("GroupBy"))
    return dict(value) if isinstance(value, dict) else {}


def _decoded(value: Any) -> Any:
    # A findings table read back from Parquet or CSV may carry nested values as JSON text.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _list_of_dicts(value: Any) -> list[dict[str, Any]]:
    value = _decoded(value)
    if not isinstance(value, (list, tuple)):
        return []
    return [dict(item) for item in value if isinstance(item, dict)]


def rule_key_of(finding: dict[str, Any]) -> str:
    """Return the key that ``LoadedRule.key`` gives the rule behind a finding."""
    return finding.get("RuleId") or f"{finding.get('RuleSource')}:{finding.get('RuleTitle')}"


def source_label(address: str | None, user: str | None) -> str:
    """Return a client as ``address (user)``, or either part alone."""
    if address and user:
        return f"{address} ({user})"
    return address or user or ""


def destination_of(finding: dict[str, Any]) -> str:
    """Return the requested host, or the server address when the log has no host name."""
    return finding.get("DstHostname") or finding.get("DstIpAddr") or ""


def describe_values(values: Any) -> str:
    """Return ``field=value`` pairs of a filter match or a correlation group, separated by commas."""
    values = _decoded(values)
    if not isinstance(values, dict):
        return "" if values is None else str(values)
    return ", ".join(f"{name}={_value_text(value)}" for name, value in values.items())


def _value_text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    return str(value)


def suppression_entries(finding: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Return each filter that suppressed a finding, by title, with the ``field=value`` pairs it matched."""
    entries = []
    for suppression in suppressions_of(finding):
        name = suppression.get("filter_title") or suppression.get("filter_id") or "unnamed filter"
        values = _decoded(suppression.get("values"))
        pairs = [f"{field}={_value_text(value)}" for field, value in values.items()] if isinstance(values, dict) else []
        entries.append((str(name), pairs))
    return entries


def describe_suppressions(finding: dict[str, Any]) -> str:
    """Return each filter that suppressed a finding, with the values it matched, one per ``; ``."""
    parts = []
    for name, pairs in suppression_entries(finding):
        parts.append(f"{name}: {', '.join(pairs)}" if pairs else name)
    return "; ".join(parts)
