"""Convert Sigma rules and the Sigma filters that name them into SIEM and SQL queries.

``convert`` loads rules as ``proxyhunt hunt`` does, with the same field
mapping and placeholder lists, and returns one ``Conversion`` per rule: the
query, or the reason the target cannot express the rule. A rule is never
converted to a weaker query than the one the local engine runs.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from typing import Literal

from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.placeholder import QueryExpressionPlaceholderTransformation
from sigma.rule import SigmaDetections, SigmaRule
from sigma.types import Placeholder, SigmaString

from proxyhunt.engines.correlation import compile_correlations
from proxyhunt.engines.duckdb import rule_columns
from proxyhunt.export.asim import blind_sources, parser_call
from proxyhunt.export.correlation import (
    CorrelationExportError,
    CorrelationSource,
    kql_correlation,
    spl_correlation,
    sql_correlation,
    sql_dialect,
)
from proxyhunt.export.kql import kql_string
from proxyhunt.export.sentinel import AnalyticRuleError, kql_timespan, period_seconds
from proxyhunt.export.targets import TARGETS, KQLTarget, QueryParts, Target
from proxyhunt.export.values import MatchKind, anchored_regex, classify
from proxyhunt.rules.loader import KIND_RULE, LoadedCorrelation, LoadedFilter, LoadedRule, RuleProblem, RuleSet, load_rules
from proxyhunt.rules.placeholders import PlaceholderLists, lists_in_force, placeholder_pipeline
from proxyhunt.tuning.exclusions import UnknownExclusionError, resolve_exclusions

PlaceholderMode = Literal["expand", "let", "watchlist"]
DEFAULT_QUERY_FREQUENCY = "1h"

# A table name, optionally qualified by a schema and a catalog (lake.websession),
# of unquoted identifiers, which DuckDB and Spark SQL read alike.
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
# One Elasticsearch index pattern: an optional remote cluster, then lower-case
# letters, digits, '.', '_', '-', '+' and '*', not starting with '-', '_' or '+'.
# A comma separates several patterns.
_INDEX_PATTERN = re.compile(r"^([a-z0-9_*-]+:)?[a-z0-9.*][a-z0-9._*+-]*$")
# A KQL identifier for the let list or watchlist variable of a %placeholder%.
_KQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Conversion:
    """One rule converted for one target: the query, or the error that stopped it.

    ``filters`` names the Sigma filters whose conditions the query contains,
    and ``notes`` the data sources on which the query can never match.
    ``entity_columns`` are the WebSession columns that each result row carries,
    for entity mappings; None means all of them.
    """

    target: str
    rule_title: str
    rule_id: str
    rule_path: str
    rule_type: str
    query: str | None = None
    error: str | None = None
    filters: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    entity_columns: frozenset[str] | None = None
    loaded: LoadedRule | LoadedCorrelation | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.query is not None


class ConvertError(ValueError):
    """A conversion request that cannot run at all: an unknown target or an unusable lists file."""


def convert(
    rule_paths: list[str],
    target: str,
    include_bundled: bool = True,
    lists_path: str | None = None,
    placeholders: PlaceholderMode = "expand",
    asim_parameters: bool = False,
    query_period: str | None = None,
    query_frequency: str = DEFAULT_QUERY_FREQUENCY,
    index: str | None = None,
    table: str | None = None,
    exclusions: list[str] | None = None,
) -> tuple[list[Conversion], RuleSet]:
    """Convert the bundled rules (unless ``include_bundled`` is False) and those under ``rule_paths``.

    Returns one Conversion per detection and correlation rule, and the RuleSet
    with the files that could not be loaded. ``placeholders`` chooses how
    ``%name%`` placeholders become values: expanded from the lists file, or,
    for KQL only, a ``let`` list or a Sentinel watchlist of that name.
    ``exclusions`` names bundled exclusions (or ``all-safe``), as ``hunt`` does.
    With ``asim_parameters``, each parser call reads back ``query_period``, or
    when it is None, ``query_frequency`` plus the timespan of a correlation rule,
    as the analytic rule's derived query period does.
    Raises ConvertError for an unknown target or exclusion, or an unusable lists file.
    """
    if target not in TARGETS:
        raise ConvertError(f"unknown target '{target}'; choose one of {', '.join(TARGETS)}")
    if placeholders != "expand" and target != "kql":
        raise ConvertError(f"--placeholders {placeholders} is for KQL only; use --placeholders expand for {target}")
    if asim_parameters and target != "kql":
        raise ConvertError("--asim-parameters is for KQL only")
    check_index(index)
    check_table(table)
    if asim_parameters:
        try:
            period_seconds(query_frequency, "--query-frequency")
            if query_period is not None:
                period_seconds(query_period, "--query-period")
        except AnalyticRuleError as error:
            raise ConvertError(str(error)) from None

    lists = _load_lists(lists_path)
    try:
        exclusion_paths = resolve_exclusions(list(exclusions or []))
    except UnknownExclusionError as error:
        raise ConvertError(f"--exclusions: {error}") from None
    ruleset = load_rules(list(rule_paths) + exclusion_paths, include_bundled=include_bundled, lists=lists)
    schedule = _ParserSchedule(query_period, query_frequency) if asim_parameters else None
    converter = _Converter(_make_target(target, index, table), ruleset, lists, placeholders, schedule)

    conversions = [converter.convert_rule(loaded) for loaded in ruleset.rules]
    conversions += converter.convert_correlations(conversions)
    return _without_helper_rules(conversions, ruleset), ruleset


def _without_helper_rules(conversions: list[Conversion], ruleset: RuleSet) -> list[Conversion]:
    """Leave out the rules that only feed correlations, and note each one in ``ruleset.skipped``.

    A correlation's query contains its rules' conditions, and the rules give
    no findings of their own (``generate`` false). Written on their own, they
    would alert on every event the correlation only counts, such as every
    request to cloud storage, also where a target cannot express the
    correlation itself.
    """
    helpers = {rule.key for rule in ruleset.correlation_only_rules()}
    written = []
    for conversion in conversions:
        loaded = conversion.loaded
        if isinstance(loaded, LoadedRule) and loaded.key in helpers:
            message = "only feeds correlation rules (generate: false), so it is written only inside their queries"
            ruleset.skipped.append(RuleProblem(loaded.path, message, loaded.title, KIND_RULE, loaded.rule_id, loaded.name))
            continue
        written.append(conversion)
    return written


def check_index(index: str | None) -> None:
    """Raise ConvertError unless ``index`` is None or comma-separated Elasticsearch index patterns."""
    if index is None:
        return
    if not all(_INDEX_PATTERN.fullmatch(pattern) for pattern in index.split(",")):
        raise ConvertError(
            f"invalid --index {index!r}; give Elasticsearch index patterns of lower-case letters, digits "
            "and . _ - + *, separated by commas, such as logs-squid-*"
        )


def check_table(table: str | None) -> None:
    """Raise ConvertError unless ``table`` is None or a table name, optionally qualified (``lake.websession``)."""
    if table is None:
        return
    if not _TABLE_NAME.fullmatch(table):
        raise ConvertError(
            f"invalid --table {table!r}; give a table name of letters, digits and _, "
            "optionally qualified by a schema and catalog, such as lake.websession"
        )


def _make_target(name: str, index: str | None, table: str | None) -> Target:
    target_class = TARGETS[name]
    if name == "esql" and index:
        return target_class(index=index)
    if name in ("sparksql", "duckdbsql") and table:
        return target_class(table=table)
    return target_class()


def _load_lists(lists_path: str | None) -> PlaceholderLists:
    """Return the lists in force: the bundled defaults with the ``--lists`` file laid over them, as hunt uses them."""
    try:
        return lists_in_force(lists_path)
    except ValueError as error:
        raise ConvertError(str(error)) from None


def filter_as_rule(loaded: LoadedFilter) -> SigmaRule:
    """Return a Sigma filter's detection and condition as a rule, so that a backend can convert it."""
    detections = loaded.filter.filter
    return SigmaRule(
        title=loaded.title,
        id=loaded.filter.id,
        logsource=loaded.filter.logsource,
        detection=SigmaDetections(copy.deepcopy(detections.detections), list(detections.condition)),
    )


