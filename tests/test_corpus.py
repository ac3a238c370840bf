"""Hunt the real public proxy logs of the shared corpus, and copies of them with rclone user agents written in.

The corpus contains no rclone user agent, so the rclone test rewrites the user
agent of some lines of the combined, Zeek TSV and Zeek JSON samples. The
expected hits are computed from the rewritten files by the small parsers in
this module, independently of proxyhunt.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from proxyhunt.formats import all_formats
from proxyhunt.formats.detect import MIN_CONFIDENCE, score_formats
from proxyhunt.formats.loader import FileReport, Loader
from proxyhunt.formats.source import read_sample
from proxyhunt.hunt import HuntResult, hunt

from corpus import CORPUS


pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared log corpus is not present at {CORPUS}")

# Corpus folder -> the format that proxyhunt must detect for every file in it.
# The Squid native lines are inside a Sentinel CSV export, in its RawData column.
FOLDER_FORMATS = {
    "squid-native": "csv+squid",
    "apache-combined": "combined",
    "zeek-http-tsv": "zeek-tsv",
    "zeek-http-json": "zeek-json",
}

RULE_TITLE = "Rclone Activity via Proxy"
# User agents written into the copies. The rule matches those that start with
# rclone/v in any letter case, and only those.
RCLONE_MATCHES = ["rclone/v1.68.2", "RClone/V1.66.0", "RCLONE/v1.0", "rclone/v"]
RCLONE_NON_MATCHES = [
    "xrclone/v1.0",
    "Mozilla/5.0 rclone/v1.66",
    "rclone/1.63.0",
    " rclone/v1.65.0",
    # The user agent that rclone's docs recommend for OneDrive.
    "ISV|rclone.org|rclone/v1.55.1",
]
MUTATED_AGENTS = RCLONE_MATCHES + RCLONE_NON_MATCHES
# Every MUTATION_STEP-th record of a file gets the next user agent of MUTATED_AGENTS.
MUTATION_STEP = 5


def corpus_files() -> list[tuple[Path, str]]:
    """Return every corpus file that proxyhunt reads, with its expected format."""
    files = []
    for folder, format_name in FOLDER_FORMATS.items():
        files.extend((path, format_name) for path in sorted((CORPUS / folder).glob("*")) if path.is_file())
    return files


CORPUS_FILES = corpus_files()
CORPUS_IDS = [path.name for path, _ in CORPUS_FILES]


def count_lines(data: bytes) -> int:
    """Return the number of lines in ``data``, counting a last line without a newline."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


# Parsers written for these tests, independent of proxyhunt. Each returns the
# user agent of every record by line number, None where the log has none.

_COMBINED_AGENT = re.compile(r'"((?:[^"\\]|\\.)*)"\s*$')
_ZEEK_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def combined_agents(path: Path) -> dict[int, str | None]:
    """Return the last quoted field of every combined log line, with Apache's \\" and \\\\ escapes decoded."""
    agents: dict[int, str | None] = {}
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        match = _COMBINED_AGENT.search(line)
        assert match, f"{path.name}:{number} has no quoted user agent at its end"
        agent = re.sub(r"\\(.)", r"\1", match.group(1))
        agents[number] = None if agent == "-" else agent
    return agents


def zeek_tsv_records(path: Path) -> dict[int, dict[str, str]]:
    """Return the fields of every data line of a Zeek TSV log, named by the latest #fields header."""
    fields: list[str] | None = None
    records: dict[int, dict[str, str]] = {}
    for number, line in numbered_lines(path):
        if line.startswith("#fields\t"):
            fields = line.split("\t")[1:]
        if line.startswith("#") or not line.strip():
            continue
        assert fields is not None, f"{path.name}:{number} comes before any #fields header"
        values = line.split("\t")
        assert len(values) == len(fields), f"{path.name}:{number} has {len(values)} fields, not {len(fields)}"
        records[number] = dict(zip(fields, values))
    return records


def zeek_tsv_value(text: str) -> str | None:
    """Decode a Zeek TSV value: - is unset, (empty) is the empty string, \\xHH is a byte."""
    if text == "-":
        return None
    if text == "(empty)":
        return ""
    raw = _ZEEK_ESCAPE.sub(lambda match: bytes([int(match.group(1), 16)]), text.encode())
    return raw.decode("utf-8", errors="replace")


