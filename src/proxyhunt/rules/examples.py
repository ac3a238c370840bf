"""Rule examples files: the log lines a rule must flag and the near misses it must not.

Beside each rule file ``X.yml`` sits ``X.examples.yml``::

    format: combined          # optional: a --format name; default: detect from the lines
    header: ['#Fields: ...']  # optional: lines written before match and no_match, for W3C or Zeek TSV
    lists:                    # optional: placeholder values over the lists in force
      cloud_storage_domains: ["*.example-storage.net"]
    match:                    # every line must be flagged by a rule of X.yml
      - '10.1.2.3 - - [05/Dec/2026:03:12:44 +0000] "PUT http://host/path HTTP/1.1" 200 0 "-" "rclone/v1.68.2"'
    no_match:                 # no line may be flagged
      - '...'
    cases:                    # each case is a log of its own, mainly for correlation rules
      - name: rclone Mega upload ramp
        expect: match         # match: at least one alert finding; no_match: none
        findings: 1           # optional: exactly this many alert findings
        format: squid         # optional, overrides the top-level format
        lines: ['...', '...']

This module reads and checks such a file. It keeps the 1-based line of every
example, so that a failure can point at it. ``proxyhunt.ruletest`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from proxyhunt.rules.lists import PlaceholderLists, PlaceholderListsError, compose_yaml, read_lists_mapping
from proxyhunt.rules.loader import EXAMPLES_SUFFIXES, RULE_SUFFIXES

EXPECT_MATCH = "match"
EXPECT_NO_MATCH = "no_match"

_TOP_KEYS = ("format", "header", "lists", "match", "no_match", "cases")
_CASE_KEYS = ("name", "expect", "findings", "format", "lines")
_NULL_TAG = "tag:yaml.org,2002:null"


class ExamplesError(ValueError):
    """An examples file that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class ExampleLine:
    """One log line of an examples file, and the 1-based line of the examples file where it is written."""

    text: str
    line: int


@dataclass(frozen=True)
class ExampleCase:
    """A log of its own with the outcome it must give: at least one alert finding, or none."""

    name: str
    expect: str
    lines: tuple[ExampleLine, ...]
    line: int
    findings: int | None = None
    format_name: str | None = None


@dataclass(frozen=True)
class RuleExamples:
    """The examples of one rule file."""

    path: str
    rule_path: str
    format_name: str | None
    header: tuple[ExampleLine, ...]
    lists: PlaceholderLists | None
    match: tuple[ExampleLine, ...]
    no_match: tuple[ExampleLine, ...]
    cases: tuple[ExampleCase, ...]


def examples_path_for(rule_path: str | Path) -> Path | None:
    """Return the examples file beside a rule file (``X.examples.yml`` or ``.yaml``), or None when there is none."""
    rule = Path(rule_path)
    stem = rule.name[: -len(rule.suffix)] if rule.suffix.lower() in RULE_SUFFIXES else rule.name
    for suffix in EXAMPLES_SUFFIXES:
        candidate = rule.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def rule_path_for(examples_path: str | Path) -> Path | None:
    """Return the rule file that an examples file belongs to (``X.yml`` or ``X.yaml``), or None when it is missing."""
    examples = Path(examples_path)
    lowered = examples.name.lower()
    suffix = next(suffix for suffix in EXAMPLES_SUFFIXES if lowered.endswith(suffix))
    stem = examples.name[: -len(suffix)]
    for rule_suffix in RULE_SUFFIXES:
        candidate = examples.with_name(stem + rule_suffix)
        if candidate.is_file():
            return candidate
    return None


