"""A hunt with the line prefilter finds exactly what a hunt that parses every line finds."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest
from sigma.collection import SigmaCollection

from proxyhunt.engines.prefilter import rule_literals
from proxyhunt.formats import get_format
from proxyhunt.formats import loader as loader_module
from proxyhunt.formats import source as source_module
from proxyhunt.hunt import hunt

from corpus import CORPUS

# Every test runs with the Hyperscan literal search and with the re search.
pytestmark = pytest.mark.usefixtures("literal_search")

# Enough ordinary lines that the hidden ones lie past the sample that is always parsed.
FILLER_LINES = 1500
# The seed rclone rule alone, so that the counts below do not change as bundled rules are added.
RCLONE_RULE = str(Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")

COMBINED_FILLER = '10.0.0.{n} - - [04/Dec/2026:10:00:00 +0000] "GET http://www.example.com/{n} HTTP/1.1" 200 10 "-" "curl/8.5.0"\n'
COMBINED_HIDDEN = [
    # Plain, in capitals, and hidden behind the escapes that Apache httpd and nginx write.
    '10.0.0.1 - - [04/Dec/2026:10:00:01 +0000] "PUT http://s3.example.test/a HTTP/1.1" 200 10 "-" "rclone/v1.66.0"\n',
    '10.0.0.2 - - [04/Dec/2026:10:00:02 +0000] "PUT http://s3.example.test/b HTTP/1.1" 200 10 "-" "RCLONE/V1.66.0"\n',
    '10.0.0.3 - - [04/Dec/2026:10:00:03 +0000] "PUT http://s3.example.test/c HTTP/1.1" 200 10 "-" "rclone\\x2fv1.66.0"\n',
    '10.0.0.4 - - [04/Dec/2026:10:00:04 +0000] "PUT http://s3.example.test/d HTTP/1.1" 200 10 "-" "\\x52clone/v1.66.0"\n',
    # Not rclone: the Kelvin sign and a user agent that only contains the literal.
    '10.0.0.5 - - [04/Dec/2026:10:00:05 +0000] "GET http://www.example.com/ HTTP/1.1" 200 10 "-" "\u212a rclone/v1"\n',
]
ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tmethod\thost\turi\tuser_agent\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tstring\n"
)
ZEEK_FILLER = "1793757005.0\tC{n}\t10.0.0.9\t5000\t198.51.100.1\t80\tGET\twww.example.com\t/{n}\tcurl/8.5.0\n"
ZEEK_HIDDEN = [
    "1793757006.0\tCa\t10.0.0.1\t5000\t198.51.100.1\t80\tPUT\ts3.example.test\t/a\trclone/v1.68.2\n",
    "1793757007.0\tCb\t10.0.0.2\t5000\t198.51.100.1\t80\tPUT\ts3.example.test\t/b\trclone\\x2Fv1.68.2\n",
    # A second #fields line in mid-file changes the layout: the user agent moves.
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tuser_agent\tmethod\thost\turi\n",
    "1793757008.0\tCc\t10.0.0.3\t5000\t198.51.100.1\t80\tRClone/V1.68.2\tPUT\ts3.example.test\t/c\n",
]
SQUID_FILLER = (
    "1793757005.000 10 10.0.0.9 TCP_MISS/200 10 GET http://www.example.com/{n} - HIER_DIRECT/198.51.100.1 text/html "
    "[Host: www.example.com\\r\\nUser-Agent: curl/8.5.0\\r\\n] [HTTP/1.1 200 OK\\r\\n]\n"
)
SQUID_HIDDEN = [
    "1793757006.000 10 10.0.0.1 TCP_MISS/200 10 PUT http://s3.example.test/a - HIER_DIRECT/198.51.100.1 text/html "
    "[Host: s3.example.test\\r\\nUser-Agent: rclone/v1.68.2\\r\\n] [HTTP/1.1 200 OK\\r\\n]\n",
    "1793757007.000 10 10.0.0.2 TCP_MISS/200 10 PUT http://s3.example.test/b - HIER_DIRECT/198.51.100.1 text/html "
    "[Host: s3.example.test\\r\\nUser-Agent: rclone%2Fv1.68.2\\r\\n] [HTTP/1.1 200 OK\\r\\n]\n",
    "1793757008.000 10 10.0.0.3 TCP_MISS/200 10 PUT http://s3.example.test/c - HIER_DIRECT/198.51.100.1 text/html "
    "[Host: s3.example.test\\r\\nUser-Agent: %52CLONE/v1.68.2\\r\\n] [HTTP/1.1 200 OK\\r\\n]\n",
]


def _write(path: Path, header: str, filler: str, hidden: list[str]) -> Path:
    lines = [filler.format(n=n) for n in range(FILLER_LINES)]
    for offset, line in enumerate(hidden):
        lines.insert(FILLER_LINES // 2 + offset * 100, line)
    path.write_text(header + "".join(lines), encoding="utf-8")
    return path


def _events(result) -> list[tuple]:
    return sorted((finding["SourceFile"], finding["SourceLine"], finding["RuleId"]) for finding in result.findings)


@pytest.mark.parametrize(
    ("name", "header", "filler", "hidden", "expected"),
    [
        ("combined", "", COMBINED_FILLER, COMBINED_HIDDEN, 4),
        ("zeek-tsv", ZEEK_HEADER, ZEEK_FILLER, ZEEK_HIDDEN, 3),
        ("squid", "", SQUID_FILLER, SQUID_HIDDEN, 3),
    ],
)
def test_prefilter_keeps_hidden_rclone(tmp_path, name, header, filler, hidden, expected):
    log = _write(tmp_path / f"{name}.log", header, filler, hidden)

    fast = hunt([str(log)], [RCLONE_RULE], include_bundled=False, format_name=name)
    full = hunt([str(log)], [RCLONE_RULE], include_bundled=False, format_name=name, prefilter=False)

    assert len(full.findings) == expected
    assert _events(fast) == _events(full)
    assert fast.files[0].prefiltered > 0
    assert full.files[0].prefiltered == 0
    report = fast.files[0]
    assert report.parsed + report.rejected + report.skipped + report.prefiltered == report.lines_read


def test_prefilter_off_without_literals(tmp_path, caplog):
    # A rule without a provable literal (a status code) turns the prefilter off, and -v names the rule.
    rule = tmp_path / "status.yml"
    rule.write_text(
        "title: Proxy authentication required\nlogsource:\n  category: proxy\n"
        "detection:\n  selection:\n    sc-status: 407\n  condition: selection\n",
        encoding="utf-8",
    )
    log = _write(tmp_path / "combined.log", "", COMBINED_FILLER, COMBINED_HIDDEN)

    with caplog.at_level(logging.INFO, logger="proxyhunt.hunt"):
        result = hunt([str(log)], rule_paths=[str(rule)])

    assert result.files[0].prefiltered == 0
    assert result.files[0].parsed == FILLER_LINES + len(COMBINED_HIDDEN)
    assert (
        "every line is parsed, because no literal is known that each line matching "
        "the rule 'Proxy authentication required' contains"
    ) in caplog.text


def test_prefilter_off_for_field_not_in_lines(tmp_path, caplog):
    # A combined log has no cookie field, so a string test on cs-cookie proves no literal either.
    cookie = tmp_path / "cookie.yml"
    cookie.write_text(
        "title: Session cookie\nlogsource:\n  category: proxy\n"
        "detection:\n  selection:\n    cs-cookie|contains: session\n  condition: selection\n",
        encoding="utf-8",
    )
    status = tmp_path / "status.yml"
    status.write_text(
        "title: Proxy authentication required\nlogsource:\n  category: proxy\n"
        "detection:\n  selection:\n    sc-status: 407\n  condition: selection\n",
        encoding="utf-8",
    )
    log = _write(tmp_path / "combined.log", "", COMBINED_FILLER, COMBINED_HIDDEN)

    with caplog.at_level(logging.INFO, logger="proxyhunt.hunt"):
        result = hunt([str(log)], rule_paths=[str(cookie), str(status)], include_bundled=False, format_name="combined")

    assert result.files[0].prefiltered == 0
    assert "each line matching any of the rules 'Session cookie', 'Proxy authentication required' contains" in caplog.text
    assert "tests of fields that this format does not copy from its lines" in caplog.text


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not checked out beside the repository")
def test_prefilter_same_findings_on_corpus(monkeypatch, tmp_path):
    # The SigmaHQ proxy rules with a rare provable literal run together over every sample. A
    # literal such as "get" is in most lines and would turn the prefilter off. The samples are
    # shorter than the sample a prefiltered file always parses, so that sample is turned off.
    monkeypatch.setattr(loader_module, "PREFILTER_SAMPLE_LINES", 0)
    columns = get_format("combined").prefilter_columns

    # Literals of SigmaHQ rules that many lines of the Apache sample contain.
    common = {"/images/", "mozilla/4.0", "exploit", "internet explorer ", ".class"}

    def rare_literals(path: Path) -> bool:
        found = [rule_literals(rule, columns) for rule in SigmaCollection.from_yaml(path.read_text()).rules]
        return all(literals and min(map(len, literals)) >= 5 and not literals & common for literals in found)

    rules = [
        path
        for path in sorted((CORPUS / "sigma-rules" / "proxy").rglob("*.yml"))
        if "deprecated" not in path.parts and rare_literals(path)
    ]
    samples = [
        str(path)
        for path in sorted(CORPUS.iterdir())
        if path.is_dir() and path.name not in {"sigma-rules", "process-creation", "reference"}
    ]
    # The real Apache log with three requests changed so that some rules fire on it.
    apache = (CORPUS / "apache-combined" / "elastic-examples-apache_logs.trimmed.log").read_text().splitlines()
    apache[100] = apache[100].replace('"GET /', '"GET /pwndrop/', 1)
    apache[500] = apache[500].rsplit('"', 2)[0] + '"Hello-World/1.0"'
    apache[700] = apache[700].rsplit('"', 2)[0] + '"\\x48ello-World/1.0"'
    changed = tmp_path / "apache-changed.log"
    changed.write_text("\n".join(apache) + "\n", encoding="utf-8")
    samples.append(str(changed))
    assert len(rules) >= 8

    fast = hunt(samples, rule_paths=[str(path) for path in rules], include_bundled=False)
    full = hunt(samples, rule_paths=[str(path) for path in rules], include_bundled=False, prefilter=False)

    assert _events(fast) == _events(full)
    assert len(full.findings) >= 2
    assert {finding["SourceLine"] for finding in full.findings if finding["SourceFile"] == str(changed)} >= {101, 501}
    assert sum(report.prefiltered for report in fast.files) > 1000


def test_connect_note_survives_prefilter(tmp_path):
    # Only tunnels: the first lines, parsed as a sample, still show that TLS was not intercepted.
    line = "1793757005.000 10 10.0.0.9 TCP_TUNNEL/200 3000 CONNECT drive.example.test:443 - HIER_DIRECT/198.51.100.1 -\n"
    log = tmp_path / "tunnels.log"
    log.write_text(line * 5000, encoding="utf-8")

    result = hunt([str(log)], [RCLONE_RULE], include_bundled=False, format_name="squid")

    assert result.files[0].prefiltered > 0
    assert any("1000 of the 1000 parsed requests are CONNECT tunnels" in note for note in result.notes)


def test_prefilter_line_numbers_across_batches(tmp_path, monkeypatch):
    # Small batches: every batch after the first must still number its lines from the file's start.
    monkeypatch.setattr(source_module, "BATCH_BYTES", 16 * 1024)
    log = _write(tmp_path / "combined.log", "", COMBINED_FILLER, COMBINED_HIDDEN)

    fast = hunt([str(log)], [RCLONE_RULE], include_bundled=False, format_name="combined")
    full = hunt([str(log)], [RCLONE_RULE], include_bundled=False, format_name="combined", prefilter=False)

    assert fast.files[0].prefiltered > 0
    assert _events(fast) == _events(full)
    assert [finding["RawEvent"] for finding in fast.findings] == [finding["RawEvent"] for finding in full.findings]


def test_prefilter_cut_off_line_number(tmp_path):
    # A truncated gzip: the incomplete last line is reported with its real number.
    text = "".join(COMBINED_FILLER.format(n=n) for n in range(3000)).encode()
    compressed = gzip.compress(text)
    log = tmp_path / "cut.log.gz"
    log.write_bytes(compressed[: len(compressed) * 2 // 3])

    fast = hunt([str(log)], [RCLONE_RULE], include_bundled=False, format_name="combined")
    full = hunt([str(log)], [RCLONE_RULE], include_bundled=False, format_name="combined", prefilter=False)

    assert fast.files[0].lines_read == full.files[0].lines_read
    assert fast.files[0].error == full.files[0].error
    assert "incomplete line" in full.files[0].error


def test_prefilter_built_once_for_many_files(tmp_path: Path) -> None:
    # Building compiles the literal and escape expressions; per file it dominated hunts of many small logs.
    import duckdb

    line = '10.20.3.7 - - [03/Nov/2026:01:58:13 +0000] "GET http://www.example.com/ HTTP/1.1" 200 355 "-" "{agent}"\n'
    paths = []
    for number in range(5):
        log = tmp_path / f"access-{number}.log"
        log.write_text(line.format(agent="curl/8.5.0") * 3 + line.format(agent="rclone/v1.68.2"), encoding="utf-8")
        paths.append(str(log))
    requested: list[frozenset[str]] = []

    def clauses(columns: frozenset[str]) -> list[tuple[frozenset[str], ...]]:
        requested.append(columns)
        return [(frozenset({"rclone/v"}),)]

    loader = loader_module.Loader(duckdb.connect(), prefilter_clauses=clauses)
    reports = [loader.load(path, format_name="combined") for path in paths]

    assert [report.parsed for report in reports] == [4] * 5
    assert len(requested) == 1


def test_prefilter_needs_every_operand(tmp_path):
    # Every bundled rule, on a log whose times read 10:21 and 10:22 and whose API clients are Go's. Only
    # lines with CONNECT as well are parsed beyond the sample, and the findings stay those of a full parse.
    filler = '10.0.0.{n} - - [04/Dec/2026:10:2{m}:00 +0000] "GET http://www.example.com/{n} HTTP/1.1" 200 10 "-" "{agent}"\n'
    lines = [filler.format(n=n % 250, m=n % 3, agent="Go-http-client/1.1" if n % 2 else "curl/8.5.0") for n in range(3000)]
    tunnels = [
        '10.0.0.7 - - [04/Dec/2026:10:00:01 +0000] "CONNECT files.example.test:22 HTTP/1.1" 200 9000 "-" "-"\n',
        '10.0.0.8 - - [04/Dec/2026:10:00:02 +0000] "CONNECT files.example.test\\x3a21 HTTP/1.1" 200 9000 "-" "-"\n',
        '10.0.0.9 - - [04/Dec/2026:10:22:03 +0000] "CONNECT www.example.com:443 HTTP/1.1" 200 9000 "-" "Go-http-client/1.1"\n',
    ]
    for offset, line in enumerate(tunnels):
        lines.insert(2000 + offset * 100, line)
    log = tmp_path / "access.log"
    log.write_text("".join(lines), encoding="utf-8")

    fast = hunt([str(log)], format_name="combined")
    full = hunt([str(log)], format_name="combined", prefilter=False)

    assert _events(fast) == _events(full)
    assert {finding["SourceLine"] for finding in full.findings} >= {2001, 2101}
    assert fast.files[0].parsed <= loader_module.PREFILTER_SAMPLE_LINES + len(tunnels)
    assert fast.files[0].prefiltered >= len(lines) - loader_module.PREFILTER_SAMPLE_LINES - len(tunnels)
