"""Placeholder lists: reading the lists file, expanding |expand values, and --lists on the command line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proxyhunt.hunt import hunt
from proxyhunt.rules.loader import load_rules
from proxyhunt.rules.placeholders import PlaceholderListsError, apply_lists, load_lists

REPOSITORY = Path(__file__).parents[1]
SAMPLE_LISTS = REPOSITORY / "examples" / "lists.yml"

RULE_WITH_PLACEHOLDER = """\
title: Rclone to an unknown destination
id: 0f6c2b0e-8d4a-4f4f-9a55-3c2b3b8d7e10
logsource:
    category: proxy
detection:
    selection:
        c-useragent|startswith: 'rclone/v'
    known:
        cs-host|expand: '%known_backup_destinations%'
    condition: selection and not known
level: high
"""

LISTS = """\
# site values
known_backup_destinations:
  - backup.example.com
  - "*.backup.example.net"
ci_hosts: ["build-??.example.com"]
"""

# Three rclone uploads: to a listed host, to a host that a listed wildcard covers, and elsewhere.
COMBINED_LOG = """\
10.0.0.5 - - [03/Nov/2026:02:50:44 +0000] "PUT http://backup.example.com/a HTTP/1.1" 200 10 "-" "rclone/v1.66.0"
10.0.0.5 - - [03/Nov/2026:02:50:45 +0000] "PUT http://eu.backup.example.net/a HTTP/1.1" 200 10 "-" "rclone/v1.66.0"
10.0.0.5 - - [03/Nov/2026:02:50:46 +0000] "PUT http://mega.example.org/a HTTP/1.1" 200 10 "-" "rclone/v1.66.0"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# Reading lists files


def test_sample_lists_load():
    lists = load_lists(SAMPLE_LISTS)

    assert lists.values
    assert all(values for values in lists.values.values())
    assert lists.get("not_there") == ()


def test_lists_record_lines(tmp_path):
    lists = load_lists(write(tmp_path / "lists.yml", LISTS))

    assert lists.get("known_backup_destinations") == ("backup.example.com", "*.backup.example.net")
    assert lists.lines == {"known_backup_destinations": 2, "ci_hosts": 5}


def test_scalars_keep_their_text(tmp_path):
    # YAML 1.1 would read these as a boolean, an octal number and a float.
    lists = load_lists(write(tmp_path / "lists.yml", "odd_values: [on, 010, 1.10]\n"))

    assert lists.get("odd_values") == ("on", "010", "1.10")


def test_empty_file_has_no_lists(tmp_path):
    assert load_lists(write(tmp_path / "lists.yml", "# nothing yet\n")).values == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hosts: [a, b\nusers: [c]\n", ":2"),
        ("hosts: backup.example.com\n", "lists.yml:1: the value of 'hosts' must be a list"),
        ("hosts:\n  - [a, b]\n", "lists.yml:2: each value of 'hosts' must be a string"),
        ("hosts:\n  - a\n  - null\n", "lists.yml:3: each value of 'hosts' must be a string"),
        ("hosts: [a]\nhosts: [b]\n", "lists.yml:2: placeholder 'hosts' is listed twice (first at line 1)"),
        ("- a\n- b\n", "lists.yml:1: a lists file must be a mapping"),
    ],
    ids=["broken-yaml", "not-a-list", "nested-list", "null-value", "duplicate-name", "not-a-mapping"],
)
def test_invalid_lists_file_names_file_and_line(tmp_path, text, expected):
    path = write(tmp_path / "lists.yml", text)

    with pytest.raises(PlaceholderListsError) as error:
        load_lists(path)

    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_lists_file(tmp_path):
    with pytest.raises(PlaceholderListsError, match="lists file not found"):
        load_lists(tmp_path / "absent.yml")


def test_invalid_utf8_lists_file(tmp_path):
    path = tmp_path / "lists.yml"
    path.write_bytes(b"hosts: [caf\xe9]\n")

    with pytest.raises(PlaceholderListsError, match="not valid UTF-8"):
        load_lists(path)


# Expansion in rules and filters


