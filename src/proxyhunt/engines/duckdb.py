"""Run compiled rules over the WebSession table in DuckDB and collect the matching events.

All detection rules run in one scan of ``websession``: its ``WHERE`` clause is
the OR of every rule's condition, so DuckDB reads each column once and stops
testing an event at the first rule that matches it. Only the matching events
are then tested rule by rule, to name the rules each one matches. The findings table
holds detection and correlation findings alike: rule metadata, the verdict
with the filters that suppressed a finding, the correlation window, and every
WebSession column.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

import duckdb
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaDetectionItem

from proxyhunt.backends.rule_pass import RulePassBackend, folded_columns_select
from proxyhunt.backends.pipeline import column_for_rule_field
from proxyhunt.engines.correlation import CompiledCorrelation, CorrelationQuery, RuleEvents
from proxyhunt.engines.dialects import DuckDBDialect
from proxyhunt.formats.loader import TABLE
from proxyhunt.formats.sql import quote_identifier, quote_literal
from proxyhunt.rules.loader import LoadedRule
from proxyhunt.schema import COLUMN_NAMES, COLUMNS, KEYWORD_COLUMN, create_table_sql

log = logging.getLogger(__name__)

FINDINGS_TABLE = "findings"

RULE_TYPE_DETECTION = "detection"
RULE_TYPE_CORRELATION = "correlation"
VERDICT_ALERT = "alert"
VERDICT_SUPPRESSED = "suppressed"

SUPPRESSION_TYPE = 'STRUCT(filter_id VARCHAR, filter_title VARCHAR, filter_source VARCHAR, "values" JSON)'
EVENT_TYPE = 'STRUCT("RuleId" VARCHAR, "SourceFile" VARCHAR, "SourceLine" BIGINT, "DstHostname" VARCHAR, "SrcBytes" BIGINT)'

# Columns of the findings table before the WebSession columns, with their DuckDB types.
FINDING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("RuleId", "VARCHAR"),
    ("RuleTitle", "VARCHAR"),
    ("RuleLevel", "VARCHAR"),
    ("RuleTags", "VARCHAR[]"),
    ("RuleSource", "VARCHAR"),
    ("RuleType", "VARCHAR"),
    ("Verdict", "VARCHAR"),
    ("Suppressions", f"{SUPPRESSION_TYPE}[]"),
    ("CorrelationType", "VARCHAR"),
    ("GroupBy", "JSON"),
    ("WindowStart", "TIMESTAMP"),
    ("WindowEnd", "TIMESTAMP"),
    ("Value", "DOUBLE"),
    # A correlation finding's destination hosts, most bytes uploaded first; its
    # SrcBytes and DstBytes columns hold the sums over its events.
    ("Destinations", "VARCHAR[]"),
    ("Events", f"{EVENT_TYPE}[]"),
)


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its SQL condition, or the reason it cannot run.

    ``where`` is a condition over ``websession``. ``folded_where`` is the same
    condition over ``rule_source(folded_columns)``, which folds each column
    once per event for all the rules of a scan.
    """

    loaded: LoadedRule
    where: str | None
    columns: frozenset[str]
    error: str | None = None
    folded_where: str | None = None
    folded_columns: frozenset[str] = frozenset()

    @property
    def runnable(self) -> bool:
        return self.where is not None

    @property
    def scan_where(self) -> str | None:
        """The condition over ``rule_source(folded_columns)``: ``folded_where``, or ``where`` when there is none."""
        return self.folded_where if self.folded_where is not None else self.where


def rule_columns(loaded: LoadedRule) -> frozenset[str]:
    """Return the WebSession columns that a rule's detection reads; keywords read RawEvent."""
    columns: set[str] = set()

    def visit(item: SigmaDetection | SigmaDetectionItem) -> None:
        if isinstance(item, SigmaDetection):
            for child in item.detection_items:
                visit(child)
            return
        if item.field is None:
            columns.add(KEYWORD_COLUMN)
            return
        column = column_for_rule_field(loaded.rule.logsource, item.field)
        if column:
            columns.add(column)

    for detection in loaded.rule.detection.detections.values():
        visit(detection)
    return frozenset(columns)


