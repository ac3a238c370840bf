"""SPL and ES|QL export: exact values, escaping, and a structural check of every golden query.

No Splunk or Elasticsearch runs here, so the golden queries are checked for
structure: the source line, one clause per line, balanced parentheses and
string literals that close.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from proxyhunt.export import convert
from proxyhunt.export.esql import lucene_regex

GOLDEN = Path(__file__).parent / "golden"


def write_rule(tmp_path: Path, detection: str) -> Path:
    path = tmp_path / "rule.yml"
    path.write_text(
        "title: Test rule\nlogsource:\n    category: proxy\ndetection:\n" + textwrap.indent(textwrap.dedent(detection), "    "),
        encoding="utf-8",
    )
    return path


def query(path: Path, target: str) -> str:
    conversions, _ = convert([str(path)], target, include_bundled=False)
    assert conversions[0].ok, conversions[0].error
    return conversions[0].query


def test_spl_bundled_rule() -> None:
    conversions, _ = convert([], "spl")
    assert conversions[0].query == (
        "| datamodel Web Web search\n"
        "| where (isnotnull('Web.http_user_agent') AND match('Web.http_user_agent', \"(?i)^rclone/v\"))"
    )


def test_esql_bundled_rule() -> None:
    conversions, _ = convert([], "esql")
    assert conversions[0].query == (
        'FROM logs-*\n| WHERE (user_agent.original IS NOT NULL AND TO_LOWER(user_agent.original) LIKE "rclone/v*")'
    )


def test_spl_path_keeps_dots(tmp_path: Path) -> None:
    spl = query(write_rule(tmp_path, "sel:\n    c-uri|contains: '/../../etc/passwd'\ncondition: sel\n"), "spl")
    assert 'match(\'Web.url\', "(?i)/\\\\.\\\\./\\\\.\\\\./etc/passwd")' in spl


def test_trailing_backslash_escaped(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "sel:\n    c-uri|contains: 'C:\\Windows\\'\ncondition: sel\n")
    # SPL: the regex \\ (one literal backslash) is written "\\\\" in an SPL string.
    assert '"(?i)C:\\\\\\\\Windows\\\\\\\\"' in query(path, "spl")
    # ES|QL: the LIKE pattern \\ (one literal backslash) is written "\\\\" in an ES|QL string.
    assert 'LIKE "*c:\\\\\\\\windows\\\\\\\\*"' in query(path, "esql")


def test_cased_values(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "sel:\n    c-useragent|cased: 'Go-http-client/1.1'\ncondition: sel\n")
    assert 'match(\'Web.http_user_agent\', "^Go-http-client/1\\\\.1\\\\z")' in query(path, "spl")
    assert 'user_agent.original == "Go-http-client/1.1"' in query(path, "esql")


def test_not_over_missing_field_is_true(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "sel:\n    cs-method: GET\nfilter:\n    c-useragent: 'x*'\ncondition: sel and not filter\n")
    # The guard keeps each comparison two-valued, so NOT over a missing user agent is true.
    assert "NOT ((isnotnull('Web.http_user_agent') AND" in query(path, "spl")
    assert "NOT ((user_agent.original IS NOT NULL AND" in query(path, "esql")


@pytest.mark.parametrize(
    ("regex", "lucene"),
    [("a|b", ".*(a|b).*"), ("^/x\\d+$", "(/x[0-9]+)"), ("mail@host", ".*(mail\\@host).*")],
)
def test_lucene_regex_translation(regex: str, lucene: str) -> None:
    assert lucene_regex(regex) == lucene


def test_lucene_regex_rejects_lookahead() -> None:
    from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="groups that start with"):
        lucene_regex("a(?!b)")


def balanced(text: str) -> bool:
    """True when parentheses balance outside double-quoted strings and every string closes."""
    depth = 0
    in_string = False
    escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
            continue
        if character == '"':
            in_string = True
        elif character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and not in_string


# The pipeline of an SPL correlation query after its source line, one pattern
# per line: a flag for each correlated rule, the events that any rule flags,
# the group-by fields present, the sliding window, the condition, the rule title.
SPL_CORRELATION_SHAPE = (
    r"\| eval CorrelatedRule\d+=if\(.+, 1, 0\)",
    r"\| where CorrelatedRule\d+=1( OR CorrelatedRule\d+=1)*",
    r"\| where isnotnull\('Web\.\w+'\)",
    r"\| eval CorrelatedHits=CorrelatedRule\d+( \+ CorrelatedRule\d+)*",
    r"\| sort 0 _time",
    r"\| streamstats time_window=\d+s .+ AS \w+( BY Web\.\w+( Web\.\w+)*)?",
    r"\| eval Value=.+",
    r"\| where Value (>|>=) \d+",
    r'\| eval CorrelationRule=".*"',
)


def golden_blocks(target: str, extension: str) -> list[tuple[str, list[str]]]:
    """Return (file name, lines) of each query in the golden files; a rule file with a correlation has several."""
    files = sorted((GOLDEN / target).glob(f"*.{extension}"))
    assert files, f"no golden files under {GOLDEN / target}"
    blocks = []
    for path in files:
        for block in path.read_text(encoding="utf-8").rstrip("\n").split("\n\n"):
            blocks.append((path.name, block.split("\n")))
    return blocks


def is_correlation(lines: list[str]) -> bool:
    return any(line.startswith("| streamstats ") for line in lines)


@pytest.mark.parametrize(
    ("target", "extension", "first_line", "clauses"),
    [
        ("spl", "spl", "| datamodel Web Web search", ("| where ", "| eval ")),
        ("esql", "esql", "FROM logs-*", ("| WHERE ",)),
    ],
)
def test_golden_structure(target: str, extension: str, first_line: str, clauses: tuple[str, ...]) -> None:
    for name, lines in golden_blocks(target, extension):
        if lines[0].startswith("error: "):
            assert len(lines) == 1, f"{name}: an error block is one line"
            continue
        assert lines[0] == first_line, name
        if is_correlation(lines):
            continue
        for line in lines[1:]:
            assert line.startswith(clauses), f"{name}: {line[:60]}"
            assert balanced(line), f"{name}: unbalanced {line[:80]}"


def test_golden_spl_correlation_shape() -> None:
    correlations = [(name, lines) for name, lines in golden_blocks("spl", "spl") if is_correlation(lines)]
    assert correlations, "no SPL correlation query in the golden files"
    for name, lines in correlations:
        assert lines[0] == "| datamodel Web Web search", name
        position = 0
        for line in lines[1:]:
            # Each line matches the next pattern of the shape at or after the previous line's, so the order is fixed.
            while position < len(SPL_CORRELATION_SHAPE) and not re.fullmatch(SPL_CORRELATION_SHAPE[position], line):
                position += 1
            assert position < len(SPL_CORRELATION_SHAPE), f"{name}: out of order or unknown: {line[:80]}"
            assert balanced(line), f"{name}: unbalanced {line[:80]}"
        assert lines[-1].startswith("| eval CorrelationRule="), name


def test_golden_esql_rejects_correlations() -> None:
    # ES|QL has no sliding windows, so every correlation rule is an error block, never a query.
    for name in ("proxy_rclone_cloud_upload_volume", "proxy_rclone_go_connect_volume", "proxy_rclone_mega_upload_ramp"):
        blocks = (GOLDEN / "esql" / f"{name}.esql").read_text(encoding="utf-8").rstrip("\n").split("\n\n")
        assert blocks[-1].startswith("error: "), name
        assert "sliding time windows" in blocks[-1], name


def test_lone_wildcard_tests_presence(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "sel:\n    c-useragent: '*'\ncondition: sel\n")
    assert query(path, "spl").endswith("| where isnotnull('Web.http_user_agent')")
    assert query(path, "esql").endswith("| WHERE user_agent.original IS NOT NULL")
    assert query(path, "kql").endswith("| where isnotempty(HttpUserAgent)")


def test_cidr_exact_for_ipv4_and_ipv6(tmp_path: Path) -> None:
    path = write_rule(
        tmp_path, "sel:\n    dst_ip|cidr:\n        - '2001:db8::/48'\n        - '2001:db8::/33'\n        - '10.0.0.0/8'\n"
        "condition: not sel\n",
    )
    spl = query(path, "spl")
    # A prefix match on the text (2001:db8:) would match the whole /32.
    assert "match('Web.dest'" not in spl
    assert "(isnotnull('Web.dest') AND cidrmatch(\"2001:db8::/48\", 'Web.dest'))" in spl
    assert "(isnotnull('Web.dest') AND cidrmatch(\"2001:db8::/33\", 'Web.dest'))" in spl
    assert "(isnotnull('Web.dest') AND cidrmatch(\"10.0.0.0/8\", 'Web.dest'))" in spl
    esql = query(path, "esql")
    assert 'CIDR_MATCH(destination.ip, "2001:db8::/48")' in esql
    assert 'CIDR_MATCH(destination.ip, "2001:db8::/33")' in esql
