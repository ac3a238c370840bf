"""The bundled rclone rule pack: its examples, its findings on made-up logs, the seed rule left as it was, conversion.

The seed rule is Rclone Activity via Proxy, which flags rclone's default user agent.

Every hunt here runs the real engine (pySigma, proxyhunt's DuckDB backend, the
real format readers) over log lines written to files.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from proxyhunt.export.convert import convert
from proxyhunt.hunt import hunt
from proxyhunt.rules.examples import examples_path_for, load_examples
from proxyhunt.rules.loader import bundled_rule_files, load_rules
from proxyhunt.ruletest import PASS, test_rules as run_rule_tests
from proxyhunt.schema import create_table_sql

REPOSITORY = Path(__file__).parents[1]
BUNDLED = REPOSITORY / "src" / "proxyhunt" / "rules" / "bundled"
PACK = BUNDLED / "rclone"
SEED_RULE = BUNDLED / "proxy_ua_rclone.yml"
SEED_ID = "2c03648b-e081-41a5-b9fb-7d854a915091"
# sha256 of the seed rule as SigmaHQ's text was first bundled, which the pack must not change.
SEED_SHA256 = "a4a583707b9cc43e43c7dc3c64817a8d35eb2b25020ff28e86a655643231b866"
SAMPLES = REPOSITORY / "samples"
EVASION_SAMPLE = SAMPLES / "proxysg-rclone-evasion.log"
DEFAULT_LISTS = REPOSITORY / "src" / "proxyhunt" / "rules" / "defaults" / "lists.yml"

PACK_RULE_FILES = sorted(path for path in PACK.glob("*.yml") if not path.name.endswith(".examples.yml"))

# Rule ids by name, so that a test failure names the rule.
VARIANTS = "0fc99d9e-582c-4271-af66-7342662fbd77"
DEV_BUILD = "dc5050ab-4eeb-4378-a0c8-f005c8d1e167"
YANDEX = "0883bf18-8b81-4890-95e4-64f77b90fc84"
PIKPAK = "d4b313e9-7a34-4aed-9b33-288f551d3879"
URL_ARTEFACTS = "cf250798-f3e4-4b36-bf67-c82e11beb52e"
OAUTH = "197805ff-0a59-472e-90fa-fc07a56ad535"
DOWNLOAD = "4ee59c93-5ee9-4847-8891-d1e7e71a6a13"
MEGA_UPLOAD = "e5994401-2b71-4fdb-a894-2fa965d6e8bb"
CLOUD_VOLUME = "c30d5402-f4b5-4550-9c21-828adf952061"
GO_CONNECT_VOLUME = "b6188937-4a2d-4fce-a660-cad72678b317"
SFTP_CONNECT = "10ce6db4-f78e-4bb8-8eac-f61fe6a6dd89"
# Rules that must never flag a line that the seed rule flags.
SEED_DISJOINT = (VARIANTS, YANDEX, PIKPAK, URL_ARTEFACTS, OAUTH, DOWNLOAD, SFTP_CONNECT)
# The pack's user-agent and URL rules, which the bundled exclusions tune. The volume rules are left out.
EXCLUDABLE = (VARIANTS, YANDEX, PIKPAK, URL_ARTEFACTS)

# Rule files whose every event contains a literal that the line prefilter can search for.
PREFILTERED_RULE_FILES = {
    "proxy_rclone_mega_upload_ramp.yml",
    "proxy_rclone_sftp_connect.yml",
    "proxy_rclone_ua_dev_build.yml",
    "proxy_rclone_ua_variants.yml",
    "proxy_rclone_ua_yandex_spoof.yml",
}
# Ordinary lines of each examples format that no pack rule flags.
FILLER = {
    "combined": '10.8.0.{n} - - [05/Dec/2026:00:00:00 +0000] "GET http://www.example.com/{n} HTTP/1.1" 200 10 "-" "curl/8.5.0"',
    "zeek-json": '{{"ts": 1796428800.0, "id.orig_h": "10.8.0.{n}", "method": "GET", "host": "www.example.com", "uri": "/{n}", "user_agent": "curl/8.5.0"}}',
    "jsonl": '{{"timestamp": "2026-12-05T00:00:00Z", "c-ip": "10.8.0.{n}", "cs-method": "GET", "c-uri": "http://www.example.com/{n}", "cs-bytes": 300}}',
}

MIB = 1024 * 1024
MEGA_RAMP_OFFSETS = (0, 131072, 393216, 786432, 1310720, 1966080, 2752512, 3670016, 4718592)
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def alerts(result, rule_id: str) -> list[dict]:
    return [f for f in result.findings if f["RuleId"] == rule_id and f["Verdict"] == "alert"]


def flagged_lines(result, rule_id: str) -> set[tuple[str, int]]:
    """Return (file, line) of every event that a rule flagged, through a finding of its own or a correlation's events."""
    lines: set[tuple[str, int]] = set()
    for finding in alerts(result, rule_id):
        if finding.get("RuleType") == "correlation":
            lines |= {(event["SourceFile"], event["SourceLine"]) for event in finding["Events"]}
        else:
            lines.add((finding["SourceFile"], finding["SourceLine"]))
    return lines


