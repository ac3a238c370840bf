"""Lists values: CIDR networks in the triage source lists, and the limits and messages of correlation thresholds."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import duckdb
import pytest

from proxyhunt.engines.correlation import compile_correlations
from proxyhunt.engines.duckdb import run_correlations
from proxyhunt.export.convert import convert
from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.rules.lists import PlaceholderListsError, lists_in_force, load_lists
from proxyhunt.rules.loader import load_rules
from proxyhunt.tuning.triage import SourceList

SEED_RULE = str(Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")

# A detection rule and a correlation whose window and count come from the lists.
WINDOW_RULES = """\
title: Rclone Request
id: 4b7c1d2e-3f40-4a51-9b62-7c83d94ea0b1
name: rclone_request
logsource:
    category: proxy
detection:
    selection:
        c-useragent|startswith: 'rclone/'
    condition: selection
level: low
---
title: Repeated Rclone Requests
id: 5c8d2e3f-4051-4b62-8c73-8d94ea5fb1c2
correlation:
    type: event_count
    rules:
        - rclone_request
    group-by:
        - c-ip
    timespan: '%rclone_request_window%'
    condition:
        gte: '%rclone_request_count%'
level: high
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def write_events(tmp_path: Path, sources: list[str]) -> Path:
    """Write one rclone PUT per source address, an hour apart, as WebSession JSON Lines."""
    events = [
        {
            "TimeGenerated": f"2026-12-03T{10 + index:02d}:00:00Z",
            "SrcIpAddr": source,
            "HttpRequestMethod": "PUT",
            "DstHostname": "bucket.example",
            "SrcBytes": 1024,
            "HttpUserAgent": "rclone/v1.68.2",
        }
        for index, source in enumerate(sources)
    ]
    log = tmp_path / "proxy.jsonl"
    log.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return log


# CIDR networks in server_sources and known_backup_sources


@pytest.mark.parametrize(
    ("value", "address", "matched"),
    [
        ("10.70.4.0/24", "10.70.4.40", True),
        ("10.70.4.0/24", "10.70.5.1", False),
        ("10.0.0.0/8", "10.255.255.255", True),
        ("192.0.2.7/32", "192.0.2.7", True),
        ("2001:db8:4::/48", "2001:db8:4:1::5", True),
        ("2001:db8:4::/48", "2001:db8:5::5", False),
        ("2001:db8:4::/48", "10.70.4.40", False),
        ("10.70.4.0/24", "not-an-address", False),
    ],
)
def test_cidr_value_matches_network(value, address, matched):
    sources = SourceList.of("server_sources", [value])

    source = sources.match({"SrcIpAddr": address})

    assert (source == address) is matched


def test_cidr_value_never_matches_host_name():
    sources = SourceList.of("server_sources", ["10.70.4.0/24"])

    assert sources.match({"SrcHostname": "10.70.4.40"}) is None


def test_cidr_beside_sigma_strings():
    sources = SourceList.of("server_sources", ["10.70.4.0/24", "db-*.example.com", "10.9.9.9"])

    assert sources.match({"SrcIpAddr": "10.70.4.1"}) == "10.70.4.1"
    assert sources.match({"SrcHostname": "DB-01.example.com"}) == "DB-01.example.com"
    assert sources.match({"SrcIpAddr": "10.9.9.9"}) == "10.9.9.9"
    assert sources.match({"SrcIpAddr": "10.9.9.10"}) is None


def test_cidr_with_host_bits_rejected():
    with pytest.raises(ValueError) as error:
        SourceList.of("known_backup_sources", ["10.70.4.7/24"])

    assert "value '10.70.4.7/24' of list 'known_backup_sources'" in str(error.value)
    assert "such as 10.70.4.0/24" in str(error.value)


def test_bad_cidr_rejected_with_line(tmp_path):
    lists = write(tmp_path / "lists.yml", 'known_backup_sources:\n  - backup-*.example.com\n  - "10.70.4.7/24"\n')

    with pytest.raises(PlaceholderListsError) as error:
        load_lists(lists)

    assert str(error.value).startswith(f"{lists}:3: value '10.70.4.7/24' of list 'known_backup_sources'")


def test_cidr_server_source_raises_priority(tmp_path):
    lists = write(tmp_path / "lists.yml", 'server_sources: ["10.70.4.0/24"]\nknown_backup_sources: ["2001:db8::/32"]\n')
    log = write_events(tmp_path, ["10.70.0.5", "10.70.4.40", "2001:db8::9"])

    result = hunt([str(log)], rule_paths=[SEED_RULE], include_bundled=False, lists_path=str(lists))

    reasons = {finding["SrcIpAddr"]: finding["PriorityReasons"] for finding in result.findings}
    assert len(reasons) == 3
    assert reasons["10.70.0.5"] == ["rule level medium"]
    assert "+1 source 10.70.4.40 is in server_sources" in reasons["10.70.4.40"]
    assert "-1 source 2001:db8::9 is in known_backup_sources" in reasons["2001:db8::9"]


# Correlation thresholds: one message, and a maximum timespan


