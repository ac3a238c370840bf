"""Literals with ``i``, ``k`` and ``s``: lines with non-ASCII characters that DuckDB lowercases to them are kept."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyhunt.formats import loader as loader_module
from proxyhunt.formats.prefilter import FOLDED_INTO_ASCII, Escape, LinePrefilter
from proxyhunt.hunt import hunt

# Every code point except the surrogates, which are no characters of their own.
ALL_CODE_POINTS = "SELECT range AS cp FROM range(128, 1114112) WHERE range < 55296 OR range > 57343"

FILLER = '10.0.0.9 - - [04/Dec/2026:10:00:00 +0000] "GET http://www.example.com/{n} HTTP/1.1" 200 10 "-" "curl/8.5.0"\n'
LINE = '10.0.0.{n} - - [04/Dec/2026:10:00:01 +0000] "PUT http://{host}/x HTTP/1.1" 200 10 "-" "{agent}"\n'
RULE = """title: Backup client to a Wasabi bucket
logsource:
  category: proxy
detection:
  host:
    cs-host|endswith: '.wasabisys.com'
  agent:
    c-useragent|contains: 'KopiaBackup'
  condition: host or agent
"""

# How a character of a user agent or host can be written in a combined log:
# plain, in either case, as the non-ASCII character that folds to it, or
# escaped as Apache httpd escapes bytes.
FORMS = {
    "i": ["i", "I", "\u0130", "\\xc4\\xb0", "\\x69", "\u0131"],
    "k": ["k", "K", "\u212a", "\\xe2\\x84\\xaa", "\\xE2\\x84\\xAA", "\\x4b"],
    "s": ["s", "S", "\u017f", "\\xc5\\xbf", "\\x73"],
}


def _spell(text: str, choices: list[int]) -> str:
    """Write ``text`` with the ``FORMS`` picked by ``choices``, one choice per letter that has forms."""
    written = []
    for index, character in enumerate(text):
        forms = FORMS.get(character.lower(), [character])
        written.append(forms[choices[index % len(choices)] % len(forms)])
    return "".join(written)


def test_folded_characters_match_duckdb():
    connection = duckdb.connect()

    rows = connection.execute(f"SELECT cp, lower(chr(cp::INTEGER)) FROM ({ALL_CODE_POINTS})").fetchall()
    folding = {chr(code_point): lowered for code_point, lowered in rows if any(ord(c) < 128 for c in lowered)}

    assert set(folding) == set(FOLDED_INTO_ASCII)
    for character, letter in FOLDED_INTO_ASCII.items():
        assert folding[character] == letter


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("ua bac\u212aup".encode(), True),
        (b"ua BAC%E2%84%AAUP", True),
        # A reader decodes escaped and raw bytes alike, so a mix counts too.
        (b"ua bac%e2\x84%aaup", True),
        (b"ua bac\xe2%84\xaaup", True),
        (b"ua backup", True),
        # Only the characters that fold to a letter of a literal keep a line.
        ("ua \u0130nstall".encode(), False),
        ("ua ba\u017fe".encode(), False),
        (b"ua %e2%84", False),
    ],
)
def test_select_keeps_folded_letter(line, kept):
    prefilter = LinePrefilter.build(["backup"], [Escape(b"%", hex_byte=True)])
    filler = b"GET /index.html ok\n" * 40
    data = filler + line + b"\n" + filler

    selection = prefilter.select(data, 1)

    assert selection is not None
    assert [number for number, _, _ in selection.kept] == ([41] if kept else [])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    agents=st.lists(
        st.tuples(st.sampled_from(["KopiaBackup/0.9", "x kopiabackup", "KopiaBacku", "curl/8.5.0"]), st.lists(st.integers(0, 5), min_size=1, max_size=6)),
        min_size=1,
        max_size=6,
    ),
    hosts=st.lists(
        st.tuples(st.sampled_from(["b.s3.wasabisys.com", "wasabisys.com", "www.example.com"]), st.lists(st.integers(0, 5), min_size=1, max_size=6)),
        min_size=1,
        max_size=6,
    ),
)
def test_folded_spellings_same_findings(tmp_path_factory, monkeypatch, agents, hosts):
    # Every spelling of the rule's literals, with the characters that DuckDB lowercases
    # to i and k, raw or escaped, gives the findings of a hunt that parses every line.
    monkeypatch.setattr(loader_module, "PREFILTER_SAMPLE_LINES", 0)
    directory = tmp_path_factory.mktemp("fold")
    rule = directory / "rule.yml"
    rule.write_text(RULE, encoding="utf-8")
    lines = [FILLER.format(n=n) for n in range(300)]
    for index, ((agent, agent_choices), (host, host_choices)) in enumerate(zip(agents, hosts)):
        line = LINE.format(n=index, host=_spell(host, host_choices), agent=_spell(agent, agent_choices))
        lines.insert(10 + 40 * index, line)
    log = directory / "combined.log"
    log.write_text("".join(lines), encoding="utf-8")

    fast = hunt([str(log)], [str(rule)], include_bundled=False, format_name="combined")
    full = hunt([str(log)], [str(rule)], include_bundled=False, format_name="combined", prefilter=False)

    assert fast.files[0].prefiltered > 0
    assert sorted(f["SourceLine"] for f in fast.findings) == sorted(f["SourceLine"] for f in full.findings)