def _finding_keys(result) -> list[tuple]:
    """Return what identifies each finding: its rule and line, or its rule and events for a correlation."""
    keys = []
    for finding in result.findings:
        events = tuple(event["SourceLine"] for event in finding.get("Events") or [])
        keys.append((finding["RuleId"], finding["SourceLine"], events))
    return sorted(keys, key=repr)


def combined_line(ip: str, time: str, method: str, url: str, user_agent: str, referrer: str = "-") -> str:
    return f'{ip} - - [05/Dec/2026:{time} +0000] "{method} {url} HTTP/1.1" 200 8 "{referrer}" "{user_agent}" TCP_MISS:HIER_DIRECT'


def mega_upload(ip: str, hour: int, minute: int, token: str, user_agent: str, referrer: str = "-", scheme: str = "http") -> list[str]:
    """Return the chunk POSTs of one upload of a 5.4 MiB file, one per MEGA chunk, as go-mega sends them."""
    host = "gfs270n112.userstorage.mega.co.nz"
    return [
        combined_line(ip, f"{hour:02d}:{minute:02d}:{2 + 3 * index:02d}", "POST", f"{scheme}://{host}/ul/{token}/{offset}", user_agent, referrer)
        for index, offset in enumerate(MEGA_RAMP_OFFSETS)
    ]


def upload_record(time: str, ip: str, method: str, host: str, user_agent: str, sent: int) -> str:
    url = f"{host}:443" if method == "CONNECT" else f"https://{host}/upload/part"
    record = {"timestamp": f"2026-12-05T{time}Z", "c-ip": ip, "cs-method": method, "c-uri": url, "c-useragent": user_agent}
    if method != "CONNECT":
        record["cs-host"] = host
    record.update({"cs-bytes": sent, "sc-bytes": 300, "sc-status": 200})
    return json.dumps(record)


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


# The seed rule


def test_seed_rule_file_unchanged():
    assert hashlib.sha256(SEED_RULE.read_bytes()).hexdigest() == SEED_SHA256


def test_seed_findings_on_samples_unchanged():
    with_pack = hunt([str(SAMPLES)])
    seed_only = hunt([str(SAMPLES)], rule_paths=[str(SEED_RULE)], include_bundled=False)

    seed_findings = [f for f in with_pack.findings if f["RuleId"] == SEED_ID]
    assert len(seed_only.findings) >= 10
    assert len(seed_findings) == len(seed_only.findings)
    key = lambda finding: (finding["SourceFile"], finding["SourceLine"])  # noqa: E731
    for with_pack_finding, seed_finding in zip(sorted(seed_findings, key=key), sorted(seed_only.findings, key=key)):
        assert with_pack_finding == seed_finding


def test_pack_sample_has_no_seed_lines():
    # The pack's sample shows what the seed rule misses, so the seed rule finds nothing in it.
    result = hunt([str(EVASION_SAMPLE)], rule_paths=[str(SEED_RULE)], include_bundled=False)

    assert result.findings == []


# Rule files and their metadata


