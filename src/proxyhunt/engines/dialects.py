"""The SQL that differs between DuckDB and Spark SQL, for the queries that proxyhunt generates itself.

Correlation SQL is written once against a ``Dialect``. Each dialect spells
quoting, time arithmetic, distinct counts, percentiles, JSON objects and
ordered list aggregation its own way. Times are handled as integer
microseconds since the Unix epoch, so window edges are exact in both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class Dialect:
    """The SQL spelling of one engine. Subclasses override what their engine writes differently."""

    name: ClassVar[str] = ""
    # The type name of text, as a list element type.
    text_type: ClassVar[str] = "VARCHAR"

    def identifier(self, name: str) -> str:
        """Return ``name`` as a quoted identifier."""
        return '"' + name.replace('"', '""') + '"'

    def literal(self, text: str) -> str:
        """Return ``text`` as a string literal."""
        return "'" + text.replace("'", "''") + "'"

    def epoch_micros(self, expression: str) -> str:
        """Return microseconds since the Unix epoch of a UTC timestamp expression."""
        raise NotImplementedError

    def timestamp_from_micros(self, expression: str) -> str:
        """Return the UTC timestamp of an epoch-microseconds expression."""
        raise NotImplementedError

    def to_double(self, expression: str) -> str:
        """Return an expression as a double, NULL when it is not a number."""
        return f"TRY_CAST({expression} AS DOUBLE)"

    def to_text(self, expression: str) -> str:
        return f"CAST({expression} AS VARCHAR)"

    def tuple_value(self, expressions: Sequence[str]) -> str:
        """Return several values as one comparable value, NULL when any of them is NULL."""
        raise NotImplementedError

    def distinct_count(self, expression: str, window: str) -> str:
        """Return the number of distinct non-NULL values of ``expression`` over the named window."""
        raise NotImplementedError

    def percentile(self, expression: str, fraction: float, window: str) -> str:
        """Return the interpolated percentile (0 to 1) of ``expression`` over the named window."""
        raise NotImplementedError

    def json_object(self, pairs: Sequence[tuple[str, str]]) -> str:
        """Return a JSON object text from (key, value expression) pairs."""
        raise NotImplementedError

    def ordered_list(self, fields: Sequence[tuple[str, str]], order_by: Sequence[str], limit: int) -> str:
        """Return an aggregate: the list of structs of ``fields``, sorted by ``order_by``, first ``limit`` items."""
        raise NotImplementedError

    def ordered_values(self, expression: str, order_by: Sequence[str], limit: int) -> str:
        """Return an aggregate: the list of ``expression`` values, sorted ascending by ``order_by``, first ``limit`` items."""
        raise NotImplementedError

    def typed_empty_list(self, element_type: str) -> str:
        raise NotImplementedError

    def string_list(self, items: Sequence[str]) -> str:
        """Return a list-of-strings literal."""
        raise NotImplementedError


class DuckDBDialect(Dialect):
    """DuckDB 1.x and 2.x."""

    name: ClassVar[str] = "duckdb"

    def epoch_micros(self, expression: str) -> str:
        return f"epoch_us({expression})"

    def timestamp_from_micros(self, expression: str) -> str:
        return f"make_timestamp({expression})"

    def tuple_value(self, expressions: Sequence[str]) -> str:
        nulls = " OR ".join(f"{expression} IS NULL" for expression in expressions)
        return f"CASE WHEN {nulls} THEN NULL ELSE row({', '.join(expressions)}) END"

    def distinct_count(self, expression: str, window: str) -> str:
        return f"count(DISTINCT {expression}) OVER {window}"

    def percentile(self, expression: str, fraction: float, window: str) -> str:
        return f"quantile_cont({expression}, {fraction!r}) OVER {window}"

    def json_object(self, pairs: Sequence[tuple[str, str]]) -> str:
        arguments = ", ".join(f"{self.literal(key)}, {value}" for key, value in pairs)
        return f"json_object({arguments})"

    def ordered_list(self, fields: Sequence[tuple[str, str]], order_by: Sequence[str], limit: int) -> str:
        members = ", ".join(f"{self.identifier(name)} := {value}" for name, value in fields)
        return f"list(struct_pack({members}) ORDER BY {', '.join(order_by)})[1:{limit}]"

    def ordered_values(self, expression: str, order_by: Sequence[str], limit: int) -> str:
        return f"list({expression} ORDER BY {', '.join(order_by)})[1:{limit}]"

    def typed_empty_list(self, element_type: str) -> str:
        return f"[]::{element_type}[]"

    def string_list(self, items: Sequence[str]) -> str:
        return f"[{', '.join(self.literal(item) for item in items)}]::VARCHAR[]"


class SparkDialect(Dialect):
    """Spark SQL 3.4 and later, with its default settings (backslash escapes in string literals)."""

    name: ClassVar[str] = "spark"
    text_type: ClassVar[str] = "STRING"

    def identifier(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def literal(self, text: str) -> str:
        # Spark SQL reads backslash escapes in string literals unless
        # spark.sql.parser.escapedStringLiterals is set, so both are escaped.
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def epoch_micros(self, expression: str) -> str:
        return f"unix_micros({expression})"

    def timestamp_from_micros(self, expression: str) -> str:
        return f"timestamp_micros({expression})"

    def to_double(self, expression: str) -> str:
        return f"try_cast({expression} AS DOUBLE)"

    def to_text(self, expression: str) -> str:
        return f"CAST({expression} AS STRING)"

    def tuple_value(self, expressions: Sequence[str]) -> str:
        nulls = " OR ".join(f"{expression} IS NULL" for expression in expressions)
        members = ", ".join(f"'f{index}', {expression}" for index, expression in enumerate(expressions))
        return f"CASE WHEN {nulls} THEN NULL ELSE named_struct({members}) END"

    def distinct_count(self, expression: str, window: str) -> str:
        # Spark has no DISTINCT aggregates over a window; collect_set drops NULLs as count(DISTINCT) does.
        return f"size(collect_set({expression}) OVER {window})"

    def percentile(self, expression: str, fraction: float, window: str) -> str:
        return f"percentile({expression}, {fraction!r}) OVER {window}"

    def json_object(self, pairs: Sequence[tuple[str, str]]) -> str:
        members = ", ".join(f"{self.literal(key)}, {value}" for key, value in pairs)
        return f"to_json(named_struct({members}))"

    def ordered_list(self, fields: Sequence[tuple[str, str]], order_by: Sequence[str], limit: int) -> str:
        # array_sort orders structs field by field, so the sort keys go first
        # and are dropped again by transform.
        keys = [(f"_k{index}", expression) for index, expression in enumerate(order_by)]
        members = ", ".join(f"{self.literal(name)}, {value}" for name, value in [*keys, *fields])
        projected = ", ".join(f"{self.literal(name)}, item.{self.identifier(name)}" for name, _ in fields)
        return (
            f"slice(transform(array_sort(collect_list(named_struct({members}))), "
            f"item -> named_struct({projected})), 1, {limit})"
        )

    def ordered_values(self, expression: str, order_by: Sequence[str], limit: int) -> str:
        keys = ", ".join(f"'_k{index}', {key}" for index, key in enumerate(order_by))
        return (
            f"slice(transform(array_sort(collect_list(named_struct({keys}, '_v', {expression}))), "
            f"item -> item._v), 1, {limit})"
        )

    def typed_empty_list(self, element_type: str) -> str:
        return f"CAST(array() AS ARRAY<{element_type}>)"

    def string_list(self, items: Sequence[str]) -> str:
        return f"CAST(array({', '.join(self.literal(item) for item in items)}) AS ARRAY<STRING>)"
