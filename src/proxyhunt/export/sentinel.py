"""Microsoft Sentinel scheduled analytic rules: the YAML of the Azure-Sentinel repository and ARM templates.

Both carry the converted KQL with the Sigma rule's metadata: id, title,
description, level as severity, and ATT&CK tags as tactics and techniques.
Entities map to ASIM WebSession columns: IP to SrcIpAddr, Account to
SrcUsername and Host to SrcHostname, which all name the client, and URL to
Url, which names the destination.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    # convert.py reads the query period through this module, so the import is for annotations only.
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
_PERIOD = re.compile(r"(\d+)([mhd])", re.ASCII)

ENTITY_MAPPINGS = [
    {"entityType": "IP", "fieldMappings": [{"identifier": "Address", "columnName": "SrcIpAddr"}]},
    {"entityType": "Account", "fieldMappings": [{"identifier": "Name", "columnName": "SrcUsername"}]},
    {"entityType": "URL", "fieldMappings": [{"identifier": "Url", "columnName": "Url"}]},
    # The Host entity is the client machine, so an incident links to the device to investigate.
    {"entityType": "Host", "fieldMappings": [{"identifier": "HostName", "columnName": "SrcHostname"}]},
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


# Sentinel's limits for scheduled analytic rules: the query frequency and the
# query period are each between 5 minutes and 14 days, and the period is at
# least the frequency, so that no event falls between two runs.
MIN_SCHEDULE_SECONDS = 5 * 60
MAX_SCHEDULE_SECONDS = 14 * 86400
# NOTE: taken from the Azure-Sentinel analytic rule validation notes, not from a
# Microsoft reference page: a query period of 2 days or more needs a frequency of at least 1 hour.
LONG_PERIOD_SECONDS = 2 * 86400
LONG_PERIOD_MIN_FREQUENCY_SECONDS = 3600


@dataclass(frozen=True)
class Schedule:
    """How often the analytic rule runs and how far back each run looks, as KQL timespans (``1h``, ``30m``, ``1d``).

    A ``query_period`` of None gives each rule the period it needs: the query
    frequency, plus the correlation's timespan for a correlation rule.
    Raises AnalyticRuleError for a timespan that is invalid or outside Sentinel's
    limits of 5 minutes to 14 days, for a query period shorter than the query
    frequency, and for a frequency under 1 hour with a period of 2 days or more.
    """

    query_frequency: str = "1h"
    query_period: str | None = None

    def __post_init__(self) -> None:
        options = [("--query-frequency", self.query_frequency)]
        if self.query_period is not None:
            options.append(("--query-period", self.query_period))
        for option, value in options:
            seconds = period_seconds(value, option)
            if not MIN_SCHEDULE_SECONDS <= seconds <= MAX_SCHEDULE_SECONDS:
                raise AnalyticRuleError(
                    f"{option} {value} is outside Sentinel's limits for scheduled rules; give a value from 5m to 14d"
                )
        if self.query_period is None:
            return

        frequency = period_seconds(self.query_frequency)
        period = period_seconds(self.query_period)
        if period < frequency:
            raise AnalyticRuleError(
                f"--query-period {self.query_period} is shorter than --query-frequency {self.query_frequency}, "
                "so events between two runs would never be read; give a query period of at least the frequency"
            )
        if period >= LONG_PERIOD_SECONDS and frequency < LONG_PERIOD_MIN_FREQUENCY_SECONDS:
            raise AnalyticRuleError(
                f"Sentinel requires a query frequency of at least 1h when the query period is 2d or more; "
                f"raise --query-frequency {self.query_frequency} or lower --query-period {self.query_period}"
            )

    def period_for(self, conversion: Conversion) -> str:
        """Return the query period of one rule's analytic rule.

        A window that starts just before the previous run must still be read
        whole, so a correlation needs the query frequency plus its timespan.
        Raises AnalyticRuleError when an explicit ``--query-period`` is shorter
        than that, or when the derived period is over Sentinel's limits.
        """
        timespan = correlation_timespan(conversion)
        frequency = period_seconds(self.query_frequency)
        # A window this long needs a period of 2 days or more, so a frequency of at least 1 hour.
        longest_window = MAX_SCHEDULE_SECONDS - LONG_PERIOD_MIN_FREQUENCY_SECONDS
        if timespan and timespan > longest_window:
            # No query frequency can help here: the window alone does not fit in a query period.
            raise AnalyticRuleError(
                f"correlation window of {kql_timespan(timespan)} ({timespan} seconds) is over Sentinel's limit: "
                "a query period of at most 14d must hold the whole window plus the query frequency, which must be "
                f"at least 1h for such a period, so the window may be at most {kql_timespan(longest_window)}; "
                "shorten the correlation's timespan (in the rule or its lists value), or hunt over this window "
                "with 'proxyhunt hunt'"
            )

        if self.query_period is not None:
            if timespan and timespan + frequency > period_seconds(self.query_period):
                raise AnalyticRuleError(
                    f"correlation spans {timespan} seconds, so each run must read --query-frequency "
                    f"{self.query_frequency} plus that timespan, more than --query-period {self.query_period}; "
                    f"raise --query-period to {kql_timespan(timespan + frequency)} or more, or leave it out"
                )
            return self.query_period

        period = kql_timespan(frequency + (timespan or 0))
        if period_seconds(period) > MAX_SCHEDULE_SECONDS:
            raise AnalyticRuleError(
                f"correlation spans {timespan} seconds, so with --query-frequency {self.query_frequency} each run "
                f"must read {period}, over Sentinel's limit of 14d for the query period; lower --query-frequency "
                f"to {kql_timespan(MAX_SCHEDULE_SECONDS - timespan)} or less"
            )
        if period_seconds(period) >= LONG_PERIOD_SECONDS and frequency < LONG_PERIOD_MIN_FREQUENCY_SECONDS:
            raise AnalyticRuleError(
                f"correlation spans {timespan} seconds, so each run must read {period}, and Sentinel requires a "
                f"query frequency of at least 1h for a query period of 2d or more; raise --query-frequency "
                f"{self.query_frequency} to 1h or more"
            )
        return period


def correlation_timespan(conversion: Conversion) -> int | None:
    """Return the timespan of a correlation rule in seconds, or None for a detection rule."""
    rule = conversion.loaded.rule if conversion.loaded else None
    return getattr(getattr(rule, "timespan", None), "seconds", None)


def kql_timespan(seconds: int) -> str:
    """Return a duration as the shortest KQL timespan (``90m``, ``2h``, ``1d``), rounded up to a whole minute."""
    minutes = -(-seconds // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def period_seconds(period: str, option: str = "--query-period") -> int:
    """Return a KQL timespan such as ``1h`` in seconds; raise AnalyticRuleError naming ``option`` for invalid text."""
    match = _PERIOD.fullmatch(period)
    if not match:
        raise AnalyticRuleError(f"invalid {option} '{period}'; give a number and m, h or d, such as 1h")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def iso_duration(period: str) -> str:
    """Return a KQL timespan such as ``1h`` as an ISO 8601 duration such as ``PT1H``."""
    match = _PERIOD.fullmatch(period)
    if not match:
        raise AnalyticRuleError(f"invalid period '{period}'; give a number and m, h or d, such as 1h")
    number, unit = match.groups()
    return f"P{number}D" if unit == "d" else f"PT{number}{unit.upper()}"


def _attack(conversion: Conversion) -> tuple[list[str], list[str]]:
    tags = conversion.loaded.tags if conversion.loaded else []
    # Dictionaries keep the first spelling's order and drop repeats, such as
    # attack.command-and-control next to attack.command_and_control.
    tactics: dict[str, None] = {}
    techniques: dict[str, None] = {}
    for tag in tags:
        namespace, _, name = str(tag).lower().partition(".")
        if namespace != "attack":
            continue
        tactic = name.replace("-", "_")
        if tactic in _TACTICS:
            tactics[_TACTICS[tactic]] = None
        elif _TECHNIQUE.match(name):
            techniques[name.upper()] = None
    return list(tactics), list(techniques)


def _rule_id(conversion: Conversion) -> str:
    # A rule without an id gets a stable one derived from its title.
    return conversion.rule_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"proxyhunt:{conversion.rule_title}"))


def analytic_rule(conversion: Conversion, schedule: Schedule) -> dict:
    """Return the scheduled analytic rule, in the Azure-Sentinel repository's YAML layout, as a mapping."""
    if not conversion.ok:
        raise AnalyticRuleError(f"rule '{conversion.rule_title}' has no query: {conversion.error}")
    rule = conversion.loaded.rule if conversion.loaded else None
    query_period = schedule.period_for(conversion)
    tactics, techniques = _attack(conversion)
    return {
        "id": _rule_id(conversion),
        "name": conversion.rule_title,
        "description": (rule.description if rule and rule.description else conversion.rule_title).strip(),
        "severity": _SEVERITIES.get(conversion.loaded.level if conversion.loaded else "", "Medium"),
        # NOTE: ASIM rules run on every source with a WebSession parser, so no connector is required.
        "requiredDataConnectors": [],
        "queryFrequency": schedule.query_frequency,
        "queryPeriod": query_period,
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
                    # ARM reads a string that starts with '[' as an expression, so rule text is escaped like the query.
                    "displayName": _arm_text(analytic["name"]),
                    "description": _arm_text(analytic["description"]),
                    "severity": analytic["severity"],
                    "enabled": True,
                    # ARM reads a string that starts with '[' as an expression; '[[' escapes it.
                    "query": _arm_text(analytic["query"]),
                    "queryFrequency": iso_duration(schedule.query_frequency),
                    "queryPeriod": iso_duration(analytic["queryPeriod"]),
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
    """Return text as an ARM template string literal: a leading '[' is doubled, which ARM reads as a literal '['."""
    return "[" + text if text.startswith("[") else text