def test_pack_is_bundled():
    bundled = {path.resolve() for path in bundled_rule_files()}

    assert len(PACK_RULE_FILES) == 11
    for path in PACK_RULE_FILES:
        assert path.resolve() in bundled
    assert not any(path.name.endswith(".examples.yml") for path in bundled)


@pytest.mark.parametrize("path", PACK_RULE_FILES, ids=lambda path: path.stem)
def test_rule_metadata(path: Path):
    documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))

    for document in documents:
        assert uuid.UUID(document["id"]).version == 4
        assert document["name"].startswith("proxy_rclone_")
        assert document["status"] == "test"
        assert document["author"] == "proxyhunt"
        assert str(document["date"]) == "2026-12-05"
        assert document["references"]
        assert document["falsepositives"]
        assert document["level"] in ("informational", "low", "medium", "high", "critical")
        assert "attack.exfiltration" in document["tags"] or "attack.t1105" in document["tags"]
    # The level of each alerting rule is explained in its description.
    alerting = [d for d in documents if d["level"] != "informational"]
    assert alerting
    for document in alerting:
        assert "Level " in document["description"]


def test_rule_ids_unique():
    ids = [document["id"] for path in PACK_RULE_FILES for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))]
    ids.append(SEED_ID)

    assert len(ids) == len(set(ids))


def test_pack_rules_all_ready():
    ruleset = load_rules([str(PACK)], include_bundled=False)

    assert ruleset.problems == []
    assert len(ruleset.rules) == 11
    assert len(ruleset.correlations) == 3


# Examples: every rule against its own lines and near misses


@pytest.mark.parametrize("path", PACK_RULE_FILES, ids=lambda path: path.stem)
def test_rule_examples_pass(path: Path):
    report = run_rule_tests([str(path)], include_bundled=False)

    assert len(report.results) == 1
    result = report.results[0]
    assert result.failures == []
    assert result.status == PASS
    assert result.examples >= 4


@pytest.mark.parametrize("path", PACK_RULE_FILES, ids=lambda path: path.stem)
def test_examples_same_with_prefilter(path: Path, tmp_path: Path):
    # rules test parses every line, while a default hunt may skip the lines without the rule's literals.
    examples = load_examples(examples_path_for(path), path)
    logs = []
    if examples.match:
        logs.append((examples.format_name, [line.text for line in (*examples.match, *examples.no_match)]))
    logs += [(case.format_name or examples.format_name, [line.text for line in case.lines]) for case in examples.cases]
    assert logs

    header = [line.text for line in examples.header]
    for number, (format_name, lines) in enumerate(logs):
        # The prefilter parses the first 1000 lines of a file in any case, so the examples come after filler lines.
        filler = [FILLER[format_name].format(n=n % 250) for n in range(1500)]
        log = write(tmp_path / f"examples-{number}.log", [*header, *filler, *lines])

        fast = hunt([log], rule_paths=[str(path)], include_bundled=False, format_name=format_name)
        full = hunt([log], rule_paths=[str(path)], include_bundled=False, format_name=format_name, prefilter=False)

        assert full.files[0].rejected == 0
        assert _finding_keys(fast) == _finding_keys(full), number
        if path.name in PREFILTERED_RULE_FILES and format_name == "combined":
            assert fast.files[0].prefiltered > 0


def test_examples_cover_near_misses():
    # The near misses that every SOC meets: a browser on Mega, the AWS tools, Nextcloud's client, restic, a Go program.
    text = "\n".join(path.read_text(encoding="utf-8") for path in PACK.glob("*.examples.yml"))

    for near_miss in ("https://mega.nz/", "aws-sdk-go", "aws-cli/", "Boto3/", "mirall/", "/remote.php/dav/uploads/", "restic", "Go-http-client/1.1"):
        assert near_miss in text


# Overlap with the seed rule


