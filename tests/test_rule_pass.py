"""The one-scan rule pass of the DuckDB engine gives the findings that each rule gives alone.

The rule pass compiles rules with ``RulePassBackend`` (folded columns, no
LIKE escapes, value lists as IN lists and RE2 alternations) and runs them in
one scan. These tests hold it to the Sigma semantics of the conformance
table and of the reference matcher, and to ``DuckDBBackend``'s results on
the SigmaHQ proxy rules.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection
from sigma.types import SigmaString

import sigma_reference
import test_conformance as conformance
import test_differential as differential
from corpus import CORPUS
from proxyhunt.backends.duckdb import DuckDBBackend
from proxyhunt.backends.rule_pass import RulePassBackend, literal_test, re2_literal
from proxyhunt.engines.duckdb import FINDINGS_TABLE, compile_rules, run_rules
from proxyhunt.formats.sql import quote_identifier
from proxyhunt.rules.loader import LoadedRule, load_rules
from proxyhunt.rules.placeholders import PlaceholderLists, expand_placeholders
from proxyhunt.schema import create_table_sql

SIGMAHQ_PROXY_RULES = CORPUS / "sigma-rules" / "proxy"


@pytest.fixture
def connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(create_table_sql())
    yield connection
    connection.close()


def insert_events(connection: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]) -> None:
    """Replace the WebSession rows with ``events``; each event's SourceLine is its 1-based position."""
    connection.execute("DELETE FROM websession")
    connection.execute(f"DROP TABLE IF EXISTS {FINDINGS_TABLE}")
    for line, event in enumerate(events, start=1):
        values = {"SourceLine": line, **event}
        names = ", ".join(quote_identifier(name) for name in values)
        marks = ", ".join("?" for _ in values)
        connection.execute(f"INSERT INTO websession ({names}) VALUES ({marks})", list(values.values()))


def found(connection: duckdb.DuckDBPyConnection) -> set[tuple[str, int]]:
    """Return the (rule source, SourceLine) pairs in the findings table."""
    return set(connection.execute(f"SELECT RuleSource, SourceLine FROM {FINDINGS_TABLE}").fetchall())


def rule_from_text(text: str, path: str = "rule.yml") -> LoadedRule:
    [rule] = SigmaCollection.from_yaml(text).rules
    return LoadedRule(rule, path, bundled=False)


def rule_with_detection(detection: str, path: str = "rule.yml") -> LoadedRule:
    text = "title: rule pass test\nlogsource:\n    category: proxy\ndetection:\n" + textwrap.indent(
        textwrap.dedent(detection), "    "
    )
    return rule_from_text(text, path)


def backend_matches(connection: duckdb.DuckDBPyConnection, loaded: LoadedRule, events: list[dict[str, Any]]) -> list[bool]:
    """Return whether ``DuckDBBackend``'s condition for the rule matches each event."""
    where = " OR ".join(f"({query})" for query in DuckDBBackend().convert_rule(loaded.rule))
    insert_events(connection, events)
    lines = {line for (line,) in connection.execute(f'SELECT "SourceLine" FROM websession WHERE {where}').fetchall()}
    return [line in lines for line in range(1, len(events) + 1)]


def pass_matches(connection: duckdb.DuckDBPyConnection, loaded: LoadedRule, events: list[dict[str, Any]]) -> list[bool]:
    """Run one rule through the engine's rule pass; return whether it matched each event."""
    [compiled] = compile_rules([loaded])
    assert compiled.error is None, compiled.error
    insert_events(connection, events)
    run_rules(connection, [compiled])
    lines = {line for _, line in found(connection)}
    return [line in lines for line in range(1, len(events) + 1)]


# The building blocks


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        ("abc", "equals", "abc"),
        ("abc*", "prefix", "abc"),
        ("*abc", "suffix", "abc"),
        ("*abc*", "substring", "abc"),
        ("*", "suffix", ""),
        ("", "equals", ""),
        (r"a\*b*", "prefix", "a*b"),
    ],
)
def test_literal_test_shapes(value, kind, text):
    test = literal_test(SigmaString(value))

    assert test is not None
    assert test.kind == kind
    assert test.text == text


@pytest.mark.parametrize("value", ["a*b", "a?b", "*a*b*"])
def test_literal_test_rejects_inner_wildcards(value):
    assert literal_test(SigmaString(value)) is None


def test_re2_literal_matches_only_itself():
    connection = duckdb.connect()
    text = r"a.b(c)|d[e]{2}^$\+*?ж"

    pattern = re2_literal(text)

    assert connection.execute("SELECT regexp_full_match(?, ?)", [text, pattern]).fetchone() == (True,)
    assert connection.execute("SELECT regexp_matches(?, ?)", ["axb(c)|d[e]{2}^$\\+*?ж", pattern]).fetchone() == (False,)


