"""proxyhunt rules test: rule examples files, their failures with file and line, and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import proxyhunt.ruletest as ruletest
from proxyhunt.hunt import hunt
from proxyhunt.rules.examples import ExamplesError, examples_path_for, load_examples, rule_path_for
from proxyhunt.rules.loader import bundled_rule_files, load_rules

REPOSITORY = Path(__file__).parents[1]
SEED_RULE = REPOSITORY / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml"
USER_RULES = REPOSITORY / "examples" / "rules"

RULE = """\
title: Restic Upload
id: 5b0f2d7e-9c1a-4e3b-8f6d-2a7c9e1b4d60
logsource:
    category: proxy
detection:
    selection:
        c-useragent|startswith: 'restic/'
        cs-method: PUT
    condition: selection
level: medium
"""

# Line numbers of the examples file below: match at 4 and 5, no_match at 7 and 8.
EXAMPLES = """\
# Examples for restic.yml
format: combined
match:
  - '10.0.0.5 - - [05/Dec/2026:02:10:01 +0000] "PUT http://files.example.org/a HTTP/1.1" 200 0 "-" "restic/0.17.3"'
  - '10.0.0.5 - - [05/Dec/2026:02:10:02 +0000] "PUT http://files.example.org/b HTTP/1.1" 200 0 "-" "RESTIC/0.16.0"'
no_match:
  - '10.0.0.5 - - [05/Dec/2026:02:10:03 +0000] "GET http://files.example.org/c HTTP/1.1" 200 0 "-" "restic/0.17.3"'
  - '10.0.0.6 - - [05/Dec/2026:02:10:04 +0000] "PUT http://files.example.org/d HTTP/1.1" 200 0 "-" "curl/8.5.0"'
"""

BURST_CORRELATION = """\
title: Restic Upload
id: 5b0f2d7e-9c1a-4e3b-8f6d-2a7c9e1b4d60
name: restic_upload
logsource:
    category: proxy
detection:
    selection:
        c-useragent|startswith: 'restic/'
    condition: selection
level: low
---
title: Restic Upload Burst
id: 6c1f3e8f-0d2b-4f4c-9a7e-3b8d0f2c5e71
correlation:
    type: event_count
    rules:
        - restic_upload
    group-by:
        - c-ip
    timespan: 5m
    condition:
        gte: 3
