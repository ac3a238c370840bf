"""Line prefilter: which literals a rule set proves, and which raw lines a prefilter keeps."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection

from proxyhunt.engines.duckdb import compile_rules
from proxyhunt.engines.prefilter import rule_clauses, rule_literals, rule_set_clauses, rule_set_literals
from proxyhunt.formats import get_format, literal_scan
from proxyhunt.formats.prefilter import Escape, LinePrefilter, without_longer
from proxyhunt.rules.loader import load_rules
from proxyhunt.rules.placeholders import apply_lists, lists_in_force

# Every test runs with the Hyperscan literal search and with the re search.
pytestmark = pytest.mark.usefixtures("literal_search")

COLUMNS = frozenset({"HttpUserAgent", "Url", "DstHostname"})


def _rule(detection: str):
    text = f"title: test\nlogsource:\n  category: proxy\ndetection:\n{detection}"
    return SigmaCollection.from_yaml(text).rules[0]


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("  selection:\n    c-useragent|startswith: 'rclone/v'\n  condition: selection", {"rclone/v"}),
        ("  selection:\n    c-useragent: 'RClone/V1.66.0'\n  condition: selection", {"rclone/v1.66.0"}),
        # An AND needs only one operand's literal; an OR needs one from every operand.
        (
            "  a:\n    c-useragent|contains: 'rclone'\n    cs-method: PUT\n  condition: a",
            {"rclone"},
        ),
        (
            "  a:\n    c-useragent|contains: 'rclone'\n  b:\n    c-uri|contains: '/upload/'\n  condition: a or b",
            {"rclone", "/upload/"},
        ),
        # The longest run between wildcards is the literal.
        ("  a:\n    c-useragent: 'ab*rclone/v1?x'\n  condition: a", {"rclone/v1"}),
        # A keyword is searched over the raw line.
        ("  keywords:\n    - 'rclone'\n  condition: keywords", {"rclone"}),
        # The longest ASCII part; i, k and s count, since lines with the non-ASCII
        # characters that fold to them are kept anyway.
        ("  a:\n    cs-host: 'downloads.rclone.org'\n  condition: a", {"downloads.rclone.org"}),
        ("  a:\n    cs-host: '*.wasabisys.com'\n  condition: a", {".wasabisys.com"}),
        ("  a:\n    c-useragent: 'ärger'\n  condition: a", {"rger"}),
        ("  a:\n    c-useragent: 'Desktop'\n  condition: a", {"desktop"}),
        ("  a:\n    c-useragent: 'kiss'\n  condition: a", {"kiss"}),
        # An HTTP method is common, so the rarer operand of the AND is chosen.
        (
            "  a:\n    cs-method: CONNECT\n    c-uri|endswith: ':22'\n  condition: a",
            {":22"},
        ),
        # A literal that contains another one of the set adds nothing.
        (
            "  a:\n    c-useragent|contains:\n      - 'rclone/'\n      - 'apn/1.0 rclone/'\n  condition: a",
            {"rclone/"},
        ),
    ],
)
def test_rule_literals_proven(detection, expected):
    assert rule_literals(_rule(detection), COLUMNS) == frozenset(expected)


@pytest.mark.parametrize(
    "detection",
    [
        # A NOT, a regular expression and a number prove nothing.
        "  a:\n    c-useragent: 'rclone'\n  condition: not a",
        "  a:\n    c-useragent|re: 'rclone/v'\n  condition: a",
        "  a:\n    sc-status: 407\n  condition: a",
        # One OR operand without a literal spoils the whole OR.
        "  a:\n    c-useragent: 'rclone'\n  b:\n    sc-status: 407\n  condition: a or b",
        # A column that the format does not copy from the raw line.
        "  a:\n    cs-referrer: 'rclone'\n  condition: a",
        # Too short, also once the non-ASCII characters are left out.
        "  a:\n    c-useragent: 'rc*'\n  condition: a",
        "  a:\n    c-useragent: 'ab\u00e4cd'\n  condition: a",
        # A placeholder is not a literal.
        "  a:\n    c-useragent|expand: '%agents%'\n  condition: a",
    ],
)
def test_rule_literals_unproven(detection):
    assert rule_literals(_rule(detection), COLUMNS) is None


def test_rule_set_needs_every_rule():
    proven = _rule("  a:\n    c-useragent|startswith: 'rclone/v'\n  condition: a")
    unproven = _rule("  a:\n    sc-status: 407\n  condition: a")

    assert rule_set_literals([proven], COLUMNS) == frozenset({"rclone/v"})
    assert rule_set_literals([proven, unproven], COLUMNS) is None
    assert rule_set_literals([], COLUMNS) is None


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        # Each AND operand that proves literals is a set of its own, the rarest first.
        (
            "  a:\n    cs-method: CONNECT\n    c-uri|endswith:\n      - ':22'\n      - ':21'\n    c-useragent: null\n"
            "  condition: a",
            [{":21", ":22"}, {"connect"}],
        ),
        (
            "  a:\n    cs-method: CONNECT\n  b:\n    c-useragent|startswith: 'Go-http-client/'\n  condition: a and b",
            [{"go-http-client/"}, {"connect"}],
        ),
        # An operand that proves nothing adds no set, and an OR is one set.
        (
            "  a:\n    c-useragent|contains: 'rclone'\n  b:\n    c-uri|contains: '/upload/'\n  f:\n    sc-status: 200\n"
            "  condition: (a or b) and not f",
            [{"rclone", "/upload/"}],
        ),
        # Two conditions match when either does, so they give one set.
        (
            "  a:\n    c-useragent|contains: 'rclone'\n    cs-method: PUT\n  b:\n    c-uri|contains: '/upload/'\n"
            "  condition:\n    - a\n    - b",
            [{"rclone", "/upload/"}],
        ),
    ],
)
def test_rule_clauses_per_operand(detection, expected):
    rule = _rule(detection)
    columns = COLUMNS | {"HttpRequestMethod"}

    clauses = rule_clauses(rule, columns)

    assert [set(clause) for clause in clauses] == expected
    assert clauses[0] == rule_literals(rule, columns)


def test_rule_set_clauses_needs_every_rule():
    proven = _rule("  a:\n    c-useragent|startswith: 'rclone/v'\n  condition: a")
    unproven = _rule("  a:\n    sc-status: 407\n  condition: a")

    assert rule_set_clauses([proven], COLUMNS) == [(frozenset({"rclone/v"}),)]
    assert rule_set_clauses([proven, unproven], COLUMNS) is None
    assert rule_set_clauses([], COLUMNS) is None


def test_select_needs_every_set_of_a_rule():
    escapes = [Escape(b"\\x", hex_byte=True), Escape(b"\\", produces="\\")]
    prefilter = LinePrefilter.from_clauses(
        [[{":22", ":21"}, {"connect"}], [{"rclone/v"}]], escapes, keep_through_line=0
    )
    data = (
        FILLER
        # A time that reads 10:22 is no tunnel to port 22.
        + b"[04/Dec/2026:10:22:33 +0000] GET /a\n"
        + b"[04/Dec/2026:10:00:33 +0000] CONNECT host:22 HTTP/1.1\n"
        + b"[04/Dec/2026:10:00:34 +0000] connect host\\x3a21 HTTP/1.1\n"
        + b"[04/Dec/2026:10:00:35 +0000] \\x43ONNECT host:22\n"
        # The second rule needs one set only.
        + b"[04/Dec/2026:10:21:36 +0000] GET / rclone/v1.66\n"
        + FILLER
    )

    kept = _kept(prefilter, data)

    assert [number for number, _ in kept] == [42, 43, 44, 45]


def _kept(prefilter: LinePrefilter, data: bytes, first_line: int = 1) -> list[tuple[int, bytes]]:
    selection = prefilter.select(data, first_line)
    assert selection is not None
    assert selection.lines == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return [(number, data[start:end]) for number, start, end in selection.kept]


FILLER = b"".join(b"GET /index.html ok\n" for _ in range(40))


def test_select_literal_ignores_case():
    data = FILLER + b"PUT RClone/V1.66.0\n" + FILLER + b"last rclone/v"

    kept = _kept(LinePrefilter.build(["rclone/v"]), data, first_line=10)

    assert kept == [(50, b"PUT RClone/V1.66.0"), (91, b"last rclone/v")]


def test_select_escapes_and_headers():
    escapes = [Escape(b"\\x", hex_byte=True), Escape(b"\\", produces="\\")]
    data = (
        b"#fields\tts\n" + FILLER + b"ua rclone\\X2Fv1\n#close\n" + b"ua \\x52clone/v\n"
        # Escapes that cannot decode to a character of the literal do not keep a line.
        + b"ua \\x41\\\"quoted\\\"\n" + FILLER
    )

    kept = _kept(LinePrefilter.build(["rclone/v"], escapes, header_prefixes=[b"#"]), data)

    assert kept == [(1, b"#fields\tts"), (42, b"ua rclone\\X2Fv1"), (43, b"#close"), (44, b"ua \\x52clone/v")]


def test_escape_pattern_needs_neighbour():
    percent = Escape(b"%", hex_byte=True)
    backslash = Escape(b"\\", produces="\\\r\n")
    escapes = [percent, backslash]
    pattern = percent.pattern(["rclone/v"], escapes)

    assert pattern.search(b"ua: rclone%2fv1.66")
    assert pattern.search(b"ua: %52clone/v1")
    assert pattern.search(b"ua: rclon%65%2f%76")
    assert pattern.search(b"ua: rclone/%56")
    # An escape of one of the literal's characters elsewhere does not count.
    assert not pattern.search(b"get /login?next=%2fhome")
    assert not pattern.search(b"ua: x+%76")
    assert backslash.pattern(["rclone/v"], escapes) is None
    assert backslash.pattern(["a\\b"], escapes).search(b"a\\\\b")


def test_select_keeps_sample_lines():
    kept = _kept(LinePrefilter.build(["rclone/v"], keep_through_line=3), FILLER)

    assert [number for number, _ in kept] == [1, 2, 3]


def test_select_gives_up_on_common_literal():
    assert LinePrefilter.build(["index"]).select(FILLER, 1) is None


@pytest.mark.parametrize("format_name", ["combined", "squid", "zeek-tsv"])
def test_bundled_rules_keep_literals(format_name):
    # A default hunt skips lines only while every bundled detection rule proves a literal.
    lists = lists_in_force(None)
    ruleset = load_rules([], include_bundled=True, lists=lists)
    apply_lists(ruleset, lists)
    columns = get_format(format_name).prefilter_columns
    rules = [rule for rule in compile_rules(ruleset.rules) if rule.runnable]

    unproven = [rule.loaded.title for rule in rules if rule_literals(rule.loaded.rule, columns) is None]

    assert len(rules) >= 10
    assert unproven == []
    assert rule_set_literals([rule.loaded.rule for rule in rules], columns) >= {"rclone/", ".wasabisys.com"}


def test_literal_search_engine_in_use(literal_search):
    prefilter = LinePrefilter.build(["rclone/v", "go-http-client/"], [Escape(b"%", hex_byte=True)])

    uses_hyperscan = prefilter._scanner is not None

    assert uses_hyperscan == (literal_search == "hyperscan")
    assert prefilter.literals == (b"go-http-client/", b"rclone/v")
    # The % escape, and U+0130 (UTF-8 C4 B0) for the i of go-http-client.
    assert [pattern.pattern[:1] for pattern in prefilter.raw_others] == [b"%", b"\xc4"]


needs_hyperscan = pytest.mark.skipif(literal_scan.hyperscan is None, reason="hyperscan is not installed on this platform")


@needs_hyperscan
def test_literal_scanner_reports_each_line_once_per_group():
    scanner = literal_scan.LiteralScanner([b"ab", b"xyz", b"b\x00c"], caseless=True, groups=[0, 1, 1])
    haystack = bytearray(b"xyz AB b\x00c xyz\nnone\nend ab")

    found = scanner.scan_lines(haystack, len(haystack))

    # "b\x00c" shares xyz's group, so the first line has group 1 once.
    assert sorted(found.literals) == [(0, 0), (0, 20), (1, 0)]
    assert found.headers == []
    assert found.lines == 2
    assert found.matches == 5


@needs_hyperscan
def test_literal_scanner_stops_at_match_limit():
    # A line that repeats a literal a million times must not cost a million calls into Python.
    scanner = literal_scan.LiteralScanner([b"aaaa", b"rclone/v"], caseless=True, line_prefixes=[b"#f"])
    haystack = b"a" * 1_000_000 + b" rclone/v\n#fields rclone/v1\n"

    stopped = scanner.scan_lines(haystack, len(haystack), max_matches=100)
    complete = scanner.scan_lines(haystack, len(haystack))

    second = 1_000_000 + len(" rclone/v\n")
    assert stopped.too_many
    assert stopped.matches == 101
    assert not complete.too_many
    assert sorted(complete.literals) == [(0, 0), (1, 0), (1, second)]
    assert complete.headers == [second]


@needs_hyperscan
def test_literal_scanner_stops_at_line_limit():
    scanner = literal_scan.LiteralScanner([b"ab"])
    haystack = b"ab\n" * 10

    assert not scanner.scan_lines(haystack, len(haystack), max_lines=10).too_many
    assert scanner.scan_lines(haystack, len(haystack), max_lines=9).too_many


@needs_hyperscan
def test_literal_scanner_searches_prefix_of_long_literal():
    long = b"x" * 500 + b"tail"
    scanner = literal_scan.LiteralScanner([long])
    haystack = b"x" * 600 + b"\n" + b"y" * 10

    # The first MAX_LITERAL_BYTES bytes nominate the line; the prefilter's check of the line decides.
    assert scanner.scan_lines(haystack, len(haystack)).literals == [(0, 0)]


@needs_hyperscan
def test_literal_scanner_finds_prefixes_at_line_starts():
    scanner = literal_scan.LiteralScanner([b"ab"], caseless=True, line_prefixes=[b"#f"])
    haystack = b"#fx\nAB #f\n#f\n#F"

    found = scanner.scan_lines(haystack, len(haystack))

    # The literal ignores case; a prefix counts only at a line start, and matches its own case.
    assert found.literals == [(0, 4)]
    assert sorted(found.headers) == [0, 10]


@settings(max_examples=300)
@given(literals=st.lists(st.text(alphabet="ab.-", min_size=1, max_size=6), max_size=12))
def test_without_longer_keeps_literals_with_no_shorter_inside(literals):
    expected = {literal for literal in literals if not any(other != literal and other in literal for other in literals)}

    assert without_longer(literals) == expected


def test_literal_search_named_in_log(literal_search, caplog):
    caplog.set_level(logging.INFO, logger="proxyhunt.formats.literal_scan")

    LinePrefilter.build(["rclone/v", "go-http-client/"])._scanner

    expected = "in one Hyperscan pass" if literal_search == "hyperscan" else "with Python's re, because hyperscan is"
    assert f"the line prefilter searches 2 literals {expected}" in caplog.text
