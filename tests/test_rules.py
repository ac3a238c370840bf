"""Loading Sigma rules with pySigma: the bundled rule, user files and directories, and every kind of bad file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxyhunt.engines.duckdb import compile_rules
from proxyhunt.hunt import hunt
from proxyhunt.rules.loader import load_rules

from corpus import CORPUS

BUNDLED_ID = "2c03648b-e081-41a5-b9fb-7d854a915091"


def proxy_rule(title: str, rule_id: str | None = None, user_agent: str = "rclone/v") -> str:
    """Return the YAML text of a valid proxy rule."""
    id_line = f"id: {rule_id}\n" if rule_id else ""
    return (
        f"title: {title}\n"
        f"{id_line}"
        "status: experimental\n"
        "logsource:\n"
        "    category: proxy\n"
        "detection:\n"
        "    selection:\n"
        f"        c-useragent|startswith: '{user_agent}'\n"
        "    condition: selection\n"
        "level: high\n"
    )


PROCESS_RULE = """\
title: Rclone Execution
id: 3c03648b-e081-41a5-b9fb-7d854a915092
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\rclone.exe'
    condition: selection
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _detection_rule(title: str, detection: str, rule_id: str | None = None) -> str:
    """Return the YAML text of a proxy rule with the given detection block, indented by two spaces."""
    id_line = f"id: {rule_id}\n" if rule_id else ""
    return f"title: {title}\n{id_line}logsource:\n  category: proxy\ndetection:\n{detection}\n"


def messages(problems) -> list[str]:
    return [str(problem) for problem in problems]


# The bundled rule


def seed_rule(rules):
    """Return the bundled seed rule, "Rclone Activity via Proxy", among loaded or compiled rules."""
    [seed] = [rule for rule in rules if getattr(rule, "loaded", rule).rule_id == BUNDLED_ID]
    return seed


def test_bundled_rule_loaded_by_default():
    ruleset = load_rules([])

    assert seed_rule(ruleset.rules).bundled
    assert ruleset.problems == []
    assert ruleset.skipped == []
    assert all(loaded.bundled for loaded in [*ruleset.rules, *ruleset.correlations])


def test_bundled_rules_leave_out_exclusions_and_examples():
    paths = [Path(loaded.path) for loaded in [*load_rules([]).rules, *load_rules([]).correlations]]

    assert not any("exclusions" in path.parts for path in paths)
    assert not any(path.name.endswith((".examples.yml", ".examples.yaml")) for path in paths)
    assert {path.parent.name for path in paths} <= {"bundled", "rclone"}


def test_bundled_rule_metadata():
    loaded = seed_rule(load_rules([]).rules)
    rule = loaded.rule

    assert loaded.title == "Rclone Activity via Proxy"
    assert loaded.rule_id == BUNDLED_ID
    assert str(rule.status) == "test"
    assert rule.logsource.category == "proxy"
    assert rule.logsource.product is None
    assert rule.logsource.service is None
    assert loaded.level == "medium"
    assert loaded.tags == ["attack.exfiltration", "attack.t1567.002"]
    assert rule.references == ["https://rclone.org/"]
    assert Path(loaded.path).name == "proxy_ua_rclone.yml"


def test_bundled_rule_compiles_over_user_agent():
    compiled = seed_rule(compile_rules(load_rules([]).rules))

    assert compiled.runnable
    assert compiled.columns == frozenset({"HttpUserAgent"})
    assert '"HttpUserAgent"' in compiled.where


def test_hunt_runs_bundled_rule_by_default(tmp_path):
    log = write(tmp_path / "empty.log", "")
    result = hunt([str(log)])

    assert BUNDLED_ID in [rule.loaded.rule_id for rule in result.compiled]
    assert all(rule.loaded.bundled for rule in result.compiled)


def test_bundled_rule_with_user_rules(tmp_path):
    user = write(tmp_path / "user.yml", proxy_rule("User Rule"))
    ruleset = load_rules([str(user)])

    assert ruleset.rules[0].title == "Rclone Activity via Proxy"
    assert ruleset.rules[-1].title == "User Rule"
    assert [loaded.bundled for loaded in ruleset.rules].count(False) == 1
    assert not ruleset.rules[-1].bundled


