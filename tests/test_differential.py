"""Differential test: generated rules and events, the DuckDB backend against independent evaluators.

Hypothesis builds Sigma detections (fields, values, modifiers and conditions)
and a handful of events for each. Every event must get the same verdict from

- the DuckDB backend, run in a real DuckDB WebSession table;
- the pure-Python reference matcher in ``sigma_reference``, written from the
  Sigma specification;
- and, where it applies, pySigma's SQLite backend run in ``sqlite3``.

The SQLite backend applies only to part of Sigma: it has no keyword search,
matches IPv4 ``|cidr`` by wildcard prefixes, keeps SQL's three-valued ``NOT``
over missing fields, folds case only for ASCII, and compares plain values
with ``=``. So it is compared on ASCII events without missing fields, with its
text columns declared ``COLLATE NOCASE`` as Zircolite declares them, and only
on rules without keywords, ``|cidr``, ``|windash``, ``|cased``, ``|exists``,
``|expand``, ``null`` or field references.

Rules that use ``|expand`` take their values from ``LISTS``, through the same
expansion that ``--lists`` runs.

The run is bounded and derandomized, so every CI run draws the same examples.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline

import sigma_reference
from proxyhunt.backends.duckdb import DuckDBBackend
from proxyhunt.backends.pipeline import WebSessionFieldMapping
from proxyhunt.formats.sql import quote_identifier
from proxyhunt.rules.loader import LoadedRule
from proxyhunt.rules.placeholders import PlaceholderLists, expand_placeholders
from proxyhunt.schema import COLUMN_TYPES, column_for_field, create_table_sql

TEXT_FIELDS = ["c-useragent", "cs-host", "c-uri"]
NUMBER_FIELDS = ["sc-status", "cs-bytes"]

# Characters of rule values: Sigma's wildcards and escape, LIKE's metacharacters, a quote, a dash, non-ASCII letters.
RULE_ALPHABET = "aAbB-/ *?\\%_'éÉж"
EVENT_ALPHABET = "aAbBcC-/\u2013 *?\\%_'éÉжЖ\n"
ASCII_RULE_ALPHABET = "aAbB-/ *?\\%_'"
ASCII_EVENT_ALPHABET = "aAbBcC-/ *?\\%_'\n"
TEXT_KINDS = ["plain", "contains", "startswith", "endswith", "cased", "all", "re", "windash", "null", "exists", "neq", "list",
              "fieldref", "expand"]
# The lists file of every generated rule that uses |expand.
LISTS = {"site_values": ["a*", "B?", "é\\*"], "site_suffixes": ["-b", ""]}
# What pySigma's SQLite backend converts exactly (see the module docstring).
SQLITE_TEXT_KINDS = ["plain", "contains", "startswith", "endswith", "all", "re", "neq"]
REGEXES = ["a", "^a", "a.b", "[ab]+c", "(a|B)b", "b{2}", "^b", "A", "é", "a[^b]"]
NETWORKS = ["10.0.0.0/8", "10.1.0.0/16", "192.168.1.128/25", "fe80::/10", "2001:db8::/32"]
ADDRESSES = ["10.1.2.3", "10.2.0.1", "100.1.2.3", "192.168.1.200", "192.168.1.7", "FE80::1", "2001:db8::5", "2001:db9::", "x"]
DEFAULT_EXAMPLES = 300


@st.composite
def text_item(draw: st.DrawFn, kinds: list[str], alphabet: str) -> tuple[str, Any]:
    """Draw a ``field|modifiers: value`` item over a text column."""
    field = draw(st.sampled_from(TEXT_FIELDS))
    kind = draw(st.sampled_from(kinds))
    value = st.text(alphabet, max_size=4)

    if kind == "plain":
        return field, draw(value)

    if kind in ("contains", "startswith", "endswith"):
        return f"{field}|{kind}", draw(value)

    if kind == "cased":
        return f"{field}|cased|{draw(st.sampled_from(['contains', 'startswith', 'endswith']))}", draw(value)

    if kind == "all":
        return f"{field}|contains|all", draw(st.lists(value, min_size=2, max_size=3))

    if kind == "re":
        flags = draw(st.sampled_from(["", "|i", "|m", "|s", "|i|m"]))
        regexes = [regex for regex in REGEXES if regex.isascii() or not alphabet.isascii()]
        return f"{field}|re{flags}", draw(st.sampled_from(regexes))

    if kind == "windash":
        return f"{field}|windash|contains", draw(st.text("ab-/\u2014", min_size=1, max_size=4))

    if kind == "null":
        return field, None

    if kind == "exists":
        return f"{field}|exists", draw(st.booleans())

    if kind == "neq":
        return f"{field}|neq", draw(value)

    if kind == "expand":
        modifier = draw(st.sampled_from(["", "|contains", "|startswith"]))
        return f"{field}|expand{modifier}", draw(st.sampled_from(["%site_values%", "%site_values%%site_suffixes%", "x%site_values%"]))

    if kind == "fieldref":
        other = draw(st.sampled_from([name for name in TEXT_FIELDS if name != field]))
        return f"{field}|fieldref{draw(st.sampled_from(['', '|contains', '|startswith', '|endswith']))}", other

    return field, draw(st.lists(st.one_of(value, st.none()), min_size=2, max_size=3))

@st.composite
def sqlite_text_item(draw: st.DrawFn) -> tuple[str, Any]:
    return draw(text_item(SQLITE_TEXT_KINDS, ASCII_RULE_ALPHABET))


@st.composite
def number_item(draw: st.DrawFn) -> tuple[str, Any]:
    field = draw(st.sampled_from(NUMBER_FIELDS))
    modifier = draw(st.sampled_from(["", "|gt", "|gte", "|lt", "|lte"]))
    return f"{field}{modifier}", draw(st.sampled_from([0, 200, 407, 1000]))


@st.composite
def cidr_item(draw: st.DrawFn) -> tuple[str, Any]:
    return "c-ip|cidr", draw(st.sampled_from(NETWORKS))


@st.composite
def selection(draw: st.DrawFn, sqlite: bool) -> Any:
    """Draw a search identifier: a map of one or two items, a list of maps, or a keyword list."""
    if sqlite:
        shape = draw(st.sampled_from(["map", "map", "maps"]))
        item = st.one_of(sqlite_text_item(), sqlite_text_item(), number_item())
    else:
        shape = draw(st.sampled_from(["map", "map", "map", "maps", "keywords"]))
        text = text_item(TEXT_KINDS, RULE_ALPHABET)
        item = st.one_of(text, text, number_item(), cidr_item())
    if shape == "keywords":
        return draw(st.lists(st.text(RULE_ALPHABET, min_size=1, max_size=3), min_size=1, max_size=3))
    if shape == "maps":
        return [dict([draw(item)]) for _ in range(draw(st.integers(2, 3)))]
    items = draw(st.lists(item, min_size=1, max_size=2, unique_by=lambda pair: pair[0].split("|")[0]))
    return dict(items)


def conditions(names: list[str]) -> st.SearchStrategy[str]:
    """Conditions over ``names``: and, or, not, parentheses, and the ``x of`` forms."""
    atoms = st.sampled_from([*names, "1 of sel_*", "all of sel_*", "1 of them", "all of them"])
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"{a} and {b}", inner, inner),
            st.builds(lambda a, b: f"{a} or {b}", inner, inner),
            st.builds(lambda a: f"not {a}", inner),
            st.builds(lambda a: f"({a})", inner),
        ),
        max_leaves=4,
    )


@st.composite
def detections(draw: st.DrawFn, sqlite: bool = False) -> dict[str, Any]:
    names = ["sel_a", "sel_b", "filter_c"][: draw(st.integers(1, 3))]
    detection: dict[str, Any] = {name: draw(selection(sqlite)) for name in names}
    condition = draw(conditions(names))
    # A condition must name search identifiers that exist, so "sel_*" needs at least one.
    if "sel_" in condition and not any(name.startswith("sel_") for name in names):
        condition = names[0]
    detection["condition"] = condition
    return detection


def fragments(detection: dict[str, Any]) -> list[str]:
    """Return texts from the rule's values, so that generated events hit the rule often."""
    texts: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, str):
            texts.append(value.replace("\\", "").replace("*", "").replace("?", "x"))

    visit({name: value for name, value in detection.items() if name != "condition"})
    return texts or ["a"]