def zeek_tsv_agents(path: Path) -> dict[int, str | None]:
    return {number: zeek_tsv_value(record["user_agent"]) for number, record in zeek_tsv_records(path).items()}


def zeek_json_records(path: Path) -> dict[int, dict[str, Any]]:
    return {number: json.loads(line) for number, line in numbered_lines(path) if line.strip()}


def zeek_json_agents(path: Path) -> dict[int, str | None]:
    return {number: record.get("user_agent") for number, record in zeek_json_records(path).items()}


AGENT_PARSERS = {
    "combined": combined_agents,
    "zeek-tsv": zeek_tsv_agents,
    "zeek-json": zeek_json_agents,
}


def invalid_zeek_timestamps(path: Path, format_name: str) -> int:
    """Return the number of Zeek records whose ts is present but not a number (btest logs anonymize it)."""
    if format_name == "zeek-tsv":
        stamps = [zeek_tsv_value(record["ts"]) for record in zeek_tsv_records(path).values()]
    else:
        stamps = [record.get("ts") for record in zeek_json_records(path).values()]
    invalid = 0
    for stamp in stamps:
        try:
            float(stamp)
        except (TypeError, ValueError):
            invalid += stamp is not None
    return invalid


# The hunt over the unmodified corpus, shared by the tests below.