def test_no_pack_rule_flags_seed_lines(tmp_path: Path):
    examples_lines = [
        line.text
        for path in PACK_RULE_FILES
        for examples in [load_examples(examples_path_for(path), path)]
        if examples.format_name == "combined"
        for line in (*examples.match, *examples.no_match)
    ]
    seed_lines = [
        combined_line("10.9.0.1", "04:00:00", "PUT", "https://exfil.s3.amazonaws.com/a", "rclone/v1.68.2"),
        combined_line("10.9.0.2", "04:00:01", "GET", "https://downloads.rclone.org/version.txt", "rclone/v1.68.2"),
        combined_line("10.9.0.3", "04:00:02", "PUT", "https://eapi.pcloud.com/uploadfile?filename=a&folderid=1&mtime=1&nopartial=1", "rclone/v1.71.0"),
        combined_line("10.9.0.4", "04:00:03", "PUT", "https://cloud.example.org/remote.php/dav/uploads/u/rclone-chunked-upload-0cc175b9/1", "RClone/V1.70.3"),
    ]
    log = write(tmp_path / "mixed.log", examples_lines + seed_lines)

    result = hunt([log], format_name="combined")

    seed = flagged_lines(result, SEED_ID)
    assert len(seed) >= len(seed_lines)
    for rule_id in SEED_DISJOINT:
        assert flagged_lines(result, rule_id) & seed == set(), rule_id


def test_dev_build_overlaps_seed_on_purpose(tmp_path: Path):
    log = write(tmp_path / "dev.log", [combined_line("10.9.0.5", "03:00:00", "PUT", "https://x.s3.amazonaws.com/a", "rclone/v1.76.0-DEV")])

    result = hunt([log], format_name="combined")

    assert len(alerts(result, SEED_ID)) == 1
    assert len(alerts(result, DEV_BUILD)) == 1
    assert alerts(result, DEV_BUILD)[0]["RuleLevel"] == "high"
    assert alerts(result, VARIANTS) == []


# The Mega upload shape


def test_mega_one_finding_per_upload(tmp_path: Path):
    lines = mega_upload("10.9.1.1", 3, 0, "TokenA", "curl/8.5.0") + mega_upload("10.9.1.1", 3, 20, "TokenB", "curl/8.5.0")
    log = write(tmp_path / "mega.log", lines)

    result = hunt([log], rule_paths=[str(PACK / "proxy_rclone_mega_upload_ramp.yml")], include_bundled=False)

    findings = alerts(result, MEGA_UPLOAD)
    assert len(findings) == 2
    # Seven ramp chunks per upload: offsets 131072 to 3670016, not the first chunk at 0 nor the 1 MiB chunks after.
    assert [finding["Value"] for finding in findings] == [7, 7]
    assert [[event["SourceLine"] for event in finding["Events"]] for finding in findings] == [
        list(range(2, 9)),
        list(range(11, 18)),
    ]
    assert {finding["SrcIpAddr"] for finding in findings} == {"10.9.1.1"}


def test_mega_browser_upload_not_flagged(tmp_path: Path):
    log = write(tmp_path / "browser.log", mega_upload("10.9.1.2", 10, 0, "TokenC", CHROME, "https://mega.nz/", "https"))

    result = hunt([log])

    assert alerts(result, MEGA_UPLOAD) == []
    assert result.findings == []


def test_mega_chunk_events_hidden(tmp_path: Path):
    # generate: false keeps the single chunk events out of the findings.
    log = write(tmp_path / "mega.log", mega_upload("10.9.1.3", 3, 0, "TokenD", "curl/8.5.0"))

    result = hunt([log])

    assert {finding["RuleId"] for finding in result.findings} == {MEGA_UPLOAD}


# The volume rules


def test_cloud_volume_value_is_byte_sum(tmp_path: Path):
    sizes = [300 * MIB, 400 * MIB, 350 * MIB + 17, 10 * MIB]
    hosts = ["exfil.s3.amazonaws.com", "loot.blob.core.windows.net", "content.dropboxapi.com", "exfil.s3.amazonaws.com"]
    lines = [upload_record(f"03:{10 * index:02d}:00", "10.9.2.1", "PUT", host, "curl/8.5.0", size) for index, (host, size) in enumerate(zip(hosts, sizes))]
    lines.append(upload_record("03:05:00", "10.9.2.1", "PUT", "git.example.com", "git/2.45.2", 900 * MIB))
    log = write(tmp_path / "uploads.jsonl", lines)

    result = hunt([log], format_name="jsonl")

    findings = alerts(result, CLOUD_VOLUME)
    assert len(findings) == 1
    finding = findings[0]
    assert finding["Value"] == sum(sizes)
    assert finding["GroupBy"] == {"c-ip": "10.9.2.1"}
    assert finding["WindowStart"] == datetime(2026, 12, 5, 3, 0)
    assert finding["WindowEnd"] == datetime(2026, 12, 5, 4, 0)
    # The upload to a host outside cloud_storage_domains is not counted.
    assert [event["SourceLine"] for event in finding["Events"]] == [1, 2, 3, 4]


