"""Sigma correlation rules as SQL over the events of the rules they correlate, for DuckDB and Spark SQL.

Window semantics. A correlation is evaluated over sliding windows anchored at
each event. For an event at time t, the window contains the events of the same
group (equal values of every group-by field) whose time lies in
[t, t + timespan], both ends included. A temporal_ordered window is anchored
at each event of the first rule. Any set of events at most ``timespan`` apart
lies in the window anchored at its earliest event, so ``gt`` and ``gte``
conditions find every burst that fixed time buckets would split at a bucket
boundary. For ``lt``, ``lte``, ``eq`` and ``neq`` the same windows are
evaluated, so a window anchored late in a burst counts only the burst's tail.

Overlapping windows that meet the condition form one episode, and each
episode gives one finding: the window with the highest value (the lowest for
``lt`` and ``lte``, the earliest for ``eq`` and ``neq``).

Aggregates, per window: event_count counts events; value_count counts
distinct non-NULL values of the condition's field (of the tuple of fields
when it lists several); value_sum, value_avg, value_percentile and
value_median aggregate the field as a number. temporal counts the rules that
have at least one event in the window; temporal_ordered counts how many of
its rules occur in the order written, each at or after the one before (equal
times count as in order). An extended temporal condition such as
``rule_a and not rule_b`` tests which rules occur in the window.

Events whose time is unknown, or that carry no value for a group-by field, are
left out, because they cannot be placed in a window or a group.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)

from proxyhunt.backends.pipeline import column_for_rule_field
from proxyhunt.engines.dialects import Dialect
from proxyhunt.rules.loader import LoadedCorrelation, LoadedRule, RuleProblem, RuleSet
from proxyhunt.schema import COLUMN_TYPES

# At most this many events are listed in a finding's Events, and this many hosts
# in its Destinations; Value, SrcBytes and DstBytes still count every event.
MAX_LISTED_EVENTS = 1000
MAX_LISTED_DESTINATIONS = 1000

_OPERATORS = {
    SigmaCorrelationConditionOperator.GT: ">",
    SigmaCorrelationConditionOperator.GTE: ">=",
    SigmaCorrelationConditionOperator.LT: "<",
    SigmaCorrelationConditionOperator.LTE: "<=",
    SigmaCorrelationConditionOperator.EQ: "=",
    SigmaCorrelationConditionOperator.NEQ: "<>",
}
_NUMERIC_TYPES = frozenset({"INTEGER", "BIGINT", "DOUBLE"})
_VALUE_TYPES = ("value_count", "value_sum", "value_avg", "value_percentile", "value_median")
_NUMBER_TYPES = ("value_sum", "value_avg", "value_percentile", "value_median")


@dataclass(frozen=True)
class CorrelationInput:
    """One rule that a correlation correlates, with the WebSession columns of its group-by and value fields."""

    reference: str
    rule: LoadedRule
    group_columns: tuple[str, ...]
    value_columns: tuple[str, ...] = ()

    @property
    def event_rule_id(self) -> str:
        """The RuleId that names this rule's events in a finding: its id, else the reference as written."""
        return self.rule.rule_id or self.reference


@dataclass(frozen=True)
class CompiledCorrelation:
    """A correlation rule with its resolved inputs, or the reason it cannot run."""

    loaded: LoadedCorrelation
    inputs: tuple[CorrelationInput, ...] = ()
    error: str | None = None

    @property
    def runnable(self) -> bool:
        return self.error is None

    @property
    def group_fields(self) -> tuple[str, ...]:
        return tuple(self.loaded.rule.group_by or ())

    @property
    def timespan_micros(self) -> int:
        return self.loaded.rule.timespan.seconds * 1_000_000

    def output_column(self, index: int) -> str | None:
        """Return the WebSession column of group-by field ``index`` when every input maps it to the same one."""
        columns = {correlation_input.group_columns[index] for correlation_input in self.inputs}
        return columns.pop() if len(columns) == 1 else None