def compile_rules(rules: list[LoadedRule]) -> list[CompiledRule]:
    """Convert each rule to a DuckDB condition; a rule that fails keeps its error message.

    Each condition is also run once over an empty WebSession table, because
    DuckDB rejects some conditions only when it runs them: a regular expression
    that RE2 cannot compile (a look-ahead such as ``(?!``) is the usual case.
    """
    checker = duckdb.connect()
    checker.execute(create_table_sql(TABLE))
    compiled = []
    try:
        for loaded in rules:
            compiled.append(_compile_rule(loaded, checker))
    finally:
        checker.close()
    return compiled


def _compile_rule(loaded: LoadedRule, checker: duckdb.DuckDBPyConnection) -> CompiledRule:
    columns = rule_columns(loaded)
    backend = RulePassBackend()
    try:
        queries = backend.convert_rule(loaded.rule)
        inline_queries = RulePassBackend(fold_once=False).convert_rule(loaded.rule)
    except (SigmaError, NotImplementedError, ValueError, TypeError) as error:
        message = str(error).split(" (while converting rule")[0]
        return CompiledRule(loaded, None, columns, f"cannot be converted: {message}")

    if not queries:
        return CompiledRule(
            loaded, None, columns, "cannot be converted: the condition selects no detection; check its names and patterns"
        )
    where = " OR ".join(f"({query})" for query in inline_queries)
    folded_where = " OR ".join(f"({query})" for query in queries)
    folded = frozenset(backend.folded_columns)
    try:
        checker.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}").fetchall()
        checker.execute(f"SELECT count(*) FROM {rule_source(folded)} WHERE {folded_where}").fetchall()
    except duckdb.Error as error:
        message = f"cannot be run in DuckDB: {_first_line(error)}"
        if "regexp_matches(" in where:
            message += "; note that |re values must be RE2 syntax, which has no look-around or backreferences"
        return CompiledRule(loaded, None, columns, message)
    return CompiledRule(loaded, where, columns, folded_where=folded_where, folded_columns=folded)


