"""DuckDB conditions in the form that a scan over many rules at once evaluates fastest.

``RulePassBackend`` gives the same results as ``DuckDBBackend`` on every
event, and the engine uses it for the rules that it runs. The exported DuckDB
SQL, Sigma filters and the Spark SQL backend keep ``DuckDBBackend``'s
self-contained form. The two differ only in how the SQL is written:

- an uncased string test that is a whole value, a prefix, a suffix or a
  substring becomes ``=``, ``starts_with``, ``ends_with`` or ``contains`` on
  the folded column. Any other wildcard pattern becomes ``LIKE`` without an
  ``ESCAPE`` clause when it contains no literal ``%`` or ``_``. DuckDB 2.0.1
  evaluates these forms once per dictionary entry of a dictionary-encoded
  Parquet column, but ``LIKE ... ESCAPE`` once per row;
- a list of whole values of one field becomes one ``IN`` list. A long list
  of substrings, prefixes or suffixes of one field becomes one RE2 regular
  expression over the folded column, so that a value is searched once for
  all of them rather than once per list entry;
- a number compares a numeric WebSession column cast to DOUBLE directly,
  without the detour through text that text columns need;
- the condition is not wrapped in ``coalesce(..., false)``, so it may be
  NULL where ``DuckDBBackend``'s is false. A ``WHERE`` clause skips both.

Values are folded with DuckDB's ``lower()`` on both sides, as in
``DuckDBBackend``, so non-ASCII letters fold the same way. A column is
folded once per event rather than once per test: the conditions read the
folded column ``<column>__lower`` (see ``folded_column_name``), which the
query computes with ``folded_columns_select``. ``RawEvent`` stays folded
inside each test, because folding the whole raw line of every event costs
more than the few keyword tests that reach it after the other tests of
their rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionItem, ConditionOR
from sigma.conversion.state import ConversionState
from sigma.types import SigmaCasedString, SigmaString, SpecialChars

from proxyhunt.backends.duckdb import DuckDBBackend, has_windash, resolve_windash
from proxyhunt.formats.sql import quote_identifier
from proxyhunt.schema import COLUMN_TYPES, KEYWORD_COLUMN

# Characters that RE2 reads as syntax outside a character class.
_RE2_SYNTAX = frozenset("\\.+*?()|[]{}^$")
_NUMERIC_TYPES = frozenset({"INTEGER", "BIGINT", "DOUBLE"})

# Kinds of literal test: where the literal must sit in the column value.
EQUALS = "equals"
PREFIX = "prefix"
SUFFIX = "suffix"
SUBSTRING = "substring"


@dataclass(frozen=True)
class LiteralTest:
    """A Sigma string without inner wildcards: the literal text and where it must sit in the value."""

    kind: str
    text: str


def literal_test(value: SigmaString) -> LiteralTest | None:
    """Return the literal test that ``value`` stands for, or None when it has a wildcard inside or a ``?``.

    ``abc`` is a whole value, ``abc*`` a prefix, ``*abc`` a suffix and
    ``*abc*`` (or ``*`` alone) a substring.
    """
    parts = list(resolve_windash(value).s)
    leading = bool(parts) and parts[0] == SpecialChars.WILDCARD_MULTI
    trailing = len(parts) > int(leading) and parts[-1] == SpecialChars.WILDCARD_MULTI
    inner = parts[int(leading) : len(parts) - int(trailing)]
    if not all(isinstance(part, str) for part in inner):
        return None

    text = "".join(inner)
    if leading and trailing:
        return LiteralTest(SUBSTRING, text)
    if leading:
        return LiteralTest(SUFFIX, text)
    if trailing:
        return LiteralTest(PREFIX, text)
    return LiteralTest(EQUALS, text)


def folded_column_name(column: str) -> str:
    """Return the name of the column that contains ``lower()`` of WebSession column ``column``."""
    return f"{column}__lower"


def folded_columns_select(table: str, columns: frozenset[str]) -> str:
    """Return a SELECT of every column of ``table`` plus the folded copies of ``columns``."""
    folded = "".join(
        f", lower(CAST({quote_identifier(column)} AS VARCHAR)) AS {quote_identifier(folded_column_name(column))}"
        for column in sorted(columns)
    )
    return f"SELECT *{folded} FROM {table}"


def re2_literal(text: str) -> str:
    """Return a regular expression in RE2 syntax that matches ``text`` literally."""
    return "".join("\\" + character if character in _RE2_SYNTAX else character for character in text)


class RulePassBackend(DuckDBBackend):
    """Sigma to a DuckDB ``WHERE`` expression over the WebSession table, written for a scan over many rules."""

    name: ClassVar[str] = "proxyhunt DuckDB rule-pass backend"

    # Lists of substrings, prefixes or suffixes of one field with at least this
    # many entries become one regular expression. One RE2 search per value was
    # about twice as fast as separate tests over high-cardinality columns, but
    # separate tests win when DuckDB evaluates them once per dictionary entry.
    # NOTE: the threshold is a compromise measured on two synthetic datasets
    # (bench/generate.py output and a copy with unique URLs), not tuned per column.
    regex_list_min_values: ClassVar[int] = 8
    # RE2 rejects a program above its memory limit, so a longer list is split
    # into several expressions of at most this many entries.
    regex_list_max_values: ClassVar[int] = 200

    def __init__(self, *args, fold_once: bool = True, **kwargs) -> None:
        """Create the backend; with ``fold_once`` false, conditions fold each column inline and read ``websession`` alone."""
        super().__init__(*args, **kwargs)
        self.fold_once = fold_once
        # The WebSession columns whose folded copies the converted conditions read.
        self.folded_columns: set[str] = set()

    def folded(self, column: str) -> str:
        """Return SQL for the lower-cased text of a quoted WebSession column."""
        name = _column_name(column)
        if not self.fold_once or name is None or name == KEYWORD_COLUMN:
            return self.fold_case(self.text(column))
        self.folded_columns.add(name)
        return quote_identifier(folded_column_name(name))

    def finalize_query_default(self, rule, query: str, index: int, state: ConversionState) -> str:
        # No coalesce(..., false) around the whole condition: a WHERE clause skips a NULL
        # as it skips false, and DuckDB short-circuits AND and OR only in a WHERE clause's
        # top level, not inside a function such as coalesce.
        return query

    def string_match(self, column: str, value: SigmaString, cased: bool) -> str:
        if cased or has_windash(value):
            return super().string_match(column, value, cased)

        test = literal_test(value)
        folded = self.folded(column)
        if test is not None:
            return self.literal_match(folded, test)

        if any("%" in part or "_" in part for part in value.s if isinstance(part, str)):
            # Only an escape character lets LIKE match a literal % or _.
            return super().string_match(column, value, cased)
        # Without an ESCAPE clause DuckDB's LIKE reads every character but % and _ literally.
        pattern = resolve_windash(value).convert(escape_char=None, wildcard_multi="%", wildcard_single="_")
        return f"{folded} LIKE {self.fold_case(self.string_literal(pattern))}"

    def literal_match(self, folded: str, test: LiteralTest) -> str:
        """Return SQL that applies a literal test to a folded text expression."""
        literal = self.fold_case(self.string_literal(test.text))
        if test.kind == EQUALS:
            return f"{folded} = {literal}"
        if test.kind == PREFIX:
            return f"starts_with({folded}, {literal})"
        if test.kind == SUFFIX:
            return f"ends_with({folded}, {literal})"
        return f"contains({folded}, {literal})"

    def number(self, column: str) -> str:
        # The text of a number in a numeric column is always decimal number text, so only text columns need the detour.
        if _column_type(column) in _NUMERIC_TYPES:
            return f"CAST({column} AS DOUBLE)"
        return super().number(column)

    # Value lists

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> str:
        """Convert an OR, turning each list of plain string tests on one field into one IN list or regular expression."""
        lists: dict[tuple[str, bool], list[LiteralTest]] = {}
        others: list[ConditionItem] = []
        for arg in cond.args:
            test = _plain_test(arg)
            if test is None:
                others.append(arg)
                continue
            lists.setdefault((arg.field, test.kind == EQUALS), []).append(test)

        parts: list[str] = []
        for (field, whole_values), tests in lists.items():
            folded = self.folded(self.escape_and_quote_field(field))
            if whole_values and len(tests) > 1:
                literals = ", ".join(self.fold_case(self.string_literal(test.text)) for test in tests)
                parts.append(f"{folded} IN ({literals})")
            elif not whole_values and len(tests) >= self.regex_list_min_values:
                parts += self.regex_list(folded, tests)
            else:
                parts += [self.literal_match(folded, test) for test in tests]

        if others:
            rest = super().convert_condition_or(ConditionOR(others), state)
            parts.append(rest if len(others) == 1 else f"({rest})")
        return " OR ".join(parts)

    def regex_list(self, folded: str, tests: list[LiteralTest]) -> list[str]:
        """Return ``regexp_matches`` calls that together are true when any of the prefix, suffix or substring tests is."""
        alternatives = []
        for test in tests:
            literal = re2_literal(test.text)
            if test.kind == PREFIX:
                literal = f"^{literal}"
            elif test.kind == SUFFIX:
                literal = rf"{literal}\z"
            alternatives.append(literal)

        size = self.regex_list_max_values
        chunks = [alternatives[start : start + size] for start in range(0, len(alternatives), size)]
        # lower() leaves RE2's syntax characters as they are, so it folds only the literals.
        return [
            f"regexp_matches({folded}, {self.fold_case(self.string_literal('|'.join(chunk)))})" for chunk in chunks
        ]


def _plain_test(arg: ConditionItem) -> LiteralTest | None:
    """Return the literal test of an uncased string detection item, or None for any other condition."""
    if not isinstance(arg, ConditionFieldEqualsValueExpression):
        return None
    value = arg.value
    if type(value) is not SigmaString or isinstance(value, SigmaCasedString) or has_windash(value):
        return None
    if value.contains_placeholder():
        return None
    return literal_test(value)


def _column_name(column: str) -> str | None:
    """Return the WebSession column name of a quoted identifier, or None for any other expression."""
    return next((name for name in COLUMN_TYPES if quote_identifier(name) == column), None)


def _column_type(column: str) -> str | None:
    name = _column_name(column)
    return COLUMN_TYPES[name] if name else None