# Leaving out the bundled rule


def test_without_bundled_and_no_paths_is_empty():
    ruleset = load_rules([], include_bundled=False)

    assert ruleset.rules == []
    assert ruleset.problems == []


def test_without_bundled_loads_only_user_rules(tmp_path):
    user = write(tmp_path / "user.yml", proxy_rule("User Rule"))
    ruleset = load_rules([str(user)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["User Rule"]
    assert ruleset.rules[0].path == str(user)
    assert not ruleset.rules[0].bundled


def test_hunt_without_bundled_runs_user_rules(tmp_path):
    user = write(tmp_path / "user.yml", proxy_rule("User Rule"))
    log = write(tmp_path / "empty.log", "")
    result = hunt([str(log)], rule_paths=[str(user)], include_bundled=False)

    assert [rule.loaded.title for rule in result.compiled] == ["User Rule"]


# Directories


def test_directory_loads_recursively(tmp_path):
    write(tmp_path / "top.yml", proxy_rule("Top"))
    write(tmp_path / "a" / "b" / "deep.yaml", proxy_rule("Deep"))
    write(tmp_path / "a" / "upper.YML", proxy_rule("Upper Case Suffix"))
    write(tmp_path / "a" / "notes.txt", "not a rule")
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert sorted(loaded.title for loaded in ruleset.rules) == ["Deep", "Top", "Upper Case Suffix"]
    assert ruleset.problems == []


def test_directory_skips_hidden_directories(tmp_path):
    # A checkout of a rule repository keeps CI workflows in .github, which are YAML but not rules.
    write(tmp_path / "rules" / "rule.yml", proxy_rule("Visible"))
    write(tmp_path / ".github" / "workflows" / "ci.yml", "on: push\njobs: {}\n")
    write(tmp_path / "rules" / ".hidden.yml", proxy_rule("Hidden"))
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Visible"]
    assert ruleset.problems == []


def test_directory_without_rule_files(tmp_path):
    write(tmp_path / "readme.md", "# rules\n")
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert ruleset.rules == []
    assert messages(ruleset.problems) == [f"{tmp_path}: the directory contains no .yml or .yaml files"]


def test_missing_rule_path(tmp_path):
    missing = tmp_path / "nope.yml"
    ruleset = load_rules([str(missing)], include_bundled=False)

    [problem] = ruleset.problems
    assert problem.path == str(missing)
    assert "not found" in problem.message
    # The message serves hunt --rules and the path arguments of rules check and rules test alike.
    assert "give the path of a Sigma rule file or a directory of them" in problem.message


def test_rclone_related_corpus_all_skipped():
    folder = CORPUS / "sigma-rules" / "rclone-related"
    if not folder.is_dir():
        pytest.skip(f"rule corpus not found at {folder}")
    ruleset = load_rules([str(folder)], include_bundled=False)

    assert ruleset.rules == []
    assert ruleset.problems == []
    assert len(ruleset.skipped) >= 8
    assert all("not web-proxy traffic" in skipped.message for skipped in ruleset.skipped)


# Bad files


def test_broken_yaml_names_file_and_line(tmp_path):
    broken = write(
        tmp_path / "broken.yml",
        "title: Broken\nlogsource:\n    category: proxy\ndetection:\n    selection: [unclosed\n    condition: selection\n",
    )
    ruleset = load_rules([str(broken)], include_bundled=False)

    assert ruleset.rules == []
    [problem] = ruleset.problems
    assert problem.path == str(broken)
    assert "invalid YAML" in problem.message
    assert "line 6" in problem.message


def test_broken_yaml_does_not_stop_other_files(tmp_path):
    write(tmp_path / "a_broken.yml", "title: [\n")
    write(tmp_path / "b_good.yml", proxy_rule("Good"))
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Good"]
    assert [Path(problem.path).name for problem in ruleset.problems] == ["a_broken.yml"]


def test_non_proxy_rule_skipped_with_reason(tmp_path):
    process = write(tmp_path / "process.yml", PROCESS_RULE)
    ruleset = load_rules([str(process)], include_bundled=False)

    assert ruleset.rules == []
    assert ruleset.problems == []
    [skipped] = ruleset.skipped
    assert skipped.path == str(process)
    assert skipped.title == "Rclone Execution"
    assert skipped.message == "log source is not web-proxy traffic (category process_creation, product windows)"


def test_zeek_http_rule_is_loaded(tmp_path):
    zeek = write(
        tmp_path / "zeek.yml",
        "title: Zeek Rclone\nlogsource:\n    product: zeek\n    service: http\n"
        "detection:\n    selection:\n        user_agent|startswith: 'rclone/v'\n    condition: selection\n",
    )
    ruleset = load_rules([str(zeek)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Zeek Rclone"]


def test_file_not_utf8(tmp_path):
    latin1 = tmp_path / "latin1.yml"
    valid = proxy_rule("Rule")
    latin1.write_bytes(valid.encode() + "description: caf\u00e9\n".encode("latin-1"))
    ruleset = load_rules([str(latin1)], include_bundled=False)

    assert ruleset.rules == []
    [problem] = ruleset.problems
    assert problem.path == str(latin1)
    assert "not valid UTF-8" in problem.message
    assert f"line {len(valid.splitlines()) + 1}" in problem.message


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    bom = tmp_path / "bom.yml"
    bom.write_bytes(b"\xef\xbb\xbf" + proxy_rule("With BOM").encode())
    ruleset = load_rules([str(bom)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["With BOM"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a file whatever its mode")
def test_unreadable_file(tmp_path):
    unreadable = write(tmp_path / "unreadable.yml", proxy_rule("Rule"))
    unreadable.chmod(0)
    try:
        ruleset = load_rules([str(unreadable)], include_bundled=False)
    finally:
        unreadable.chmod(0o644)

    [problem] = ruleset.problems
    assert problem.path == str(unreadable)
    assert "cannot be read" in problem.message


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "list"), ("just text\n", "string"), ("42\n", "number")],
    ids=["list", "string", "number"],
)
def test_yaml_that_is_not_a_mapping(tmp_path, text, kind):
    path = write(tmp_path / "odd.yml", text)
    ruleset = load_rules([str(path)], include_bundled=False)

    [problem] = ruleset.problems
    assert problem.path == str(path)
    assert f"YAML document 1 is a {kind}, not a Sigma rule" in problem.message


def test_empty_rule_file(tmp_path):
    empty = write(tmp_path / "empty.yml", "# nothing yet\n---\n")
    ruleset = load_rules([str(empty)], include_bundled=False)

    assert messages(ruleset.problems) == [f"{empty}: contains no Sigma rule (the file has no YAML content)"]


def test_trailing_document_separator_is_harmless(tmp_path):
    path = write(tmp_path / "trailing.yml", proxy_rule("Rule") + "---\n")
    ruleset = load_rules([str(path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Rule"]
    assert ruleset.problems == []


def test_out_of_range_date_value(tmp_path):
    # PyYAML reads 2023-13-45 as a date and raises ValueError, not YAMLError.
    path = write(tmp_path / "date.yml", proxy_rule("Rule") + "date: 2023-13-45\n")
    ruleset = load_rules([str(path)], include_bundled=False)

    [problem] = ruleset.problems
    assert problem.path == str(path)
    assert "invalid YAML value" in problem.message


def test_field_name_that_is_a_number(tmp_path):
    path = write(
        tmp_path / "number-field.yml",
        "title: Number Field\nlogsource:\n    category: proxy\n"
        "detection:\n    selection:\n        5: x\n    condition: selection\n",
    )
    ruleset = load_rules([str(path)], include_bundled=False)

    [problem] = ruleset.problems
    assert problem.path == str(path)
    assert "not a valid Sigma rule" in problem.message


def test_rule_rejected_by_pysigma(tmp_path):
    path = write(tmp_path / "level.yml", proxy_rule("Bad Level").replace("level: high", "level: extreme"))
    ruleset = load_rules([str(path)], include_bundled=False)

    [problem] = ruleset.problems
    assert problem.title == "Bad Level"
    assert "rejected by pySigma" in problem.message
    assert "extreme" in problem.message


def test_unknown_collection_action(tmp_path):
    path = write(tmp_path / "action.yml", "action: merge\n")
    ruleset = load_rules([str(path)], include_bundled=False)

    [problem] = ruleset.problems
    assert "Unknown Sigma collection action 'merge'" in problem.message


def test_filter_loaded_not_merged(tmp_path):
    path = write(
        tmp_path / "filter.yml",
        proxy_rule("Rclone", rule_id="5c03648b-e081-41a5-b9fb-7d854a915094")
        + "---\n"
        "title: Backup Host\nlogsource:\n    category: proxy\n"
        "filter:\n    rules:\n        - 5c03648b-e081-41a5-b9fb-7d854a915094\n"
        "    selection:\n        cs-host: backup.example.com\n    condition: not selection\n",
    )
    ruleset = load_rules([str(path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Rclone"]
    [loaded_filter] = ruleset.filters
    assert loaded_filter.title == "Backup Host"
    assert loaded_filter.references == ["5c03648b-e081-41a5-b9fb-7d854a915094"]
    assert ruleset.skipped == []
    # The filter is applied to findings, not merged into the rule's condition.
    assert ruleset.rules[0].rule.detection.condition == ["selection"]


def test_correlation_loaded(tmp_path):
    path = write(
        tmp_path / "correlation.yml",
        "title: Many Uploads\ncorrelation:\n    type: event_count\n    rules:\n        - some_rule\n"
        "    group-by:\n        - c-ip\n    timespan: 1h\n    condition:\n        gte: 10\n",
    )
    ruleset = load_rules([str(path)], include_bundled=False)

    assert ruleset.problems == []
    assert ruleset.skipped == []
    [correlation] = ruleset.correlations
    assert correlation.correlation_type == "event_count"
    assert correlation.references == ["some_rule"]


def test_reference_finds_rule_in_other_file(tmp_path):
    write(tmp_path / "a.yml", proxy_rule("Named", "9c03648b-e081-41a5-b9fb-7d854a915099").replace("title: Named\n", "title: Named\nname: named_rule\n"))
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert ruleset.find_reference("named_rule").title == "Named"
    assert ruleset.find_reference("9C03648B-E081-41A5-B9FB-7D854A915099").title == "Named"
    assert ruleset.find_reference("other") is None


def test_reference_to_skipped_rule_gives_reason(tmp_path):
    write(tmp_path / "process.yml", PROCESS_RULE)
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    problem = ruleset.find_reference("3c03648b-e081-41a5-b9fb-7d854a915092")
    assert "log source is not web-proxy traffic" in problem.message


# Duplicate ids


def test_duplicate_ids_keep_first(tmp_path):
    rule_id = "4c03648b-e081-41a5-b9fb-7d854a915093"
    first = write(tmp_path / "a.yml", proxy_rule("First", rule_id))
    second = write(tmp_path / "b.yml", proxy_rule("Second", rule_id))
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["First"]
    [skipped] = ruleset.skipped
    assert skipped.path == str(second)
    assert skipped.title == "Second"
    assert str(first) in skipped.message


def test_duplicate_id_other_detection_is_problem(tmp_path):
    # A different rule under a used id must not vanish with only a note.
    rule_id = "4c03648b-e081-41a5-b9fb-7d854a915094"
    first = write(tmp_path / "a.yml", proxy_rule("First", rule_id))
    write(tmp_path / "b.yml", proxy_rule("Second", rule_id, user_agent="restic/"))
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["First"]
    assert ruleset.skipped == []
    [problem] = ruleset.problems
    assert problem.title == "Second"
    assert "already used by a different rule" in problem.message
    assert str(first) in problem.message


def test_duplicate_id_other_level_is_problem(tmp_path):
    rule_id = "4c03648b-e081-41a5-b9fb-7d854a915096"
    write(tmp_path / "a.yml", proxy_rule("Low", rule_id).replace("level: high", "level: low"))
    write(tmp_path / "b.yml", proxy_rule("Critical", rule_id).replace("level: high", "level: critical"))
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Low"]
    assert ruleset.skipped == []
    assert "already used by a different rule" in ruleset.problems[0].message


def test_user_rule_with_bundled_id_is_skipped(tmp_path):
    # A copy with the bundled rule's detection and level; another level would make it a different rule.
    copy = write(tmp_path / "copy.yml", proxy_rule("Copy of Rclone", BUNDLED_ID).replace("level: high", "level: medium"))
    ruleset = load_rules([str(copy)])

    assert "Copy of Rclone" not in [loaded.title for loaded in ruleset.rules]
    assert seed_rule(ruleset.rules).path.endswith("proxy_ua_rclone.yml")
    [skipped] = ruleset.skipped
    assert skipped.path == str(copy)
    assert "proxy_ua_rclone.yml" in skipped.message


def test_same_file_twice_loads_once(tmp_path):
    rule = write(tmp_path / "rule.yml", proxy_rule("Once", "6c03648b-e081-41a5-b9fb-7d854a915095"))
    ruleset = load_rules([str(rule), str(tmp_path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Once"]


def test_rules_without_id_are_not_duplicates(tmp_path):
    write(tmp_path / "a.yml", proxy_rule("No Id A"))
    write(tmp_path / "b.yml", proxy_rule("No Id B"))
    ruleset = load_rules([str(tmp_path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["No Id A", "No Id B"]
    assert ruleset.skipped == []


# proxyhunt rules check


def run_rules_check(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxyhunt", "rules", "check", *arguments], capture_output=True, text=True, check=False
    )


def test_rules_check_lists_reasons(tmp_path):
    write(
        tmp_path / "mixed.yml",
        proxy_rule("Good", "ac03648b-e081-41a5-b9fb-7d854a915001")
        + "---\n"
        + "title: Orphan\ncorrelation:\n    type: event_count\n    rules: [missing_rule]\n    group-by: [c-ip]\n"
        "    timespan: 1h\n    condition:\n        gte: 2\n",
    )
    write(tmp_path / "process.yml", PROCESS_RULE)
    result = run_rules_check(str(tmp_path), "--no-default-rules")

    assert result.returncode == 1
    rows = {line.split("\t")[3]: line.split("\t") for line in result.stdout.splitlines()[1:]}
    assert rows["Good"][0] == "ready"
    assert rows["Orphan"][0] == "not runnable"
    assert rows["Orphan"][1] == "correlation (event_count)"
    assert "missing_rule" in rows["Orphan"][5]
    assert rows["Rclone Execution"][0] == "skipped"
    assert result.stderr.strip() == "3 checked: 1 ready, 1 cannot run (fully), 1 skipped"


def test_rules_check_all_ready_exits_0(tmp_path):
    path = write(tmp_path / "good.yml", proxy_rule("Good"))
    result = run_rules_check(str(path))

    assert result.returncode == 0
    assert "Rclone Activity via Proxy" in result.stdout


def test_rules_check_fills_placeholders(tmp_path):
    rule = write(
        tmp_path / "expand.yml",
        "title: Known Agents\nlogsource:\n    category: proxy\ndetection:\n    selection:\n"
        "        c-useragent|expand: '%agents%'\n    condition: selection\n",
    )
    lists = write(tmp_path / "lists.yml", "agents:\n  - 'rclone/v*'\n")

    without = run_rules_check(str(rule), "--no-default-rules")
    with_lists = run_rules_check(str(rule), "--no-default-rules", "--lists", str(lists))

    assert without.returncode == 1
    assert "%agents%" in without.stdout
    assert with_lists.returncode == 0, with_lists.stdout
    assert with_lists.stdout.startswith("STATUS")
    assert "\nready\trule" in with_lists.stdout
    assert "1 ready" in with_lists.stderr


def test_rules_check_escapes_titles(tmp_path):
    # A title with a tab, a line break and an OSC sequence must not break the columns or reach the terminal.
    rule = write(tmp_path / "evil.yml", proxy_rule('"A\\tB\\x1b]0;pwned\\x07\\nC"'))

    result = run_rules_check(str(rule), "--no-default-rules")

    [header, row] = result.stdout.splitlines()
    assert "\x1b" not in result.stdout
    assert row.count("\t") == header.count("\t")
    assert "A\\x09B\\x1b]0;pwned\\x07\\x0aC" in row


@pytest.mark.parametrize(
    ("detection", "named"),
    [
        ("  sel:\n    c-useragent|contains: []\n  condition: sel", "sel: c-useragent|contains"),
        ("  sel:\n    - cs-method: PUT\n      c-uri|endswith: []\n  condition: sel", "sel: c-uri|endswith"),
        ("  keywords: []\n  condition: keywords", "keywords"),
    ],
)
def test_empty_value_list_rejected(tmp_path, detection, named):
    # pySigma reads an empty list as a null test, and a duplicate-id check once failed on it with an IndexError.
    rule = write(tmp_path / "empty.yml", _detection_rule("Empty list", detection, "11111111-1111-4111-8111-111111111117"))
    good = write(tmp_path / "good.yml", proxy_rule("Good"))

    ruleset = load_rules([str(rule), str(good)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Good"]
    assert len(ruleset.problems) == 1
    assert named in ruleset.problems[0].message
    assert "give at least one value" in ruleset.problems[0].message


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("1 of nothere* or sel", "'nothere*', which matches no search identifier (the rule has sel)"),
        ("all of missing", "'missing', which matches no search identifier"),
        ("sel and", "not valid Sigma condition syntax at character 8"),
        ("sel or (sel", "not valid Sigma condition syntax"),
    ],
)
def test_bad_condition_named_in_rule_terms(tmp_path, condition, expected):
    rule = write(
        tmp_path / "condition.yml",
        _detection_rule("Odd condition", f"  sel:\n    c-useragent|contains: rclone\n  condition: {condition}"),
    )

    ruleset = load_rules([str(rule)], include_bundled=False)

    assert ruleset.rules == []
    assert len(ruleset.problems) == 1
    assert expected in ruleset.problems[0].message
    assert "fix the" in ruleset.problems[0].message


def test_quantified_patterns_that_match_load(tmp_path):
    detection = (
        "  selection_a:\n    c-useragent|contains: rclone\n  selection_b:\n    cs-method: PUT\n"
        "  condition: 1 of selection_* and not 1 of them"
    )
    rule = write(tmp_path / "fine.yml", _detection_rule("Fine", detection))

    ruleset = load_rules([str(rule)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Fine"]
    assert ruleset.problems == []


# Conditions that pySigma reports in its own terms, or crashes on


NON_STRING_CONDITIONS = ["5", "[sel, 5]", "{a: b}", "null"]


@pytest.mark.parametrize(
    ("condition", "found"),
    list(zip(NON_STRING_CONDITIONS, ["5 (a number)", "5 (a number)", '{"a": "b"} (a mapping)', "null"])),
)
def test_non_string_condition_not_runnable(tmp_path, condition, found):
    rule = write(
        tmp_path / "odd.yml",
        _detection_rule("Odd condition", f"  sel:\n    c-useragent|contains: rclone\n  condition: {condition}"),
    )
    good = write(tmp_path / "good.yml", proxy_rule("Good"))

    ruleset = load_rules([str(rule), str(good)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Good"]
    assert len(ruleset.problems) == 1
    assert ruleset.problems[0].title == "Odd condition"
    assert "the condition must be a string or a list of strings" in ruleset.problems[0].message
    assert ruleset.problems[0].message.endswith(f"found {found}")


def _non_string_condition_rules(directory: Path) -> Path:
    """Write a good rule and one rule for each condition that is not a string into ``directory``."""
    for number, condition in enumerate(NON_STRING_CONDITIONS):
        write(
            directory / f"odd{number}.yml",
            _detection_rule(f"Odd {number}", f"  sel:\n    c-useragent|contains: rclone\n  condition: {condition}"),
        )
    write(directory / "good.yml", proxy_rule("Good"))
    return directory


def test_non_string_condition_hunt_finds_with_others(tmp_path):
    rules = _non_string_condition_rules(tmp_path / "rules")
    log = write(
        tmp_path / "access.log",
        '10.0.0.1 - - [04/Dec/2026:10:00:01 +0000] "PUT http://s3.example.test/a HTTP/1.1" 200 10 "-" "rclone/v1.66.0"\n',
    )

    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(log), "--rules", str(rules), "--no-default-rules", "--no-color"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    assert "failed unexpectedly" not in result.stderr
    assert "Traceback" not in result.stderr
    assert "1 finding" in result.stdout
    for number in range(len(NON_STRING_CONDITIONS)):
        assert f"(Odd {number}): the condition must be a string or a list of strings" in result.stderr


def test_non_string_condition_rules_check(tmp_path):
    rules = _non_string_condition_rules(tmp_path / "rules")

    result = run_rules_check(str(rules), "--no-default-rules")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    rows = {line.split("\t")[3]: line.split("\t") for line in result.stdout.splitlines()[1:]}
    assert rows["Good"][0] == "ready"
    for number in range(len(NON_STRING_CONDITIONS)):
        assert rows[f"Odd {number}"][0] == "not runnable"
        assert rows[f"Odd {number}"][5].startswith("the condition must be a string or a list of strings")


@pytest.mark.parametrize(
    ("condition", "position"),
    [
        ("sel AND NOT sel", "at character 5 ('AND NOT sel')"),
        ("sel )", "at character 5 (')')"),
        ("sel sel", "at character 5 ('sel')"),
        ("sel-1 and sel_2.x", "at character 16 ('.x')"),
        ("1 of", "at character 3 ('of')"),
        ("sel and", "at character 8 (the end of the condition)"),
        ("sel or sel AND sel and sel", "at character 12 ('AND sel and sel')"),
        ("sel or sel AND sel and sel and sel or sel", "at character 12 ('AND sel and sel and…')"),
    ],
)
def test_condition_syntax_error_shows_position(tmp_path, condition, position):
    detection = f"  sel:\n    c-useragent|contains: rclone\n  sel-1:\n    cs-method: PUT\n  condition: {condition}"
    rule = write(tmp_path / "syntax.yml", _detection_rule("Bad syntax", detection))

    [problem] = load_rules([str(rule)], include_bundled=False).problems

    assert f"the condition '{condition}' is not valid Sigma condition syntax {position}" in problem.message
    assert "expected" not in problem.message
    assert "write 'and', 'or' and 'not' in lowercase" in problem.message
    assert "'1 of', 'any of' or 'all of' followed by a search identifier, a pattern with '*', or 'them'" in problem.message


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            "sel or other",
            "the condition 'sel or other' names 'other', which is not a search of the rule (the rule has sel, sel_2)",
        ),
        ("sel and not (sel_2 or missing)", "names 'missing', which is not a search of the rule"),
        ("1 of sel* and them", "names 'them', which is not a search of the rule"),
        ("sel and AND", "names 'AND', which is not a search of the rule; Sigma operators are lowercase, so write 'and'"),
    ],
)
def test_unknown_search_identifier_named(tmp_path, condition, expected):
    detection = f"  sel:\n    c-useragent|contains: rclone\n  sel_2:\n    cs-method: PUT\n  condition: {condition}"
    rule = write(tmp_path / "unknown.yml", _detection_rule("Unknown search", detection))
    good = write(tmp_path / "good.yml", proxy_rule("Good"))

    ruleset = load_rules([str(rule), str(good)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Good"]
    [problem] = ruleset.problems
    assert expected in problem.message
    assert "not defined in detections" not in problem.message


def test_empty_condition_named(tmp_path):
    rule = write(tmp_path / "empty.yml", _detection_rule("Empty condition", "  sel:\n    cs-method: PUT\n  condition: ''"))

    [problem] = load_rules([str(rule)], include_bundled=False).problems

    assert problem.message == "the condition is empty; write one, such as 'selection and not filter'"


def test_pattern_that_selects_only_underscore_searches(tmp_path):
    # pySigma 1.5.1 leaves '_' search identifiers out of 'them' and of patterns that do not start with '_'.
    detection = "  _sel:\n    c-useragent|contains: rclone\n  condition: 1 of them"
    rule = write(tmp_path / "hidden.yml", _detection_rule("Hidden searches", detection))

    [problem] = load_rules([str(rule)], include_bundled=False).problems

    assert "names 'them', which selects no search" in problem.message
    assert "search identifiers that start with '_'" in problem.message


def _filter_document(condition: str) -> str:
    return (
        "title: Backup Host\nlogsource:\n    category: proxy\n"
        "filter:\n    rules:\n        - 5c03648b-e081-41a5-b9fb-7d854a915094\n"
        f"    sel:\n        cs-host: backup.example.com\n    condition: {condition}\n"
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            "1 of nothere*",
            "the condition '1 of nothere*' names 'nothere*', which matches no search identifier (the filter has sel)",
        ),
        ("not (sel or other)", "names 'other', which is not a search of the filter (the filter has sel)"),
        ("sel AND sel", "not valid Sigma condition syntax at character 5 ('AND sel')"),
    ],
)
def test_filter_condition_checked(tmp_path, condition, expected):
    path = write(
        tmp_path / "filter.yml",
        proxy_rule("Rclone", rule_id="5c03648b-e081-41a5-b9fb-7d854a915094") + "---\n" + _filter_document(condition),
    )

    ruleset = load_rules([str(path)], include_bundled=False)

    assert [loaded.title for loaded in ruleset.rules] == ["Rclone"]
    assert ruleset.filters == []
    [problem] = ruleset.problems
    assert problem.title == "Backup Host"
    assert problem.kind == "filter"
    assert expected in problem.message


def test_filter_empty_value_list_checked(tmp_path):
    path = write(
        tmp_path / "filter.yml",
        proxy_rule("Rclone", rule_id="5c03648b-e081-41a5-b9fb-7d854a915094")
        + "---\n"
        + _filter_document("sel").replace("cs-host: backup.example.com", "cs-host|endswith: []"),
    )

    ruleset = load_rules([str(path)], include_bundled=False)

    assert ruleset.filters == []
    [problem] = ruleset.problems
    assert "(sel: cs-host|endswith)" in problem.message


@pytest.mark.parametrize(
    ("detection", "named"),
    [
        ("  sel: []\n  condition: sel", "search 'sel' is an empty list"),
        ("  sel:\n    - rclone\n    - []\n  condition: sel", "search 'sel' contains an empty list"),
    ],
)
def test_empty_search_list_named(tmp_path, detection, named):
    rule = write(tmp_path / "empty.yml", _detection_rule("Empty search", detection))

    [problem] = load_rules([str(rule)], include_bundled=False).problems

    assert problem.message.startswith(named)
    assert "give at least one value (a keyword), or a map of fields and values" in problem.message
    assert "keywords" not in problem.message.replace("(a keyword)", "")
    assert "null" not in problem.message


def test_empty_value_list_read_as_missing_field(tmp_path):
    rule = write(
        tmp_path / "empty.yml", _detection_rule("Empty values", "  sel:\n    c-useragent|contains: []\n  condition: sel")
    )

    [problem] = load_rules([str(rule)], include_bundled=False).problems

    assert "would be read by pySigma as a test for a missing field, which a rule rarely means" in problem.message
    assert "has no meaning" not in problem.message
    assert problem.message.endswith("or write 'c-useragent: null' to match a missing field")