@pytest.fixture(scope="module")
def corpus_hunt() -> tuple[HuntResult, duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    result = hunt([str(path) for path, _ in CORPUS_FILES], connection=connection)
    return result, connection


def report_for(result: HuntResult, path: Path):
    [report] = [report for report in result.files if report.path == str(path)]
    return report


def user_agents(connection: duckdb.DuckDBPyConnection, path: Path) -> dict[int, str | None]:
    rows = connection.execute(
        "SELECT SourceLine, HttpUserAgent FROM websession WHERE SourceFile = ? ORDER BY SourceLine", [str(path)]
    ).fetchall()
    return dict(rows)


def test_corpus_folders_present():
    for folder in FOLDER_FORMATS:
        assert any((CORPUS / folder).glob("*")), f"no files in {CORPUS / folder}"


@pytest.mark.parametrize(("path", "format_name"), CORPUS_FILES, ids=CORPUS_IDS)
def test_corpus_file_read_completely(corpus_hunt, path, format_name):
    result, _ = corpus_hunt
    report = report_for(result, path)

    assert report.error is None
    assert report.format == format_name
    assert report.rejected == 0
    assert report.lines_read == count_lines(path.read_bytes())
    assert report.parsed + report.rejected + report.skipped == report.lines_read
    assert report.parsed > 0
    assert report.invalid_utf8_lines == 0


@pytest.mark.parametrize(("path", "format_name"), CORPUS_FILES, ids=CORPUS_IDS)
def test_corpus_user_agents_match(corpus_hunt, path, format_name):
    _, connection = corpus_hunt
    loaded = user_agents(connection, path)

    if format_name in AGENT_PARSERS:
        assert loaded == AGENT_PARSERS[format_name](path)
    else:
        # Squid's native format has no user agent field.
        assert loaded
        assert set(loaded.values()) == {None}


@pytest.mark.parametrize(("path", "format_name"), CORPUS_FILES, ids=CORPUS_IDS)
def test_corpus_invalid_timestamps_kept(corpus_hunt, path, format_name):
    result, connection = corpus_hunt
    report = report_for(result, path)
    invalid = invalid_zeek_timestamps(path, format_name) if format_name.startswith("zeek") else 0

    null_times = connection.execute(
        "SELECT count(*) FROM websession WHERE SourceFile = ? AND TimeGenerated IS NULL", [str(path)]
    ).fetchall()[0][0]

    assert report.invalid_values == ({"TimeGenerated": invalid} if invalid else {})
    assert null_times == invalid


def test_corpus_has_anonymized_zeek_timestamps():
    # The btest logs replace every ts with XXXXXXXXXX.XXXXXX, which the timestamp test above must cover.
    counts = [invalid_zeek_timestamps(path, name) for path, name in CORPUS_FILES if name == "zeek-tsv"]
    assert sum(counts) > 0


# Values read by hand from the files: (folder/file, line, {column: value}).
KNOWN_VALUES = [
    (
        "apache-combined/elastic-examples-apache_logs.trimmed.log",
        1,
        {
            "TimeGenerated": datetime(2015, 5, 17, 10, 5, 3),
            "SrcIpAddr": "83.149.9.216",
            "HttpRequestMethod": "GET",
            "Url": "/presentations/logstash-monitorama-2013/images/kibana-search.png",
            "UrlExtension": "png",
            "HttpVersion": "1.1",
            "HttpStatusCode": 200,
            "DstBytes": 203023,
            "HttpReferrer": "http://semicomplete.com/presentations/logstash-monitorama-2013/",
        },
    ),
    (
        "squid-native/azure-sentinel-asim-Squid_Squid-Proxy_WebSession_IngestedLogs.csv",
        2,
        {
            "TimeGenerated": datetime(2025, 6, 4, 14, 8, 7, 123000),
            "SrcIpAddr": "192.168.1.1",
            "HttpStatusCode": 403,
            "DstBytes": 3807,
            "HttpRequestMethod": "CONNECT",
            "Url": "westeurope.monitoring.azure.com:443",
            "DstHostname": "westeurope.monitoring.azure.com",
            "DstPortNumber": 443,
            "HttpContentType": "text/html",
            "HttpUserAgent": None,
            "EventProduct": "Squid",
        },
    ),
    (
        "squid-native/azure-sentinel-asim-Squid_Squid-Proxy_WebSession_IngestedLogs.csv",
        4,
        {
            "SrcIpAddr": "192.168.1.3",
            "HttpStatusCode": 200,
            "DstIpAddr": "93.94.71.59",
            "DstHostname": "ocsp.swiss.com",
            "HttpContentType": "application/ocsp-response",
        },
    ),
    (
        "zeek-http-json/otrf-apt29-day1-SCRANTON_http.ndjson",
        1,
        {
            "TimeGenerated": datetime(2020, 4, 30, 0, 32, 18, 95510),
            "SrcIpAddr": "10.0.1.4",
            "SrcPortNumber": 60757,
            "DstIpAddr": "192.168.0.4",
            "DstPortNumber": 80,
            "HttpRequestMethod": "OPTIONS",
            "Url": "/",
            "HttpStatusCode": 403,
            "SrcBytes": 0,
            "DstBytes": 209,
            "EventProduct": "Zeek",
        },
    ),
    (
        "zeek-http-tsv/rita-valid_tsv-http.trimmed.log",
        9,
        {
            "TimeGenerated": datetime(2018, 1, 30, 18, 15, 54, 78555),
            "SrcIpAddr": "10.55.100.109",
            "SrcPortNumber": 52068,
            "DstIpAddr": "52.44.164.170",
            "DstHostname": "www.alexa.com",
            "Url": "/topsites/category;2/Top/Business/",
            "HttpStatusCode": 301,
            "DstBytes": 178,
        },
    ),
    (
        "zeek-http-tsv/zeek-btest-core.vlan-mpls.http.log",
        11,
        {
            "TimeGenerated": None,
            "SrcIpAddr": "10.20.80.1",
            "DstHostname": None,
            "HttpVersion": "0.9",
            "HttpUserAgent": None,
        },
    ),
    (
        # The request target was logged as (empty), Zeek's empty string.
        "zeek-http-tsv/zeek-btest-scripts.base.protocols.http.http-methods.http.log",
        11,
        {"HttpRequestMethod": "OPTIONS", "DstHostname": "www.google.com", "Url": "", "HttpStatusCode": 400},
    ),
    (
        # The request was not seen, only the response: method and user agent are unset.
        "zeek-http-tsv/otrf-LSASS_campaign_01-http.log",
        10,
        {"SrcIpAddr": "192.168.1.41", "DstIpAddr": "10.0.5.13", "HttpRequestMethod": None, "HttpStatusCode": 404},
    ),
]


@pytest.mark.parametrize(
    ("relative", "line", "expected"), KNOWN_VALUES, ids=[f"{Path(name).name}:{line}" for name, line, _ in KNOWN_VALUES]
)
def test_corpus_known_values(corpus_hunt, relative, line, expected):
    _, connection = corpus_hunt
    columns = ", ".join(f'"{name}"' for name in expected)
    rows = connection.execute(
        f"SELECT {columns} FROM websession WHERE SourceFile = ? AND SourceLine = ?", [str(CORPUS / relative), line]
    ).fetchall()

    assert len(rows) == 1, f"expected one row from {relative}:{line}"
    assert dict(zip(expected, rows[0])) == expected


def test_zeek_escaped_url_decoded(corpus_hunt):
    # Zeek writes the Latin-1 byte 0xFC of this URL, which is not UTF-8, as \xfc.
    _, connection = corpus_hunt
    path = CORPUS / "zeek-http-tsv/zeek-btest-scripts.base.frameworks.logging.ascii-escape-odd-url.http.log"
    [(url,)] = connection.execute(
        "SELECT Url FROM websession WHERE SourceFile = ? AND SourceLine = 10", [str(path)]
    ).fetchall()

    assert url.startswith("/~cect/teoreetilised seminarid_2010/arheoloogia_uurimisr")
    assert "\\x" not in url
    assert url.endswith("Narrative and Writing.pdf")


def test_corpus_no_rclone_findings(corpus_hunt):
    result, _ = corpus_hunt

    assert result.findings == []


def test_squid_gap_names_user_agent(corpus_hunt):
    result, _ = corpus_hunt
    [squid_path] = [path for path, name in CORPUS_FILES if name == "csv+squid"]

    gaps = [gap for gap in result.coverage if gap.path == str(squid_path) and gap.rule_title == RULE_TITLE]

    assert len(gaps) == 1
    assert "HttpUserAgent" in gaps[0].missing
    assert gaps[0].blind
    assert str(squid_path) in str(gaps[0])
    assert "HttpUserAgent" in str(gaps[0])


# The rclone rule on copies with rewritten user agents.


def mutate_combined(source: Path, target: Path) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    agents = itertools.cycle(MUTATED_AGENTS)
    for index in range(0, len(lines), MUTATION_STEP):
        match = _COMBINED_AGENT.search(lines[index])
        assert match, f"{source.name}:{index + 1} has no quoted user agent at its end"
        lines[index] = lines[index][: match.start()] + f'"{next(agents)}"'
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def mutate_zeek_tsv(source: Path, target: Path) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    records = zeek_tsv_records(source)
    agents = itertools.cycle(MUTATED_AGENTS)
    for number in sorted(records)[::MUTATION_STEP]:
        values = lines[number - 1].split("\t")
        values[list(records[number]).index("user_agent")] = next(agents)
        lines[number - 1] = "\t".join(values)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def mutate_zeek_json(source: Path, target: Path) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    agents = itertools.cycle(MUTATED_AGENTS)
    for index in range(0, len(lines), MUTATION_STEP):
        record = json.loads(lines[index])
        record["user_agent"] = next(agents)
        lines[index] = json.dumps(record)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


MUTATIONS = [
    ("apache-combined/elastic-examples-apache_logs.trimmed.log", "combined", mutate_combined),
    ("zeek-http-tsv/rita-valid_tsv-http.trimmed.log", "zeek-tsv", mutate_zeek_tsv),
    ("zeek-http-json/otrf-apt29-day1-SCRANTON_http.ndjson", "zeek-json", mutate_zeek_json),
]


SQUID_NATIVE = CORPUS / "squid-native/azure-sentinel-asim-Squid_Squid-Proxy_WebSession_IngestedLogs.csv"
SEED_RULE = Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml"
# The user agents of MUTATED_AGENTS that the rclone pack flags and the seed rule misses.
PACK_ONLY_AGENTS = {"rclone/1.63.0", "ISV|rclone.org|rclone/v1.55.1"}


def mutated_corpus(tmp_path: Path) -> tuple[list[str], dict[tuple[str, int], str]]:
    """Write the corpus files of MUTATIONS with rclone user agents mixed in.

    Returns the paths to hunt (the mutated files, then the native Squid log,
    which records no user agent) and the user agent of each (file, line).
    """
    paths = []
    agents_by_line: dict[tuple[str, int], str] = {}
    for relative, format_name, mutate in MUTATIONS:
        target = tmp_path / Path(relative).name
        mutate(CORPUS / relative, target)
        paths.append(str(target))

        agents = AGENT_PARSERS[format_name](target)
        for value in MUTATED_AGENTS:
            assert value in agents.values(), f"{target.name} did not get the user agent {value!r}"
        agents_by_line |= {(str(target), number): agent for number, agent in agents.items() if agent is not None}
    paths.append(str(SQUID_NATIVE))
    return paths, agents_by_line


def test_rclone_hits_exactly_rclone_agents(tmp_path):
    paths, agents_by_line = mutated_corpus(tmp_path)
    expected = {line for line, agent in agents_by_line.items() if agent.lower().startswith("rclone/v")}

    # The seed rule alone, as shipped before the rclone pack.
    result = hunt(paths, rule_paths=[str(SEED_RULE)], include_bundled=False)

    assert [report.error for report in result.files] == [None] * len(paths)
    assert [report.format for report in result.files] == [name for _, name, _ in MUTATIONS] + ["csv+squid"]
    assert {finding["RuleTitle"] for finding in result.findings} == {RULE_TITLE}
    hits = {(finding["SourceFile"], finding["SourceLine"]) for finding in result.findings}
    assert len(expected) > 20
    assert hits == expected
    assert {finding["HttpUserAgent"].lower() for finding in result.findings} == {agent.lower() for agent in RCLONE_MATCHES}
    assert not [finding for finding in result.findings if finding["SourceFile"] == str(SQUID_NATIVE)]
    assert [gap.missing for gap in result.coverage if gap.path == str(SQUID_NATIVE)] == [("HttpUserAgent",)]


def test_rclone_pack_adds_variants_only(tmp_path):
    paths, agents_by_line = mutated_corpus(tmp_path)
    seed_lines = {line for line, agent in agents_by_line.items() if agent.lower().startswith("rclone/v")}
    pack_lines = {line for line, agent in agents_by_line.items() if agent in PACK_ONLY_AGENTS}

    result = hunt(paths)

    assert [report.error for report in result.files] == [None] * len(paths)
    seed = {(finding["SourceFile"], finding["SourceLine"]) for finding in result.findings if finding["RuleTitle"] == RULE_TITLE}
    assert seed == seed_lines
    pack = [finding for finding in result.findings if finding["RuleTitle"] != RULE_TITLE]
    # On the public corpus the pack flags only the mutated rclone lines that the seed rule misses:
    # no real traffic of the corpus, and no volume or Mega correlation.
    assert {finding.get("RuleType") for finding in pack} == {"detection"}
    assert {(finding["SourceFile"], finding["SourceLine"]) for finding in pack} == pack_lines
    assert len(pack_lines) > 20


# CEF, CommonSecurityLog CSV and Sentinel JSON exports. Their expected rejections
# are computed here from the files, independently of proxyhunt.

_ACCESS_LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]+\] "')