def test_cloud_volume_threshold_from_lists(tmp_path: Path):
    lines = [upload_record(f"03:{index:02d}:00", "10.9.2.2", "PUT", "files.example-storage.net", "curl/8.5.0", 30 * MIB) for index in range(4)]
    log = write(tmp_path / "uploads.jsonl", lines)
    lists = tmp_path / "lists.yml"
    lists.write_text(
        'cloud_storage_domains: ["*.example-storage.net"]\nrclone_cloud_upload_bytes: 104857600\nrclone_cloud_upload_window: 10m\n',
        encoding="utf-8",
    )

    default = hunt([log], format_name="jsonl")
    site = hunt([log], format_name="jsonl", lists_path=str(lists))

    assert alerts(default, CLOUD_VOLUME) == []
    assert [finding["Value"] for finding in alerts(site, CLOUD_VOLUME)] == [120 * MIB]


def test_go_connect_volume_value_is_byte_sum(tmp_path: Path):
    sizes = [200 * MIB, 200 * MIB, 150 * MIB]
    lines = [upload_record(f"02:{15 * index:02d}:00", "10.9.3.1", "CONNECT", "203.0.113.9", "Go-http-client/1.1", size) for index, size in enumerate(sizes)]
    # A browser's tunnels from the same source do not count.
    lines.append(upload_record("02:20:00", "10.9.3.1", "CONNECT", "drive.google.com", CHROME, 800 * MIB))
    log = write(tmp_path / "tunnels.jsonl", lines)

    result = hunt([log], format_name="jsonl")

    findings = alerts(result, GO_CONNECT_VOLUME)
    assert len(findings) == 1
    assert findings[0]["Value"] == sum(sizes)
    assert [event["SourceLine"] for event in findings[0]["Events"]] == [1, 2, 3]


def test_go_connect_small_tunnels_not_flagged(tmp_path: Path):
    lines = [upload_record(f"03:{index:02d}:00", "10.9.3.2", "CONNECT", "api.github.com", "Go-http-client/1.1", 20480) for index in range(50)]
    log = write(tmp_path / "tunnels.jsonl", lines)

    result = hunt([log], format_name="jsonl")

    assert result.findings == []


def test_default_cloud_domains_are_host_patterns():
    domains = yaml.safe_load(DEFAULT_LISTS.read_text(encoding="utf-8"))["cloud_storage_domains"]

    assert len(domains) >= 20
    for domain in domains:
        assert domain == domain.lower()
        assert "/" not in domain
        assert ":" not in domain
        assert " " not in domain
        assert domain.rstrip("*").endswith((".com", ".net", ".io", ".nz")), domain


# The bundled sample


def test_evasion_sample_findings():
    result = hunt([str(SAMPLES)])
    sample = str(EVASION_SAMPLE)

    def sources(rule_id: str) -> list[str]:
        return sorted(f["SrcIpAddr"] for f in alerts(result, rule_id) if f["RuleType"] == "correlation" or f["SourceFile"] == sample)

    assert sources(VARIANTS) == ["10.30.0.20"]
    assert "10.30.0.33" in sources(DEV_BUILD)
    assert sources(DOWNLOAD) == ["10.30.0.12"]
    assert sources(MEGA_UPLOAD) == ["10.30.4.31"]
    assert sources(CLOUD_VOLUME) == ["10.30.0.12"]
    assert sources(GO_CONNECT_VOLUME) == ["10.30.0.12"]
    assert sources(SFTP_CONNECT) == ["10.30.0.12"]
    tunnel = alerts(result, GO_CONNECT_VOLUME)[0]
    assert tunnel["Value"] == 7 * (160 * MIB + 4000)
    # The near misses of the day: a browser on Mega, the AWS CLI, Nextcloud's desktop client.
    day_sources = {"10.30.2.14", "10.30.2.40", "10.30.2.15"}
    assert not any(f["SrcIpAddr"] in day_sources for f in result.findings if f["Verdict"] == "alert")


