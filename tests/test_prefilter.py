"""Line prefilter: which literals a rule set proves, and which raw lines a prefilter keeps."""

from __future__ import annotations

import pytest
from sigma.collection import SigmaCollection

from proxyhunt.engines.prefilter import rule_literals, rule_set_literals
from proxyhunt.formats.prefilter import Escape, LinePrefilter

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
        # Too short, non-ASCII, or a letter that a non-ASCII letter folds to (Kelvin sign, long s).
        "  a:\n    c-useragent: 'rc*'\n  condition: a",
        "  a:\n    c-useragent: 'ärger'\n  condition: a",
        "  a:\n    c-useragent: 'Desktop'\n  condition: a",
        "  a:\n    c-useragent: 'backup'\n  condition: a",
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


def test_escape_needles():
    percent = Escape(b"%", hex_byte=True)
    backslash = Escape(b"\\", produces="\\\r\n")

    assert percent.needles(["v/"]) == {b"%76", b"%56", b"%2f"}
    assert backslash.needles(["rclone/v"]) == set()
    assert backslash.needles(["a\\b"]) == {b"\\"}


def test_select_keeps_sample_lines():
    kept = _kept(LinePrefilter.build(["rclone/v"], keep_through_line=3), FILLER)

    assert [number for number, _ in kept] == [1, 2, 3]


def test_select_gives_up_on_common_literal():
    assert LinePrefilter.build(["index"]).select(FILLER, 1) is None
