"""Correlation thresholds and timespans from placeholders, and the default lists under the user's lists file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proxyhunt.check import NOT_RUNNABLE, READY, check_rules
from proxyhunt.export.convert import convert
from proxyhunt.hunt import hunt
from proxyhunt.rules.lists import (
    PlaceholderListsError,
    default_lists_path,
    lists_in_force,
    load_default_lists,
    load_lists,
)
from proxyhunt.rules.loader import load_rules

VOLUME_RULES = """\
title: Upload to Files Host
id: 1e2d3c4b-5a69-4877-8695-a4b3c2d1e0f1
name: upload_to_files
logsource:
    category: proxy
detection:
    selection:
        cs-host: files.example.org
        cs-method: PUT
    condition: selection
level: low
---
title: Large Upload to Files Host
id: 2f3e4d5c-6b7a-4988-97a6-b5c4d3e2f102
correlation:
    type: value_sum
    rules:
        - upload_to_files
    group-by:
        - c-ip
    timespan: '%files_upload_window%'
    condition:
        gte: '%files_upload_bytes%'
        field: cs-bytes
level: high
"""

# Three 400-byte uploads from one client within two minutes, in Zeek JSON (which carries request_body_len).
UPLOADS = "".join(
    f'{{"ts":{1796440000 + 60 * index}.0,"uid":"C{index}","id.orig_h":"10.0.0.5","id.orig_p":5000,'
    f'"id.resp_h":"198.51.100.7","id.resp_p":80,"method":"PUT","host":"files.example.org","uri":"/{index}",'
    f'"user_agent":"restic/0.17.3","request_body_len":400,"response_body_len":0,"status_code":200}}\n'
    for index in range(3)
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def correlation_problems(ruleset) -> list[str]:
    return [problem.message for problem in ruleset.problems if problem.kind == "correlation"]


# Substitution before pySigma parses the rule


def test_values_from_lists_file(tmp_path):
    rules = write(tmp_path / "volume.yml", VOLUME_RULES)
    lists = write(tmp_path / "lists.yml", "files_upload_bytes: 1000\nfiles_upload_window: 10m\n")

    ruleset = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists)))

    [correlation] = ruleset.correlations
    assert correlation.rule.condition.count == 1000
    assert correlation.rule.timespan.seconds == 600
    assert correlation.placeholders == ("files_upload_window", "files_upload_bytes")
    assert ruleset.problems == []


def test_one_item_list_is_a_value(tmp_path):
    rules = write(tmp_path / "volume.yml", VOLUME_RULES)
    lists = write(tmp_path / "lists.yml", "files_upload_bytes: [1000]\nfiles_upload_window: [2h]\n")

    [correlation] = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists))).correlations

    assert correlation.rule.condition.count == 1000
    assert correlation.rule.timespan.seconds == 7200


def test_missing_value_not_runnable(tmp_path):
    rules = write(tmp_path / "volume.yml", VOLUME_RULES)
    lists = write(tmp_path / "lists.yml", "files_upload_window: 10m\n")

    ruleset = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists)))

    assert ruleset.correlations == []
    # The detection rule in the same file still loads.
    assert [loaded.title for loaded in ruleset.rules] == ["Upload to Files Host"]
    [problem] = ruleset.problems
    assert problem.kind == "correlation"
    assert problem.title == "Large Upload to Files Host"
    assert problem.rule_id == "2f3e4d5c-6b7a-4988-97a6-b5c4d3e2f102"
    assert "%files_upload_bytes%" in problem.message
    assert f"{rules}:23" in problem.message
    assert f"add 'files_upload_bytes: 1073741824' to {lists}" in problem.message


def test_missing_value_without_lists_file(tmp_path):
    rules = write(tmp_path / "volume.yml", VOLUME_RULES)

    ruleset = load_rules([str(rules)], include_bundled=False)

    [message] = correlation_problems(ruleset)
    assert "placeholder %files_upload_window% (" in message
    assert "to a lists file and pass it with --lists" in message


@pytest.mark.parametrize(
    ("lists_text", "expected"),
    [
        ("files_upload_bytes: -5\nfiles_upload_window: 1h\n", "LISTS:1: invalid value '-5' of 'files_upload_bytes'"),
        ("files_upload_bytes: -5\nfiles_upload_window: 1h\n", "a threshold is a whole number of 0 or more"),
        ("files_upload_bytes: 1.5\nfiles_upload_window: 1h\n", "invalid value '1.5' of 'files_upload_bytes'"),
        ("files_upload_bytes: 5\nfiles_upload_window: 1x\n", "LISTS:2: invalid value '1x' of 'files_upload_window'"),
        ("files_upload_bytes: 5\nfiles_upload_window: 1x\n", "a timespan is a whole number above 0 and one unit"),
        ("files_upload_bytes: 5\nfiles_upload_window: 0h\n", "invalid value '0h' of 'files_upload_window'"),
        ("files_upload_bytes: 5\nfiles_upload_window: '10'\n", "invalid value '10' of 'files_upload_window'"),
        ("files_upload_bytes: [5, 6]\nfiles_upload_window: 1h\n", "needs one value, and LISTS:1 lists 2"),
    ],
    ids=["negative", "negative-fix", "fraction", "bad-unit", "bad-unit-fix", "zero-span", "no-unit", "two-values"],
)
def test_malformed_value_not_runnable(tmp_path, lists_text, expected):
    rules = write(tmp_path / "volume.yml", VOLUME_RULES)
    lists = write(tmp_path / "lists.yml", lists_text)

    ruleset = load_rules([str(rules)], include_bundled=False, lists=lists_in_force(str(lists)))

    assert ruleset.correlations == []
    [message] = correlation_problems(ruleset)
    assert message.startswith("not runnable: ")
    assert expected.replace("LISTS", str(lists)) in message
    assert str(rules) in message


def test_text_value_rejected_with_file_and_line(tmp_path):
    lists = write(tmp_path / "lists.yml", "hosts: [a]\nfiles_upload_bytes: abc\n")

    with pytest.raises(PlaceholderListsError) as error:
        load_lists(lists)

    assert f"{lists}:2" in str(error.value)
    assert "a whole number or a number and one unit, such as 'files_upload_bytes: 1073741824'" in str(error.value)


def test_scalar_for_expand_not_runnable(tmp_path):
    rule = write(
        tmp_path / "rule.yml",
        """\
        title: Known Host
        logsource:
            category: proxy
        detection:
            selection:
                cs-host|expand: '%files_upload_bytes%'
            condition: selection
        """,
    )
    lists = write(tmp_path / "lists.yml", "files_upload_bytes: 5\n")
    log = write(tmp_path / "access.log", "")

    result = hunt([str(log)], rule_paths=[str(rule)], include_bundled=False, lists_path=str(lists))

    [problem] = result.rule_problems
    assert "|expand needs a list; write it as 'files_upload_bytes: [5]'" in problem.message


# Hunts use the values in force


def test_hunt_threshold_from_lists(tmp_path):
    rules = write(tmp_path / "volume.yml", VOLUME_RULES)
    log = write(tmp_path / "http.log", UPLOADS)
    low = write(tmp_path / "low.yml", "files_upload_bytes: 1200\nfiles_upload_window: 5m\n")
    high = write(tmp_path / "high.yml", "files_upload_bytes: 1201\nfiles_upload_window: 5m\n")
    short = write(tmp_path / "short.yml", "files_upload_bytes: 1200\nfiles_upload_window: 1m\n")

    def correlation_findings(lists: Path) -> list[dict]:
        result = hunt([str(log)], rule_paths=[str(rules)], include_bundled=False, lists_path=str(lists))
        assert result.rule_problems == []
        return [finding for finding in result.findings if finding["RuleType"] == "correlation"]

    [finding] = correlation_findings(low)
    assert finding["Value"] == 1200
    assert correlation_findings(high) == []
    # Within any one minute only two uploads (800 bytes) fall in a window.
    assert correlation_findings(short) == []


def test_bundled_volume_rules_use_defaults(tmp_path):
    ruleset = load_rules([])
    defaults = load_default_lists()

    volume = [correlation for correlation in ruleset.correlations if correlation.placeholders]
    assert volume, "the bundled pack has no correlation with threshold placeholders"
    for correlation in volume:
        names = list(correlation.placeholders)
        for name in names:
            assert name in defaults.scalars, name
        window = [name for name in names if name.endswith("_window")]
        for name in window:
            expected = defaults.scalars[name]
            assert correlation.rule.timespan.spec == expected


# Default lists laid under the user's lists file


def test_default_lists_are_well_formed():
    defaults = load_lists(default_lists_path())

    assert defaults.scalars["rclone_cloud_upload_bytes"] == "1073741824"
    assert defaults.scalars["rclone_cloud_upload_window"] == "1h"
    assert defaults.scalars["go_connect_upload_bytes"] == "536870912"
    assert defaults.scalars["go_connect_upload_window"] == "1h"
    assert "*.userstorage.mega.co.nz" in defaults.get("cloud_storage_domains")


def test_user_key_replaces_whole_default(tmp_path):
    lists = write(tmp_path / "lists.yml", "cloud_storage_domains: ['*.example-storage.net']\nrclone_cloud_upload_bytes: 10\n")

    merged = lists_in_force(str(lists))

    assert merged.get("cloud_storage_domains") == ("*.example-storage.net",)
    assert merged.scalars["rclone_cloud_upload_bytes"] == "10"
    assert merged.scalars["go_connect_upload_bytes"] == "536870912"
    assert merged.location_of("cloud_storage_domains") == f"{lists}:1"
    assert merged.from_defaults("go_connect_upload_window")
    assert not merged.from_defaults("cloud_storage_domains")
    assert merged.path == str(lists)


def test_list_key_may_replace_a_scalar(tmp_path):
    lists = write(tmp_path / "lists.yml", "rclone_cloud_upload_window: [2h]\n")

    merged = lists_in_force(str(lists))

    assert "rclone_cloud_upload_window" not in merged.scalars
    assert merged.get("rclone_cloud_upload_window") == ("2h",)


def test_check_names_default_lists(tmp_path):
    lists = write(tmp_path / "lists.yml", "rclone_cloud_upload_bytes: 10\nrclone_cloud_upload_window: 1h\n")

    defaults = check_rules([])
    own = check_rules([], lists_path=str(lists))

    def reason(check, title_part: str) -> str:
        [status] = [status for status in check.statuses if title_part in status.title and "correlation" in status.kind]
        assert status.status == READY
        return status.reason

    volume_title = "Large Upload to Cloud Storage"
    assert "uses the default lists for rclone_cloud_upload_window, rclone_cloud_upload_bytes" in reason(defaults, volume_title)
    assert reason(own, volume_title) in ("", "-")


def test_check_reports_bad_threshold(tmp_path):
    rules = write(tmp_path / "volume.yml", VOLUME_RULES)
    lists = write(tmp_path / "lists.yml", "files_upload_bytes: -1\nfiles_upload_window: 1h\n")

    check = check_rules([str(rules)], include_bundled=False, lists_path=str(lists))

    [status] = [status for status in check.statuses if status.kind == "correlation"]
    assert status.status == NOT_RUNNABLE
    assert "files_upload_bytes" in status.reason
    assert "invalid value '-1'" in status.reason


# Converted queries use the values in force


def test_convert_uses_values_in_force(tmp_path):
    rules = write(tmp_path / "volume.yml", VOLUME_RULES)
    lists = write(tmp_path / "lists.yml", "files_upload_bytes: 4242\nfiles_upload_window: 10m\n")

    conversions, _ = convert([str(rules)], "kql", include_bundled=False, lists_path=str(lists))

    [correlation] = [conversion for conversion in conversions if conversion.rule_type == "correlation"]
    assert correlation.ok, correlation.error
    assert ">= 4242" in correlation.query
    assert "%files_upload" not in correlation.query


def test_convert_bundled_uses_defaults_and_overrides(tmp_path):
    lists = write(tmp_path / "lists.yml", "rclone_cloud_upload_bytes: 31337\n")

    default_queries = "\n".join(conversion.query or "" for conversion in convert([], "kql")[0])
    own_queries = "\n".join(conversion.query or "" for conversion in convert([], "kql", lists_path=str(lists))[0])

    assert ">= 1073741824" in default_queries
    assert ">= 31337" in own_queries
    assert ">= 1073741824" not in own_queries


def test_cli_check_invalid_threshold_text(tmp_path):
    lists = write(tmp_path / "lists.yml", "rclone_cloud_upload_bytes: lots\n")

    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "rules", "check", "--lists", str(lists), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{lists}:1" in result.stderr