level: high
"""


def combined(second: int, user_agent: str, ip: str = "10.0.0.5", method: str = "PUT") -> str:
    return (
        f'{ip} - - [05/Dec/2026:02:10:{second:02d} +0000] "{method} http://files.example.org/{second} HTTP/1.1" '
        f'200 0 "-" "{user_agent}"'
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def rule_dir(tmp_path: Path, examples: str = EXAMPLES, rule: str = RULE, name: str = "restic") -> Path:
    write(tmp_path / f"{name}.yml", rule)
    write(tmp_path / f"{name}.examples.yml", examples)
    return tmp_path


def only_result(paths: list[str], **options) -> ruletest.RuleFileResult:
    [result] = ruletest.test_rules(paths, include_bundled=False, **options).results
    return result


def messages(result: ruletest.RuleFileResult) -> list[str]:
    return [f"{failure.location}: {failure.message}" for failure in result.failures]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert "Traceback" not in result.stderr
    return result


# Passing examples


def test_seed_rule_examples_pass():
    result = only_result([str(SEED_RULE)])

    assert result.status == ruletest.PASS, messages(result)
    assert result.examples >= 7
    assert result.failures == []


def test_user_rule_directory_passes():
    result = only_result([str(USER_RULES)])

    assert result.status == ruletest.PASS, messages(result)
    assert result.rule_path == str(USER_RULES / "proxy_ua_backup_tool.yml")


def test_examples_file_stands_for_its_rule(tmp_path):
    folder = rule_dir(tmp_path)

    result = only_result([str(folder / "restic.examples.yml")])

    assert result.status == ruletest.PASS, messages(result)
    assert result.rule_path == str(folder / "restic.yml")
    assert result.examples == 4


def test_bundled_rules_tested_without_paths():
    report = ruletest.test_rules([])

    assert [result.rule_path for result in report.results] == [str(path) for path in bundled_rule_files()]


# Failures name the examples file and line


def test_missed_match_names_line(tmp_path):
    broken = EXAMPLES.replace('"RESTIC/0.16.0"', '"rustic/0.16.0"')
    folder = rule_dir(tmp_path, broken)

    result = only_result([str(folder)])

    assert result.status == ruletest.FAIL
    [failure] = result.failures
    assert failure.path == str(folder / "restic.examples.yml")
    assert failure.line == 5
    assert "match line not flagged" in failure.message
    assert "rustic/0.16.0" in failure.message


def test_flagged_near_miss_names_rule(tmp_path):
    broken = EXAMPLES.replace('"curl/8.5.0"', '"restic/0.9.0"')
    folder = rule_dir(tmp_path, broken)

    [failure] = only_result([str(folder)]).failures

    assert failure.line == 8
    assert "near miss flagged by 'Restic Upload'" in failure.message


def test_unparsable_line_fails_with_reason(tmp_path):
    broken = EXAMPLES.replace("  - '10.0.0.6 - -", "  - 'garbage'\n  - '10.0.0.6 - -")
    folder = rule_dir(tmp_path, broken)

    [failure] = only_result([str(folder)]).failures

    assert failure.line == 8
    assert "the format could not parse this line" in failure.message
    assert "garbage" in failure.message


def test_format_blind_to_field_says_so(tmp_path):
    squid = """\
    format: squid
    match:
      - '1796440364.000   3004 10.0.0.5 TCP_MISS/200 1048576 PUT http://files.example.org/a - HIER_DIRECT/198.51.100.7 -'
    no_match:
      - '1796440365.000   3004 10.0.0.5 TCP_MISS/200 1048576 GET http://files.example.org/b - HIER_DIRECT/198.51.100.7 -'
    """
    folder = rule_dir(tmp_path, squid)

    [failure] = only_result([str(folder)]).failures

    assert failure.line == 3
    assert "the log carries no HttpUserAgent" in failure.message


def test_rule_that_cannot_run_fails(tmp_path):
    rule = RULE.replace("cs-method: PUT", "no-such-field: PUT")
    folder = rule_dir(tmp_path, rule=rule)

    result = only_result([str(folder)])

    assert result.status == ruletest.FAIL
    assert any("rule cannot run" in failure.message and "no-such-field" in failure.message for failure in result.failures)


# Broken examples files, and the other files still tested


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("match: ['a'\n", 2, "invalid YAML"),
        ("- a\n", 1, "must be a mapping"),
        ("match: ['a']\nmatches: ['b']\n", 2, "unknown key 'matches'"),
        ("match: ['a']\n", 0, "no no_match line or case (a near miss the rule must not flag)"),
        ("no_match: ['a']\n", 0, "no match line or case (a line the rule must flag)"),
        ("match: ['a']\nno_match: [[b]]\n", 2, "must be one log line"),
        ("match: ['a']\nno_match: ['b']\ncases:\n  - name: c\n    expect: maybe\n    lines: [x]\n", 5, "expect 'maybe'"),
        ("match: ['a']\nno_match: ['b']\ncases:\n  - name: c\n    expect: match\n", 4, "has no 'lines'"),
        ("match: ['a']\nno_match: ['b']\nlists:\n  hosts: backup.example.com\n", 4, "must be a list"),
        ("match: ['a']\nno_match: ['b']\ncases:\n  - expect: match\n    findings: two\n    lines: [x]\n", 5, "findings 'two'"),
    ],
    ids=[
        "broken-yaml",
        "not-a-mapping",
        "unknown-key",
        "no-near-miss",
        "no-match",
        "nested-line",
        "bad-expect",
        "case-without-lines",
        "bad-lists",
        "bad-findings",
    ],
)
def test_invalid_examples_file(tmp_path, text, line, expected):
    folder = rule_dir(tmp_path, text)

    result = only_result([str(folder)])

    assert result.status == ruletest.FAIL
    [failure] = result.failures
    assert failure.path == str(folder / "restic.examples.yml")
    assert failure.line == line
    assert expected in failure.message


def test_broken_file_does_not_stop_others(tmp_path):
    rule_dir(tmp_path / "a", "match: [\n")
    rule_dir(tmp_path / "b")

    report = ruletest.test_rules([str(tmp_path)], include_bundled=False)

    assert [result.status for result in report.results] == [ruletest.FAIL, ruletest.PASS]


def test_rule_without_examples(tmp_path):
    write(tmp_path / "restic.yml", RULE)

    result = only_result([str(tmp_path)])

    assert result.status == ruletest.NO_EXAMPLES
    assert "add restic.examples.yml" in result.failures[0].message


def test_examples_without_rule(tmp_path):
    write(tmp_path / "lonely.examples.yml", EXAMPLES)
    rule_dir(tmp_path / "other")

    report = ruletest.test_rules([str(tmp_path)], include_bundled=False)

    statuses = {Path(result.rule_path).name: result.status for result in report.results}
    assert statuses == {"restic.yml": ruletest.PASS, "lonely.examples.yml": ruletest.FAIL}
    [orphan] = [result for result in report.results if result.rule_path.endswith("lonely.examples.yml")]
    assert "without a rule file" in orphan.failures[0].message


def test_unknown_format_fails_only_its_case(tmp_path):
    examples = EXAMPLES + textwrap.dedent(
        """\
        cases:
          - name: wrong format
            expect: match
            format: squidd
            lines: ['x']
        """
    )
    folder = rule_dir(tmp_path, examples)

    [failure] = only_result([str(folder)]).failures

    assert failure.line == 10
    assert "unknown format 'squidd'" in failure.message


def test_unknown_top_level_format(tmp_path):
    folder = rule_dir(tmp_path, EXAMPLES.replace("format: combined", "format: apache"))

    [failure] = only_result([str(folder)]).failures

    assert "unknown format 'apache'" in failure.message


def test_missing_path(tmp_path):
    result = only_result([str(tmp_path / "absent.yml")])

    assert result.status == ruletest.FAIL
    assert "not found" in result.failures[0].message


# Cases and correlation rules


def test_correlation_case_counts_findings(tmp_path):
    burst = [combined(second, "restic/0.17.3") for second in (1, 2, 3)]
    examples = f"""\
    cases:
      - name: burst
        expect: match
        findings: 1
        lines: {burst!r}
      - name: two uploads
        expect: no_match
        lines: {burst[:2]!r}
    """
    folder = rule_dir(tmp_path, examples, rule=BURST_CORRELATION)

    result = only_result([str(folder)])

    assert result.status == ruletest.PASS, messages(result)


def test_correlation_case_wrong_count(tmp_path):
    burst = [combined(second, "restic/0.17.3") for second in (1, 2, 3)]
    examples = f"""\
    cases:
      - name: burst
        expect: match
        findings: 2
        lines: {burst!r}
      - name: one upload
        expect: no_match
        lines: {burst[:1]!r}
    """
    folder = rule_dir(tmp_path, examples, rule=BURST_CORRELATION)

    [failure] = only_result([str(folder)]).failures

    assert failure.line == 2
    assert "case 'burst': expected 2 findings, got 1 from 'Restic Upload Burst'" in failure.message


def test_correlation_events_flag_lines(tmp_path):
    burst = [combined(second, "restic/0.17.3") for second in (1, 2, 3)]
    lone = combined(40, "restic/0.17.3", ip="10.0.0.9")
    examples = f"""\
    format: combined
    match: {burst!r}
    no_match: [{lone!r}]
    """
    folder = rule_dir(tmp_path, examples, rule=BURST_CORRELATION)

    result = only_result([str(folder)])

    assert result.status == ruletest.PASS, messages(result)


def test_case_expecting_nothing_reports_findings(tmp_path):
    examples = f"""\
    match: [{combined(1, "restic/0.17.3")!r}]
    cases:
      - name: quiet
        expect: no_match
        lines: [{combined(2, "restic/0.17.3")!r}]
    """
    folder = rule_dir(tmp_path, examples)

    [failure] = only_result([str(folder)]).failures

    assert failure.line == 3
    assert "case 'quiet': expected no finding, got 1 from 'Restic Upload'" in failure.message


# Placeholder lists


PLACEHOLDER_RULE = RULE.replace(
    "    condition: selection", "    known:\n        cs-host|expand: '%known_backup_destinations%'\n    condition: selection and not known"
)


def test_examples_lists_fill_placeholders(tmp_path):
    examples = EXAMPLES + "lists:\n  known_backup_destinations: [backup.example.com]\n"
    folder = rule_dir(tmp_path, examples, rule=PLACEHOLDER_RULE)

    result = only_result([str(folder)])

    assert result.status == ruletest.PASS, messages(result)


def test_user_lists_fill_placeholders(tmp_path):
    folder = rule_dir(tmp_path / "rules", rule=PLACEHOLDER_RULE)
    lists = write(tmp_path / "lists.yml", "known_backup_destinations: [files.example.org]\n")

    without = only_result([str(folder)])
    with_lists = only_result([str(folder)], lists_path=str(lists))

    assert any("known_backup_destinations" in failure.message for failure in without.failures)
    # The listed host is now known, so the match lines are no longer flagged.
    assert [failure.line for failure in with_lists.failures] == [4, 5]


# The loader never reads an examples file as a rule


def test_directory_walk_skips_examples(tmp_path):
    folder = rule_dir(tmp_path)

    ruleset = load_rules([str(folder)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Restic Upload"]
    assert ruleset.problems == []


def test_examples_file_named_as_rules_is_skipped(tmp_path):
    folder = rule_dir(tmp_path)

    ruleset = load_rules([str(folder / "restic.examples.yml")], include_bundled=False)

    assert ruleset.rules == []
    [skipped] = ruleset.skipped
    assert "an examples file, not a rule file" in skipped.message
    assert "proxyhunt rules test" in skipped.message


def test_directory_with_only_examples(tmp_path):
    write(tmp_path / "restic.examples.yml", EXAMPLES)

    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    [problem] = ruleset.problems
    assert "only examples files" in problem.message


def test_hunt_ignores_examples_in_rule_directory(tmp_path):
    folder = rule_dir(tmp_path / "rules")
    log = write(tmp_path / "access.log", combined(1, "restic/0.17.3") + "\n")

    result = hunt([str(log)], rule_paths=[str(folder)], include_bundled=False)

    assert [finding["RuleTitle"] for finding in result.findings] == ["Restic Upload"]
    assert result.rule_problems == []


def test_examples_paths_pair_up(tmp_path):
    folder = rule_dir(tmp_path)
    write(tmp_path / "other.yaml", RULE)
    write(tmp_path / "other.examples.yaml", EXAMPLES)

    assert examples_path_for(folder / "restic.yml") == folder / "restic.examples.yml"
    assert rule_path_for(folder / "restic.examples.yml") == folder / "restic.yml"
    assert examples_path_for(tmp_path / "other.yaml") == tmp_path / "other.examples.yaml"
    assert rule_path_for(tmp_path / "other.examples.yaml") == tmp_path / "other.yaml"


def test_load_examples_keeps_lines(tmp_path):
    folder = rule_dir(tmp_path)

    examples = load_examples(folder / "restic.examples.yml", folder / "restic.yml")

    assert [example.line for example in examples.match] == [4, 5]
    assert [example.line for example in examples.no_match] == [7, 8]
    assert examples.format_name == "combined"


def test_load_examples_rejects_multiline_entry(tmp_path):
    path = write(tmp_path / "x.examples.yml", "match:\n  - |\n    one\n    two\nno_match: [b]\n")

    with pytest.raises(ExamplesError, match=r"x.examples.yml:2: .*spans several lines"):
        load_examples(path, tmp_path / "x.yml")


# Command line


def test_cli_pass_exit_0(tmp_path):
    folder = rule_dir(tmp_path)

    result = run_cli("rules", "test", str(folder), "--no-default-rules")

    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header == "RESULT\tRULE FILE\tEXAMPLE\tDETAIL"
    assert row.split("\t") == ["PASS", str(folder / "restic.yml"), str(folder / "restic.examples.yml"), "4 examples passed"]
    assert "1 rule file tested: 1 passed, 0 failed, 0 without examples" in result.stderr


def test_cli_failure_exit_1_with_location(tmp_path):
    folder = rule_dir(tmp_path, EXAMPLES.replace('"curl/8.5.0"', '"restic/0.9.0"'))

    result = run_cli("rules", "test", str(folder), "--no-default-rules")

    assert result.returncode == 1
    rows = [line.split("\t") for line in result.stdout.splitlines()[1:]]
    assert rows[0][:2] == ["FAIL", str(folder / "restic.yml")]
    assert rows[1][2] == f"{folder / 'restic.examples.yml'}:8"
    assert rows[1][3].startswith("near miss flagged by 'Restic Upload'")


def test_cli_no_examples_exit_1(tmp_path):
    write(tmp_path / "restic.yml", RULE)

    result = run_cli("rules", "test", str(tmp_path), "--no-default-rules")

    assert result.returncode == 1
    assert result.stdout.splitlines()[1].startswith("NO EXAMPLES\t")


def hostile_examples() -> str:
    """Return EXAMPLES with the last near miss replaced by a restic line whose user agent clears the screen."""
    line = combined(4, "restic/0.9.0 \x1b[2J\x07\tx", ip="10.0.0.6")
    # A JSON string is a valid YAML double-quoted scalar, so the escapes reach the log line.
    return EXAMPLES.rsplit("\n  - ", 1)[0] + f"\n  - {json.dumps(line)}\n"


def test_cli_escapes_control_characters(tmp_path):
    folder = rule_dir(tmp_path, hostile_examples())

    result = run_cli("rules", "test", str(folder), "--no-default-rules")

    assert result.returncode == 1
    assert "near miss flagged by 'Restic Upload'" in result.stdout
    assert "\\x1b[2J" in result.stdout
    assert "\x1b" not in result.stdout
    assert "\x07" not in result.stdout
    assert all(len(line.split("\t")) == 4 for line in result.stdout.splitlines())


def test_cli_usage_errors_exit_2(tmp_path):
    no_rules = run_cli("rules", "test", "--no-default-rules")
    bad_lists = run_cli("rules", "test", str(tmp_path), "--lists", str(tmp_path / "absent.yml"))

    assert no_rules.returncode == 2
    assert "--no-default-rules leaves no rules to test" in no_rules.stderr
    assert bad_lists.returncode == 2
    assert "lists file not found" in bad_lists.stderr


def test_cli_help_shows_examples():
    result = run_cli("rules", "test", "--help")

    assert result.returncode == 0
    assert "proxyhunt rules test examples/rules/ --no-default-rules" in result.stdout
    assert "--lists examples/lists.yml" in result.stdout


# Headers, format detection and rules check


def test_header_lines_precede_examples(tmp_path):
    examples = """\
    format: w3c
    header:
      - '#Software: Microsoft Internet Information Services 10.0'
      - '#Fields: date time c-ip cs-method cs-host cs-uri-stem sc-status cs(User-Agent)'
    match:
      - '2026-12-05 02:10:01 10.0.0.5 PUT files.example.org /a 200 restic/0.17.3'
    no_match:
      - '2026-12-05 02:10:02 10.0.0.5 GET files.example.org /b 200 restic/0.17.3'
    """
    folder = rule_dir(tmp_path, examples)

    result = only_result([str(folder)])

    assert result.status == ruletest.PASS, messages(result)
    assert result.examples == 2


def test_format_detected_without_format_key(tmp_path):
    folder = rule_dir(tmp_path, EXAMPLES.replace("format: combined\n", ""))

    result = only_result([str(folder)])

    assert result.status == ruletest.PASS, messages(result)


def test_check_lists_examples_file_as_skipped(tmp_path):
    from proxyhunt.check import SKIPPED, check_rules

    folder = rule_dir(tmp_path)

    check = check_rules([str(folder / "restic.examples.yml")], include_bundled=False)

    [status] = check.statuses
    assert status.status == SKIPPED
    assert "an examples file" in status.reason


def test_cli_junit_report(tmp_path):
    import xml.etree.ElementTree as ElementTree

    passing = rule_dir(tmp_path / "a")
    failing = rule_dir(tmp_path / "b", hostile_examples())
    junit = tmp_path / "report.xml"

    result = run_cli("rules", "test", str(passing), str(failing), "--no-default-rules", "--junit", str(junit))

    assert result.returncode == 1
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == "2"
    assert suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [case.find("failure") is None for case in cases] == [True, False]
    failure = cases[1].find("failure")
    assert failure.get("message") == "1 failure"
    assert f"{failing / 'restic.examples.yml'}:8: near miss flagged by 'Restic Upload'" in failure.text
    assert "\x1b" not in junit.read_text(encoding="utf-8")