@pytest.mark.parametrize("value", ["1h30m", "1e9", "0x100", "1GB", "1.5", "-5"])
def test_bad_threshold_one_message(tmp_path, value):
    rules = write(tmp_path / "rules.yml", WINDOW_RULES)
    lists = write(tmp_path / "lists.yml", f"rclone_request_window: 1h\nrclone_request_count: '{value}'\n")

    ruleset = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists)))

    [problem] = [problem for problem in ruleset.problems if problem.kind == "correlation"]
    assert f"{lists}:2: invalid value '{value}' of 'rclone_request_count'" in problem.message
    assert f"used as the condition at {rules}:" in problem.message
    assert "a threshold is a whole number of 0 or more" in problem.message
    assert "compound timespans such as 1h30m are not read" in problem.message


@pytest.mark.parametrize("value", ["1h30m", "1e9", "0x100", "1GB", "1.5", "-5"])
def test_bad_window_one_message(tmp_path, value):
    rules = write(tmp_path / "rules.yml", WINDOW_RULES)
    lists = write(tmp_path / "lists.yml", f"rclone_request_count: 2\nrclone_request_window: {value}\n")

    ruleset = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists)))

    [problem] = [problem for problem in ruleset.problems if problem.kind == "correlation"]
    assert f"{lists}:2: invalid value '{value}' of 'rclone_request_window'" in problem.message
    assert "a timespan is a whole number above 0 and one unit" in problem.message
    assert "compound timespans such as 1h30m are not read" in problem.message


def test_threshold_with_spaces_read(tmp_path):
    rules = write(tmp_path / "rules.yml", WINDOW_RULES)
    lists = write(tmp_path / "lists.yml", "rclone_request_count: ' 1024'\nrclone_request_window: 1h\n")

    [correlation] = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists))).correlations

    assert correlation.rule.condition.count == 1024


def test_address_scalar_must_be_list(tmp_path):
    lists = write(tmp_path / "lists.yml", "server_sources: 10.70.4.0/24\n")

    with pytest.raises(PlaceholderListsError) as error:
        load_lists(lists)

    assert f"{lists}:1: the value of 'server_sources' must be a list of strings" in str(error.value)


@pytest.mark.parametrize("window", ["100000000y", "11y", "121M", "3653d", "315576001s"])
def test_window_over_maximum_rejected(tmp_path, window):
    rules = write(tmp_path / "rules.yml", WINDOW_RULES)
    lists = write(tmp_path / "lists.yml", f"rclone_request_count: 2\nrclone_request_window: {window}\n")

    ruleset = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists)))

    assert ruleset.correlations == []
    [problem] = [problem for problem in ruleset.problems if problem.kind == "correlation"]
    assert f"{lists}:2: the value '{window}' of 'rclone_request_window'" in problem.message
    assert "over the maximum timespan of 10y" in problem.message


def test_count_over_maximum_rejected(tmp_path):
    rules = write(tmp_path / "rules.yml", WINDOW_RULES)
    lists = write(tmp_path / "lists.yml", "rclone_request_count: 9223372036854775808\nrclone_request_window: 1h\n")

    ruleset = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists)))

    [problem] = [problem for problem in ruleset.problems if problem.kind == "correlation"]
    assert "is over the maximum of 9223372036854775807" in problem.message


def test_maximum_window_runs_in_duckdb(tmp_path):
    rules = write(tmp_path / "rules.yml", WINDOW_RULES)
    lists = write(tmp_path / "lists.yml", "rclone_request_count: 2\nrclone_request_window: 10y\n")
    log = write_events(tmp_path, ["10.70.0.5", "10.70.0.5"])

    result = hunt([str(log)], rule_paths=[str(rules)], include_bundled=False, lists_path=str(lists))

    assert result.rule_problems == []
    correlation_findings = [finding for finding in result.findings if finding["RuleType"] == "correlation"]
    assert len(correlation_findings) == 1
    assert correlation_findings[0]["SrcIpAddr"] == "10.70.0.5"


@pytest.mark.parametrize("target", ["kql", "spl", "duckdbsql", "sparksql"])
def test_maximum_window_converts(tmp_path, target):
    rules = write(tmp_path / "rules.yml", WINDOW_RULES)
    lists = write(tmp_path / "lists.yml", "rclone_request_count: 2\nrclone_request_window: 10y\n")

    conversions, _ = convert([str(rules)], target, include_bundled=False, lists_path=str(lists))

    [correlation] = [conversion for conversion in conversions if conversion.rule_type == "correlation"]
    assert correlation.ok, correlation.error


def test_duckdb_failure_counts_as_problem(tmp_path):
    rules = write(tmp_path / "rules.yml", WINDOW_RULES)
    lists = write(tmp_path / "lists.yml", "rclone_request_count: 2\nrclone_request_window: 1h\n")
    ruleset = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists)))
    compiled = compile_correlations(ruleset, {rule.key: None for rule in ruleset.rules})
    connection = duckdb.connect()
    # A findings table without the columns a correlation inserts makes DuckDB reject the query at run time.
    connection.execute("CREATE TABLE findings (RuleId VARCHAR)")

    counts = run_correlations(connection, compiled)

    assert counts == {}
    [correlation] = compiled
    assert correlation.error is not None
    assert correlation.error.startswith("failed in DuckDB and was skipped: ")
    result = HuntResult(files=[], ruleset=ruleset, compiled=[], findings=[], sources=[], coverage=[], correlations=compiled)
    [problem] = result.rule_problems
    assert problem.title == "Repeated Rclone Requests"
    assert "failed in DuckDB" in problem.message