def test_rule_pass_sql_has_no_like_escape():
    loaded = rule_with_detection(
        """
        selection:
            c-useragent|contains: ['a', 'b']
            c-uri|startswith: '/x'
            cs-host|endswith: '.example'
        condition: selection
        """
    )

    [where] = RulePassBackend().convert_rule(loaded.rule)

    assert "ESCAPE" not in where
    assert "contains(" in where
    assert "starts_with(" in where
    assert "ends_with(" in where


def test_long_value_list_becomes_regex():
    values = ", ".join(f"'v{number}.x'" for number in range(RulePassBackend.regex_list_min_values))
    loaded = rule_with_detection(f"selection:\n    c-useragent|contains: [{values}]\ncondition: selection\n")

    [where] = RulePassBackend().convert_rule(loaded.rule)

    assert where.count("regexp_matches(") == 1
    assert "contains(" not in where


def test_whole_value_list_becomes_in_list():
    loaded = rule_with_detection("selection:\n    cs-method: ['GET', 'POST', 'PUT']\ncondition: selection\n")

    [where] = RulePassBackend().convert_rule(loaded.rule)

    assert " IN (" in where


# Semantics


@pytest.mark.parametrize(
    "case", [case for case in conformance.CASES if not case.types], ids=lambda case: case.name
)
def test_rule_pass_conforms(connection, case):
    loaded = LoadedRule(conformance.rule_from_detection(case.detection), "case.yml", bundled=False)
    if case.lists:
        lists = PlaceholderLists("lists.yml", {name: tuple(values) for name, values in case.lists.items()})
        [loaded], problems = expand_placeholders([loaded], lists)
        assert problems == []

    [matched] = pass_matches(connection, loaded, [case.event])

    assert matched is case.expected, f"{case.detection} on {case.event}"


def test_regex_list_matches_like_separate_tests(connection):
    values = ["a.b", "(x)", "^y", "z$", "back\\\\slash", "Ünï", "İs", "q|r", "s+"]
    loaded = rule_with_detection(
        "selection:\n    c-useragent|contains:\n" + "".join(f"        - '{value}'\n" for value in values) + "condition: selection\n"
    )
    agents = ["xA.Bx", "axb", "((X))", "y^y", "Z$Z", "back\\slash", "üNÏ", "i̇s", "Q|R", "ss+", "q", "plain", None]

    events = [{"HttpUserAgent": agent} for agent in agents]

    matched = pass_matches(connection, loaded, events)

    assert matched[:7] == [True, False, True, True, True, True, True]
    assert matched[-3:] == [False, False, False]
    assert matched == backend_matches(connection, loaded, events)


def test_prefix_and_suffix_lists_anchor(connection):
    loaded = rule_with_detection(
        """
        selection:
            - c-uri|startswith: ['/a', '/b', '/c', '/d', '/e', '/f', '/g', '/h']
            - c-uri|endswith: ['.exe', '.dll', '.ps1', '.vbs', '.hta', '.js', '.bat', '.cmd']
        condition: selection
        """
    )
    urls = ["/a/x", "x/a", "x/file.EXE", "x/file.exe?x", "/h", "x/z.cmd", "x/z.cmd\n", None]
    events = [{"Url": url} for url in urls]

    matched = pass_matches(connection, loaded, events)

    assert matched == [True, False, True, False, True, True, False, False]
    assert matched == backend_matches(connection, loaded, events)


def test_list_longer_than_one_regex(connection):
    count = RulePassBackend.regex_list_max_values * 2 + 5
    loaded = rule_with_detection(
        "selection:\n    c-uri|contains:\n" + "".join(f"        - 'marker{number:04d}x'\n" for number in range(count))
        + "condition: selection\n"
    )
    urls = ["/marker0000x", f"/MARKER{count - 1:04d}X", "/marker9999x", "/marker0001"]

    [compiled] = compile_rules([loaded])
    matched = pass_matches(connection, loaded, [{"Url": url} for url in urls])

    assert compiled.folded_where.count("regexp_matches(") == 3
    assert matched == [True, True, False, False]


def test_missing_column_under_not(connection):
    loaded = rule_with_detection(
        """
        selection:
            c-useragent|startswith: 'rclone/v'
        filter:
            cs-host|endswith: ['.a', '.b', '.c', '.d', '.e', '.f', '.g', '.h']
        condition: selection and not filter
        """
    )
    events = [
        {"HttpUserAgent": "rclone/v1", "DstHostname": None},
        {"HttpUserAgent": "rclone/v1", "DstHostname": "x.a"},
        {"HttpUserAgent": "rclone/v1", "DstHostname": "x.z"},
        {"HttpUserAgent": None, "DstHostname": "x.z"},
    ]

    assert pass_matches(connection, loaded, events) == [True, False, True, False]


