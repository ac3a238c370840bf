"""The DuckDB backend against a real DuckDB WebSession table: Sigma semantics, escaping, the SigmaHQ proxy rules."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

from proxyhunt.backends.duckdb import DuckDBBackend
from proxyhunt.engines.duckdb import FINDINGS_TABLE, CompiledRule, compile_rules, run_rules
from proxyhunt.formats.sql import create_macros, quote_identifier
from proxyhunt.rules.loader import LoadedRule, load_rules
from proxyhunt.schema import create_table_sql

from corpus import CORPUS

SIGMAHQ_PROXY_RULES = CORPUS / "sigma-rules" / "proxy"

RCLONE_USER_AGENTS = ["RClone/V1.66.0", "rclone/v1.68.2", "xrclone/v1.0", "Mozilla/5.0 rclone/v1.66", None]


def make_rule(detection: str, logsource: str = "category: proxy") -> SigmaRule:
    """Build a rule from the YAML text of its detection block and log source."""
    text = (
        "title: test rule\n"
        "logsource:\n" + textwrap.indent(logsource, "    ") + "\n"
        "detection:\n" + textwrap.indent(textwrap.dedent(detection), "    ")
    )
    rules = SigmaCollection.from_yaml(text).rules
    assert len(rules) == 1
    return rules[0]


def where_clause(rule: SigmaRule) -> str:
    queries = DuckDBBackend().convert_rule(rule)
    assert queries, "the backend returned no query"
    return " OR ".join(f"({query})" for query in queries)


@pytest.fixture
def connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    create_macros(connection)
    connection.execute(create_table_sql())
    yield connection
    connection.close()


def insert_rows(connection: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Insert rows into websession; each row's SourceLine is its 1-based position."""
    connection.execute("DELETE FROM websession")
    for line, row in enumerate(rows, start=1):
        values = {"SourceLine": line, **row}
        columns = ", ".join(quote_identifier(name) for name in values)
        marks = ", ".join("?" for _ in values)
        connection.execute(f"INSERT INTO websession ({columns}) VALUES ({marks})", list(values.values()))


def matched_lines(connection: duckdb.DuckDBPyConnection, detection: str, rows: list[dict[str, Any]], **rule) -> list[int]:
    """Return the SourceLine of each row that the rule matches."""
    insert_rows(connection, rows)
    where = where_clause(make_rule(detection, **rule))
    result = connection.execute(f'SELECT "SourceLine" FROM websession WHERE {where} ORDER BY "SourceLine"')
    return [line for (line,) in result.fetchall()]


def matched_values(connection: duckdb.DuckDBPyConnection, detection: str, column: str, values: list[Any]) -> list[Any]:
    """Return the values of ``column`` that the rule matches, one row per value."""
    lines = matched_lines(connection, detection, [{column: value} for value in values])
    return [values[line - 1] for line in lines]


# Strings, case and wildcards


def test_startswith_rclone_user_agent(connection):
    detection = """
        selection:
            c-useragent|startswith: 'rclone/v'
        condition: selection
    """
    matched = matched_values(connection, detection, "HttpUserAgent", RCLONE_USER_AGENTS)
    assert matched == ["RClone/V1.66.0", "rclone/v1.68.2"]


