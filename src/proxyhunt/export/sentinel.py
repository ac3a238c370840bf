"""Microsoft Sentinel scheduled analytic rules: the YAML of the Azure-Sentinel repository and ARM templates.

Both carry the converted KQL with the Sigma rule's metadata: id, title,
description, level as severity, and ATT&CK tags as tactics and techniques.
Entities map to ASIM WebSession columns: IP to SrcIpAddr, Account to
SrcUsername, URL to Url and Host to DstHostname.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

import yaml

from proxyhunt.export.convert import Conversion

_SEVERITIES = {"informational": "Informational", "low": "Low", "medium": "Medium", "high": "High", "critical": "High"}
# MITRE ATT&CK tactic tags of Sigma (attack.<tactic>) -> Sentinel tactic names.
_TACTICS = {
    "reconnaissance": "Reconnaissance",
    "resource_development": "ResourceDevelopment",
    "initial_access": "InitialAccess",
    "execution": "Execution",
    "persistence": "Persistence",
    "privilege_escalation": "PrivilegeEscalation",
    "defense_evasion": "DefenseEvasion",
    "credential_access": "CredentialAccess",
    "discovery": "Discovery",
    "lateral_movement": "LateralMovement",
    "collection": "Collection",
    "command_and_control": "CommandAndControl",
    "exfiltration": "Exfiltration",
    "impact": "Impact",
}
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")
_PERIOD = re.compile(r"^(\d+)([mhd])$")

ENTITY_MAPPINGS = [
    {"entityType": "IP", "fieldMappings": [{"identifier": "Address", "columnName": "SrcIpAddr"}]},
    {"entityType": "Account", "fieldMappings": [{"identifier": "Name", "columnName": "SrcUsername"}]},
    {"entityType": "URL", "fieldMappings": [{"identifier": "Url", "columnName": "Url"}]},
    {"entityType": "Host", "fieldMappings": [{"identifier": "HostName", "columnName": "DstHostname"}]},
]


def entity_mappings(conversion: Conversion) -> list[dict]:
    """Return the entity mappings whose columns the query's rows carry.

    Sentinel rejects a mapping to a column that the query does not return,
    and a correlation query returns only its group-by columns.
    """
    if conversion.entity_columns is None:
        return ENTITY_MAPPINGS
    return [
        mapping
        for mapping in ENTITY_MAPPINGS
        if all(field["columnName"] in conversion.entity_columns for field in mapping["fieldMappings"])
    ]


class AnalyticRuleError(ValueError):
    """An analytic rule that cannot be written, such as one with an invalid query period."""


@dataclass(frozen=True)
class Schedule:
    """How often the analytic rule runs and how far back each run looks, as KQL timespans (``1h``, ``30m``, ``1d``)."""

    query_frequency: str = "1h"
    query_period: str = "1h"

    def __post_init__(self) -> None:
        for name, value in (("query frequency", self.query_frequency), ("query period", self.query_period)):
            if not _PERIOD.match(value):
                raise AnalyticRuleError(f"invalid {name} '{value}'; give a number and m, h or d, such as 1h")


_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def period_seconds(period: str) -> int:
    """Return a KQL timespan such as ``1h`` in seconds."""
    match = _PERIOD.match(period)
    if not match:
        raise AnalyticRuleError(f"invalid period '{period}'; give a number and m, h or d, such as 1h")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def iso_duration(period: str) -> str:
    """Return a KQL timespan such as ``1h`` as an ISO 8601 duration such as ``PT1H``."""
    match = _PERIOD.match(period)
    if not match:
        raise AnalyticRuleError(f"invalid period '{period}'; give a number and m, h or d, such as 1h")
    number, unit = match.groups()
    return f"P{number}D" if unit == "d" else f"PT{number}{unit.upper()}"


def _attack(conversion: Conversion) -> tuple[list[str], list[str]]:
    tags = conversion.loaded.tags if conversion.loaded else []
    tactics, techniques = [], []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace != "attack":
            continue
        if name.replace("-", "_") in _TACTICS:
            tactics.append(_TACTICS[name.replace("-", "_")])
        elif _TECHNIQUE.match(name):
            techniques.append(name.upper())
    return tactics, techniques


def _rule_id(conversion: Conversion) -> str:
    # A rule without an id gets a stable one derived from its title.
    return conversion.rule_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"proxyhunt:{conversion.rule_title}"))


def analytic_rule(conversion: Conversion, schedule: Schedule) -> dict:
    """Return the scheduled analytic rule, in the Azure-Sentinel repository's YAML layout, as a mapping."""
    if not conversion.ok:
        raise AnalyticRuleError(f"rule '{conversion.rule_title}' has no query: {conversion.error}")
    rule = conversion.loaded.rule if conversion.loaded else None
    timespan = getattr(getattr(rule, "timespan", None), "seconds", None)
    if timespan is not None and timespan > period_seconds(schedule.query_period):
        raise AnalyticRuleError(
            f"correlation '{conversion.rule_title}' spans {timespan} seconds, more than the query period "
            f"{schedule.query_period} that each run reads; raise --query-period"
        )
    tactics, techniques = _attack(conversion)
    return {
        "id": _rule_id(conversion),
        "name": conversion.rule_title,
        "description": (rule.description if rule and rule.description else conversion.rule_title).strip(),
        "severity": _SEVERITIES.get(conversion.loaded.level if conversion.loaded else "", "Medium"),
        # NOTE: ASIM rules run on every source with a WebSession parser, so no connector is required.
        "requiredDataConnectors": [],
        "queryFrequency": schedule.query_frequency,
        "queryPeriod": schedule.query_period,
        "triggerOperator": "gt",
        "triggerThreshold": 0,
        "tactics": tactics,
        "relevantTechniques": techniques,
        "query": conversion.query + "\n",
        "entityMappings": entity_mappings(conversion),
        "version": "1.0.0",
        "kind": "Scheduled",
    }


