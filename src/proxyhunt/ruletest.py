"""Run every rule file's examples through a real hunt: the lines it must flag and the near misses it must not.

>>> from proxyhunt.ruletest import test_rules
>>> report = test_rules(["my-rules/"])            # doctest: +SKIP
>>> [result.status for result in report.results]  # doctest: +SKIP

Each rule file ``X.yml`` is tested with its examples file ``X.examples.yml``
(see ``proxyhunt.rules.examples`` for the format). The ``match`` and
``no_match`` lines are written to one temporary log together and hunted once
with only the rules of ``X.yml``: no filters, no other rules, no prefilter.
A line is flagged when an alert finding of a rule in ``X.yml`` names its
``SourceLine``, or when it is one of the ``Events`` of such a correlation
finding. Each case is a log of its own, judged by its alert findings.
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from proxyhunt.engines.duckdb import VERDICT_ALERT
from proxyhunt.formats import format_names
from proxyhunt.formats.loader import REJECTS_TABLE
from proxyhunt.hunt import HuntResult, hunt
from proxyhunt.rules.examples import (
    EXPECT_MATCH,
    ExampleCase,
    ExamplesError,
    RuleExamples,
    examples_path_for,
    load_examples,
    rule_path_for,
)
from proxyhunt.rules.lists import PlaceholderLists, lists_in_force, overlay_lists
from proxyhunt.rules.loader import EXAMPLES_SUFFIXES, bundled_rule_files, find_rule_files, is_examples_file

log = logging.getLogger(__name__)

PASS = "PASS"
FAIL = "FAIL"
NO_EXAMPLES = "NO EXAMPLES"


@dataclass(frozen=True)
class ExampleFailure:
    """One example that did not give the expected outcome, or a problem that stopped the examples from running.

    ``line`` is the 1-based line of the examples file, or 0 when the problem
    concerns the whole file.
    """

    path: str
    line: int
    message: str

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass
class RuleFileResult:
    """The outcome of one rule file's examples."""

    rule_path: str
    examples_path: str | None
    status: str
    examples: int = 0
    failures: list[ExampleFailure] = field(default_factory=list)


