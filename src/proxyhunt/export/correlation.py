"""Sigma correlation rules as KQL, SPL, Spark SQL and DuckDB SQL.

Spark SQL and DuckDB SQL use the local engine's own correlation SQL
(``proxyhunt.engines.correlation``), so they give exactly its findings.

KQL and SPL evaluate the same sliding windows, not fixed ``bin()`` buckets,
which would split a burst at a bucket boundary:

- KQL collects each group's events with ``make_list`` and, for every event,
  aggregates the events in [event time, event time + timespan], as the local
  engine does. Every window that meets the condition is a row, while the local
  engine merges overlapping windows into one finding.
- SPL uses ``streamstats time_window``, which aggregates the events in the
  span before each event. Any set of events at most a timespan apart lies in
  the window that ends at its latest event, so for ``gt`` and ``gte`` the same
  bursts are found. Other operators are rejected, and so are aggregates that
  can shrink when an event is added (avg, percentile).

The events a correlation counts are those of its rules that the rules' Sigma
filters leave as alerts, as in the local engine. ES|QL, ``temporal_ordered``
correlations, extended temporal conditions and correlations of correlations
are rejected with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationConditionOperator

from proxyhunt.engines.correlation import CompiledCorrelation, CorrelationQuery, RuleEvents
from proxyhunt.engines.dialects import Dialect, DuckDBDialect, SparkDialect
from proxyhunt.export.fields import ASIM_FIELDS, CIM_WEB_FIELDS, target_field
from proxyhunt.export.kql import ASIM_TABLE, derived_columns_needed, extend_clause, kql_string
from proxyhunt.export.spl import SPL_SOURCE, spl_field, spl_string
from proxyhunt.export.targets import QueryParts

_KQL_OPERATORS = {
    SigmaCorrelationConditionOperator.GT: ">",
    SigmaCorrelationConditionOperator.GTE: ">=",
    SigmaCorrelationConditionOperator.LT: "<",
    SigmaCorrelationConditionOperator.LTE: "<=",
    SigmaCorrelationConditionOperator.EQ: "==",
    SigmaCorrelationConditionOperator.NEQ: "!=",
}
_MONOTONE_OPERATORS = (SigmaCorrelationConditionOperator.GT, SigmaCorrelationConditionOperator.GTE)


class CorrelationExportError(ValueError):
    """A correlation rule that a target cannot express with the local engine's meaning."""


@dataclass(frozen=True)
class CorrelationSource:
    """One correlated rule as the target selects its events: the rule's condition and its filters' conditions."""

    rule_id: str
    parts: QueryParts


def sql_correlation(compiled: CompiledCorrelation, sources: list[CorrelationSource], dialect: Dialect, table: str) -> str:
    """Return the local engine's correlation query over ``table``, for DuckDB or Spark SQL."""
    events = []
    for source in sources:
        conditions = [source.parts.condition, *source.parts.filter_conditions]
        events.append(RuleEvents(table, " AND ".join(f"({condition})" for condition in conditions)))
    return CorrelationQuery(compiled, dialect, events).select()


def sql_dialect(target: str) -> Dialect:
    """Return the correlation SQL dialect of a SQL target."""
    return SparkDialect() if target == "sparksql" else DuckDBDialect()


def _condition(compiled: CompiledCorrelation) -> SigmaCorrelationCondition:
    condition = compiled.loaded.rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise CorrelationExportError(f"the extended condition '{condition.expression}' is not supported by this target")
    return condition


def _timespan(compiled: CompiledCorrelation) -> str:
    return f"{compiled.loaded.rule.timespan.seconds}s"


def kql_correlation(compiled: CompiledCorrelation, sources: list[CorrelationSource]) -> str:
    """Return a KQL query with one row per sliding window that meets the correlation's condition."""
    correlation_type = compiled.loaded.correlation_type
    if correlation_type not in ("event_count", "value_count", "value_sum", "value_avg", "temporal"):
        raise CorrelationExportError(f"{correlation_type} correlations cannot be expressed in KQL yet")
    condition = _condition(compiled)
    groups = [f"g{index}" for index in range(len(compiled.group_fields))]
    # A group-by field that every rule maps to the same column is named after it, for entity mappings.
    outputs = [
        f"{_asim(column)} = {group}" if (column := compiled.output_column(index)) else group
        for index, group in enumerate(groups)
    ]

    branches = []
    # The let lists and watchlists that the correlated rules' conditions refer to, each declared once.
    preamble: dict[str, None] = {}
    for correlation_input, source in zip(compiled.inputs, sources):
        preamble.update(dict.fromkeys(source.parts.preamble))
        lines = [source.parts.source or ASIM_TABLE]
        read = set(source.parts.columns) | set(correlation_input.group_columns) | set(correlation_input.value_columns)
        extend = extend_clause(derived_columns_needed(read))
        if extend:
            lines.append(extend)
        lines.append(f"| where {source.parts.condition}")
        lines.extend(f"| where {condition}" for condition in source.parts.filter_conditions)
        assignments = [f"{group} = tostring({_asim(column)})" for group, column in zip(groups, correlation_input.group_columns)]
        assignments.append(f"CorrelatedRule = {kql_string(source.rule_id)}")
        assignments.append(f"CorrelatedValue = {_kql_value(correlation_input.value_columns)}")
        lines.append("| extend " + ", ".join(assignments))
        branches.append("(" + "\n    ".join(lines) + ")")

    present = ["isnotnull(TimeGenerated)", *(f"isnotempty({group})" for group in groups)]
    by_clause = f" by {', '.join(groups)}" if groups else ""
    aggregate = {
        "event_count": "summarize Value = count()",
        "value_count": "where isnotempty(tostring(Event.v)) | summarize Values = make_set(tostring(Event.v)) "
        "| extend Value = array_length(Values) | project Value",
        "value_sum": "summarize Value = sum(todouble(Event.v))",
        "value_avg": "summarize Value = avg(todouble(Event.v))",
        "temporal": "summarize Rules = make_set(tostring(Event.r)) | extend Value = array_length(Rules) | project Value",
    }[correlation_type]
    return "\n".join(
        [
            *preamble,
            f"union\n    {(',' + chr(10) + '    ').join(branches)}",
            f"| where {' and '.join(present)}",
            f'| summarize Events = make_list(bag_pack("t", TimeGenerated, "v", CorrelatedValue, "r", CorrelatedRule))'
            f"{by_clause}",
            "| mv-expand Anchor = Events",
            f"| extend WindowStart = todatetime(Anchor.t), WindowEnd = todatetime(Anchor.t) + {_timespan(compiled)}",
            "| mv-apply Event = Events on (",
            f"    where todatetime(Event.t) between (WindowStart .. WindowEnd) | {aggregate}",
            "  )",
            f"| where Value {_KQL_OPERATORS[condition.op]} {condition.count}",
            f"| project {', '.join([*outputs, 'WindowStart', 'WindowEnd', 'Value'])}",
        ]
    )