@st.composite
def events(draw: st.DrawFn, detection: dict[str, Any], sqlite: bool = False) -> list[dict[str, Any]]:
    """Draw one to five events; for SQLite, ASCII text and no missing fields but the address."""
    pieces = fragments(detection)
    alphabet = ASCII_EVENT_ALPHABET if sqlite else EVENT_ALPHABET
    text = st.lists(
        st.one_of(st.sampled_from(pieces), st.sampled_from(pieces).map(str.upper), st.text(alphabet, max_size=2)),
        max_size=3,
    ).map("".join)
    maybe_text = st.one_of(st.just(""), text, text) if sqlite else st.one_of(st.none(), st.just(""), text, text)
    numbers = st.sampled_from([0, 199, 200, 201, 407, 999, 1000, 1001])
    number = numbers if sqlite else st.one_of(st.none(), numbers)
    result = []
    for _ in range(draw(st.integers(1, 5))):
        event: dict[str, Any] = {column_for_field(field): draw(maybe_text) for field in TEXT_FIELDS}
        event.update({column_for_field(field): draw(number) for field in NUMBER_FIELDS})
        event["SrcIpAddr"] = draw(st.one_of(st.none(), st.sampled_from(ADDRESSES)))
        event["RawEvent"] = draw(maybe_text)
        result.append(event)
    return result