@dataclass
class RuleTestReport:
    """The outcome of every rule file tested."""

    results: list[RuleFileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[RuleFileResult]:
        """The rule files whose examples failed or that have no examples file."""
        return [result for result in self.results if result.status != PASS]


def test_rules(paths: list[str], include_bundled: bool = True, lists_path: str | None = None) -> RuleTestReport:
    """Run the examples of the bundled rule files (unless ``include_bundled`` is False) and of those under ``paths``.

    ``paths`` are rule files, examples files (which stand for their rule
    file) or directories searched recursively. ``lists_path`` is a lists file
    laid over the default lists, as ``--lists`` gives; an examples file's own
    ``lists`` go over both. A lists file that cannot be read raises
    PlaceholderListsError; every other problem becomes a failure in the
    report, and the other files are still tested.
    """
    lists = lists_in_force(lists_path)
    report = RuleTestReport()
    for rule_path, problem in _rule_files(paths, include_bundled):
        if problem is not None:
            report.results.append(RuleFileResult(rule_path, problem.path, FAIL, failures=[problem]))
            continue
        report.results.append(_test_rule_file(rule_path, lists))
    return report


# pytest would otherwise collect the function as a test wherever a test module imports it.
test_rules.__test__ = False  # type: ignore[attr-defined]


def _rule_files(paths: list[str], include_bundled: bool) -> list[tuple[str, ExampleFailure | None]]:
    """Return each rule file to test once, in order, or the problem reported in place of a rule file."""
    entries: list[tuple[str, ExampleFailure | None]] = []
    if include_bundled:
        entries += [(str(path), None) for path in bundled_rule_files()]

    for path in paths:
        candidate = Path(path)
        if candidate.is_file() and is_examples_file(candidate):
            entries.append(_rule_of_examples(candidate))
            continue
        files, problem = find_rule_files(path)
        if problem is not None:
            entries.append((path, ExampleFailure(path, 0, problem.message)))
        entries += [(str(file), None) for file in files]
        if candidate.is_dir():
            # An examples file whose rule file is missing or renamed would otherwise never run.
            for examples in sorted(candidate.rglob("*")):
                hidden = any(part.startswith(".") for part in examples.relative_to(candidate).parts)
                if examples.is_file() and is_examples_file(examples) and not hidden and rule_path_for(examples) is None:
                    entries.append(_rule_of_examples(examples))

    ordered = []
    seen = set()
    for rule_path, problem in entries:
        key = rule_path if problem is not None else str(Path(rule_path).resolve())
        if key not in seen:
            seen.add(key)
            ordered.append((rule_path, problem))
    return ordered


def _rule_of_examples(examples: Path) -> tuple[str, ExampleFailure | None]:
    rule = rule_path_for(examples)
    if rule is not None:
        return str(rule), None
    stem = examples.name[: -len(next(s for s in EXAMPLES_SUFFIXES if examples.name.lower().endswith(s)))]
    message = f"examples file without a rule file: no {stem}.yml or {stem}.yaml beside it; rename it after its rule file"
    return str(examples), ExampleFailure(str(examples), 0, message)


def _test_rule_file(rule_path: str, lists: PlaceholderLists) -> RuleFileResult:
    examples_path = examples_path_for(rule_path)
    if examples_path is None:
        stem = Path(rule_path).with_suffix("").name
        message = f"no examples file; add {stem}.examples.yml beside the rule with match and no_match lines"
        return RuleFileResult(rule_path, None, NO_EXAMPLES, failures=[ExampleFailure(rule_path, 0, message)])

    try:
        examples = load_examples(examples_path, rule_path)
    except ExamplesError as error:
        return RuleFileResult(rule_path, str(examples_path), FAIL, failures=[_file_failure(str(examples_path), str(error))])

    failures = _format_failures(examples.path, examples.format_name, 0)
    if not failures:
        examples_lists = overlay_lists(lists, examples.lists) if examples.lists else lists
        with tempfile.TemporaryDirectory(prefix="proxyhunt-ruletest-") as folder:
            if examples.match or examples.no_match:
                failures += _run_lines(examples, examples_lists, Path(folder))
            for number, case in enumerate(examples.cases, start=1):
                # A case with an unknown format fails alone; the other cases still run.
                case_failures = _format_failures(examples.path, case.format_name, case.line, case.name)
                if not case_failures:
                    case_failures = _run_case(examples, case, examples_lists, Path(folder) / f"case-{number}.log")
                failures += case_failures

    total = len(examples.match) + len(examples.no_match) + len(examples.cases)
    status = FAIL if failures else PASS
    log.info("%s: %s, %d examples", rule_path, status, total)
    return RuleFileResult(rule_path, str(examples_path), status, total, failures)


def _file_failure(path: str, message: str) -> ExampleFailure:
    """Return a failure for an ``ExamplesError`` message, which starts with ``file:line:`` when it has a line."""
    rest = message[len(path) :] if message.startswith(path) else ""
    if rest.startswith(":"):
        line_text, _, detail = rest[1:].partition(":")
        if line_text.isdigit():
            return ExampleFailure(path, int(line_text), detail.strip())
    return ExampleFailure(path, 0, rest.lstrip(": ") or message)


def _format_failures(path: str, name: str | None, line: int, case: str | None = None) -> list[ExampleFailure]:
    """Return a failure when ``name`` is not a format that examples can name, else nothing."""
    known = format_names()
    if name is None or name in known:
        return []
    prefix = f"case '{case}': " if case else ""
    message = f"{prefix}unknown format '{name}'; use one of {', '.join(known)} (see proxyhunt formats)"
    return [ExampleFailure(path, line, message)]


def _run_lines(examples: RuleExamples, lists: PlaceholderLists, folder: Path) -> list[ExampleFailure]:
    """Hunt the match and no_match lines in one log and return every missed match and flagged near miss."""
    log_path = folder / "examples.log"
    written = [*examples.header, *examples.match, *examples.no_match]
    _write_log(log_path, [example.text for example in written])
    by_log_line = {number: example for number, example in enumerate(written, start=1)}
    result, connection = _hunt(log_path, examples.rule_path, examples.format_name, lists)

    failures = _setup_failures(examples, result)
    if failures:
        return failures

    rejected = _rejected_lines(connection)
    flagged = _flagged_lines(result.alerts)
    blind = _coverage_note(result)
    header_lines = len(examples.header)
    for number, example in by_log_line.items():
        if number <= header_lines:
            continue
        if number in rejected:
            failures.append(
                ExampleFailure(
                    examples.path, example.line, f"the format could not parse this line ({rejected[number]}): {example.text}"
                )
            )
        elif example in examples.match and number not in flagged:
            failures.append(ExampleFailure(examples.path, example.line, f"match line not flagged{blind}: {example.text}"))
        elif example in examples.no_match and number in flagged:
            titles = ", ".join(f"'{title}'" for title in sorted(flagged[number]))
            failures.append(ExampleFailure(examples.path, example.line, f"near miss flagged by {titles}: {example.text}"))
    return failures


def _run_case(examples: RuleExamples, case: ExampleCase, lists: PlaceholderLists, log_path: Path) -> list[ExampleFailure]:
    """Hunt one case's lines as a log of its own and compare its alert findings with the expectation."""
    _write_log(log_path, [example.text for example in case.lines])
    result, connection = _hunt(log_path, examples.rule_path, case.format_name or examples.format_name, lists)

    failures = _setup_failures(examples, result, case.line)
    if failures:
        return failures
    rejected = _rejected_lines(connection)
    for number, example in enumerate(case.lines, start=1):
        if number in rejected:
            failures.append(
                ExampleFailure(
                    examples.path,
                    example.line,
                    f"case '{case.name}': the format could not parse this line ({rejected[number]}): {example.text}",
                )
            )

    alerts = result.alerts
    titles = ", ".join(sorted({f"'{finding['RuleTitle']}'" for finding in alerts}))
    if case.expect == EXPECT_MATCH and not alerts:
        message = f"case '{case.name}': expected at least one finding, got none{_coverage_note(result)}"
        failures.append(ExampleFailure(examples.path, case.line, message))
    elif case.expect != EXPECT_MATCH and alerts:
        message = f"case '{case.name}': expected no finding, got {len(alerts)} from {titles}"
        failures.append(ExampleFailure(examples.path, case.line, message))
    elif case.findings is not None and len(alerts) != case.findings:
        message = f"case '{case.name}': expected {case.findings} findings, got {len(alerts)}"
        message += f" from {titles}" if alerts else ""
        failures.append(ExampleFailure(examples.path, case.line, message))
    return failures


def _write_log(path: Path, lines: list[str]) -> None:
    # UTF-8 with \n line ends, as a proxy on Linux writes it; surrogates from YAML escapes stay visible.
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8", errors="backslashreplace")


def _hunt(
    log_path: Path, rule_path: str, format_name: str | None, lists: PlaceholderLists
) -> tuple[HuntResult, duckdb.DuckDBPyConnection]:
    # NOTE: only the rules of this one file are loaded, so a correlation or filter here that
    # names a rule in another file is reported as unable to run. Keep them in one file.
    connection = duckdb.connect()
    result = hunt(
        [str(log_path)],
        rule_paths=[rule_path],
        include_bundled=False,
        format_name=format_name,
        connection=connection,
        lists=lists,
        # Every line is parsed, so that a line the format rejects is reported as such.
        prefilter=False,
    )
    return result, connection


def _setup_failures(examples: RuleExamples, result: HuntResult, line: int = 0) -> list[ExampleFailure]:
    """Return failures for what keeps the examples from testing the rule: an unreadable log or an unrunnable rule."""
    failures = []
    for report in result.failed_files:
        lines = "the example lines" if not line else "the case's lines"
        failures.append(ExampleFailure(examples.path, line, f"{lines} could not be read as a log: {report.error}"))
    for problem in result.rule_problems:
        failures.append(ExampleFailure(examples.path, line, f"rule cannot run: {problem}"))
    if not result.compiled and not result.ruleset.correlations and not failures:
        skipped = "; ".join(str(problem) for problem in result.ruleset.skipped) or "the file contains no Sigma rule"
        failures.append(ExampleFailure(examples.path, line, f"no rule of the file runs: {skipped}"))
    return failures


def _rejected_lines(connection: duckdb.DuckDBPyConnection) -> dict[int, str]:
    rows = connection.execute(f"SELECT SourceLine, Reason FROM {REJECTS_TABLE}").fetchall()
    return {line: reason for line, reason in rows if line is not None}


def _flagged_lines(alerts: list[dict[str, Any]]) -> dict[int, set[str]]:
    """Return, per log line, the titles of the rules whose alert findings name it, directly or as a correlation event."""
    flagged: dict[int, set[str]] = defaultdict(set)
    for finding in alerts:
        if finding.get("Verdict", VERDICT_ALERT) != VERDICT_ALERT:
            continue
        if finding.get("SourceLine") is not None:
            flagged[finding["SourceLine"]].add(finding["RuleTitle"])
        for event in finding.get("Events") or []:
            if event.get("SourceLine") is not None:
                flagged[event["SourceLine"]].add(finding["RuleTitle"])
    return flagged


def _coverage_note(result: HuntResult) -> str:
    """Return why the log may not show a match, such as a format without a user agent, or ""."""
    missing = sorted({column for gap in result.coverage for column in gap.missing})
    if not missing:
        return ""
    return f" (the log carries no {', '.join(missing)}, which the rules read)"