def _elements(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def _raw_data_rejects(path: Path) -> int:
    """Records whose RawData is not a common or combined access line, such as nginx error or catalina lines."""
    return sum(1 for element in _elements(path) if not _ACCESS_LINE.match(element["RawData"]))


def _corelight_rejects(path: Path) -> int:
    """Records of Zeek streams other than http."""
    return sum(1 for element in _elements(path) if not Path(element["log_file"]).name.startswith("http_"))


EXPORT_FILES = [
    ("cef/azure-sentinel-barracudaWAFCEF.trimmed.txt", "cef", None),
    ("cef/azure-sentinel-CitrixADC-appfw.cef.txt", "cef", None),
    ("sentinel-commonsecuritylog-csv/azure-sentinel-wirex_sample_dataHttp.trimmed.csv", "csv", None),
    ("sentinel-commonsecuritylog-csv/azure-sentinel-Forcepoint-Cloud-Security-Gateway.csv", "csv", None),
    ("sentinel-commonsecuritylog-csv/azure-sentinel-Forcepoint-CASB.csv", "csv", None),
    ("sentinel-table-json/azure-sentinel-ApacheHTTPServer_CL.json", "sentinel-json+combined", _raw_data_rejects),
    ("sentinel-table-json/azure-sentinel-NGINX_CL.json", "sentinel-json+combined", _raw_data_rejects),
    ("sentinel-table-json/azure-sentinel-Tomcat_CL.json", "sentinel-json+combined", _raw_data_rejects),
    ("vendor-json/azure-sentinel-Cisco_Umbrella_proxy_CL.json", "sentinel-json", None),
    ("zeek-corelight-json/azure-sentinel-Corelight_CL.json", "sentinel-json+zeek-json", _corelight_rejects),
    ("bluecoat-proxysg-elff/azure-sentinel-SymantecProxySG-syslog.trimmed.json", "sentinel-json", None),
]


@pytest.fixture(scope="module")
def export_load() -> tuple[dict[str, Any], duckdb.DuckDBPyConnection]:
    from proxyhunt.formats.loader import Loader

    connection = duckdb.connect()
    loader = Loader(connection)
    reports = {relative: loader.load(str(CORPUS / relative)) for relative, _, _ in EXPORT_FILES}
    return reports, connection


@pytest.mark.parametrize(("relative", "format_name", "rejects"), EXPORT_FILES, ids=[Path(r).name for r, _, _ in EXPORT_FILES])
def test_export_file_read_completely(export_load, relative, format_name, rejects):
    reports, _ = export_load
    report = reports[relative]
    path = CORPUS / relative

    assert report.error is None
    assert report.format == format_name
    assert report.rejected == (rejects(path) if rejects else 0)
    assert report.lines_read == count_lines(path.read_bytes())
    assert report.parsed + report.rejected + report.skipped == report.lines_read
    assert report.parsed > 0
    assert report.invalid_utf8_lines == 0
    if path.suffix == ".json":
        assert report.parsed + report.rejected == len(_elements(path))


EXPORT_KNOWN_VALUES = [
    (
        "cef/azure-sentinel-barracudaWAFCEF.trimmed.txt",
        1,
        {
            "TimeGenerated": datetime(2022, 8, 3, 10, 49, 35, 38000),
            "SrcIpAddr": "101.173.234.143",
            "Url": "/pma/index.php",
            "HttpStatusCode": 302,
            "SrcBytes": 209,
            "HttpVersion": "1.1",
            "EventVendor": "BarracudaNetworks",
            "EventProduct": "WAAS",
            "HttpUserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/99.0.4844.51 Safari/537.36",
        },
    ),
    (
        "cef/azure-sentinel-CitrixADC-appfw.cef.txt",
        3,
        {"Url": "http://test.example.com/css/login_post.html?usr=admin", "DvcAction": "Allow", "HttpUserAgent": None},
    ),
    (
        "sentinel-commonsecuritylog-csv/azure-sentinel-wirex_sample_dataHttp.trimmed.csv",
        2,
        {
            "SrcIpAddr": "192.168.2.99",
            "DstHostname": "gic3.mycdn.me",
            "Url": "http://gic3.mycdn.me/image?id=433012482406&bid=433012482406&t=9&plc=WEB"
            "&tkn=Q6mM5JCb1GrDetqT8q3CmaD-pPc",
            "EventVendor": "WireX",
        },
    ),
    (
        "sentinel-commonsecuritylog-csv/azure-sentinel-Forcepoint-Cloud-Security-Gateway.csv",
        2,
        {"HttpRequestMethod": "Post", "SrcBytes": 0, "DstBytes": 890, "SrcIpAddr": "10.0.100.4"},
    ),
    (
        "sentinel-table-json/azure-sentinel-NGINX_CL.json",
        2,
        {
            "SrcIpAddr": "3.180.71.3",
            "HttpStatusCode": 404,
            "HttpUserAgent": "Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.21)",
        },
    ),
    (
        "sentinel-table-json/azure-sentinel-Tomcat_CL.json",
        2,
        {"SrcIpAddr": "127.0.0.1", "Url": "/admin", "HttpStatusCode": 404, "HttpUserAgent": "curl/7.29.0"},
    ),
    (
        "vendor-json/azure-sentinel-Cisco_Umbrella_proxy_CL.json",
        2,
        {"SrcIpAddr": "10.2.137.65", "HttpStatusCode": 303, "SrcBytes": 1877, "DstBytes": 673, "DvcAction": "BLOCKED"},
    ),
    (
        "zeek-corelight-json/azure-sentinel-Corelight_CL.json",
        152,
        {"SrcIpAddr": "192.168.0.53", "HttpUserAgent": "Mozilla/4.0 (compatible; UPnP/1.0; Windows 9x)"},
    ),
    (
        "bluecoat-proxysg-elff/azure-sentinel-SymantecProxySG-syslog.trimmed.json",
        2,
        {
            "SrcIpAddr": "172.188.21.165",
            "HttpRequestMethod": "CONNECT",
            "DstPortNumber": 443,
            "HttpStatusCode": 200,
            "Url": "xxx-xxxx-xxxx-xxxx.oms.opinsights.azure.com:443",
        },
    ),
    (
        "bluecoat-proxysg-elff/azure-sentinel-SymantecProxySG-syslog.trimmed.json",
        784,
        {
            "Url": "http://ds.download.windowsupdate.com/v11/2/microsoftupdate/redir/v6-muauth.cab?2005020215",
            "UrlQuery": "2005020215",
            "UrlExtension": "cab",
            "HttpUserAgent": "Windows-Update-Agent",
        },
    ),
]


@pytest.mark.parametrize(
    ("relative", "line", "expected"),
    EXPORT_KNOWN_VALUES,
    ids=[f"{Path(name).name}:{line}" for name, line, _ in EXPORT_KNOWN_VALUES],
)
def test_export_known_values(export_load, relative, line, expected):
    _, connection = export_load
    columns = ", ".join(f'"{name}"' for name in expected)
    rows = connection.execute(
        f"SELECT {columns} FROM websession WHERE SourceFile = ? AND SourceLine = ?", [str(CORPUS / relative), line]
    ).fetchall()

    assert len(rows) == 1, f"expected one row from {relative}:{line}"
    assert dict(zip(expected, rows[0])) == expected


@pytest.mark.parametrize(("relative", "format_name", "rejects"), EXPORT_FILES, ids=[Path(r).name for r, _, _ in EXPORT_FILES])
def test_export_detected_only_as_own_format(relative, format_name, rejects):
    from proxyhunt.formats import all_formats
    from proxyhunt.formats.source import read_sample

    sample = read_sample(str(CORPUS / relative)).lines
    scores = {fmt.name: fmt.detect(sample) for fmt in all_formats()}
    own = format_name.split("+")[0]

    assert scores[own] >= 0.5
    assert [name for name, score in scores.items() if name != own and score >= 0.5] == []


@pytest.mark.parametrize(("path", "format_name"), CORPUS_FILES, ids=CORPUS_IDS)
def test_existing_samples_not_taken_by_new_formats(path, format_name):
    from proxyhunt.formats import all_formats
    from proxyhunt.formats.source import read_sample

    sample = read_sample(str(path)).lines
    new_formats = [fmt for fmt in all_formats() if fmt.name in ("cef", "leef", "zscaler", "sentinel-json")]

    assert [fmt.name for fmt in new_formats if fmt.detect(sample) >= 0.5] == []


# W3C extended logs (IIS) and ProxySG access log lines without their header.

W3C_CORPUS_FILES = [
    (CORPUS / "iis-w3c" / "beats-filebeat-iis-access-test.log", "w3c"),
    (CORPUS / "bluecoat-proxysg-elff" / "azure-sentinel-SymantecProxySG-elff-lines.derived.log", "proxysg"),
]


@pytest.fixture(scope="module")
def w3c_corpus() -> dict[str, tuple[FileReport, dict[int, dict[str, Any]]]]:
    """Load each W3C and ProxySG corpus file on its own and return its report and rows by line."""
    loaded = {}
    for path, _ in W3C_CORPUS_FILES:
        connection = duckdb.connect()
        report = Loader(connection).load(str(path))
        cursor = connection.execute("SELECT * FROM websession ORDER BY SourceLine")
        names = [column[0] for column in cursor.description]
        rows = {row[names.index("SourceLine")]: dict(zip(names, row)) for row in cursor.fetchall()}
        loaded[path.name] = (report, rows)
    return loaded


@pytest.mark.parametrize(("path", "format_name"), W3C_CORPUS_FILES, ids=[path.name for path, _ in W3C_CORPUS_FILES])
def test_w3c_corpus_read_completely(w3c_corpus, path, format_name):
    report, _ = w3c_corpus[path.name]

    assert report.error is None
    assert report.format == format_name
    assert report.rejected == 0
    assert report.invalid_values == {}
    assert report.lines_read == count_lines(path.read_bytes())
    assert report.parsed + report.rejected + report.skipped == report.lines_read


@pytest.mark.parametrize(("path", "format_name"), W3C_CORPUS_FILES, ids=[path.name for path, _ in W3C_CORPUS_FILES])
def test_w3c_corpus_detected_as_own_format_only(path, format_name):
    sample = read_sample(path).lines
    scores = score_formats(sample, all_formats())

    assert scores[0][0].name == format_name
    assert all(score < MIN_CONFIDENCE for fmt, score in scores[1:]), scores


def test_iis_corpus_values(w3c_corpus):
    report, rows = w3c_corpus["beats-filebeat-iis-access-test.log"]

    assert report.skipped == 12
    assert rows[5]["TimeGenerated"] == datetime(2018, 1, 1, 8, 9, 10)
    assert rows[5]["SrcIpAddr"] == "81.2.69.143"
    assert rows[5]["UrlQuery"] == "q=100"
    assert rows[5]["HttpUserAgent"] == "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:57.0) Gecko/20100101 Firefox/57.0"
    assert rows[10]["DstHostname"] == "example.com"
    assert rows[10]["DstBytes"] == 123
    assert rows[10]["SrcBytes"] == 456
    assert rows[15]["HttpVersion"] == "1.1"
    # The last two lines follow the first #Fields layout again, without a header of their own.
    assert rows[17]["HttpStatusCode"] == 404
    assert rows[17]["SrcIpAddr"] == "10.50.6.188"
    assert rows[17]["UrlPath"].startswith("/${#context[")


def test_proxysg_corpus_values(w3c_corpus):
    report, rows = w3c_corpus["azure-sentinel-SymantecProxySG-elff-lines.derived.log"]

    assert report.parsed == 490
    assert rows[1]["TimeGenerated"] == datetime(2020, 5, 2, 2, 16, 40)
    assert rows[1]["Url"] == "xxx-xxxx-xxxx-xxxx.oms.opinsights.azure.com:443"
    assert rows[1]["HttpRequestMethod"] == "CONNECT"
    assert rows[1]["DstBytes"] == 5414
    assert rows[1]["SrcBytes"] == 2416
    assert rows[4]["HttpUserAgent"] == "Microsoft BITS/7.5"
    assert rows[4]["UrlExtension"] == "exe"
    assert rows[4]["HttpStatusCode"] == 206
    assert rows[6]["SrcUsername"] == "user76"
    assert rows[6]["UrlCategory"] == "Web Ads/Analytics"
    # A content type whose "; charset" the export turned into a space.
    assert rows[35]["HttpContentType"] == "text/html charset=UTF-8"
    assert rows[35]["DstHostname"] == "updates.installshield.com"


def test_w3c_formats_claim_no_other_corpus_file():
    own = {path for path, _ in W3C_CORPUS_FILES}
    others = [path for path in sorted(CORPUS.rglob("*")) if path.is_file() and path not in own and path.suffix != ".md"]
    readers = [fmt for fmt in all_formats() if fmt.name in ("w3c", "proxysg")]

    assert others
    for path in others:
        sample = read_sample(path).lines
        for fmt in readers:
            assert fmt.detect(sample) < MIN_CONFIDENCE, f"{fmt.name} claims {path}"