class CorrelationError(ValueError):
    """A correlation rule that cannot run, with the reason as its message."""


def compile_correlations(ruleset: RuleSet, runnable_rules: dict[str, str | None]) -> list[CompiledCorrelation]:
    """Resolve every correlation of ``ruleset`` against its rules; keep the reason for those that cannot run.

    ``runnable_rules`` maps each rule key to None when the rule runs, else to
    the reason it cannot.
    """
    compiled = []
    for loaded in ruleset.correlations:
        try:
            inputs = _resolve_inputs(loaded, ruleset, runnable_rules)
            _check_condition(loaded)
        except CorrelationError as error:
            compiled.append(CompiledCorrelation(loaded, error=str(error)))
            continue
        compiled.append(CompiledCorrelation(loaded, tuple(inputs)))
    return compiled


def _resolve_inputs(
    loaded: LoadedCorrelation, ruleset: RuleSet, runnable_rules: dict[str, str | None]
) -> list[CorrelationInput]:
    inputs = []
    for reference in loaded.references:
        target = ruleset.find_reference(reference)
        if target is None:
            raise CorrelationError(
                f"the rule '{reference}' that it correlates is not loaded; add the file that defines it with --rules"
            )
        if isinstance(target, RuleProblem):
            raise CorrelationError(f"the rule '{reference}' ({target.title}) that it correlates cannot run: {target.message}")
        if isinstance(target, LoadedCorrelation):
            # TODO: run chained correlations, feeding one correlation's findings to the next as events.
            raise CorrelationError(
                f"it correlates the correlation rule '{reference}' ({target.title}); "
                "correlations of correlations are not supported yet"
            )
        reason = runnable_rules.get(target.key)
        if reason:
            raise CorrelationError(f"the rule '{reference}' ({target.title}) that it correlates cannot run: {reason}")
        group_columns = tuple(_group_column(loaded, reference, target, name) for name in loaded.rule.group_by or ())
        inputs.append(CorrelationInput(reference, target, group_columns, _value_columns(loaded, target)))
    return inputs


def _group_column(loaded: LoadedCorrelation, reference: str, rule: LoadedRule, name: str) -> str:
    """Return the column of one group-by field for one rule, through the correlation's aliases."""
    field_name = name
    alias = loaded.rule.aliases.aliases.get(name)
    if alias is not None:
        mapped = _alias_field(alias.mapping, reference, rule)
        if mapped is None:
            raise CorrelationError(f"the alias '{name}' does not say which field of rule '{reference}' it stands for")
        field_name = mapped
    column = column_for_rule_field(rule.rule.logsource, field_name)
    if column is None:
        raise CorrelationError(
            f"the group-by field '{field_name}' of rule '{reference}' is not a Sigma proxy field or WebSession column"
        )
    return column


def _alias_field(mapping: dict[SigmaRuleReference, str], reference: str, rule: LoadedRule) -> str | None:
    for alias_reference, field_name in mapping.items():
        if alias_reference.reference in (reference, rule.rule_id, rule.name):
            return field_name
    return None


def _value_columns(loaded: LoadedCorrelation, rule: LoadedRule) -> tuple[str, ...]:
    correlation_type = loaded.correlation_type
    condition = loaded.rule.condition
    if correlation_type not in _VALUE_TYPES or not isinstance(condition, SigmaCorrelationCondition):
        return ()
    names = condition.fieldref if isinstance(condition.fieldref, list) else [condition.fieldref]
    columns = []
    for name in names:
        column = column_for_rule_field(rule.rule.logsource, str(name))
        if column is None:
            raise CorrelationError(f"the condition field '{name}' is not a Sigma proxy field or WebSession column")
        if correlation_type in _NUMBER_TYPES and COLUMN_TYPES[column] not in _NUMERIC_TYPES:
            raise CorrelationError(
                f"{correlation_type} needs a number field, and '{name}' ({column}) is text; "
                "use a field such as cs-bytes, sc-bytes or sc-status"
            )
        columns.append(column)
    if correlation_type in _NUMBER_TYPES and len(columns) != 1:
        raise CorrelationError(f"{correlation_type} aggregates one field, and the condition names {len(columns)}")
    return tuple(columns)