def rule_text(detection: dict[str, Any]) -> str:
    return "title: differential case\nlogsource:\n    category: proxy\n" + yaml.safe_dump(
        {"detection": detection}, allow_unicode=True, sort_keys=False
    )


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(create_table_sql())
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def lite() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    connection.create_function(
        "REGEXP", 2, lambda pattern, value: value is not None and re.search(pattern, str(value)) is not None
    )
    columns = ", ".join(
        f'"{name}" {"INTEGER" if sql_type in ("INTEGER", "BIGINT") else "TEXT COLLATE NOCASE"}'
        for name, sql_type in COLUMN_TYPES.items()
        if sql_type != "TIMESTAMP"
    )
    connection.execute(f"CREATE TABLE websession ({columns})")
    yield connection
    connection.close()


def duckdb_matches(connection: duckdb.DuckDBPyConnection, rule, rows: list[dict[str, Any]]) -> list[bool]:
    lists = PlaceholderLists("lists.yml", {name: tuple(values) for name, values in LISTS.items()})
    [loaded], problems = expand_placeholders([LoadedRule(rule, "generated.yml", bundled=False)], lists)
    assert problems == []
    where = " OR ".join(f"({query})" for query in DuckDBBackend().convert_rule(loaded.rule))
    connection.execute("DELETE FROM websession")
    for line, row in enumerate(rows, start=1):
        values = {"SourceLine": line, **row}
        names = ", ".join(quote_identifier(name) for name in values)
        connection.execute(f"INSERT INTO websession ({names}) VALUES ({', '.join('?' for _ in values)})", list(values.values()))
    hits = {line for (line,) in connection.execute(f'SELECT "SourceLine" FROM websession WHERE {where}').fetchall()}
    return [line in hits for line in range(1, len(rows) + 1)]


SQLITE_PIPELINE = ProcessingPipeline(
    name="WebSession field names for the SQLite backend",
    items=[ProcessingItem(identifier="websession_fields", transformation=WebSessionFieldMapping())],
)
_SQLITE_EXCLUDED = re.compile(r"\|(cidr|windash|cased|exists|fieldref|expand)")


def sqlite_applies(detection: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """True when the rule and events stay inside what the SQLite backend converts exactly."""
    text = rule_text(detection)
    if _SQLITE_EXCLUDED.search(text) or not text.isascii() or "null" in text:
        return False
    for name, value in detection.items():
        if name == "condition":
            continue
        if not isinstance(value, dict) and not (isinstance(value, list) and all(isinstance(entry, dict) for entry in value)):
            return False
    columns = ("HttpUserAgent", "DstHostname", "Url", "HttpStatusCode", "SrcBytes")
    return all(row[column] is not None and str(row[column]).isascii() for row in rows for column in columns)


def sqlite_matches(connection: sqlite3.Connection, rule, rows: list[dict[str, Any]]) -> list[bool]:
    [query] = sqliteBackend(processing_pipeline=SQLITE_PIPELINE).convert_rule(rule)
    connection.execute("DELETE FROM websession")
    for line, row in enumerate(rows, start=1):
        values = {"SourceLine": line, **row}
        names = ", ".join(f'"{name}"' for name in values)
        connection.execute(f"INSERT INTO websession ({names}) VALUES ({', '.join('?' for _ in values)})", list(values.values()))
    query = query.replace("SELECT * FROM <TABLE_NAME>", 'SELECT "SourceLine" FROM websession')
    hits = {line for (line,) in connection.execute(query).fetchall()}
    return [line in hits for line in range(1, len(rows) + 1)]


@settings(
    max_examples=DEFAULT_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_duckdb_agrees_with_reference(duck, lite, data):
    detection = data.draw(detections(), label="detection")
    rows = data.draw(events(detection), label="events")
    [rule] = SigmaCollection.from_yaml(rule_text(detection)).rules

    expected = [sigma_reference.matches(detection, row, LISTS) for row in rows]
    assert duckdb_matches(duck, rule, rows) == expected

    if sqlite_applies(detection, rows):
        assert sqlite_matches(lite, rule, rows) == expected


@settings(
    max_examples=DEFAULT_EXAMPLES // 2,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_duckdb_agrees_with_sqlite_backend(duck, lite, data):
    detection = data.draw(detections(sqlite=True), label="detection")
    rows = data.draw(events(detection, sqlite=True), label="events")
    [rule] = SigmaCollection.from_yaml(rule_text(detection)).rules
    assert sqlite_applies(detection, rows)

    expected = [sigma_reference.matches(detection, row) for row in rows]
    assert duckdb_matches(duck, rule, rows) == expected
    assert sqlite_matches(lite, rule, rows) == expected
