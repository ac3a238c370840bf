"""Sigma filters applied to the findings table: a finding a filter rejects is marked suppressed, never dropped.

The Sigma filters specification (2.1.0) adds a filter's condition to each rule
it names: pySigma 1.5.1 rewrites the rule's condition to
``(rule condition) and (filter condition)``. A finding is a row that meets the
rule's condition, so it survives exactly when every filter that applies to its
rule also meets its condition on that row. A finding that fails a filter gets
``Verdict`` "suppressed" and an entry in ``Suppressions`` with the filter and
the values of the fields the filter tests.

A filter applies to a rule when the filter names it (by id or ``name``), or
lists ``rules: any``, and the rule's log source lies within the filter's: every
category, product and service the filter sets, the rule sets to the same value.
Filters never apply to correlation rules, as in pySigma.

Filter fields resolve to WebSession columns through the Sigma proxy field
mapping, and any other name to a findings column of that name compared
case-insensitively, so filters can test the Process* columns that process
correlation adds. Sysmon's names (CommandLine, Image …) stand for those
Process* columns.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace

import duckdb
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaDetections, SigmaLogSource, SigmaRule

from proxyhunt.backends.duckdb import DuckDBBackend
from proxyhunt.backends.pipeline import column_for_rule_field
from proxyhunt.engines.duckdb import (
    FINDINGS_TABLE,
    SUPPRESSION_TYPE,
    VERDICT_SUPPRESSED,
    CompiledRule,
    rule_identity_condition,
)
from proxyhunt.formats.sql import quote_identifier, quote_literal
from proxyhunt.rules.loader import LoadedCorrelation, LoadedFilter, LoadedRule, RuleProblem, RuleSet
from proxyhunt.schema import COLUMN_NAMES, KEYWORD_COLUMN

log = logging.getLogger(__name__)

# Sysmon (Event ID 1) field names, lower-cased, and the findings columns that process correlation fills from them.
SYSMON_PROCESS_FIELDS: dict[str, str] = {
    "processid": "ProcessId",
    "commandline": "ProcessCommandLine",
    "image": "ProcessImage",
    "originalfilename": "ProcessOriginalFileName",
    "user": "ProcessUser",
    "parentimage": "ProcessParentImage",
}


# The columns that process correlation adds to the findings table.
PROCESS_COLUMNS: tuple[str, ...] = (
    "ProcessId",
    "ProcessCommandLine",
    "ProcessImage",
    "ProcessOriginalFileName",
    "ProcessUser",
    "ProcessHostname",
    "ProcessStartTime",
    "ProcessParentImage",
    "ProcessSourceFile",
    "ProcessSourceLine",
    "ProcessMatch",
    "RcloneSubcommand",
    "RcloneSource",
    "RcloneDestination",
    "RcloneDestinationRemote",
    "RcloneDestinationBucket",
    "RcloneConfig",
    "RcloneUserAgent",
    "RcloneFlags",
)


@dataclass(frozen=True)
class CompiledFilter:
    """A filter with the rules it applies to and its SQL condition, or the reason it cannot run.

    ``problems`` lists references that name no usable rule. A filter that
    still applies to other rules runs; one that applies to none has ``error``.
    """

    loaded: LoadedFilter
    targets: tuple[LoadedRule, ...] = ()
    where: str | None = None
    columns: tuple[str, ...] = ()
    error: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def runnable(self) -> bool:
        return self.error is None and self.where is not None


def resolve_findings_column(field_name: str, logsource: SigmaLogSource, findings_columns: dict[str, str]) -> str | None:
    """Return the findings column that a filter field tests, or None.

    ``findings_columns`` maps lower-cased column names to the names as spelled.
    """
    column = column_for_rule_field(logsource, field_name)
    if column:
        return column
    lowered = field_name.lower()
    if lowered in findings_columns:
        return findings_columns[lowered]
    process_column = SYSMON_PROCESS_FIELDS.get(lowered)
    if process_column and process_column.lower() in findings_columns:
        return findings_columns[process_column.lower()]
    return None


class FindingsBackend(DuckDBBackend):
    """The DuckDB backend over the findings table: WebSession columns plus the columns later steps add."""

    def __init__(self, logsource: SigmaLogSource, findings_columns: list[str]) -> None:
        super().__init__()
        self.logsource = logsource
        self.findings_columns = {name.lower(): name for name in findings_columns}

    def escape_and_quote_field(self, field_name: str) -> str:
        if field_name in COLUMN_NAMES:
            return super().escape_and_quote_field(field_name)
        column = resolve_findings_column(field_name, self.logsource, self.findings_columns)
        if column is not None:
            return quote_identifier(column)
        raise SigmaFeatureNotSupportedByBackendError(_unknown_field_message(field_name))


def _unknown_field_message(field_name: str) -> str:
    process_column = SYSMON_PROCESS_FIELDS.get(field_name.lower())
    if process_column or field_name.lower().startswith(("process", "rclone")):
        column = process_column or field_name
        return (
            f"field '{field_name}' ({column}) is filled only by process correlation, "
            "and no process-creation events were correlated in this hunt"
        )
    return f"field '{field_name}' is not a Sigma proxy field, a WebSession column or a findings column"


def compile_filters(
    ruleset: RuleSet,
    compiled_rules: list[CompiledRule],
    findings_columns: list[str],
    empty_columns: frozenset[str] = frozenset(),
) -> list[CompiledFilter]:
    """Resolve each filter's rules and convert its condition to SQL over the findings table.

    ``empty_columns`` are findings columns that hold no value in this hunt,
    such as the Process* columns without process-creation logs. A filter that
    tests one still runs, with a problem saying that the column is empty.
    """
    runnable = {rule.loaded.key for rule in compiled_rules if rule.runnable}
    compiled = []
    for loaded in ruleset.filters:
        compiled_filter = _compile_filter(loaded, ruleset, runnable, findings_columns)
        empty = [column for column in compiled_filter.columns if column in empty_columns]
        if empty and compiled_filter.runnable:
            problem = (
                f"it tests {', '.join(empty)}, which no finding has a value for in this hunt; "
                "process columns need process-creation logs (--process-logs)"
            )
            compiled_filter = replace(compiled_filter, problems=(*compiled_filter.problems, problem))
        compiled.append(compiled_filter)
    return compiled


def empty_findings_columns(connection: duckdb.DuckDBPyConnection, columns: list[str]) -> frozenset[str]:
    """Return those of ``columns`` (present in findings) that no finding has a value for."""
    if not columns:
        return frozenset()
    counts = ", ".join(f"count({quote_identifier(column)})" for column in columns)
    row = connection.execute(f"SELECT {counts} FROM {FINDINGS_TABLE}").fetchone()
    return frozenset(column for column, count in zip(columns, row) if count == 0)


def _compile_filter(
    loaded: LoadedFilter, ruleset: RuleSet, runnable: set[str], findings_columns: list[str]
) -> CompiledFilter:
    targets, problems = _resolve_targets(loaded, ruleset, runnable)
    if not targets:
        if loaded.applies_to_any:
            reason = f"no loaded rule has a log source within the filter's ({_describe(loaded.filter.logsource)})"
        else:
            reason = "; ".join(problems)
        return CompiledFilter(loaded, error=f"applies to no rule that runs: {reason}", problems=tuple(problems))

    detections = loaded.filter.filter
    rule = SigmaRule(
        title=loaded.title,
        logsource=loaded.filter.logsource,
        detection=SigmaDetections(copy.deepcopy(detections.detections), list(detections.condition)),
    )
    backend = FindingsBackend(loaded.filter.logsource, findings_columns)
    try:
        queries = backend.convert_rule(rule)
    except (SigmaError, NotImplementedError, ValueError, TypeError) as error:
        message = str(error).split(" (while converting rule")[0]
        return CompiledFilter(loaded, tuple(targets), error=f"cannot be converted: {message}", problems=tuple(problems))
    if not queries:
        return CompiledFilter(loaded, tuple(targets), error="cannot be converted: the condition selects nothing")

    where = " AND ".join(f"({query})" for query in queries)
    columns = _tested_columns(loaded, findings_columns)
    return CompiledFilter(loaded, tuple(targets), where, columns, problems=tuple(problems))


def _resolve_targets(loaded: LoadedFilter, ruleset: RuleSet, runnable: set[str]) -> tuple[list[LoadedRule], list[str]]:
    logsource = loaded.filter.logsource
    if loaded.applies_to_any:
        targets = [rule for rule in ruleset.rules if rule.key in runnable and rule.rule.logsource in logsource]
        return targets, []

    targets: list[LoadedRule] = []
    problems: list[str] = []
    for reference in loaded.references:
        target = ruleset.find_reference(reference)
        if target is None:
            problems.append(f"the rule '{reference}' it names is not loaded; add the file that defines it with --rules")
        elif isinstance(target, RuleProblem):
            problems.append(f"the rule '{reference}' ({target.title}) it names cannot run: {target.message}")
        elif isinstance(target, LoadedCorrelation):
            problems.append(
                f"'{reference}' ({target.title}) is a correlation rule, and filters apply only to detection rules"
            )
        elif target.rule.logsource not in logsource:
            problems.append(
                f"the rule '{reference}' ({target.title}) has log source {_describe(target.rule.logsource)}, "
                f"which is not within the filter's ({_describe(logsource)})"
            )
        elif target.key not in runnable:
            problems.append(f"the rule '{reference}' ({target.title}) it names cannot run")
        elif target not in targets:
            targets.append(target)
    return targets, problems


def _describe(logsource: SigmaLogSource) -> str:
    fields = (("category", logsource.category), ("product", logsource.product), ("service", logsource.service))
    return ", ".join(f"{key} {value}" for key, value in fields if value) or "none"


def _tested_columns(loaded: LoadedFilter, findings_columns: list[str]) -> tuple[str, ...]:
    """Return the findings columns that a filter's detections read, in the order they are written."""
    lookup = {name.lower(): name for name in findings_columns}
    columns: list[str] = []

    def visit(item: SigmaDetection | SigmaDetectionItem) -> None:
        if isinstance(item, SigmaDetection):
            for child in item.detection_items:
                visit(child)
            return
        column = KEYWORD_COLUMN if item.field is None else resolve_findings_column(item.field, loaded.filter.logsource, lookup)
        if column and column not in columns:
            columns.append(column)

    for detection in loaded.filter.filter.detections.values():
        visit(detection)
    return tuple(columns)