@settings(
    max_examples=differential.DEFAULT_EXAMPLES // 2,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), regex_lists=st.booleans())
def test_rule_pass_agrees_with_reference(connection, data, regex_lists):
    detection = data.draw(differential.detections(), label="detection")
    rows = data.draw(differential.events(detection), label="events")
    [rule] = SigmaCollection.from_yaml(differential.rule_text(detection)).rules
    lists = PlaceholderLists("lists.yml", {name: tuple(values) for name, values in differential.LISTS.items()})
    [loaded], problems = expand_placeholders([LoadedRule(rule, "generated.yml", bundled=False)], lists)
    assert problems == []

    expected = [sigma_reference.matches(detection, row, differential.LISTS) for row in rows]
    # Lists of two values take the regular-expression path too, so that it meets the generated values.
    threshold = 2 if regex_lists else RulePassBackend.regex_list_min_values
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RulePassBackend, "regex_list_min_values", threshold)
        assert pass_matches(connection, loaded, rows) == expected


# The engine


def test_rules_share_one_scan_and_keep_their_findings(connection):
    rclone = rule_with_detection("selection:\n    c-useragent|startswith: 'rclone/v'\ncondition: selection\n", "rclone.yml")
    post = rule_with_detection("selection:\n    cs-method: 'POST'\ncondition: selection\n", "post.yml")
    never = rule_with_detection("selection:\n    cs-host: 'nowhere.example'\ncondition: selection\n", "never.yml")
    insert_events(
        connection,
        [
            {"HttpUserAgent": "rclone/v1.66.0", "HttpRequestMethod": "POST"},
            {"HttpUserAgent": "rclone/v1.66.0", "HttpRequestMethod": "GET"},
            {"HttpUserAgent": "curl/8.5.0", "HttpRequestMethod": "post"},
            {"HttpUserAgent": "curl/8.5.0", "HttpRequestMethod": "GET"},
        ],
    )

    hits = run_rules(connection, compile_rules([rclone, post, never]))

    assert hits == {"rclone.yml:rule pass test": 2, "post.yml:rule pass test": 2, "never.yml:rule pass test": 0}
    assert found(connection) == {("rclone.yml", 1), ("rclone.yml", 2), ("post.yml", 1), ("post.yml", 3)}
    assert connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'rule_pass%'").fetchone() == (0,)


def test_rule_metadata_reaches_findings(connection):
    loaded = rule_from_text(
        textwrap.dedent(
            """\
            title: tagged rule
            id: 5b3c1e62-9f0a-4b7e-8c55-1d2f3a4b5c6d
            level: high
            tags:
                - attack.exfiltration
            logsource:
                category: proxy
            detection:
                selection:
                    c-useragent|startswith: 'rclone/v'
                condition: selection
            """
        ),
        "tagged.yml",
    )
    insert_events(connection, [{"HttpUserAgent": "rclone/v1", "Url": "http://x/"}])

    run_rules(connection, compile_rules([loaded]))
    [row] = connection.execute(f"SELECT RuleId, RuleTitle, RuleLevel, RuleTags, RuleSource, Url FROM {FINDINGS_TABLE}").fetchall()

    assert row == ("5b3c1e62-9f0a-4b7e-8c55-1d2f3a4b5c6d", "tagged rule", "high", ["attack.exfiltration"], "tagged.yml", "http://x/")


def sigmahq_proxy_rule_files() -> list[Path]:
    if not SIGMAHQ_PROXY_RULES.is_dir():
        return []
    return sorted(SIGMAHQ_PROXY_RULES.glob("*.yml"))


def probe_events(rules: list[LoadedRule]) -> list[dict[str, Any]]:
    """Build events from the rules' own string values, so that many rules match some of them."""
    columns = ["HttpUserAgent", "Url", "DstHostname", "UrlExtension", "HttpRequestMethod", "UrlQuery", "UrlPath"]
    events: list[dict[str, Any]] = []
    for loaded in rules:
        for detection in loaded.rule.detection.detections.values():
            for item in detection.detection_items:
                for sub in getattr(item, "detection_items", [item]):
                    for value in getattr(sub, "value", []):
                        text = str(value).replace("*", "")
                        column = columns[len(events) % len(columns)]
                        events.append({column: text, "HttpRequestMethod": "GET" if len(events) % 2 else "POST"})
                        events.append({"HttpUserAgent": text.upper(), "Url": "http://" + text, "RawEvent": text})
    return events


@pytest.mark.skipif(not sigmahq_proxy_rule_files(), reason="SigmaHQ proxy rules not available")
def test_sigmahq_rules_match_as_one_by_one(connection):
    ruleset = load_rules([str(path) for path in sigmahq_proxy_rule_files()], include_bundled=False)
    events = probe_events(ruleset.rules)
    insert_events(connection, events)

    run_rules(connection, compile_rules(ruleset.rules))
    one_by_one = set()
    for loaded in ruleset.rules:
        where = " OR ".join(f"({query})" for query in DuckDBBackend().convert_rule(loaded.rule))
        lines = connection.execute(f'SELECT "SourceLine" FROM websession WHERE {where}').fetchall()
        one_by_one |= {(loaded.path, line) for (line,) in lines}

    assert len({path for path, _ in one_by_one}) >= 20
    assert found(connection) == one_by_one
