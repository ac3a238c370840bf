"""Run compiled rules over the WebSession table in DuckDB and collect the matching events.

Each rule becomes one ``INSERT INTO findings SELECT ... FROM websession WHERE
<rule>`` statement, so matching is vectorized inside DuckDB.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaDetectionItem

from proxyhunt.backends.duckdb import DuckDBBackend
from proxyhunt.backends.pipeline import column_for_rule_field
from proxyhunt.formats.loader import TABLE
from proxyhunt.formats.sql import quote_identifier
from proxyhunt.rules.loader import LoadedRule
from proxyhunt.schema import COLUMN_NAMES, COLUMNS, KEYWORD_COLUMN, create_table_sql

log = logging.getLogger(__name__)

FINDINGS_TABLE = "findings"


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its SQL condition, or the reason it cannot run."""

    loaded: LoadedRule
    where: str | None
    columns: frozenset[str]
    error: str | None = None

    @property
    def runnable(self) -> bool:
        return self.where is not None


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
    backend = DuckDBBackend()
    try:
        queries = backend.convert_rule(loaded.rule)
    except (SigmaError, NotImplementedError, ValueError, TypeError) as error:
        message = str(error).split(" (while converting rule")[0]
        return CompiledRule(loaded, None, columns, f"cannot be converted: {message}")

    if not queries:
        return CompiledRule(
            loaded, None, columns, "cannot be converted: the condition selects no detection; check its names and patterns"
        )
    where = " OR ".join(f"({query})" for query in queries)
    try:
        checker.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}").fetchall()
    except duckdb.Error as error:
        message = f"cannot be run in DuckDB: {_first_line(error)}"
        if "regexp_matches(" in where:
            message += "; note that |re values must be RE2 syntax, which has no look-around or backreferences"
        return CompiledRule(loaded, None, columns, message)
    return CompiledRule(loaded, where, columns)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def create_findings_table(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the findings table: rule metadata followed by every WebSession column."""
    event_columns = ", ".join(f"{quote_identifier(column.name)} {column.sql_type}" for column in COLUMNS)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {FINDINGS_TABLE} (RuleId VARCHAR, RuleTitle VARCHAR, RuleLevel VARCHAR, "
        f"RuleTags VARCHAR[], RuleSource VARCHAR, {event_columns})"
    )


def run_rules(connection: duckdb.DuckDBPyConnection, compiled: list[CompiledRule]) -> dict[str, int]:
    """Insert the events that each runnable rule matches into ``findings``; return hits per rule key.

    A rule that DuckDB rejects at run time is logged as an error and left out
    of the returned counts, and the other rules still run.
    """
    create_findings_table(connection)
    columns = ", ".join(quote_identifier(name) for name in COLUMN_NAMES)
    hits: dict[str, int] = {}
    for rule in compiled:
        if not rule.runnable:
            continue
        loaded = rule.loaded
        try:
            inserted = connection.execute(
                f"INSERT INTO {FINDINGS_TABLE} SELECT ?, ?, ?, ?, ?, {columns} FROM {TABLE} WHERE {rule.where}",
                [loaded.rule_id, loaded.title, loaded.level, loaded.tags, loaded.path],
            ).fetchall()[0][0]
        except duckdb.Error as error:
            log.error("rule '%s' (%s) failed in DuckDB and was skipped: %s", loaded.title, loaded.path, _first_line(error))
            continue
        hits[loaded.key] = inserted
        log.debug("rule %s (%s): %d hits", loaded.title, loaded.path, inserted)
    return hits
