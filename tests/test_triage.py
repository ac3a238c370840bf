"""Triage priority: working hours, source lists, rclone builds, limits, and the order reports show."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from proxyhunt.hunt import hunt
from proxyhunt.report import terminal
from proxyhunt.report.html import render_html
from proxyhunt.rules.lists import lists_in_force
from proxyhunt.tuning.triage import (
    SourceList,
    TriageSettings,
    WorkingHoursError,
    apply_triage,
    parse_working_hours,
    triage_finding,
    triage_order,
)

OFFICE = "Mon-Fri 07:00-19:00 Europe/Berlin"
SEED_RULE = str(Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")


# Working hours


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(2026, 12, 4, 9, 0), True),  # Friday 10:00 in Berlin (UTC+1)
        (datetime(2026, 12, 4, 5, 59), False),  # Friday 06:59 in Berlin
        (datetime(2026, 12, 4, 6, 0), True),  # Friday 07:00 in Berlin: the start is inside
        (datetime(2026, 12, 4, 18, 0), False),  # Friday 19:00 in Berlin: the end is outside
        (datetime(2026, 12, 5, 10, 0), False),  # Saturday
        (datetime(2026, 7, 3, 17, 30), False),  # Friday 19:30 in Berlin in summer (UTC+2)
        (datetime(2026, 7, 3, 16, 30), True),  # Friday 18:30 in Berlin in summer
    ],
)
def test_working_hours_in_zone(moment, inside):
    assert parse_working_hours(OFFICE).contains(moment) is inside


def test_working_hours_default_utc():
    hours = parse_working_hours("Mon-Fri 07:00-19:00")

    assert hours.contains(datetime(2026, 12, 4, 18, 30))
    assert not hours.contains(datetime(2026, 12, 4, 19, 0))


def test_working_hours_across_midnight():
    night = parse_working_hours("Sun-Thu 22:00-06:00")

    assert night.contains(datetime(2026, 12, 6, 23, 0))  # Sunday 23:00
    assert night.contains(datetime(2026, 12, 7, 5, 59))  # Monday 05:59, the shift that began on Sunday
    assert not night.contains(datetime(2026, 12, 5, 3, 0))  # Saturday 03:00: Friday has no shift
    assert night.contains(datetime(2026, 12, 4, 3, 0))  # Friday 03:00, Thursday's shift
    assert not night.contains(datetime(2026, 12, 7, 12, 0))


def test_working_days_list_and_wrap():
    hours = parse_working_hours("Fri-Mon,Wed 00:00-24:00")

    # 2026-12-07 is a Monday, so day 0 is Monday.
    weekdays = {day for day in range(7) if hours.contains(datetime(2026, 12, 7 + day, 12))}
    assert weekdays == {0, 2, 4, 5, 6}


def test_window_covered_only_within_stretch():
    hours = parse_working_hours(OFFICE)

    assert hours.covers(datetime(2026, 12, 4, 9, 0), datetime(2026, 12, 4, 10, 0))
    assert not hours.covers(datetime(2026, 12, 4, 17, 30), datetime(2026, 12, 4, 18, 30))
    assert not hours.covers(datetime(2026, 12, 5, 9, 0), datetime(2026, 12, 5, 10, 0))


def test_window_over_back_to_back_days():
    always = parse_working_hours("Mon-Sun 00:00-24:00")

    assert always.covers(datetime(2026, 12, 4, 23, 0), datetime(2026, 12, 6, 1, 0))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Mon-Fri", "give days, a time range"),
        ("Monday-Fryday 07:00-19:00", "invalid day 'Fryday'"),
        ("Mon-Fri 0700", "write it as HH:MM-HH:MM"),
        ("Mon-Fri 7-19", "invalid time '7'.*write 24-hour HH:MM"),
        ("Mon-Fri 07:00-25:00", "invalid time '25:00'"),
        ("Mon-Fri 07:60-19:00", "invalid time '07:60'"),
        ("Mon-Fri 07:00-07:00", "starts where it ends"),
        ("Mon-Fri 24:00-06:00", "24:00 can only end a range"),
        ("Mon-Fri 07:00-19:00 Europe/Atlantis", "unknown time zone 'Europe/Atlantis'"),
        ("Mon-Fri 07:00-19:00 ../../etc/passwd", "unknown time zone"),
        ("Mon-Fri 07:00-19:00 UTC extra", "give days, a time range"),
    ],
)
def test_bad_working_hours_named(spec, message):
    with pytest.raises(WorkingHoursError, match=message):
        parse_working_hours(spec)


# Adjustments


def detection(level: str = "medium", agent: str = "rclone/v1.68.2", **values) -> dict:
    finding = {
        "RuleLevel": level,
        "RuleType": "detection",
        "HttpUserAgent": agent,
        "SrcIpAddr": "10.20.3.7",
        "SrcHostname": None,
        "TimeGenerated": datetime(2026, 12, 3, 10, 0),  # Thursday 11:00 in Berlin
    }
    finding.update(values)
    return finding


def settings(servers=(), backups=(), hours: str | None = None) -> TriageSettings:
    return TriageSettings(
        SourceList.of("server_sources", servers),
        SourceList.of("known_backup_sources", backups),
        parse_working_hours(hours) if hours else None,
    )


def test_level_is_the_start():
    triage = triage_finding(detection("high"), settings())

    assert triage.priority == "high"
    assert triage.reasons == ("rule level high",)


@pytest.mark.parametrize("agent", ["rclone/v1.69.0-DEV", "APN/1.0 rclone/1.0 rclone/1.74.0-beta.8900.1234abcd.master"])
def test_development_build_is_left_to_its_rule(agent):
    # The bundled dev-build rule has level high; raising its findings again would count the build twice.
    triage = triage_finding(detection("high", agent=agent), settings())

    assert triage.priority == "high"
    assert triage.reasons == ("rule level high",)


def test_server_source_by_address_wildcard():
    triage = triage_finding(detection(), settings(servers=["10.20.3.*"]))

    assert triage.priority == "high"
    assert "+1 source 10.20.3.7 is in server_sources" in triage.reasons


def test_server_source_by_host_name_ignores_case():
    triage = triage_finding(detection(SrcIpAddr="10.9.9.9", SrcHostname="FS01.corp.example"), settings(servers=["fs0?.corp.example"]))

    assert triage.priority == "high"


def test_server_list_value_is_exact():
    # No implied wildcards: 10.20.3.70 is not 10.20.3.7.
    assert triage_finding(detection(SrcIpAddr="10.20.3.70"), settings(servers=["10.20.3.7"])).priority == "medium"


def test_escaped_wildcard_is_literal():
    assert triage_finding(detection(SrcHostname="web-1"), settings(servers=["web\\*"])).priority == "medium"
    assert triage_finding(detection(SrcHostname="web*"), settings(servers=["web\\*"])).priority == "high"


def test_backup_source_lowers():
    triage = triage_finding(detection(), settings(backups=["10.20.3.7"]))

    assert triage.priority == "low"
    assert "-1 source 10.20.3.7 is in known_backup_sources" in triage.reasons


def test_outside_working_hours_raises():
    at_night = detection(TimeGenerated=datetime(2026, 12, 5, 2, 12))  # Saturday 03:12 in Berlin

    triage = triage_finding(at_night, settings(hours=OFFICE))

    assert triage.priority == "high"
    assert f"+1 at Sat 03:12, outside working hours {OFFICE}" in triage.reasons
    assert triage_finding(detection(), settings(hours=OFFICE)).priority == "medium"


def test_no_working_hours_no_time_adjustment():
    at_night = detection(TimeGenerated=datetime(2026, 12, 5, 2, 12))

    assert triage_finding(at_night, settings()).priority == "medium"


def test_correlation_window_judged_whole():
    hours = OFFICE
    inside = {"RuleLevel": "medium", "RuleType": "correlation", "SrcIpAddr": "10.20.3.7",
              "WindowStart": datetime(2026, 12, 3, 9, 0), "WindowEnd": datetime(2026, 12, 3, 10, 0)}
    reaching_out = {**inside, "WindowStart": datetime(2026, 12, 3, 17, 30), "WindowEnd": datetime(2026, 12, 3, 18, 30)}

    assert triage_finding(inside, settings(hours=hours)).priority == "medium"
    triage = triage_finding(reaching_out, settings(hours=hours))
    assert triage.priority == "high"
    assert "window Thu 18:30 to Thu 19:30 reaches outside working hours" in triage.reasons[1]


def test_capped_at_critical():
    finding = detection("high", agent="rclone/v1.69.0-DEV", TimeGenerated=datetime(2026, 12, 5, 2, 0))

    triage = triage_finding(finding, settings(servers=["10.20.3.7"], hours=OFFICE))

    assert triage.priority == "critical"
    assert triage.reasons[-1] == "kept at critical, the highest priority"


def test_floored_at_informational():
    triage = triage_finding(detection("informational"), settings(backups=["10.20.3.7"]))

    assert triage.priority == "informational"
    assert triage.reasons[-1] == "kept at informational, the lowest priority"


def test_backup_host_ranks_below_dev_build():
    backup = detection(agent="rclone/v1.68.2", SrcIpAddr="10.20.9.5")
    # A -DEV build is found by the dev-build rule, level high.
    intruder = detection("high", agent="rclone/v1.69.0-DEV", SrcIpAddr="10.20.4.40", TimeGenerated=datetime(2026, 12, 3, 2, 0))
    context = settings(servers=["10.20.4.*"], backups=["10.20.9.5"], hours=OFFICE)

    assert triage_finding(backup, context).priority == "low"
    assert triage_finding(intruder, context).priority == "critical"


@pytest.mark.parametrize("level", [None, "", "severe"])
def test_missing_level_assumed_medium(level):
    triage = triage_finding(detection(level), settings())

    assert triage.priority == "medium"
    assert triage.reasons[0] == "rule has no Sigma level; medium assumed"


def test_order_by_priority_then_time():
    findings = [
        {"Priority": "medium", "TimeGenerated": datetime(2026, 12, 3, 1), "SourceLine": 1},
        {"Priority": "critical", "TimeGenerated": datetime(2026, 12, 3, 3), "SourceLine": 3},
        {"Priority": "critical", "TimeGenerated": datetime(2026, 12, 3, 2), "SourceLine": 2},
        {"Priority": "high", "WindowStart": datetime(2026, 12, 3, 0), "SourceLine": None},
    ]

    ordered = triage_order(findings)

    assert [(item["Priority"], item["SourceLine"]) for item in ordered] == [
        ("critical", 2),
        ("critical", 3),
        ("high", None),
        ("medium", 1),
    ]


def test_apply_sets_both_fields():
    findings = [detection(), detection("low")]

    apply_triage(findings, settings())

    assert [item["Priority"] for item in findings] == ["medium", "low"]
    assert findings[1]["PriorityReasons"] == ["rule level low"]


# Through the hunt and the reports


def write_log(tmp_path: Path) -> Path:
    base = {"HttpRequestMethod": "PUT", "DstHostname": "bucket.example", "SrcBytes": 1024}
    events = [
        {**base, "TimeGenerated": "2026-12-03T10:00:00Z", "SrcIpAddr": "10.20.9.5", "HttpUserAgent": "rclone/v1.68.2"},
        {**base, "TimeGenerated": "2026-12-03T11:00:00Z", "SrcIpAddr": "10.20.3.7", "HttpUserAgent": "rclone/v1.68.2"},
        {**base, "TimeGenerated": "2026-12-05T02:00:00Z", "SrcIpAddr": "10.20.4.40", "HttpUserAgent": "rclone/v1.69.0-DEV"},
    ]
    log = tmp_path / "proxy.jsonl"
    log.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return log


def write_lists(tmp_path: Path) -> Path:
    lists = tmp_path / "lists.yml"
    lists.write_text('server_sources: ["10.20.4.*"]\nknown_backup_sources: [10.20.9.5]\n', encoding="utf-8")
    return lists


def hunt_with_triage(tmp_path: Path):
    return hunt(
        [str(write_log(tmp_path))],
        rule_paths=[SEED_RULE],
        include_bundled=False,
        lists_path=str(write_lists(tmp_path)),
        working_hours=OFFICE,
    )


def test_hunt_sets_priority(tmp_path):
    result = hunt_with_triage(tmp_path)

    priorities = {finding["SrcIpAddr"]: finding["Priority"] for finding in result.findings}
    assert priorities == {"10.20.9.5": "low", "10.20.3.7": "medium", "10.20.4.40": "critical"}
    assert all(finding["PriorityReasons"][0] == "rule level medium" for finding in result.findings)


def test_hunt_defaults_lists_without_file(tmp_path):
    result = hunt([str(write_log(tmp_path))], rule_paths=[SEED_RULE], include_bundled=False, lists=lists_in_force())

    priorities = [finding["Priority"] for finding in result.findings]
    assert priorities == ["medium", "medium", "medium"]


def test_hunt_rejects_bad_working_hours(tmp_path):
    with pytest.raises(WorkingHoursError):
        hunt([str(write_log(tmp_path))], rule_paths=[SEED_RULE], include_bundled=False, working_hours="weekdays")


def test_terminal_lists_highest_priority_first(tmp_path):
    result = hunt_with_triage(tmp_path)
    output = io.StringIO()
    terminal.render_findings(Console(file=output, width=80, no_color=True), result)
    text = output.getvalue()

    positions = [text.index(address) for address in ("10.20.4.40", "10.20.3.7", "10.20.9.5")]
    assert positions == sorted(positions)
    assert text.index("critical") < text.index("low")


def test_html_lists_highest_priority_first(tmp_path):
    result = hunt_with_triage(tmp_path)
    findings = render_html(result).split('id="findings-table"')[1].split("</table>")[0]

    positions = [findings.index(address) for address in ("10.20.4.40", "10.20.3.7", "10.20.9.5")]
    assert positions == sorted(positions)
    assert "+1 at Sat 03:00, outside working hours" in findings


def test_cli_bad_working_hours_is_usage_error(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(write_log(tmp_path)), "--working-hours", "Mon-Fri 9-5"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 2
    assert "--working-hours" in completed.stderr
    assert "invalid time '9' in working hours: write 24-hour HH:MM" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_cli_working_hours_in_output(tmp_path):
    output = tmp_path / "findings.jsonl"
    completed = subprocess.run(
        [
            sys.executable, "-m", "proxyhunt", "hunt", str(write_log(tmp_path)), "--no-default-rules",
            "--rules", SEED_RULE, "--working-hours", OFFICE, "--lists", str(write_lists(tmp_path)),
            "--output", str(output), "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 1, completed.stderr
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert {record["SrcIpAddr"]: record["Priority"] for record in records}["10.20.4.40"] == "critical"
