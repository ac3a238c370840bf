"""The export targets: how each one assembles a whole query around a converted condition.

A target converts a Sigma rule, and each Sigma filter that applies to it, to
a condition with its backend. It then wraps the conditions in the statements
its language needs: the table or data model to read, derived fields, and one
clause per filter. The Sigma filters specification adds a filter's condition
to the rule's with ``and``, so each filter becomes a clause that a row must
meet to stay. A filter that excludes values writes ``not`` in its own
condition, and the clause keeps that negation grouped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sigma.conversion.base import TextQueryBackend

from proxyhunt.backends.duckdb import DuckDBBackend
from proxyhunt.backends.spark import SparkSQLBackend
from proxyhunt.export.esql import DEFAULT_INDEX, ESQLBackend
from proxyhunt.export.kql import ASIM_TABLE, KQLBackend, derived_columns_needed, extend_clause
from proxyhunt.export.spl import SPL_SOURCE, URL_EXTENSION_EVAL, SPLBackend


@dataclass(frozen=True)
class QueryParts:
    """The converted pieces from which a target assembles one query.

    ``condition`` is the rule's condition and ``filter_conditions`` the
    condition of each Sigma filter that applies to it. ``columns`` are the WebSession
    columns that any of them reads. ``source`` replaces the target's default
    source, with an ASIM parser call for example, and ``preamble`` contains
    statements that come before it, such as KQL ``let`` lists.
    """

    condition: str
    filter_conditions: tuple[str, ...] = ()
    columns: frozenset[str] = frozenset()
    source: str | None = None
    preamble: tuple[str, ...] = field(default_factory=tuple)


class Target:
    """One query language: its backend and how it assembles a query."""

    name: ClassVar[str]
    title: ClassVar[str]
    comment: ClassVar[str]
    # What ends a statement in a file of several; the query itself carries no
    # terminator, so that it can be embedded as a subquery.
    statement_end: ClassVar[str] = ""

    def backend(self) -> TextQueryBackend:
        raise NotImplementedError

    def assemble(self, parts: QueryParts) -> str:
        raise NotImplementedError


class KQLTarget(Target):
    name = "kql"
    title = "KQL for Microsoft Sentinel (ASIM imWebSession)"
    comment = "//"

    def backend(self) -> TextQueryBackend:
        return KQLBackend()

    def assemble(self, parts: QueryParts) -> str:
        lines = list(parts.preamble)
        lines.append(parts.source or ASIM_TABLE)
        extend = extend_clause(derived_columns_needed(set(parts.columns)))
        if extend:
            lines.append(extend)
        lines.append(f"| where {parts.condition}")
        lines.extend(f"| where {condition}" for condition in parts.filter_conditions)
        return "\n".join(lines)


class SPLTarget(Target):
    name = "spl"
    title = "Splunk SPL (CIM Web data model)"
    comment = "```"

    def backend(self) -> TextQueryBackend:
        return SPLBackend()

    def assemble(self, parts: QueryParts) -> str:
        lines = [SPL_SOURCE]
        if "UrlExtension" in parts.columns:
            lines.append(URL_EXTENSION_EVAL)
        lines.append(f"| where {parts.condition}")
        lines.extend(f"| where {condition}" for condition in parts.filter_conditions)
        return "\n".join(lines)


class ESQLTarget(Target):
    name = "esql"
    title = "Elastic ES|QL (ECS fields)"
    comment = "//"

    def __init__(self, index: str = DEFAULT_INDEX) -> None:
        self.index = index

    def backend(self) -> TextQueryBackend:
        return ESQLBackend()

    def assemble(self, parts: QueryParts) -> str:
        lines = [f"FROM {self.index}", f"| WHERE {parts.condition}"]
        lines.extend(f"| WHERE {condition}" for condition in parts.filter_conditions)
        return "\n".join(lines)


class SQLTarget(Target):
    """A SELECT over the WebSession table; the backend's conditions are already two-valued."""

    comment = "--"
    statement_end = ";"
    backend_class: ClassVar[type[DuckDBBackend]]

    def __init__(self, table: str = "websession") -> None:
        self.table = table

    def backend(self) -> TextQueryBackend:
        return self.backend_class()

    def assemble(self, parts: QueryParts) -> str:
        lines = [f"SELECT *\nFROM {self.table}\nWHERE {parts.condition}"]
        # The backend wraps each condition in coalesce(..., false), so a filter is two-valued.
        lines.extend(f"  AND {condition}" for condition in parts.filter_conditions)
        return "\n".join(lines)


class SparkSQLTarget(SQLTarget):
    name = "sparksql"
    title = "Spark SQL over the WebSession table"
    backend_class = SparkSQLBackend


class DuckDBSQLTarget(SQLTarget):
    name = "duckdbsql"
    title = "DuckDB SQL over the WebSession table"
    backend_class = DuckDBBackend


TARGETS: dict[str, type[Target]] = {
    target.name: target for target in (KQLTarget, SPLTarget, ESQLTarget, SparkSQLTarget, DuckDBSQLTarget)
}