# Blind files


def test_relative_urls_not_blind(tmp_path: Path):
    # An nginx log has no host, so the host rules cannot match, but the user-agent rules still run.
    log = write(tmp_path / "nginx.log", [combined_line("10.9.5.1", "03:00:00", "GET", "/index.html", "curl/8.5.0")])

    result = hunt([log], format_name="combined")

    assert any(gap.blind for gap in result.coverage)
    assert not result.blind


def test_squid_native_blind_for_seed_rule(tmp_path: Path):
    log = write(tmp_path / "access.log", ["1796440200.000 5 10.9.5.2 TCP_MISS/200 10 GET http://a.example/x - HIER_DIRECT/203.0.113.1 text/plain"])

    seed_only = hunt([log], rule_paths=[str(SEED_RULE)], include_bundled=False, format_name="squid")
    with_pack = hunt([log], format_name="squid")

    assert seed_only.blind
    assert not with_pack.blind


# Exclusions


def test_exclusions_name_pack_rules():
    for path in sorted((BUNDLED / "exclusions").glob("*.yml")):
        rules = yaml.safe_load(path.read_text(encoding="utf-8"))["filter"]["rules"]
        for rule_id in EXCLUDABLE:
            assert rule_id in rules, path.name
        assert CLOUD_VOLUME not in rules
        assert GO_CONNECT_VOLUME not in rules


def test_known_destination_suppresses_variant(tmp_path: Path):
    log = write(
        tmp_path / "azure.log",
        [combined_line("10.9.4.1", "03:00:00", "PUT", "https://corpbackup.blob.core.windows.net/nightly/a.bak", "APN/1.0 rclone/1.0 rclone/1.74.0")],
    )
    lists = tmp_path / "lists.yml"
    lists.write_text('known_rclone_destination_hosts: ["corpbackup.blob.core.windows.net"]\n', encoding="utf-8")

    plain = hunt([log], format_name="combined")
    tuned = hunt([log], format_name="combined", exclusions=["proxy-known-destinations"], lists_path=str(lists))

    assert len(alerts(plain, VARIANTS)) == 1
    assert alerts(tuned, VARIANTS) == []
    suppressed = [f for f in tuned.findings if f["RuleId"] == VARIANTS]
    assert [f["Verdict"] for f in suppressed] == ["suppressed"]


# Conversion to the SIEM languages


@pytest.mark.parametrize("target", ["kql", "spl", "esql", "sparksql", "duckdbsql"])
def test_pack_converts_or_states_reason(target: str):
    conversions, ruleset = convert([str(PACK)], target, include_bundled=False)

    assert ruleset.problems == []
    # The three rules that only feed correlations are written inside them, never on their own.
    assert len(conversions) == 11
    helpers = [skipped.title for skipped in ruleset.skipped if "only feeds correlation rules" in skipped.message]
    assert sorted(helpers) == [
        "CONNECT Tunnel From Go's HTTP Client",
        "Mega Upload Chunk at a Ramp Offset by a Non-Browser Client",
        "Request to a Cloud Storage Host",
    ]
    for conversion in conversions:
        if conversion.ok:
            assert conversion.query.strip()
            continue
        # Only correlations may be refused, and only with a reason that names the target's limit.
        assert conversion.rule_type == "correlation", conversion.rule_title
        assert target == "esql"
        assert "sliding time windows" in conversion.error


def test_duckdb_sql_of_pack_runs():
    conversions, _ = convert([str(PACK)], "duckdbsql", include_bundled=False)
    connection = duckdb.connect()
    connection.execute(create_table_sql("websession"))

    for conversion in conversions:
        assert conversion.ok, conversion.error
        connection.execute(conversion.query.rstrip().rstrip(";")).fetchall()