class _LiteralDumper(yaml.SafeDumper):
    """Write multi-line strings (the query, the description) as YAML block literals."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_LiteralDumper.add_representer(str, _represent_text)


def analytic_rule_yaml(conversion: Conversion, schedule: Schedule) -> str:
    """Return the scheduled analytic rule as YAML."""
    return yaml.dump(analytic_rule(conversion, schedule), Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True)


def arm_template(conversions: list[Conversion], schedule: Schedule) -> dict:
    """Return an ARM template that deploys each conversion as a scheduled analytic rule to a workspace."""
    resources = []
    for conversion in conversions:
        analytic = analytic_rule(conversion, schedule)
        techniques = sorted({technique.split(".")[0] for technique in analytic["relevantTechniques"]})
        sub_techniques = [technique for technique in analytic["relevantTechniques"] if "." in technique]
        rule_id = analytic["id"]
        resources.append(
            {
                "id": f"[concat(resourceId('Microsoft.OperationalInsights/workspaces/providers', parameters('workspace'), "
                f"'Microsoft.SecurityInsights'), '/alertRules/{rule_id}')]",
                "name": f"[concat(parameters('workspace'), '/Microsoft.SecurityInsights/{rule_id}')]",
                "type": "Microsoft.OperationalInsights/workspaces/providers/alertRules",
                "kind": "Scheduled",
                "apiVersion": "2023-12-01-preview",
                "properties": {
                    "displayName": analytic["name"],
                    "description": analytic["description"],
                    "severity": analytic["severity"],
                    "enabled": True,
                    # ARM reads a string that starts with '[' as an expression; '[[' escapes it.
                    "query": _arm_text(analytic["query"]),
                    "queryFrequency": iso_duration(schedule.query_frequency),
                    "queryPeriod": iso_duration(schedule.query_period),
                    "triggerOperator": "GreaterThan",
                    "triggerThreshold": 0,
                    "suppressionDuration": "PT5H",
                    "suppressionEnabled": False,
                    "tactics": analytic["tactics"],
                    "techniques": techniques,
                    "subTechniques": sub_techniques,
                    "entityMappings": analytic["entityMappings"],
                },
            }
        )
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"workspace": {"type": "String", "metadata": {"description": "Log Analytics workspace name"}}},
        "resources": resources,
    }


def arm_template_json(conversions: list[Conversion], schedule: Schedule) -> str:
    """Return the ARM template as indented JSON."""
    return json.dumps(arm_template(conversions, schedule), indent=2) + "\n"


def _arm_text(text: str) -> str:
    return "[" + text if text.startswith("[") else text
