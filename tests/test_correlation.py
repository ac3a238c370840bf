"""Sigma correlation rules run in DuckDB: every correlation type, group-by, window edges, operators and problems."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from proxyhunt.engines.correlation import CorrelationQuery, RuleEvents, compile_correlations
from proxyhunt.engines.dialects import SparkDialect
from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.report.jsonl import finding_to_json
from proxyhunt.rules.loader import load_rules

UPLOAD_ID = "7d1c2a4e-0000-4000-8000-000000000001"

BASE_RULES = f"""\
title: Upload
id: {UPLOAD_ID}
name: upload
logsource:
    category: proxy
detection:
    selection:
        cs-method: PUT
    condition: selection
---
title: Tunnel
name: tunnel
logsource:
    category: proxy
detection:
    selection:
        cs-method: CONNECT
    condition: selection
"""


def event(time: str, ip: str, method: str = "PUT", host: str = "files.example.com", sent: int | None = 100) -> dict:
    record = {"TimeGenerated": time, "SrcIpAddr": ip, "HttpRequestMethod": method, "DstHostname": host}
    if sent is not None:
        record["SrcBytes"] = sent
    return record


def correlation(body: str, title: str = "Correlation") -> str:
    return f"---\ntitle: {title}\n{body}"


def run(tmp_path: Path, events: list[dict], rules: str) -> HuntResult:
    log = tmp_path / "proxy.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in events), encoding="utf-8")
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(rules, encoding="utf-8")
    return hunt([str(log)], rule_paths=[str(rule_file)], include_bundled=False)


def correlation_findings(result: HuntResult) -> list[dict]:
    return [finding for finding in result.findings if finding["RuleType"] == "correlation"]


def event_count(condition: str, timespan: str = "1h", group_by: str = "[c-ip]") -> str:
    return BASE_RULES + correlation(
        f"correlation:\n    type: event_count\n    rules: [upload]\n    group-by: {group_by}\n"
        f"    timespan: {timespan}\n    condition:\n        {condition}\n"
    )


# event_count and group-by


def test_event_count_per_group(tmp_path):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1"),
        event("2024-05-01T10:10:00Z", "10.0.0.1"),
        event("2024-05-01T10:20:00Z", "10.0.0.1"),
        event("2024-05-01T10:05:00Z", "10.0.0.2"),
        event("2024-05-01T10:06:00Z", "10.0.0.2"),
    ]
    result = run(tmp_path, events, event_count("gte: 3"))

    [finding] = correlation_findings(result)
    assert finding["CorrelationType"] == "event_count"
    assert finding["GroupBy"] == {"c-ip": "10.0.0.1"}
    assert finding["SrcIpAddr"] == "10.0.0.1"
    assert finding["Value"] == 3
    assert finding["WindowStart"] == datetime(2024, 5, 1, 10, 0)
    assert finding["WindowEnd"] == datetime(2024, 5, 1, 11, 0)
    assert [item["SourceLine"] for item in finding["Events"]] == [1, 2, 3]
    assert {item["RuleId"] for item in finding["Events"]} == {UPLOAD_ID}
    assert finding["Verdict"] == "alert"
    assert finding["Suppressions"] == []
    assert result.rule_problems == []


def test_event_count_without_group_by(tmp_path):
    events = [event("2024-05-01T10:00:00Z", "10.0.0.1"), event("2024-05-01T10:01:00Z", "10.0.0.2")]
    rules = BASE_RULES + correlation(
        "correlation:\n    type: event_count\n    rules: [upload]\n    timespan: 1h\n    condition:\n        gte: 2\n"
    )
    [finding] = correlation_findings(run(tmp_path, events, rules))

    assert finding["GroupBy"] is None
    assert finding["Value"] == 2


def test_group_by_two_fields(tmp_path):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1", host="a.example.com"),
        event("2024-05-01T10:01:00Z", "10.0.0.1", host="b.example.com"),
        event("2024-05-01T10:02:00Z", "10.0.0.1", host="a.example.com"),
    ]
    [finding] = correlation_findings(run(tmp_path, events, event_count("gte: 2", group_by="[c-ip, cs-host]")))

    assert finding["GroupBy"] == {"c-ip": "10.0.0.1", "cs-host": "a.example.com"}
    assert finding["DstHostname"] == "a.example.com"
    assert [item["SourceLine"] for item in finding["Events"]] == [1, 3]


def test_events_without_group_value_left_out(tmp_path):
    events = [
        {"TimeGenerated": "2024-05-01T10:00:00Z", "HttpRequestMethod": "PUT"},
        {"TimeGenerated": "2024-05-01T10:01:00Z", "HttpRequestMethod": "PUT"},
    ]
    assert correlation_findings(run(tmp_path, events, event_count("gte: 2"))) == []


# Window edges


@pytest.mark.parametrize(
    ("second_event", "expected"),
    [
        ("2024-05-01T10:05:00Z", 1),  # exactly one timespan later: inside the window
        ("2024-05-01T10:05:00.000001Z", 0),  # one microsecond later: outside
        ("2024-05-01T10:05:01Z", 0),
    ],
)
def test_window_edge_is_inclusive(tmp_path, second_event, expected):
    events = [event("2024-05-01T10:00:00Z", "10.0.0.1"), event(second_event, "10.0.0.1")]
    result = run(tmp_path, events, event_count("gte: 2", timespan="5m"))

    assert len(correlation_findings(result)) == expected


def test_window_slides_across_hour_boundary(tmp_path):
    # Fixed hourly buckets would split these two events.
    events = [event("2024-05-01T10:59:00Z", "10.0.0.1"), event("2024-05-01T11:01:00Z", "10.0.0.1")]
    [finding] = correlation_findings(run(tmp_path, events, event_count("gte: 2")))

    assert finding["WindowStart"] == datetime(2024, 5, 1, 10, 59)


def test_utc_offset_honoured(tmp_path):
    # 12:00+02:00 is 10:00 UTC, four minutes before the second event.
    events = [event("2024-05-01T12:00:00+02:00", "10.0.0.1"), event("2024-05-01T10:04:00Z", "10.0.0.1")]
    [finding] = correlation_findings(run(tmp_path, events, event_count("gte: 2", timespan="5m")))

    assert finding["WindowStart"] == datetime(2024, 5, 1, 10, 0)
    record = json.loads(finding_to_json(finding))
    assert record["WindowStart"] == "2024-05-01T10:00:00Z"
    assert record["WindowEnd"] == "2024-05-01T10:05:00Z"


def test_local_time_would_not_correlate(tmp_path):
    # 10:00+02:00 is 08:00 UTC: two hours before the second event.
    events = [event("2024-05-01T10:00:00+02:00", "10.0.0.1"), event("2024-05-01T10:04:00Z", "10.0.0.1")]
    assert correlation_findings(run(tmp_path, events, event_count("gte: 2", timespan="5m"))) == []


def test_overlapping_windows_give_one_finding(tmp_path):
    events = [event(f"2024-05-01T10:0{minute}:00Z", "10.0.0.1") for minute in range(6)]
    [finding] = correlation_findings(run(tmp_path, events, event_count("gte: 2")))

    assert finding["Value"] == 6
    assert len(finding["Events"]) == 6


def test_separate_bursts_give_separate_findings(tmp_path):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1"),
        event("2024-05-01T10:01:00Z", "10.0.0.1"),
        event("2024-05-01T14:00:00Z", "10.0.0.1"),
        event("2024-05-01T14:01:00Z", "10.0.0.1"),
    ]
    findings = correlation_findings(run(tmp_path, events, event_count("gte: 2")))

    assert [finding["WindowStart"] for finding in findings] == [datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 14, 0)]


# Condition operators. Group 10.0.0.1 has events at 10:00, 10:01 and 10:02, so
# its windows count 3, 2 and 1; group 10.0.0.2 has one event.


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("gt: 2", {"10.0.0.1": 3}),
        ("gte: 3", {"10.0.0.1": 3}),
        ("gte: 4", {}),
        ("lt: 2", {"10.0.0.1": 1, "10.0.0.2": 1}),
        ("lte: 1", {"10.0.0.1": 1, "10.0.0.2": 1}),
        ("eq: 2", {"10.0.0.1": 2}),
        ("neq: 1", {"10.0.0.1": 3}),
    ],
)
def test_condition_operators(tmp_path, condition, expected):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1"),
        event("2024-05-01T10:01:00Z", "10.0.0.1"),
        event("2024-05-01T10:02:00Z", "10.0.0.1"),
        event("2024-05-01T10:00:00Z", "10.0.0.2"),
    ]
    findings = correlation_findings(run(tmp_path, events, event_count(condition)))

    assert {finding["SrcIpAddr"]: finding["Value"] for finding in findings} == expected


# value_count, value_sum, value_avg, value_percentile, value_median


def value_rule(kind: str, condition: str) -> str:
    return BASE_RULES + correlation(
        f"correlation:\n    type: {kind}\n    rules: [upload]\n    group-by: [c-ip]\n    timespan: 1h\n"
        f"    condition:\n{condition}"
    )


VALUE_EVENTS = [
    event("2024-05-01T10:00:00Z", "10.0.0.1", host="a.example.com", sent=100),
    event("2024-05-01T10:01:00Z", "10.0.0.1", host="b.example.com", sent=200),
    event("2024-05-01T10:02:00Z", "10.0.0.1", host="b.example.com", sent=600),
    event("2024-05-01T10:03:00Z", "10.0.0.1", host="c.example.com", sent=None),
    event("2024-05-01T10:00:00Z", "10.0.0.2", host="a.example.com", sent=5),
]


@pytest.mark.parametrize(
    ("kind", "condition", "expected"),
    [
        ("value_count", "        field: cs-host\n        gte: 3\n", {"10.0.0.1": 3}),
        ("value_count", "        field: cs-host\n        lt: 2\n", {"10.0.0.1": 1, "10.0.0.2": 1}),
        ("value_count", "        field: [cs-host, cs-bytes]\n        gte: 3\n", {"10.0.0.1": 3}),
        ("value_sum", "        field: cs-bytes\n        gt: 800\n", {"10.0.0.1": 900}),
        # The windows of 10.0.0.1 average 300, 400 and 600; the finding reports the highest.
        ("value_avg", "        field: cs-bytes\n        gte: 300\n", {"10.0.0.1": 600}),
        ("value_avg", "        field: cs-bytes\n        lt: 350\n", {"10.0.0.1": 300, "10.0.0.2": 5}),
        ("value_percentile", "        field: cs-bytes\n        percentile: 50\n        lte: 200\n", {"10.0.0.1": 200, "10.0.0.2": 5}),
        ("value_percentile", "        field: cs-bytes\n        percentile: 90\n        eq: 520\n", {"10.0.0.1": 520}),
        ("value_median", "        field: cs-bytes\n        lte: 200\n", {"10.0.0.1": 200, "10.0.0.2": 5}),
    ],
)
def test_value_aggregates(tmp_path, kind, condition, expected):
    findings = correlation_findings(run(tmp_path, VALUE_EVENTS, value_rule(kind, condition)))

    assert {finding["SrcIpAddr"]: finding["Value"] for finding in findings} == expected
    assert all(finding["CorrelationType"] == kind for finding in findings)


def test_value_sum_of_text_field_not_runnable(tmp_path):
    result = run(tmp_path, VALUE_EVENTS, value_rule("value_sum", "        field: c-useragent\n        gt: 1\n"))

    [problem] = result.rule_problems
    assert problem.kind == "correlation"
    assert "needs a number field" in problem.message
    assert "HttpUserAgent" in problem.message


def test_value_percentile_without_percentile_not_runnable(tmp_path):
    result = run(tmp_path, VALUE_EVENTS, value_rule("value_percentile", "        field: cs-bytes\n        gt: 1\n"))

    [problem] = result.rule_problems
    assert "needs 'percentile'" in problem.message


# temporal and temporal_ordered


def temporal(kind: str, rules: str = "[tunnel, upload]", extra: str = "") -> str:
    return BASE_RULES + correlation(
        f"correlation:\n    type: {kind}\n    rules: {rules}\n    group-by: [c-ip]\n    timespan: 5m\n{extra}"
    )


def test_temporal_pairs_only_same_group(tmp_path):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1", method="CONNECT"),
        event("2024-05-01T10:01:00Z", "10.0.0.2", method="PUT"),
    ]
    assert correlation_findings(run(tmp_path, events, temporal("temporal"))) == []


def test_temporal_same_group_matches(tmp_path):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.2", method="PUT"),
        event("2024-05-01T10:01:00Z", "10.0.0.1", method="CONNECT"),
        event("2024-05-01T10:03:00Z", "10.0.0.2", method="CONNECT"),
    ]
    [finding] = correlation_findings(run(tmp_path, events, temporal("temporal")))

    assert finding["GroupBy"] == {"c-ip": "10.0.0.2"}
    assert finding["Value"] == 2
    assert [item["SourceLine"] for item in finding["Events"]] == [1, 3]
    assert [item["RuleId"] for item in finding["Events"]] == [UPLOAD_ID, "tunnel"]


def test_temporal_needs_every_rule(tmp_path):
    events = [event("2024-05-01T10:00:00Z", "10.0.0.1"), event("2024-05-01T10:01:00Z", "10.0.0.1")]
    assert correlation_findings(run(tmp_path, events, temporal("temporal"))) == []


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [("CONNECT", "PUT", 1), ("PUT", "CONNECT", 0)],
)
def test_temporal_ordered_follows_rule_order(tmp_path, first, second, expected):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1", method=first),
        event("2024-05-01T10:02:00Z", "10.0.0.1", method=second),
    ]
    findings = correlation_findings(run(tmp_path, events, temporal("temporal_ordered")))

    assert len(findings) == expected


def test_temporal_ordered_lists_chosen_events(tmp_path):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1", method="PUT"),
        event("2024-05-01T10:01:00Z", "10.0.0.1", method="CONNECT"),
        event("2024-05-01T10:02:00Z", "10.0.0.1", method="PUT"),
        event("2024-05-01T10:03:00Z", "10.0.0.1", method="PUT"),
    ]
    [finding] = correlation_findings(run(tmp_path, events, temporal("temporal_ordered")))

    assert finding["Value"] == 2
    assert [item["SourceLine"] for item in finding["Events"]] == [2, 3]


def test_temporal_ordered_outside_timespan(tmp_path):
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1", method="CONNECT"),
        event("2024-05-01T10:05:01Z", "10.0.0.1", method="PUT"),
    ]
    assert correlation_findings(run(tmp_path, events, temporal("temporal_ordered"))) == []


def test_temporal_extended_condition(tmp_path):
    rules = temporal("temporal", extra="    condition: tunnel and not upload\n")
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1", method="CONNECT"),
        event("2024-05-01T10:01:00Z", "10.0.0.1", method="PUT"),
        event("2024-05-01T10:00:00Z", "10.0.0.2", method="CONNECT"),
    ]
    findings = correlation_findings(run(tmp_path, events, rules))

    assert [finding["SrcIpAddr"] for finding in findings] == ["10.0.0.2"]


def test_aliases_group_different_fields(tmp_path):
    rules = BASE_RULES + correlation(
        "correlation:\n    type: temporal\n    rules: [upload, tunnel]\n    group-by: [address]\n    timespan: 5m\n"
        "    aliases:\n        address:\n            upload: c-ip\n            tunnel: dst_ip\n"
    )
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.9", method="PUT"),
        {"TimeGenerated": "2024-05-01T10:01:00Z", "SrcIpAddr": "10.0.0.1", "DstIpAddr": "10.0.0.9", "HttpRequestMethod": "CONNECT"},
    ]
    [finding] = correlation_findings(run(tmp_path, events, rules))

    assert finding["GroupBy"] == {"address": "10.0.0.9"}
    # The alias stands for two different columns, so no WebSession column is filled.
    assert finding["SrcIpAddr"] is None
    assert finding["DstIpAddr"] is None


# generate


@pytest.mark.parametrize(("generate", "detections"), [("", 0), ("    generate: true\n", 2)])
def test_generate_controls_rule_findings(tmp_path, generate, detections):
    rules = BASE_RULES + correlation(
        "correlation:\n    type: event_count\n    rules: [upload]\n    group-by: [c-ip]\n    timespan: 1h\n"
        f"    condition:\n        gte: 2\n{generate}"
    )
    events = [event("2024-05-01T10:00:00Z", "10.0.0.1"), event("2024-05-01T10:01:00Z", "10.0.0.1")]
    result = run(tmp_path, events, rules)

    assert len(correlation_findings(result)) == 1
    assert sum(finding["RuleType"] == "detection" for finding in result.findings) == detections


# Correlations that cannot run


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "correlation:\n    type: event_count\n    rules: [missing_rule]\n    group-by: [c-ip]\n    timespan: 1h\n"
            "    condition:\n        gte: 2\n",
            "the rule 'missing_rule' that it correlates is not loaded",
        ),
        (
            "correlation:\n    type: event_count\n    rules: [upload]\n    group-by: [ComputerName]\n    timespan: 1h\n"
            "    condition:\n        gte: 2\n",
            "the group-by field 'ComputerName' of rule 'upload' is not a Sigma proxy field",
        ),
        (
            "correlation:\n    type: temporal_ordered\n    rules: [tunnel, upload]\n    group-by: [c-ip]\n"
            "    timespan: 1h\n    condition: tunnel and upload\n",
            "supported for temporal correlations only",
        ),
    ],
)
def test_correlation_not_runnable(tmp_path, body, reason):
    events = [event("2024-05-01T10:00:00Z", "10.0.0.1")]
    result = run(tmp_path, events, BASE_RULES + correlation(body, title="Broken"))

    [problem] = result.rule_problems
    assert problem.title == "Broken"
    assert reason in problem.message
    assert correlation_findings(result) == []


def test_correlation_of_correlation_not_runnable(tmp_path):
    rules = (
        BASE_RULES
        + correlation(
            "name: many_uploads\ncorrelation:\n    type: event_count\n    rules: [upload]\n    group-by: [c-ip]\n"
            "    timespan: 1h\n    condition:\n        gte: 2\n",
            title="Inner",
        )
        + correlation(
            "correlation:\n    type: temporal_ordered\n    rules: [many_uploads, tunnel]\n    group-by: [c-ip]\n"
            "    timespan: 1h\n",
            title="Outer",
        )
    )
    result = run(tmp_path, [event("2024-05-01T10:00:00Z", "10.0.0.1")], rules)

    [problem] = result.rule_problems
    assert problem.title == "Outer"
    assert "correlations of correlations are not supported yet" in problem.message


def test_correlation_of_non_proxy_rule(tmp_path):
    rules = (
        "title: Rclone Process\nname: rclone_process\nlogsource:\n    category: process_creation\n    product: windows\n"
        "detection:\n    selection:\n        Image|endswith: '\\rclone.exe'\n    condition: selection\n"
        + correlation(
            "correlation:\n    type: event_count\n    rules: [rclone_process]\n    group-by: [c-ip]\n    timespan: 1h\n"
            "    condition:\n        gte: 1\n"
        )
    )
    result = run(tmp_path, [event("2024-05-01T10:00:00Z", "10.0.0.1")], rules)

    [problem] = result.rule_problems
    assert "log source is not web-proxy traffic" in problem.message


# The Spark SQL dialect


def test_spark_sql_gives_same_findings(tmp_path):
    """Run the Spark SQL of two correlations in a real local Spark and compare with DuckDB's findings."""
    pyspark_sql = pytest.importorskip("pyspark.sql")
    rules = (
        temporal("temporal_ordered")
        .replace("title: Correlation", "title: Tunnel 'then' upload \\\\ ordered")
        + correlation(
            "correlation:\n    type: value_count\n    rules: [upload]\n    group-by: [c-ip]\n    timespan: 1h\n"
            "    condition:\n        field: cs-host\n        gte: 2\n",
            title="Hosts",
        )
    )
    events = [
        event("2024-05-01T10:00:00Z", "10.0.0.1", method="CONNECT"),
        event("2024-05-01T10:01:00Z", "10.0.0.1", host="a.example.com"),
        event("2024-05-01T10:04:00Z", "10.0.0.1", host="b.example.com"),
        event("2024-05-01T10:02:00Z", "10.0.0.2", method="CONNECT"),
    ]
    expected = {
        (finding["RuleTitle"], finding["WindowStart"], finding["Value"], tuple(item["SourceLine"] for item in finding["Events"]))
        for finding in correlation_findings(run(tmp_path, events, rules))
    }
    ruleset = load_rules([str(tmp_path / "rules.yml")], include_bundled=False)
    compiled = compile_correlations(ruleset, {rule.key: None for rule in ruleset.rules})
    conditions = {"upload": "HttpRequestMethod = 'PUT'", "tunnel": "HttpRequestMethod = 'CONNECT'"}

    spark = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        rows = [
            (datetime.fromisoformat(record["TimeGenerated"].replace("Z", "")), record["SrcIpAddr"],
             record["HttpRequestMethod"], record["DstHostname"], record.get("SrcBytes"), None, "proxy.jsonl", line)
            for line, record in enumerate(events, start=1)
        ]
        schema = (
            "TimeGenerated timestamp, SrcIpAddr string, HttpRequestMethod string, DstHostname string, "
            "SrcBytes bigint, DstBytes bigint, SourceFile string, SourceLine bigint"
        )
        spark.createDataFrame(rows, schema).createOrReplaceTempView("websession")
        found = set()
        for item in compiled:
            sources = [RuleEvents("websession", conditions[source.reference]) for source in item.inputs]
            for row in spark.sql(CorrelationQuery(item, SparkDialect(), sources).findings_select()).collect():
                found.add((row.RuleTitle, row.WindowStart, row.Value, tuple(event.SourceLine for event in row.Events)))
    finally:
        spark.stop()

    assert len(expected) == 2
    assert found == expected