def test_plain_value_matches_whole_value(connection):
    detection = """
        selection:
            c-useragent: 'curl/8.5.0'
        condition: selection
    """
    values = ["curl/8.5.0", "CURL/8.5.0", "curl/8.5.0 extra", "my curl/8.5.0"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["curl/8.5.0", "CURL/8.5.0"]


def test_star_wildcard_matches_any_run(connection):
    detection = """
        selection:
            c-useragent: 'a*c'
        condition: selection
    """
    values = ["ac", "abc", "abbbc", "abd", "xabc"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["ac", "abc", "abbbc"]


def test_question_mark_matches_one_character(connection):
    detection = """
        selection:
            c-useragent: 'a?c'
        condition: selection
    """
    values = ["abc", "a?c", "ac", "abbc"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["abc", "a?c"]


def test_escaped_star_is_literal(connection):
    detection = r"""
        selection:
            c-useragent: 'a\*c'
        condition: selection
    """
    values = ["a*c", "abc", "ac", r"a\*c"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["a*c"]


def test_escaped_question_mark_is_literal(connection):
    detection = r"""
        selection:
            c-useragent: 'a\?c'
        condition: selection
    """
    values = ["a?c", "abc", "ac", r"a\?c"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["a?c"]


def test_escaped_question_mark_with_wildcard(connection):
    # The LIKE path (a wildcard elsewhere in the value) must keep \? literal too.
    detection = r"""
        selection:
            c-uri|contains: '/index.php\?id='
        condition: selection
    """
    values = ["http://x/index.php?id=1", "http://x/index.phpXid=1", "http://x/index.php"]
    assert matched_values(connection, detection, "Url", values) == ["http://x/index.php?id=1"]


def test_escaped_backslash_is_one_backslash(connection):
    detection = r"""
        selection:
            c-useragent: 'a\\c'
        condition: selection
    """
    values = ["a\\c", "a\\\\c", "ac"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["a\\c"]


def test_escaped_backslash_before_wildcard(connection):
    # \\* is a literal backslash followed by the * wildcard.
    detection = r"""
        selection:
            c-useragent: 'a\\*'
        condition: selection
    """
    values = ["a\\", "a\\tail", "a*", "atail"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["a\\", "a\\tail"]


@pytest.mark.parametrize("modifier", ["", "|contains", "|startswith", "|endswith"])
def test_like_metacharacters_are_literal(connection, modifier):
    detection = f"""
        selection:
            c-uri{modifier}: '100%_done'
        condition: selection
    """
    values = ["100%_done", "100abdone", "100%xdone", "100_%done"]
    assert matched_values(connection, detection, "Url", values) == ["100%_done"]


@pytest.mark.parametrize("modifier", ["", "|contains"])
def test_single_quote_in_value_is_literal(connection, modifier):
    detection = f"""
        selection:
            c-useragent{modifier}: "it's'); DROP TABLE websession; --"
        condition: selection
    """
    values = ["it's'); DROP TABLE websession; --", "its"]
    matched = matched_values(connection, detection, "HttpUserAgent", values)

    assert matched == ["it's'); DROP TABLE websession; --"]
    assert connection.execute("SELECT count(*) FROM websession").fetchall() == [(2,)]


def test_contains_keeps_trailing_backslash(connection):
    detection = r"""
        selection:
            c-uri|contains: 'C:\temp\'
        condition: selection
    """
    values = ["x C:\\temp\\y", "c:\\TEMP\\", "C:\\temp", "C:\\tempy", "C:/temp/"]
    assert matched_values(connection, detection, "Url", values) == ["x C:\\temp\\y", "c:\\TEMP\\"]


def test_endswith_keeps_trailing_backslash(connection):
    detection = r"""
        selection:
            c-uri|endswith: '\temp\'
        condition: selection
    """
    values = ["C:\\temp\\", "C:\\temp", "C:\\temp\\x"]
    assert matched_values(connection, detection, "Url", values) == ["C:\\temp\\"]


def test_non_ascii_case_folding_agrees(connection):
    # Plain values use lower() and wildcard values ILIKE: both fold non-ASCII letters.
    plain = """
        selection:
            c-useragent: 'ÉCOLE'
        condition: selection
    """
    wildcard = """
        selection:
            c-useragent|startswith: 'ÉCOLE'
        condition: selection
    """
    values = ["école", "ÉCOLE", "ecole"]
    assert matched_values(connection, plain, "HttpUserAgent", values) == ["école", "ÉCOLE"]
    assert matched_values(connection, wildcard, "HttpUserAgent", values) == ["école", "ÉCOLE"]


def test_cased_plain_value(connection):
    detection = """
        selection:
            c-useragent|cased: 'rclone/v1.68.2'
        condition: selection
    """
    values = ["rclone/v1.68.2", "RClone/V1.68.2", None]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["rclone/v1.68.2"]


def test_cased_startswith(connection):
    detection = """
        selection:
            c-useragent|cased|startswith: 'rclone/v'
        condition: selection
    """
    matched = matched_values(connection, detection, "HttpUserAgent", RCLONE_USER_AGENTS)
    assert matched == ["rclone/v1.68.2"]


# Regular expressions


def test_regex_is_case_sensitive_and_unanchored(connection):
    detection = r"""
        selection:
            c-useragent|re: 'rclone/v1\.6[0-9]'
        condition: selection
    """
    matched = matched_values(connection, detection, "HttpUserAgent", RCLONE_USER_AGENTS)
    assert matched == ["rclone/v1.68.2", "Mozilla/5.0 rclone/v1.66"]


def test_regex_ignorecase_flag(connection):
    detection = r"""
        selection:
            c-useragent|re|i: '^rclone/v1\.6[0-9]'
        condition: selection
    """
    matched = matched_values(connection, detection, "HttpUserAgent", RCLONE_USER_AGENTS)
    assert matched == ["RClone/V1.66.0", "rclone/v1.68.2"]


def test_regex_quote_is_literal(connection):
    detection = """
        selection:
            c-useragent|re: "^it's$"
        condition: selection
    """
    assert matched_values(connection, detection, "HttpUserAgent", ["it's", "its"]) == ["it's"]


def test_regex_lookahead_not_runnable():
    # DuckDB uses RE2, which has no look-ahead; the rule must be reported, not crash the hunt.
    rule = make_rule(
        """
        selection:
            c-useragent|re: '(?!curl)rclone'
        condition: selection
        """
    )
    [compiled] = compile_rules([LoadedRule(rule, "lookahead.yml", bundled=False)])

    assert not compiled.runnable
    assert "cannot be run in DuckDB" in compiled.error
    assert "RE2" in compiled.error


# Numbers, empty values and null


def test_number_matches_integer_column(connection):
    detection = """
        selection:
            sc-status: 407
        condition: selection
    """
    assert matched_values(connection, detection, "HttpStatusCode", [407, 200, None, 4070]) == [407]


def test_quoted_number_matches_integer_column(connection):
    detection = """
        selection:
            sc-status: '407'
        condition: selection
    """
    assert matched_values(connection, detection, "HttpStatusCode", [407, 200, None]) == [407]


def test_number_comparison_modifiers(connection):
    detection = """
        selection:
            cs-bytes|gte: 1000000
        condition: selection
    """
    values = [999999, 1000000, 5000000000, None]
    assert matched_values(connection, detection, "SrcBytes", values) == [1000000, 5000000000]


def test_empty_string_matches_only_empty_field(connection):
    detection = """
        selection:
            c-useragent: ''
        condition: selection
    """
    assert matched_values(connection, detection, "HttpUserAgent", ["", None, "curl/8.5.0", " "]) == [""]


def test_null_matches_missing_field(connection):
    detection = """
        selection:
            c-useragent: null
        condition: selection
    """
    assert matched_values(connection, detection, "HttpUserAgent", ["", None, "curl/8.5.0"]) == [None]


def test_not_selection_true_for_missing_field(connection):
    detection = """
        selection:
            c-useragent|startswith: 'rclone/v'
        condition: not selection
    """
    matched = matched_values(connection, detection, "HttpUserAgent", RCLONE_USER_AGENTS)
    assert matched == ["xrclone/v1.0", "Mozilla/5.0 rclone/v1.66", None]


def test_not_over_and_with_missing_field(connection):
    # Sigma is two-valued: a missing field does not match, so the AND is false and NOT makes it true.
    detection = """
        selection:
            c-useragent|startswith: 'rclone/v'
            sc-status: 200
        condition: not selection
    """
    rows = [
        {"HttpUserAgent": "rclone/v1.66.0", "HttpStatusCode": 200},
        {"HttpUserAgent": None, "HttpStatusCode": 200},
        {"HttpUserAgent": "rclone/v1.66.0", "HttpStatusCode": None},
    ]
    assert matched_lines(connection, detection, rows) == [2, 3]


# Keywords


def test_keyword_searches_raw_event(connection):
    detection = """
        keywords:
            - 'RCLONE/V'
        condition: keywords
    """
    values = ['10.0.0.5 "GET /" "rclone/v1.66.0"', "10.0.0.5 curl", None]
    assert matched_values(connection, detection, "RawEvent", values) == ['10.0.0.5 "GET /" "rclone/v1.66.0"']


def test_keyword_like_metacharacters_are_literal(connection):
    detection = """
        keywords:
            - '50%_off'
        condition: keywords
    """
    values = ["sale 50%_off now", "sale 50xxoff now"]
    assert matched_values(connection, detection, "RawEvent", values) == ["sale 50%_off now"]


def test_keyword_list_is_or(connection):
    detection = """
        keywords:
            - 'rclone'
            - 'restic'
        condition: keywords
    """
    values = ["rclone/v1", "restic/0.16", "curl"]
    assert matched_values(connection, detection, "RawEvent", values) == ["rclone/v1", "restic/0.16"]


# Lists, maps and conditions


def test_value_list_is_or(connection):
    detection = """
        selection:
            c-useragent|startswith:
                - 'rclone/'
                - 'restic/'
        condition: selection
    """
    values = ["rclone/v1", "restic/0.16", "curl/8"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["rclone/v1", "restic/0.16"]


def test_contains_all_is_and(connection):
    detection = """
        selection:
            c-uri|contains|all:
                - 'upload'
                - 'bucket'
        condition: selection
    """
    values = ["/upload/bucket", "/upload", "/bucket"]
    assert matched_values(connection, detection, "Url", values) == ["/upload/bucket"]


def test_map_is_and(connection):
    detection = """
        selection:
            c-useragent|startswith: 'rclone/v'
            cs-method: 'PUT'
        condition: selection
    """
    rows = [
        {"HttpUserAgent": "rclone/v1.66.0", "HttpRequestMethod": "PUT"},
        {"HttpUserAgent": "rclone/v1.66.0", "HttpRequestMethod": "GET"},
        {"HttpUserAgent": "curl/8.5.0", "HttpRequestMethod": "PUT"},
        {"HttpUserAgent": "rclone/v1.66.0", "HttpRequestMethod": None},
    ]
    assert matched_lines(connection, detection, rows) == [1]


def test_list_of_maps_is_or(connection):
    detection = """
        selection:
            - c-useragent|startswith: 'rclone/v'
            - cs-host|endswith: '.mega.nz'
        condition: selection
    """
    rows = [
        {"HttpUserAgent": "rclone/v1.66.0", "DstHostname": "example.com"},
        {"HttpUserAgent": "curl/8.5.0", "DstHostname": "g.api.mega.nz"},
        {"HttpUserAgent": "curl/8.5.0", "DstHostname": "example.com"},
    ]
    assert matched_lines(connection, detection, rows) == [1, 2]


def test_one_of_pattern(connection):
    detection = """
        sel_rclone:
            c-useragent|startswith: 'rclone/v'
        sel_restic:
            c-useragent|startswith: 'restic/'
        other:
            c-useragent: 'curl/8.5.0'
        condition: 1 of sel*
    """
    values = ["rclone/v1", "restic/0.16", "curl/8.5.0"]
    assert matched_values(connection, detection, "HttpUserAgent", values) == ["rclone/v1", "restic/0.16"]


def test_all_of_them(connection):
    detection = """
        sel_agent:
            c-useragent|startswith: 'rclone/v'
        sel_method:
            cs-method: 'PUT'
        condition: all of them
    """
    rows = [
        {"HttpUserAgent": "rclone/v1.66.0", "HttpRequestMethod": "PUT"},
        {"HttpUserAgent": "rclone/v1.66.0", "HttpRequestMethod": "GET"},
    ]
    assert matched_lines(connection, detection, rows) == [1]


def test_selection_and_not_filter(connection):
    detection = """
        selection:
            c-useragent|startswith: 'rclone/v'
        filter_backup:
            cs-host: 'backup.example.com'
        condition: selection and not filter_backup
    """
    rows = [
        {"HttpUserAgent": "rclone/v1.66.0", "DstHostname": "backup.example.com"},
        {"HttpUserAgent": "rclone/v1.66.0", "DstHostname": "mega.nz"},
        {"HttpUserAgent": "rclone/v1.66.0", "DstHostname": None},
    ]
    assert matched_lines(connection, detection, rows) == [2, 3]


def test_condition_without_detection_not_runnable():
    rule = make_rule(
        """
        selection:
            c-useragent: 'x'
        condition: 1 of nothing*
        """
    )
    [compiled] = compile_rules([LoadedRule(rule, "empty-condition.yml", bundled=False)])

    assert not compiled.runnable
    assert "selects no detection" in compiled.error


# Field mapping


def test_field_without_column_is_not_runnable():
    rule = make_rule(
        """
        selection:
            CommandLine|contains: 'rclone'
        condition: selection
        """
    )
    [compiled] = compile_rules([LoadedRule(rule, "unknown-field.yml", bundled=False)])

    assert not compiled.runnable
    assert compiled.where is None
    assert "'CommandLine'" in compiled.error


@pytest.mark.parametrize("field", ["cs-referrer", "cs-Referrer", "cs-referer"])
def test_referrer_spellings_map_to_one_column(connection, field):
    detection = f"""
        selection:
            {field}|contains: 'evil.example'
        condition: selection
    """
    values = ["http://evil.example/x", "http://good.example/"]
    assert matched_values(connection, detection, "HttpReferrer", values) == ["http://evil.example/x"]


def test_cs_bytes_is_upload_volume(connection):
    detection = """
        selection:
            cs-bytes|gt: 1000
        condition: selection
    """
    rows = [{"SrcBytes": 5000, "DstBytes": 10}, {"SrcBytes": 10, "DstBytes": 5000}]
    assert matched_lines(connection, detection, rows) == [1]


def test_zeek_http_fields_map_to_columns(connection):
    detection = """
        selection:
            user_agent|startswith: 'rclone/v'
            id.orig_h: '10.0.0.5'
            method: 'PUT'
        condition: selection
    """
    rows = [
        {"HttpUserAgent": "rclone/v1.66.0", "SrcIpAddr": "10.0.0.5", "HttpRequestMethod": "PUT"},
        {"HttpUserAgent": "rclone/v1.66.0", "SrcIpAddr": "10.0.0.6", "HttpRequestMethod": "PUT"},
    ]
    matched = matched_lines(connection, detection, rows, logsource="product: zeek\nservice: http")
    assert matched == [1]


def test_zeek_field_in_proxy_rule_is_not_runnable():
    # Zeek's names apply only to rules whose log source is Zeek http.log.
    rule = make_rule(
        """
        selection:
            user_agent|startswith: 'rclone/v'
        condition: selection
        """
    )
    [compiled] = compile_rules([LoadedRule(rule, "proxy-with-zeek-field.yml", bundled=False)])

    assert not compiled.runnable
    assert "'user_agent'" in compiled.error


def test_rule_columns_of_zeek_rule():
    rule = make_rule(
        """
        selection:
            user_agent|startswith: 'rclone/v'
            status_code: 200
        condition: selection
        """,
        logsource="product: zeek\nservice: http",
    )
    [compiled] = compile_rules([LoadedRule(rule, "zeek.yml", bundled=False)])

    assert compiled.runnable
    assert compiled.columns == frozenset({"HttpUserAgent", "HttpStatusCode"})


# The engine


def test_run_rules_skips_rule_that_fails(connection, caplog):
    good_rule = make_rule(
        """
        selection:
            c-useragent|startswith: 'rclone/v'
        condition: selection
        """
    )
    good = compile_rules([LoadedRule(good_rule, "good.yml", bundled=False)])[0]
    broken = CompiledRule(
        LoadedRule(make_rule("selection:\n    c-useragent: 'x'\ncondition: selection\n"), "broken.yml", bundled=False),
        where="regexp_matches(\"HttpUserAgent\", '(?!x)')",
        columns=frozenset({"HttpUserAgent"}),
    )
    insert_rows(connection, [{"HttpUserAgent": "rclone/v1.66.0"}, {"HttpUserAgent": "curl/8.5.0"}])

    with caplog.at_level(logging.ERROR, logger="proxyhunt.engines.duckdb"):
        hits = run_rules(connection, [broken, good])

    assert hits == {"good.yml:test rule": 1}
    assert connection.execute(f"SELECT count(*) FROM {FINDINGS_TABLE}").fetchall() == [(1,)]
    assert "broken.yml" in caplog.text


# The SigmaHQ proxy rules


def sigmahq_proxy_rule_files() -> list[Path]:
    if not SIGMAHQ_PROXY_RULES.is_dir():
        return []
    return sorted(SIGMAHQ_PROXY_RULES.glob("*.yml"))


@pytest.mark.skipif(not SIGMAHQ_PROXY_RULES.is_dir(), reason=f"rule corpus not found at {SIGMAHQ_PROXY_RULES}")
def test_sigmahq_proxy_corpus_present():
    assert len(sigmahq_proxy_rule_files()) >= 50


@pytest.mark.parametrize("path", sigmahq_proxy_rule_files(), ids=lambda path: path.name)
def test_sigmahq_proxy_rule_runs(connection, path):
    ruleset = load_rules([str(path)], include_bundled=False)

    assert [str(problem) for problem in ruleset.problems] == []
    assert [str(skipped) for skipped in ruleset.skipped] == []
    assert ruleset.rules

    for compiled in compile_rules(ruleset.rules):
        assert compiled.error is None
        assert compiled.runnable
        count = connection.execute(f"SELECT count(*) FROM websession WHERE {compiled.where}").fetchall()
        assert count == [(0,)]