def _asim(column: str) -> str:
    return target_field(ASIM_FIELDS, column, "KQL (ASIM WebSession)").name or column


def _kql_value(columns: tuple[str, ...]) -> str:
    if not columns:
        return '""'
    if len(columns) == 1:
        return f"tostring({_asim(columns[0])})"
    return f"tostring(pack_array({', '.join(_asim(column) for column in columns)}))"


def spl_correlation(compiled: CompiledCorrelation, sources: list[CorrelationSource]) -> str:
    """Return an SPL query with one row per event whose trailing window meets the correlation's condition."""
    correlation_type = compiled.loaded.correlation_type
    if correlation_type not in ("event_count", "value_count", "value_sum", "temporal"):
        raise CorrelationExportError(
            f"{correlation_type} correlations cannot be expressed in SPL with the local engine's sliding windows"
        )
    condition = _condition(compiled)
    if condition.op not in _MONOTONE_OPERATORS:
        raise CorrelationExportError(
            "SPL's streamstats windows end at each event, which finds the same bursts only for gt and gte conditions"
        )

    group_columns = []
    for index in range(len(compiled.group_fields)):
        column = compiled.output_column(index)
        if column is None:
            raise CorrelationExportError("in SPL every correlated rule must group by the same field")
        group_columns.append(_cim(column))
    value_columns = {correlation_input.value_columns for correlation_input in compiled.inputs}
    if len(value_columns) > 1:
        raise CorrelationExportError("in SPL every correlated rule must aggregate the same field")

    flags = [f"CorrelatedRule{index}" for index in range(len(sources))]
    lines = [SPL_SOURCE]
    for flag, source in zip(flags, sources):
        conditions = [source.parts.condition, *source.parts.filter_conditions]
        selection = " AND ".join(f"({condition})" for condition in conditions)
        lines.append(f"| eval {flag}=if({selection}, 1, 0)")
    lines.append(f"| where {' OR '.join(f'{flag}=1' for flag in flags)}")
    lines.extend(f"| where isnotnull({spl_field(column)})" for column in group_columns)

    by_clause = f" BY {' '.join(group_columns)}" if group_columns else ""
    # NOTE: not run against Splunk here; whether an event exactly one timespan
    # before another falls inside its time_window is unverified, while the local
    # engine includes both ends.
    window = f"time_window={_timespan(compiled)}"
    value = next(iter(value_columns))
    if correlation_type == "event_count":
        lines.append(f"| eval CorrelatedHits={' + '.join(flags)}")
        lines.append(f"| sort 0 _time\n| streamstats {window} sum(CorrelatedHits) AS Value{by_clause}")
    elif correlation_type in ("value_count", "value_sum"):
        if len(value) != 1:
            raise CorrelationExportError("in SPL a value correlation aggregates one field")
        function = "dc" if correlation_type == "value_count" else "sum"
        field = _cim(value[0])
        lines.append(f"| sort 0 _time\n| streamstats {window} {function}({field}) AS Value{by_clause}")
    else:
        seen = " ".join(f"max({flag}) AS Seen{flag}" for flag in flags)
        lines.append(f"| sort 0 _time\n| streamstats {window} {seen}{by_clause}")
        lines.append(f"| eval Value={' + '.join(f'Seen{flag}' for flag in flags)}")
    lines.append(f"| where Value {_KQL_OPERATORS[condition.op]} {condition.count}")
    lines.append(f"| eval CorrelationRule={spl_string(compiled.loaded.title)}")
    return "\n".join(lines)


def _cim(column: str) -> str:
    field = target_field(CIM_WEB_FIELDS, column, "SPL (CIM Web)")
    if field.derived:
        raise CorrelationExportError(f"SPL correlations cannot group or aggregate the derived field {column}")
    return field.name or column