def apply_filters(connection: duckdb.DuckDBPyConnection, compiled: list[CompiledFilter]) -> dict[str, int]:
    """Mark the findings that each runnable filter rejects as suppressed; return suppressed findings per filter key.

    A finding that several filters reject lists each of them in ``Suppressions``.
    """
    counts: dict[str, int] = {}
    for compiled_filter in compiled:
        if not compiled_filter.runnable:
            continue
        loaded = compiled_filter.loaded
        targets = " OR ".join(
            f"({rule_identity_condition(rule.rule_id, rule.path, rule.title)})" for rule in compiled_filter.targets
        )
        values = ", ".join(f"{quote_literal(column)}, {quote_identifier(column)}" for column in compiled_filter.columns)
        entry = (
            f"struct_pack(filter_id := {quote_literal(loaded.filter_id)}, filter_title := {quote_literal(loaded.title)}, "
            f"filter_source := {quote_literal(loaded.path)}, \"values\" := json_object({values}))"
        )
        try:
            suppressed = connection.execute(
                f"UPDATE {FINDINGS_TABLE} SET Verdict = '{VERDICT_SUPPRESSED}', "
                f"Suppressions = list_append(coalesce(Suppressions, []::{SUPPRESSION_TYPE}[]), {entry}) "
                f"WHERE ({targets}) AND NOT ({compiled_filter.where})"
            ).fetchall()[0][0]
        except duckdb.Error as error:
            log.error("filter '%s' (%s) failed in DuckDB and was not applied: %s", loaded.title, loaded.path, error)
            continue
        counts[loaded.key] = suppressed
        log.debug("filter %s (%s): %d findings suppressed", loaded.title, loaded.path, suppressed)
    return counts