def filters_for(loaded: LoadedRule, ruleset: RuleSet) -> list[LoadedFilter]:
    """Return the Sigma filters that apply to a rule: those naming it by id or name, or ``rules: any``."""
    applying = []
    for candidate in ruleset.filters:
        if loaded.rule.logsource not in candidate.filter.logsource:
            continue
        if candidate.applies_to_any or any(ruleset.find_reference(reference) is loaded for reference in candidate.references):
            applying.append(candidate)
    return applying


@dataclass(frozen=True)
class _ParserSchedule:
    """The time range of ``--asim-parameters`` parser calls: an explicit query period, or one derived per rule."""

    query_period: str | None
    query_frequency: str

    def period(self, timespan_seconds: int | None = None) -> str:
        if self.query_period is not None:
            return self.query_period
        return kql_timespan(period_seconds(self.query_frequency) + (timespan_seconds or 0))


class _Converter:
    """Conversion of each rule of one RuleSet for one target."""

    def __init__(
        self,
        target: Target,
        ruleset: RuleSet,
        lists: PlaceholderLists,
        placeholders: PlaceholderMode,
        parser_schedule: _ParserSchedule | None,
    ) -> None:
        self.target = target
        self.ruleset = ruleset
        self.lists = lists
        self.placeholders = placeholders
        # Set for --asim-parameters: the queries read _Im_WebSession over this time range.
        self.parser_schedule = parser_schedule
        # The converted condition and filter conditions of each rule, by rule key, for the correlations.
        self.parts: dict[str, QueryParts] = {}

    def convert_rule(self, loaded: LoadedRule) -> Conversion:
        base = {
            "target": self.target.name,
            "rule_title": loaded.title,
            "rule_id": loaded.rule_id,
            "rule_path": loaded.path,
            "rule_type": "detection",
            "loaded": loaded,
        }
        filters = filters_for(loaded, self.ruleset)
        preamble: list[str] = []
        columns = set(rule_columns(loaded))

        try:
            condition = self._condition(loaded.rule, preamble)
            filter_conditions = []
            for sigma_filter in filters:
                filter_rule = filter_as_rule(sigma_filter)
                filter_conditions.append(self._condition(filter_rule, preamble))
                columns |= rule_columns(LoadedRule(filter_rule, sigma_filter.path, sigma_filter.bundled))
        except (SigmaError, NotImplementedError, ValueError, TypeError) as error:
            message = str(error).split(" (while converting rule")[0]
            return Conversion(**base, error=f"cannot be converted to {self.target.title}: {message}")

        source = None
        if self.parser_schedule is not None:
            source = str(parser_call(loaded.rule, self.parser_schedule.period()))
        parts = QueryParts(condition, tuple(filter_conditions), frozenset(columns), source, tuple(dict.fromkeys(preamble)))
        self.parts[loaded.key] = parts
        notes = tuple(blind_sources(frozenset(rule_columns(loaded)))) if isinstance(self.target, KQLTarget) else ()
        return Conversion(
            **base,
            query=self.target.assemble(parts),
            filters=tuple(sigma_filter.title for sigma_filter in filters),
            notes=notes,
        )

    def convert_correlations(self, conversions: list[Conversion]) -> list[Conversion]:
        """Convert each correlation rule over the conversions of the rules it correlates."""
        runnable = {
            conversion.loaded.key: conversion.error
            for conversion in conversions
            if isinstance(conversion.loaded, LoadedRule)
        }
        results = []
        for compiled in compile_correlations(self.ruleset, runnable):
            loaded = compiled.loaded
            base = {
                "target": self.target.name,
                "rule_title": loaded.title,
                "rule_id": loaded.rule_id,
                "rule_path": loaded.path,
                "rule_type": "correlation",
                "loaded": loaded,
            }
            if not compiled.runnable:
                results.append(Conversion(**base, error=f"cannot be converted: {compiled.error}"))
                continue
            sources = [
                CorrelationSource(item.event_rule_id, self._correlated_parts(item.rule, loaded)) for item in compiled.inputs
            ]
            try:
                query = self._correlation_query(compiled, sources)
            except (CorrelationExportError, SigmaError) as error:
                results.append(Conversion(**base, error=f"cannot be converted to {self.target.title}: {error}"))
                continue
            # A correlation's rows carry the group-by columns that every correlated rule maps alike.
            group_columns = {compiled.output_column(index) for index in range(len(compiled.group_fields))}
            results.append(Conversion(**base, query=query, entity_columns=frozenset(group_columns - {None})))
        return results

    def _correlated_parts(self, rule: LoadedRule, correlation: LoadedCorrelation) -> QueryParts:
        """Return a correlated rule's parts, with a parser call that reads back the correlation's timespan too."""
        parts = self.parts[rule.key]
        if self.parser_schedule is None:
            return parts
        timespan = getattr(correlation.rule.timespan, "seconds", None)
        return replace(parts, source=str(parser_call(rule.rule, self.parser_schedule.period(timespan))))

    def _correlation_query(self, compiled, sources: list[CorrelationSource]) -> str:
        name = self.target.name
        if name == "kql":
            return kql_correlation(compiled, sources)
        if name == "spl":
            return spl_correlation(compiled, sources)
        if name in ("sparksql", "duckdbsql"):
            return sql_correlation(compiled, sources, sql_dialect(name), self.target.table)
        raise CorrelationExportError(
            "ES|QL has no sliding time windows, and its fixed STATS buckets would miss bursts that cross a bucket boundary"
        )

    def _condition(self, rule: SigmaRule, preamble: list[str]) -> str:
        """Convert one rule's condition with a fresh backend; several conditions are joined with OR."""
        backend = self.target.backend()
        pipeline = self._placeholder_pipeline(rule, preamble)
        if pipeline is not None:
            backend.processing_pipeline = pipeline + backend.processing_pipeline
        queries = backend.convert_rule(copy.deepcopy(rule))
        if not queries:
            raise ValueError("the condition selects no detection; check its names and patterns")
        if len(queries) == 1:
            return str(queries[0])
        return f" {backend.or_token} ".join(f"({query})" for query in queries)

    def _placeholder_pipeline(self, rule: SigmaRule, preamble: list[str]) -> ProcessingPipeline | None:
        if self.placeholders == "expand":
            return placeholder_pipeline(self.lists)

        names = _placeholder_names(rule)
        expressions = {}
        for name in names:
            if not _KQL_IDENTIFIER.fullmatch(name):
                raise ValueError(
                    f"placeholder %{name}% is not a KQL identifier, so it cannot name a let list or watchlist; "
                    "use --placeholders expand"
                )
            if self.placeholders == "watchlist":
                preamble.append(f"let {name} = _GetWatchlist({kql_string(name)}) | project SearchKey;")
                expressions[name] = "{field} in~ ({id})"
            else:
                statement, expressions[name] = self._let_statement(name)
                preamble.append(statement)
        return ProcessingPipeline(
            name="proxyhunt KQL placeholder lists",
            priority=10,
            items=[
                ProcessingItem(
                    identifier=f"kql_placeholder_list_{name}",
                    transformation=QueryExpressionPlaceholderTransformation(expression=expression, include=[name]),
                )
                for name, expression in expressions.items()
            ],
        )

    def _let_statement(self, name: str) -> tuple[str, str]:
        """Return the ``let`` statement of a placeholder list and the expression that tests a field against it.

        A list of plain values becomes a dynamic array for ``in~``. A list
        with a Sigma wildcard (``*.blob.core.windows.net``) becomes one
        case-insensitive regular expression for ``matches regex``, because
        ``in~`` would compare the ``*`` literally.
        """
        values = self.lists.get(name)
        if not values:
            raise ValueError(f"placeholder %{name}% has no values; list them under '{name}' in the file given to --lists")
        matches = [classify(SigmaString(value)) for value in values]
        if all(match.kind is MatchKind.EQUALS for match in matches):
            texts = ", ".join(kql_string(match.text) for match in matches)
            return f"let {name} = dynamic([{texts}]);", "{field} in~ ({id})"

        # anchored_regex returns ^...$, so the anchors are taken off each value and put around the alternation.
        alternatives = "|".join(anchored_regex(match.value)[1:-1] for match in matches)
        return f"let {name} = {kql_string(f'(?is)^(?:{alternatives})$')};", "{field} matches regex {id}"


def _placeholder_names(rule: SigmaRule) -> list[str]:
    """Return the names of the ``%name%`` placeholders in a rule's values, in the order written."""
    names: list[str] = []

    def visit(items) -> None:
        for item in items:
            if hasattr(item, "detection_items"):
                visit(item.detection_items)
                continue
            for value in item.value:
                for part in getattr(value, "s", ()):
                    if isinstance(part, Placeholder) and part.name not in names:
                        names.append(part.name)

    for detection in rule.detection.detections.values():
        visit(detection.detection_items)
    return names