def test_apply_lists_expands_rule(tmp_path):
    ruleset = load_rules([str(write(tmp_path / "rule.yml", RULE_WITH_PLACEHOLDER))], include_bundled=False)
    original = ruleset.rules[0].rule

    apply_lists(ruleset, load_lists(write(tmp_path / "lists.yml", LISTS)))

    assert ruleset.problems == []
    [expanded] = ruleset.rules
    assert expanded.rule is not original
    # The loaded rule keeps its placeholder, so an export can still refer to the list.
    known = original.detection.detections["known"].detection_items[0]
    assert known.value[0].contains_placeholder()


def test_apply_lists_reports_missing_placeholder(tmp_path):
    ruleset = load_rules([str(write(tmp_path / "rule.yml", RULE_WITH_PLACEHOLDER))], include_bundled=False)
    lists = load_lists(write(tmp_path / "lists.yml", "ci_hosts: [build01]\n"))

    apply_lists(ruleset, lists)

    assert ruleset.rules == []
    [problem] = ruleset.problems
    assert "%known_backup_destinations%" in problem.message
    assert str(tmp_path / "lists.yml") in problem.message


def test_apply_lists_expands_filter(tmp_path):
    filter_text = """\
        title: Known backup destinations
        logsource:
            category: proxy
        filter:
            rules:
                - 0f6c2b0e-8d4a-4f4f-9a55-3c2b3b8d7e10
            selection:
                cs-host|expand: '%known_backup_destinations%'
            condition: not selection
        """
    write(tmp_path / "rule.yml", RULE_WITH_PLACEHOLDER)
    write(tmp_path / "filter.yml", filter_text)
    ruleset = load_rules([str(tmp_path)], include_bundled=False)
    assert len(ruleset.filters) == 1

    apply_lists(ruleset, load_lists(write(tmp_path / "lists.yml", "known_backup_destinations: [x.example]\n")))

    assert ruleset.problems == []
    [loaded] = ruleset.filters
    [item] = loaded.filter.filter.detections["selection"].detection_items
    assert not item.value[0].contains_placeholder()
    assert str(item.value[0]) == "x.example"


# The hunt


def test_hunt_with_lists_keeps_wildcards(tmp_path):
    rule = write(tmp_path / "rule.yml", RULE_WITH_PLACEHOLDER)
    log = write(tmp_path / "access.log", COMBINED_LOG)

    lists = write(tmp_path / "lists.yml", LISTS)

    result = hunt([str(log)], rule_paths=[str(rule)], include_bundled=False, lists_path=str(lists))

    assert result.rule_problems == []
    assert [finding["DstHostname"] for finding in result.findings] == ["mega.example.org"]


def test_hunt_without_lists_reports_rule(tmp_path):
    rule = write(tmp_path / "rule.yml", RULE_WITH_PLACEHOLDER)
    log = write(tmp_path / "access.log", COMBINED_LOG)

    result = hunt([str(log)], rule_paths=[str(rule)], include_bundled=False)

    assert result.findings == []
    [problem] = result.rule_problems
    assert "%known_backup_destinations%" in problem.message
    assert "--lists" in problem.message


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "proxyhunt", *args], capture_output=True, text=True, timeout=300, cwd=REPOSITORY
    )


def test_cli_lists_option(tmp_path):
    rule = write(tmp_path / "rule.yml", RULE_WITH_PLACEHOLDER)
    log = write(tmp_path / "access.log", COMBINED_LOG)
    lists = write(tmp_path / "lists.yml", LISTS)
    output = tmp_path / "findings.jsonl"

    result = run_cli("hunt", str(log), "--rules", str(rule), "--no-default-rules", "--lists", str(lists),
                     "--output", str(output))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = output.read_text().splitlines()
    assert len(lines) == 1
    assert "mega.example.org" in lines[0]


def test_cli_invalid_lists_file(tmp_path):
    log = write(tmp_path / "access.log", COMBINED_LOG)
    lists = write(tmp_path / "lists.yml", "hosts: backup.example.com\n")

    result = run_cli("hunt", str(log), "--lists", str(lists))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{lists}:1" in result.stderr
    assert "must be a list" in result.stderr