def _check_condition(loaded: LoadedCorrelation) -> None:
    condition = loaded.rule.condition
    correlation_type = loaded.correlation_type
    if isinstance(condition, SigmaExtendedCorrelationCondition):
        if correlation_type != "temporal":
            raise CorrelationError(
                f"an extended condition ('{condition.expression}') is supported for temporal correlations only"
            )
        return
    if correlation_type == "value_percentile" and condition.percentile is None:
        raise CorrelationError("value_percentile needs 'percentile' in its condition, such as percentile: 95")
    if condition.percentile is not None and not 0 <= condition.percentile <= 100:
        raise CorrelationError(f"percentile {condition.percentile} is not between 0 and 100")


# SQL generation


@dataclass(frozen=True)
class RuleEvents:
    """Where one input rule's events are: a relation with WebSession columns and a condition selecting them."""

    relation: str
    condition: str


class CorrelationQuery:
    """The SQL of one correlation rule in one dialect.

    ``select()`` returns a query with one row per finding and the columns
    g0 … gN (group-by values in the order of ``group-by``), WindowStart,
    WindowEnd (UTC timestamps), Value, SrcBytes and DstBytes (sums over the
    finding's events, NULL when no event has a size), Destinations (the
    distinct DstHostname values, most bytes uploaded first) and Events (a
    list of structs with RuleId, SourceFile, SourceLine, DstHostname and
    SrcBytes). ``findings_select()`` wraps it into the columns of the
    findings table.
    """

    def __init__(self, compiled: CompiledCorrelation, dialect: Dialect, sources: list[RuleEvents]) -> None:
        if not compiled.runnable:
            raise ValueError(f"correlation '{compiled.loaded.title}' cannot run: {compiled.error}")
        self.compiled = compiled
        self.dialect = dialect
        self.sources = sources
        self.groups = [f"g{index}" for index in range(len(compiled.group_fields))]
        self.span = compiled.timespan_micros

    @property
    def condition(self) -> SigmaCorrelationCondition | SigmaExtendedCorrelationCondition:
        return self.compiled.loaded.rule.condition

    @property
    def correlation_type(self) -> str:
        return self.compiled.loaded.correlation_type

    def select(self) -> str:
        ctes = [f"events AS ({self._events()})", f"kept AS ({self._kept()})"]
        if self.correlation_type == "temporal_ordered":
            ctes += self._ordered_steps()
        else:
            ctes.append(f"windows AS ({self._windows()})")
        ctes += [
            f"matched AS ({self._matched()})",
            f"islands AS ({self._islands()})",
            f"numbered AS ({self._numbered()})",
            f"chosen AS ({self._chosen()})",
            f"members AS ({self._members()})",
            f"hosts AS ({self._hosts()})",
            f"destinations AS ({self._destinations()})",
        ]
        return "WITH " + ",\n".join(ctes) + "\n" + self._final()

    def findings_select(self) -> str:
        """Return the correlation's findings with the findings table's column names (missing ones stay NULL)."""
        dialect = self.dialect
        loaded = self.compiled.loaded
        group_pairs = [(name, group) for name, group in zip(self.compiled.group_fields, self.groups)]
        columns = [
            f"{dialect.literal(loaded.rule_id)} AS RuleId",
            f"{dialect.literal(loaded.title)} AS RuleTitle",
            f"{dialect.literal(loaded.level)} AS RuleLevel",
            f"{dialect.string_list(loaded.tags)} AS RuleTags",
            f"{dialect.literal(loaded.path)} AS RuleSource",
            "'correlation' AS RuleType",
            "'alert' AS Verdict",
            f"{dialect.literal(loaded.correlation_type)} AS CorrelationType",
            f"{dialect.json_object(group_pairs) if group_pairs else 'NULL'} AS GroupBy",
            "WindowStart",
            "WindowEnd",
            "Value",
            "SrcBytes",
            "DstBytes",
            "Destinations",
            "Events",
        ]
        for index, group in enumerate(self.groups):
            column = self.compiled.output_column(index)
            if column:
                columns.append(f"{group} AS {dialect.identifier(column)}")
        return f"SELECT {', '.join(columns)} FROM ({self.select()}) correlation_findings"

    # The steps, in the order of select()

    def _events(self) -> str:
        dialect = self.dialect
        parts = []
        for index, (correlation_input, source) in enumerate(zip(self.compiled.inputs, self.sources)):
            groups = [
                f"{self._group_expression(position, column)} AS {name}"
                for position, (column, name) in enumerate(zip(correlation_input.group_columns, self.groups))
            ]
            columns = [
                f"{index} AS rule_index",
                f"{dialect.literal(correlation_input.event_rule_id)} AS rule_id",
                f"{dialect.epoch_micros(dialect.identifier('TimeGenerated'))} AS event_us",
                f"{dialect.identifier('SourceFile')} AS source_file",
                f"{dialect.identifier('SourceLine')} AS source_line",
                f"{dialect.identifier('DstHostname')} AS dst_hostname",
                f"{dialect.identifier('SrcBytes')} AS src_bytes",
                f"{dialect.identifier('DstBytes')} AS dst_bytes",
                *groups,
                f"{self._value_expression(correlation_input)} AS event_value",
            ]
            parts.append(f"SELECT {', '.join(columns)} FROM {source.relation} WHERE {source.condition}")
        return "\nUNION ALL\n".join(parts)

    def _group_expression(self, position: int, column: str) -> str:
        # Group keys compare across rules, so a field that maps to columns of
        # different types is compared as text.
        types = {COLUMN_TYPES[correlation_input.group_columns[position]] for correlation_input in self.compiled.inputs}
        quoted = self.dialect.identifier(column)
        return quoted if len(types) == 1 else self.dialect.to_text(quoted)

    def _value_expression(self, correlation_input: CorrelationInput) -> str:
        columns = [self.dialect.identifier(column) for column in correlation_input.value_columns]
        if not columns:
            return "NULL"
        if self.correlation_type == "value_count":
            if len(columns) == 1:
                return self.dialect.to_text(columns[0])
            return self.dialect.tuple_value([self.dialect.to_text(column) for column in columns])
        return self.dialect.to_double(columns[0])

    def _kept(self) -> str:
        conditions = ["event_us IS NOT NULL", *(f"{group} IS NOT NULL" for group in self.groups)]
        return f"SELECT * FROM events WHERE {' AND '.join(conditions)}"

    def _partition(self) -> str:
        return f"PARTITION BY {', '.join(self.groups)} " if self.groups else ""

    def _windows(self) -> str:
        window = f"({self._partition()}ORDER BY event_us RANGE BETWEEN CURRENT ROW AND {self.span} FOLLOWING)"
        group_columns = "".join(f"{group}, " for group in self.groups)
        anchored = f"{group_columns}event_us AS window_start_us, event_us + {self.span} AS window_end_us"
        if self.correlation_type != "temporal":
            return f"SELECT DISTINCT {anchored}, {self._aggregate(window)} AS value FROM kept"

        # temporal: one flag per rule, set when the rule has an event in the window.
        indexes = range(len(self.compiled.inputs))
        flags = ", ".join(f"max(CASE WHEN rule_index = {index} THEN 1 ELSE 0 END) OVER {window} AS seen{index}" for index in indexes)
        seen = ", ".join(f"seen{index}" for index in indexes)
        total = " + ".join(f"seen{index}" for index in indexes)
        return (
            f"SELECT DISTINCT {group_columns}window_start_us, window_end_us, {seen}, CAST({total} AS DOUBLE) AS value "
            f"FROM (SELECT {anchored}, {flags} FROM kept) flagged"
        )

    def _aggregate(self, window: str) -> str:
        """Return the expression of a window's value for the counting and value types."""
        correlation_type = self.correlation_type
        if correlation_type == "event_count":
            return f"CAST(count(*) OVER {window} AS DOUBLE)"
        if correlation_type == "value_count":
            return f"CAST({self.dialect.distinct_count('event_value', window)} AS DOUBLE)"
        if correlation_type == "value_sum":
            return f"sum(event_value) OVER {window}"
        if correlation_type == "value_avg":
            return f"avg(event_value) OVER {window}"
        percentile = 50 if correlation_type == "value_median" else self.condition.percentile
        return self.dialect.percentile("event_value", percentile / 100, window)

    def _ordered_steps(self) -> list[str]:
        """Return CTEs that find, for each anchor, the earliest event of each next rule in order."""
        groups = self.groups
        same_group = "".join(f" AND e.{group} = s.{group}" for group in groups)
        group_columns = "".join(f"{group}, " for group in groups)
        steps = [f"step0 AS (SELECT DISTINCT {group_columns}event_us AS t0 FROM kept WHERE rule_index = 0)"]
        for index in range(1, len(self.compiled.inputs)):
            previous = ", ".join([*(f"s.{group}" for group in groups), *(f"s.t{step}" for step in range(index))])
            steps.append(
                f"step{index} AS (SELECT {previous}, min(e.event_us) AS t{index} FROM step{index - 1} s "
                f"LEFT JOIN kept e ON e.rule_index = {index}{same_group} "
                f"AND e.event_us >= s.t{index - 1} AND e.event_us <= s.t0 + {self.span} "
                f"GROUP BY {previous})"
            )
        last = len(self.compiled.inputs) - 1
        seen = " + ".join(["1", *(f"CASE WHEN t{step} IS NOT NULL THEN 1 ELSE 0 END" for step in range(1, last + 1))])
        times = "".join(f", t{step}" for step in range(last + 1))
        steps.append(
            f"windows AS (SELECT {group_columns}t0 AS window_start_us, t0 + {self.span} AS window_end_us, "
            f"CAST({seen} AS DOUBLE) AS value{times} FROM step{last})"
        )
        return steps

    def _condition_sql(self) -> str:
        condition = self.condition
        if isinstance(condition, SigmaExtendedCorrelationCondition):
            return self._extended_condition(condition.parsed)
        return f"value {_OPERATORS[condition.op]} {condition.count}"

    def _extended_condition(self, node: object) -> str:
        if isinstance(node, SigmaRuleReference):
            references = [correlation_input.reference for correlation_input in self.compiled.inputs]
            return f"seen{references.index(node.reference)} = 1"
        if isinstance(node, CorrelationConditionNOT):
            return f"NOT ({self._extended_condition(node.args[0])})"
        joiner = " AND " if isinstance(node, CorrelationConditionAND) else " OR "
        assert isinstance(node, (CorrelationConditionAND, CorrelationConditionOR))
        return "(" + joiner.join(self._extended_condition(argument) for argument in node.args) + ")"

    def _matched(self) -> str:
        return f"SELECT * FROM windows WHERE value IS NOT NULL AND {self._condition_sql()}"

    def _islands(self) -> str:
        # A window starts a new episode unless it overlaps a matching window before it.
        before = f"OVER ({self._partition()}ORDER BY window_start_us ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        return (
            f"SELECT *, CASE WHEN window_start_us <= max(window_end_us) {before} THEN 0 ELSE 1 END AS episode_start "
            "FROM matched"
        )

    def _numbered(self) -> str:
        running = f"OVER ({self._partition()}ORDER BY window_start_us ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        return f"SELECT *, sum(episode_start) {running} AS episode FROM islands"

    def _chosen(self) -> str:
        condition = self.condition
        order = "window_start_us"
        if isinstance(condition, SigmaCorrelationCondition):
            if condition.op in (SigmaCorrelationConditionOperator.GT, SigmaCorrelationConditionOperator.GTE):
                order = "value DESC, window_start_us"
            elif condition.op in (SigmaCorrelationConditionOperator.LT, SigmaCorrelationConditionOperator.LTE):
                order = "value, window_start_us"
        partition = ", ".join([*self.groups, "episode"])
        return (
            f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY {order}) AS episode_rank "
            "FROM numbered) ranked WHERE episode_rank = 1"
        )

    def _finding_key_names(self) -> list[str]:
        """Return the columns that name one finding: its group values and its window."""
        return [*self.groups, "window_start_us", "window_end_us", "value"]

    def _finding_keys(self, alias: str) -> list[str]:
        return [f"{alias}.{name}" for name in self._finding_key_names()]

    def _members(self) -> str:
        """Return each chosen window with each of its events, one row per event."""
        same_group = "".join(f" AND e.{group} = c.{group}" for group in self.groups)
        if self.correlation_type == "temporal_ordered":
            steps = " OR ".join(
                f"(e.rule_index = {index} AND e.event_us = c.t{index})" for index in range(len(self.compiled.inputs))
            )
            in_window = f"({steps})"
        else:
            in_window = "e.event_us >= c.window_start_us AND e.event_us <= c.window_end_us"
        keys = ", ".join(f"c.{name} AS {name}" for name in self._finding_key_names())
        return (
            f"SELECT {keys}, e.rule_id, e.event_us, e.source_file, e.source_line, e.dst_hostname, e.src_bytes, e.dst_bytes "
            f"FROM chosen c JOIN kept e ON {in_window}{same_group}"
        )

    def _hosts(self) -> str:
        """Return the bytes each finding uploaded to each of its destination hosts."""
        keys = ", ".join(self._finding_keys("m"))
        return (
            f"SELECT {keys}, m.dst_hostname, sum(m.src_bytes) AS host_bytes FROM members m "
            f"WHERE m.dst_hostname IS NOT NULL GROUP BY {keys}, m.dst_hostname"
        )

    def _destinations(self) -> str:
        """Return each finding's hosts, most bytes uploaded first; hosts of unknown size last, then by name."""
        keys = ", ".join(self._finding_keys("h"))
        # Both engines sort ascending by every key, so the bytes are negated; NULL maps to 1, after every size.
        hosts = self.dialect.ordered_values(
            "h.dst_hostname", ["-coalesce(h.host_bytes, -1)", "h.dst_hostname"], MAX_LISTED_DESTINATIONS
        )
        return f"SELECT {keys}, {hosts} AS destinations FROM hosts h GROUP BY {keys}"

    def _final(self) -> str:
        dialect = self.dialect
        events = dialect.ordered_list(
            [
                ("RuleId", "m.rule_id"),
                ("SourceFile", "m.source_file"),
                ("SourceLine", "m.source_line"),
                ("DstHostname", "m.dst_hostname"),
                ("SrcBytes", "m.src_bytes"),
            ],
            ["m.event_us", "m.source_file", "m.source_line", "m.rule_id"],
            MAX_LISTED_EVENTS,
        )
        keys = ", ".join(self._finding_keys("m"))
        joined = " AND ".join(f"d.{name} = m.{name}" for name in self._finding_key_names())
        group_columns = "".join(f"m.{group} AS {group}, " for group in self.groups)
        # A finding whose events all lack DstHostname has no destinations row, so the join is outer.
        return (
            f"SELECT {group_columns}"
            f"{dialect.timestamp_from_micros('m.window_start_us')} AS WindowStart, "
            f"{dialect.timestamp_from_micros('m.window_end_us')} AS WindowEnd, m.value AS Value, "
            f"CAST(sum(m.src_bytes) AS BIGINT) AS SrcBytes, CAST(sum(m.dst_bytes) AS BIGINT) AS DstBytes, "
            f"coalesce(first(d.destinations), {dialect.typed_empty_list(dialect.text_type)}) AS Destinations, "
            f"{events} AS Events "
            f"FROM members m LEFT JOIN destinations d ON {joined} "
            f"GROUP BY {keys} ORDER BY m.window_start_us"
        )
