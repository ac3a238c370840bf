"""Sigma filters over the findings table: suppression with an audit trail, exactly as rule AND filter."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from proxyhunt.engines.duckdb import compile_rules, fetch_findings, findings_columns, run_rules
from proxyhunt.formats.loader import Loader
from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.report.jsonl import finding_to_json
from proxyhunt.rules.loader import load_rules
from proxyhunt.tuning.filters import apply_filters, compile_filters

RULE_ID = "8e2d3b5f-0000-4000-8000-000000000001"

RULE = f"""\
title: Rclone Upload
id: {RULE_ID}
name: rclone_upload
logsource:
    category: proxy
detection:
    selection:
        c-useragent|startswith: 'rclone/v'
    condition: selection
"""

OTHER_RULE = """\
---
title: Any PUT
id: 8e2d3b5f-0000-4000-8000-000000000002
logsource:
    category: proxy
detection:
    selection:
        cs-method: PUT
    condition: selection
"""

EVENTS = [
    {"TimeGenerated": "2024-05-01T10:00:00Z", "SrcIpAddr": "10.0.0.1", "DstHostname": "backup.example.com",
     "HttpRequestMethod": "PUT", "HttpUserAgent": "rclone/v1.66.0", "SrcUsername": "svc-backup"},
    {"TimeGenerated": "2024-05-01T10:01:00Z", "SrcIpAddr": "10.0.0.2", "DstHostname": "mega.example.net",
     "HttpRequestMethod": "PUT", "HttpUserAgent": "rclone/v1.66.0", "SrcUsername": "alice"},
    {"TimeGenerated": "2024-05-01T10:02:00Z", "SrcIpAddr": "10.0.0.3", "HttpRequestMethod": "PUT",
     "HttpUserAgent": "rclone/v1.65.0"},
]


def sigma_filter(body: str, title: str = "Backup Hosts", rules: str = f"[{RULE_ID}]", logsource: str = "category: proxy") -> str:
    return f"---\ntitle: {title}\nlogsource:\n    {logsource}\nfilter:\n    rules: {rules}\n{body}"


def run(tmp_path: Path, rules: str, events: list[dict] | None = None) -> HuntResult:
    log = tmp_path / "proxy.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in events or EVENTS), encoding="utf-8")
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(rules, encoding="utf-8")
    return hunt([str(log)], rule_paths=[str(rule_file)], include_bundled=False)


def verdicts(result: HuntResult, title: str = "Rclone Upload") -> dict[str, str]:
    return {finding["SrcIpAddr"]: finding["Verdict"] for finding in result.findings if finding["RuleTitle"] == title}


BACKUP_HOST = "    selection:\n        cs-host: backup.example.com\n    condition: not selection\n"


def test_not_selection_suppresses_with_reason(tmp_path):
    result = run(tmp_path, RULE + sigma_filter(BACKUP_HOST))

    assert verdicts(result) == {"10.0.0.1": "suppressed", "10.0.0.2": "alert", "10.0.0.3": "alert"}
    suppressed = next(finding for finding in result.findings if finding["Verdict"] == "suppressed")
    [suppression] = suppressed["Suppressions"]
    assert suppression["filter_title"] == "Backup Hosts"
    assert suppression["filter_source"] == str(tmp_path / "rules.yml")
    assert suppression["values"] == {"DstHostname": "backup.example.com"}
    assert all(finding["Suppressions"] == [] for finding in result.findings if finding["Verdict"] == "alert")
    assert result.rule_problems == []
    assert len(result.alerts) == 2


def test_missing_field_survives_not_selection(tmp_path):
    # 10.0.0.3 has no host: "not selection" is true for it, as Sigma defines a missing field.
    result = run(tmp_path, RULE + sigma_filter(BACKUP_HOST))

    assert verdicts(result)["10.0.0.3"] == "alert"


def test_positive_condition_keeps_only_selection(tmp_path):
    # The filter's condition is ANDed to the rule's: only backup host findings survive.
    result = run(tmp_path, RULE + sigma_filter("    selection:\n        cs-host: backup.example.com\n    condition: selection\n"))

    assert verdicts(result) == {"10.0.0.1": "alert", "10.0.0.2": "suppressed", "10.0.0.3": "suppressed"}


def test_one_of_selections(tmp_path):
    body = (
        "    selection_host:\n        cs-host: backup.example.com\n"
        "    selection_user:\n        cs-username: alice\n"
        "    condition: not 1 of selection_*\n"
    )
    result = run(tmp_path, RULE + sigma_filter(body))

    assert verdicts(result) == {"10.0.0.1": "suppressed", "10.0.0.2": "suppressed", "10.0.0.3": "alert"}
    by_ip = {finding["SrcIpAddr"]: finding for finding in result.findings}
    assert by_ip["10.0.0.2"]["Suppressions"][0]["values"] == {"DstHostname": "mega.example.net", "SrcUsername": "alice"}


def test_several_filters_on_one_rule(tmp_path):
    rules = (
        RULE
        + sigma_filter(BACKUP_HOST, title="Backup Hosts")
        + sigma_filter("    selection:\n        c-ip: 10.0.0.1\n    condition: not selection\n", title="Backup Server")
        + sigma_filter("    selection:\n        cs-username: alice\n    condition: not selection\n", title="Alice")
    )
    result = run(tmp_path, rules)

    by_ip = {finding["SrcIpAddr"]: finding for finding in result.findings}
    assert [entry["filter_title"] for entry in by_ip["10.0.0.1"]["Suppressions"]] == ["Backup Hosts", "Backup Server"]
    assert [entry["filter_title"] for entry in by_ip["10.0.0.2"]["Suppressions"]] == ["Alice"]
    assert by_ip["10.0.0.3"]["Verdict"] == "alert"
    assert result.suppressed_per_filter == {
        f"{tmp_path / 'rules.yml'}:Backup Hosts": 1,
        f"{tmp_path / 'rules.yml'}:Backup Server": 1,
        f"{tmp_path / 'rules.yml'}:Alice": 1,
    }


def test_filter_names_rule_by_name(tmp_path):
    result = run(tmp_path, RULE + sigma_filter(BACKUP_HOST, rules="rclone_upload"))

    assert verdicts(result)["10.0.0.1"] == "suppressed"


def test_filter_leaves_other_rules_alone(tmp_path):
    result = run(tmp_path, RULE + OTHER_RULE + sigma_filter(BACKUP_HOST))

    assert verdicts(result, "Any PUT") == {"10.0.0.1": "alert", "10.0.0.2": "alert", "10.0.0.3": "alert"}


def test_rules_any_tunes_every_proxy_rule(tmp_path):
    result = run(tmp_path, RULE + OTHER_RULE + sigma_filter(BACKUP_HOST, rules="any"))

    assert verdicts(result)["10.0.0.1"] == "suppressed"
    assert verdicts(result, "Any PUT")["10.0.0.1"] == "suppressed"


def test_filter_naming_unknown_rule(tmp_path):
    result = run(tmp_path, RULE + sigma_filter(BACKUP_HOST, rules="[no_such_rule]"))

    [problem] = result.rule_problems
    assert problem.kind == "filter"
    assert problem.title == "Backup Hosts"
    assert "the rule 'no_such_rule' it names is not loaded" in problem.message
    # The rule runs unfiltered, and the hunt says so instead of hiding it.
    assert set(verdicts(result).values()) == {"alert"}


def test_filter_naming_known_and_unknown_rules(tmp_path):
    result = run(tmp_path, RULE + sigma_filter(BACKUP_HOST, rules=f"[{RULE_ID}, no_such_rule]"))

    assert verdicts(result)["10.0.0.1"] == "suppressed"
    [problem] = result.rule_problems
    assert "no_such_rule" in problem.message


def test_filter_with_other_log_source(tmp_path):
    result = run(tmp_path, RULE + sigma_filter(BACKUP_HOST, logsource="product: zeek\n    service: http"))

    [problem] = result.rule_problems
    assert "not within the filter's (product zeek, service http)" in problem.message
    assert set(verdicts(result).values()) == {"alert"}


def test_filter_for_non_proxy_rules_skipped(tmp_path):
    result = run(tmp_path, RULE + sigma_filter(BACKUP_HOST, logsource="category: process_creation"))

    assert result.rule_problems == []
    [skipped] = result.ruleset.skipped
    assert skipped.kind == "filter"
    assert "log source is not web-proxy traffic" in skipped.message


def test_filter_on_correlation_rule_reported(tmp_path):
    correlation = (
        "---\ntitle: Many\nname: many\ncorrelation:\n    type: event_count\n    rules: [rclone_upload]\n"
        "    group-by: [c-ip]\n    timespan: 1h\n    condition:\n        gte: 1\n    generate: true\n"
    )
    result = run(tmp_path, RULE + correlation + sigma_filter(BACKUP_HOST, rules="[many]"))

    [problem] = result.rule_problems
    assert "filters apply only to detection rules" in problem.message


def test_suppressed_events_do_not_count_in_correlations(tmp_path):
    correlation = (
        "---\ntitle: Many\ncorrelation:\n    type: event_count\n    rules: [rclone_upload]\n"
        "    timespan: 1h\n    condition:\n        gte: 3\n    generate: true\n"
    )
    unfiltered = run(tmp_path, RULE + correlation)
    filtered = run(tmp_path, RULE + correlation + sigma_filter(BACKUP_HOST))

    assert sum(finding["RuleType"] == "correlation" for finding in unfiltered.findings) == 1
    assert sum(finding["RuleType"] == "correlation" for finding in filtered.findings) == 0


def test_filter_with_unknown_field_not_runnable(tmp_path):
    result = run(tmp_path, RULE + sigma_filter("    selection:\n        Hostname: backup\n    condition: not selection\n"))

    [problem] = result.rule_problems
    assert "field 'Hostname' is not a Sigma proxy field, a WebSession column or a findings column" in problem.message


def test_process_field_without_process_events(tmp_path):
    result = run(tmp_path, RULE + sigma_filter("    selection:\n        CommandLine|contains: backup\n    condition: not selection\n"))

    [problem] = result.rule_problems
    assert problem.kind == "filter"
    assert "ProcessCommandLine" in problem.message
    assert "--process-logs" in problem.message


def test_filter_tests_added_findings_column(tmp_path):
    """A filter reaches a column that a later step adds to findings, by its name and by its Sysmon name."""
    log = tmp_path / "proxy.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in EVENTS), encoding="utf-8")
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(
        RULE
        + sigma_filter("    selection:\n        CommandLine|contains: 'sync /backup'\n    condition: not selection\n", title="Sysmon")
        + sigma_filter("    selection:\n        processuser: 'CORP\\svc'\n    condition: not selection\n", title="Column"),
        encoding="utf-8",
    )
    connection = duckdb.connect()
    loader = Loader(connection)
    loader.load(str(log))
    loader.close()
    ruleset = load_rules([str(rule_file)], include_bundled=False)
    compiled = compile_rules(ruleset.rules)
    run_rules(connection, compiled)
    connection.execute("ALTER TABLE findings ADD COLUMN ProcessCommandLine VARCHAR")
    connection.execute("ALTER TABLE findings ADD COLUMN ProcessUser VARCHAR")
    connection.execute("UPDATE findings SET ProcessCommandLine = 'rclone sync /backup s3:b' WHERE SrcIpAddr = '10.0.0.1'")
    connection.execute("UPDATE findings SET ProcessUser = 'CORP\\svc' WHERE SrcIpAddr = '10.0.0.2'")

    filters = compile_filters(ruleset, compiled, findings_columns(connection))
    assert [compiled_filter.error for compiled_filter in filters] == [None, None]
    apply_filters(connection, filters)
    by_ip = {finding["SrcIpAddr"]: finding for finding in fetch_findings(connection)}

    assert by_ip["10.0.0.1"]["Suppressions"][0]["values"] == {"ProcessCommandLine": "rclone sync /backup s3:b"}
    assert by_ip["10.0.0.2"]["Suppressions"][0]["filter_title"] == "Column"
    assert by_ip["10.0.0.3"]["Verdict"] == "alert"


def test_suppressions_in_json_lines(tmp_path):
    result = run(tmp_path, RULE + sigma_filter(BACKUP_HOST))
    records = [json.loads(finding_to_json(finding)) for finding in result.findings]

    suppressed = [record for record in records if record["Verdict"] == "suppressed"]
    assert [record["Suppressions"][0]["values"] for record in suppressed] == [{"DstHostname": "backup.example.com"}]
    assert all(record["RuleType"] == "detection" for record in records)


def test_filter_value_is_data_not_sql(tmp_path):
    body = "    selection:\n        cs-host: \"x' OR 1=1 --\"\n    condition: not selection\n"
    result = run(tmp_path, RULE + sigma_filter(body, title="Quote ' in title"))

    assert result.rule_problems == []
    assert set(verdicts(result).values()) == {"alert"}