def load_examples(path: str | Path, rule_path: str | Path) -> RuleExamples:
    """Read an examples file; raise ``ExamplesError`` naming the file and line of the first problem."""
    location = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ExamplesError(f"{location}: examples file cannot be read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ExamplesError(f"{location}: not valid UTF-8 (byte {error.start}); save the examples file as UTF-8") from None

    root = compose_yaml(location, text, ExamplesError)
    if not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise ExamplesError(
            f"{location}:{line}: an examples file must be a mapping with match and no_match lists, or cases"
        )
    return _read_examples(location, str(rule_path), root)


def _read_examples(location: str, rule_path: str, root: yaml.MappingNode) -> RuleExamples:
    fields = _mapping(location, root, _TOP_KEYS, "examples file")

    format_name = _optional_text(location, fields.get("format"), "format")
    header = _lines(location, fields["header"], "header") if "header" in fields else ()
    match = _lines(location, fields["match"], "match") if "match" in fields else ()
    no_match = _lines(location, fields["no_match"], "no_match") if "no_match" in fields else ()
    lists = None
    if "lists" in fields:
        node = fields["lists"]
        if not isinstance(node, yaml.MappingNode):
            raise ExamplesError(f"{location}:{node.start_mark.line + 1}: 'lists' must be a mapping of placeholder names to values")
        try:
            lists = read_lists_mapping(location, node)
        except PlaceholderListsError as error:
            raise ExamplesError(str(error)) from None

    cases: list[ExampleCase] = []
    if "cases" in fields:
        node = fields["cases"]
        if not isinstance(node, yaml.SequenceNode):
            raise ExamplesError(f"{location}:{node.start_mark.line + 1}: 'cases' must be a list of cases")
        cases = [_read_case(location, item, number) for number, item in enumerate(node.value, start=1)]

    has_match = bool(match) or any(case.expect == EXPECT_MATCH for case in cases)
    has_no_match = bool(no_match) or any(case.expect == EXPECT_NO_MATCH for case in cases)
    if not has_match:
        raise ExamplesError(f"{location}: the examples have no match line or case (a line the rule must flag); add one")
    if not has_no_match:
        raise ExamplesError(
            f"{location}: the examples have no no_match line or case (a near miss the rule must not flag); add one"
        )
    return RuleExamples(location, rule_path, format_name, header, lists, match, no_match, tuple(cases))


def _read_case(location: str, node: yaml.Node, number: int) -> ExampleCase:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise ExamplesError(f"{location}:{line}: case {number} must be a mapping with name, expect and lines")
    fields = _mapping(location, node, _CASE_KEYS, f"case {number}")
    for required in ("expect", "lines"):
        if required not in fields:
            raise ExamplesError(f"{location}:{line}: case {number} has no '{required}'; add it")

    name = _optional_text(location, fields.get("name"), "name") or f"case {number}"
    expect = _optional_text(location, fields["expect"], "expect")
    if expect not in (EXPECT_MATCH, EXPECT_NO_MATCH):
        raise ExamplesError(
            f"{location}:{fields['expect'].start_mark.line + 1}: expect '{expect}' of case '{name}' is invalid; "
            f"write {EXPECT_MATCH} or {EXPECT_NO_MATCH}"
        )
    findings = None
    if "findings" in fields:
        text = _optional_text(location, fields["findings"], "findings") or ""
        if not text.isdigit():
            raise ExamplesError(
                f"{location}:{fields['findings'].start_mark.line + 1}: findings '{text}' of case '{name}' "
                "must be a whole number of 0 or more"
            )
        findings = int(text)
    lines = _lines(location, fields["lines"], f"lines of case '{name}'")
    if not lines:
        raise ExamplesError(f"{location}:{line}: case '{name}' has no lines; add the log lines of the case")
    format_name = _optional_text(location, fields.get("format"), "format")
    return ExampleCase(name, expect, lines, line, findings, format_name)


def _mapping(location: str, node: yaml.MappingNode, allowed: tuple[str, ...], section: str) -> dict[str, yaml.Node]:
    fields: dict[str, yaml.Node] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name not in allowed:
            raise ExamplesError(
                f"{location}:{key.start_mark.line + 1}: unknown key '{name}' in the {section}; "
                f"the keys are {', '.join(allowed)}"
            )
        if name in fields:
            raise ExamplesError(f"{location}:{key.start_mark.line + 1}: '{name}' is given twice in the {section}")
        fields[name] = value
    return fields


def _optional_text(location: str, node: yaml.Node | None, key: str) -> str | None:
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG):
        return None
    if not isinstance(node, yaml.ScalarNode):
        raise ExamplesError(f"{location}:{node.start_mark.line + 1}: '{key}' must be a single value")
    return node.value


def _lines(location: str, node: yaml.Node, key: str) -> tuple[ExampleLine, ...]:
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise ExamplesError(f"{location}:{node.start_mark.line + 1}: '{key}' must be a list of log lines")
    lines = []
    for item in node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.ScalarNode) or item.tag == _NULL_TAG:
            raise ExamplesError(
                f"{location}:{line}: each entry of '{key}' must be one log line as a string; quote it"
            )
        # The scalar's text: YAML would turn a line such as 'on' into a boolean.
        text = item.value.rstrip("\n")
        if "\n" in text or "\r" in text:
            raise ExamplesError(
                f"{location}:{line}: an entry of '{key}' spans several lines; give each log line as its own entry"
            )
        lines.append(ExampleLine(text, line))
    return tuple(lines)