def rule_source(folded_columns: frozenset[str]) -> str:
    """Return the relation that rule conditions read: ``websession`` with the folded copies of ``folded_columns``."""
    return f"({folded_columns_select(TABLE, folded_columns)}) AS {TABLE}"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def create_findings_table(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the findings table: rule metadata, verdict and correlation columns, then every WebSession column."""
    columns = [*FINDING_COLUMNS, *((column.name, column.sql_type) for column in COLUMNS)]
    definitions = ", ".join(f"{quote_identifier(name)} {sql_type}" for name, sql_type in columns)
    connection.execute(f"CREATE TABLE IF NOT EXISTS {FINDINGS_TABLE} ({definitions})")


def rule_identity_condition(rule_id: str, path: str, title: str) -> str:
    """Return a SQL condition over ``findings`` that selects the detection findings of one rule.

    Id, file and title together tell rules apart even when some have no id.
    """
    return (
        f"RuleType = '{RULE_TYPE_DETECTION}' AND RuleId = {quote_literal(rule_id)} "
        f"AND RuleSource = {quote_literal(path)} AND RuleTitle = {quote_literal(title)}"
    )


def findings_columns(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Return the names of the findings table's columns, including any that later steps added."""
    cursor = connection.execute(f"SELECT * FROM {FINDINGS_TABLE} LIMIT 0")
    return [description[0] for description in cursor.description]


def fetch_findings(connection: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Return every finding as a dict, ordered by time, with JSON columns decoded to Python values.

    A correlation finding is ordered by its window start, since it has no
    single event time.
    """
    cursor = connection.execute(
        f"SELECT * FROM {FINDINGS_TABLE} "
        "ORDER BY coalesce(TimeGenerated, WindowStart) NULLS LAST, SourceFile, SourceLine, RuleTitle"
    )
    names = [description[0] for description in cursor.description]
    findings = [dict(zip(names, row)) for row in cursor.fetchall()]
    for finding in findings:
        _decode_json_columns(finding)
    return findings


def _decode_json_columns(finding: dict[str, Any]) -> None:
    # DuckDB returns JSON values as text.
    if isinstance(finding.get("GroupBy"), str):
        finding["GroupBy"] = json.loads(finding["GroupBy"])
    suppressions = finding.get("Suppressions") or []
    for suppression in suppressions:
        if isinstance(suppression.get("values"), str):
            suppression["values"] = json.loads(suppression["values"])
    finding["Suppressions"] = suppressions


def run_rules(connection: duckdb.DuckDBPyConnection, compiled: list[CompiledRule]) -> dict[str, int]:
    """Insert the events that each runnable rule matches into ``findings``; return hits per rule key.

    The rules run together in one scan (see ``RulePass``). When DuckDB rejects
    that scan at run time, the rules run one scan each, so that a rule that
    DuckDB rejects is logged as an error and left out of the returned counts
    while the other rules still run.
    """
    create_findings_table(connection)
    runnable = [rule for rule in compiled if rule.runnable]
    if not runnable:
        return {}
    try:
        return RulePass(connection, runnable).run()
    except duckdb.Error as error:
        log.info("one scan over all rules failed (%s); running them one by one", _first_line(error))
    return _run_rules_one_by_one(connection, runnable)


class RulePass:
    """One scan of ``websession`` that finds the events of many rules.

    The scan copies each event that any rule matches, with the indexes of
    the rules it matches, into a temporary table. Those lists are computed
    only for the matching events, and each finding is then inserted from
    that table with its rule's metadata.

    NOTE: until the findings are inserted, each matching event is held twice
    in memory, so a rule that matches most events doubles the peak memory.
    """

    MATCHES_TABLE = "rule_pass_matches"
    RULES_TABLE = "rule_pass_rules"

    def __init__(self, connection: duckdb.DuckDBPyConnection, rules: list[CompiledRule]) -> None:
        self.connection = connection
        self.rules = rules

    def run(self) -> dict[str, int]:
        """Insert the findings of every rule; return hits per rule key, 0 for a rule without hits."""
        try:
            self._collect_matches()
            self._insert_rule_metadata()
            hits = self._count_hits()
            self._insert_findings()
        finally:
            self.connection.execute(f"DROP TABLE IF EXISTS {self.MATCHES_TABLE}")
            self.connection.execute(f"DROP TABLE IF EXISTS {self.RULES_TABLE}")

        for rule in self.rules:
            log.debug("rule %s (%s): %d hits", rule.loaded.title, rule.loaded.path, hits[rule.loaded.key])
        return hits

    def _collect_matches(self) -> None:
        columns = ", ".join(quote_identifier(name) for name in COLUMN_NAMES)
        any_rule = " OR ".join(f"({rule.scan_where})" for rule in self.rules)
        source = rule_source(frozenset().union(*(rule.folded_columns for rule in self.rules)))
        # One CASE per rule, computed only for the events that the WHERE clause keeps. A
        # CASE gives the rule's index only when the condition is true, not when it is NULL.
        flags = ", ".join(f"CASE WHEN {rule.scan_where} THEN {index} END" for index, rule in enumerate(self.rules))
        self.connection.execute(
            f"CREATE OR REPLACE TEMPORARY TABLE {self.MATCHES_TABLE} AS "
            f"SELECT {columns}, list_filter([{flags}], lambda rule_index: rule_index IS NOT NULL) AS rule_indexes "
            f"FROM {source} WHERE {any_rule}"
        )

    def _insert_rule_metadata(self) -> None:
        self.connection.execute(
            f"CREATE OR REPLACE TEMPORARY TABLE {self.RULES_TABLE} "
            "(rule_index INTEGER, RuleId VARCHAR, RuleTitle VARCHAR, RuleLevel VARCHAR, RuleTags VARCHAR[], RuleSource VARCHAR)"
        )
        rows = [
            [index, rule.loaded.rule_id, rule.loaded.title, rule.loaded.level, rule.loaded.tags, rule.loaded.path]
            for index, rule in enumerate(self.rules)
        ]
        self.connection.executemany(f"INSERT INTO {self.RULES_TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)

    def _count_hits(self) -> dict[str, int]:
        counts = dict(
            self.connection.execute(
                f"SELECT rule_index, count(*) FROM (SELECT unnest(rule_indexes) AS rule_index FROM {self.MATCHES_TABLE}) "
                "GROUP BY rule_index"
            ).fetchall()
        )
        return {rule.loaded.key: counts.get(index, 0) for index, rule in enumerate(self.rules)}

    def _insert_findings(self) -> None:
        columns = ", ".join(f"matches.{quote_identifier(name)}" for name in COLUMN_NAMES)
        self.connection.execute(
            f"INSERT INTO {FINDINGS_TABLE} BY NAME SELECT rules.RuleId, rules.RuleTitle, rules.RuleLevel, "
            f"rules.RuleTags, rules.RuleSource, '{RULE_TYPE_DETECTION}' AS RuleType, '{VERDICT_ALERT}' AS Verdict, "
            f"[]::{SUPPRESSION_TYPE}[] AS Suppressions, {columns} "
            f"FROM (SELECT *, unnest(rule_indexes) AS rule_index FROM {self.MATCHES_TABLE}) matches "
            f"JOIN {self.RULES_TABLE} rules USING (rule_index) ORDER BY rule_index"
        )


def _run_rules_one_by_one(connection: duckdb.DuckDBPyConnection, rules: list[CompiledRule]) -> dict[str, int]:
    """Run each rule as a scan of its own; a rule that DuckDB rejects is logged and left out of the counts."""
    columns = ", ".join(quote_identifier(name) for name in COLUMN_NAMES)
    hits: dict[str, int] = {}
    for rule in rules:
        loaded = rule.loaded
        try:
            inserted = connection.execute(
                f"INSERT INTO {FINDINGS_TABLE} BY NAME SELECT ? AS RuleId, ? AS RuleTitle, ? AS RuleLevel, "
                f"?::VARCHAR[] AS RuleTags, ? AS RuleSource, '{RULE_TYPE_DETECTION}' AS RuleType, "
                f"'{VERDICT_ALERT}' AS Verdict, []::{SUPPRESSION_TYPE}[] AS Suppressions, {columns} "
                f"FROM {rule_source(rule.folded_columns)} WHERE {rule.scan_where}",
                [loaded.rule_id, loaded.title, loaded.level, loaded.tags, loaded.path],
            ).fetchall()[0][0]
        except duckdb.Error as error:
            log.error("rule '%s' (%s) failed in DuckDB and was skipped: %s", loaded.title, loaded.path, _first_line(error))
            continue
        hits[loaded.key] = inserted
        log.debug("rule %s (%s): %d hits", loaded.title, loaded.path, inserted)
    return hits


def run_correlations(connection: duckdb.DuckDBPyConnection, compiled: list[CompiledCorrelation]) -> dict[str, int]:
    """Insert the findings of each runnable correlation into ``findings``; return findings per correlation key.

    A correlation reads the detection findings of its rules that are still
    alerts, so an event that a Sigma filter suppressed does not count, as the
    specification's "rule condition and filter condition" defines. A
    correlation that DuckDB rejects at run time is logged, and its entry in
    ``compiled`` is replaced with one that carries the error, so that the hunt
    reports it as a rule that could not run.
    """
    create_findings_table(connection)
    dialect = DuckDBDialect()
    counts: dict[str, int] = {}
    for index, correlation in enumerate(compiled):
        if not correlation.runnable:
            continue
        loaded = correlation.loaded
        sources = [
            RuleEvents(
                FINDINGS_TABLE,
                f"{rule_identity_condition(item.rule.rule_id, item.rule.path, item.rule.title)} "
                f"AND Verdict = '{VERDICT_ALERT}'",
            )
            for item in correlation.inputs
        ]
        query = CorrelationQuery(correlation, dialect, sources).findings_select()
        try:
            inserted = connection.execute(
                f"INSERT INTO {FINDINGS_TABLE} BY NAME "
                f"SELECT *, {dialect.typed_empty_list(SUPPRESSION_TYPE)} AS Suppressions FROM ({query}) correlation"
            ).fetchall()[0][0]
        except duckdb.Error as error:
            log.error(
                "correlation '%s' (%s) failed in DuckDB and was skipped: %s", loaded.title, loaded.path, _first_line(error)
            )
            compiled[index] = replace(correlation, error=f"failed in DuckDB and was skipped: {_first_line(error)}")
            continue
        counts[loaded.key] = inserted
        log.debug("correlation %s (%s): %d findings", loaded.title, loaded.path, inserted)
    return counts


def drop_correlated_rule_findings(connection: duckdb.DuckDBPyConnection, rules: list[LoadedRule]) -> None:
    """Delete the detection findings of ``rules``, the rules that only feed correlations.

    ``RuleSet.correlation_only_rules`` says which rules those are: the ones a
    correlation without ``generate: true`` names, as pySigma 1.5.1 decides
    it, where one such correlation is enough.
    """
    for rule in rules:
        connection.execute(f"DELETE FROM {FINDINGS_TABLE} WHERE {rule_identity_condition(rule.rule_id, rule.path, rule.title)}")
