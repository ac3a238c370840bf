"""Reports of ``proxyhunt rules test``: the tab-separated table and JUnit XML for CI systems.

Log lines, titles and file names come from rule and examples files, so every
field is passed through ``safe_text``: a tab, a line break or a terminal
escape sequence in them is shown escaped, and the XML stays well-formed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from proxyhunt.report.text import count_noun, safe_text
from proxyhunt.ruletest import FAIL, NO_EXAMPLES, PASS, RuleTestReport

JUNIT_SUITE = "proxyhunt rules test"


def format_report(report: RuleTestReport) -> list[str]:
    """Return the report as text lines: a header, then per rule file a result row and a row per failure, tab-separated.

    The last line is the count, which the command line prints on stderr.
    """
    lines = ["RESULT\tRULE FILE\tEXAMPLE\tDETAIL"]
    for result in report.results:
        if result.status == PASS:
            detail = f"{count_noun(result.examples, 'example')} passed"
        elif result.status == NO_EXAMPLES:
            detail = result.failures[0].message
        else:
            detail = count_noun(len(result.failures), "failure")
        lines.append(_row(result.status, result.rule_path, result.examples_path or "-", detail))

        if result.status == NO_EXAMPLES:
            continue
        for failure in result.failures:
            lines.append(_row(result.status, result.rule_path, failure.location, failure.message))

    lines.append(_summary(report))
    return lines


def write_junit(report: RuleTestReport, path: str | Path) -> None:
    """Write the report as JUnit XML: one test case per rule file, failing with every problem of that file.

    CI systems such as GitLab, Jenkins and GitHub Actions test reporters read
    this format. Raises OSError when the file cannot be written.
    """
    failures = sum(result.status != PASS for result in report.results)
    suite = ElementTree.Element(
        "testsuite", name=JUNIT_SUITE, tests=str(len(report.results)), failures=str(failures), errors="0"
    )
    for result in report.results:
        case = ElementTree.SubElement(
            suite, "testcase", classname=safe_text(result.examples_path or result.rule_path), name=safe_text(result.rule_path)
        )
        if result.status == PASS:
            continue
        message = safe_text(result.failures[0].message) if result.status == NO_EXAMPLES else count_noun(len(result.failures), "failure")
        failure = ElementTree.SubElement(case, "failure", message=message, type=result.status)
        failure.text = "\n".join(safe_text(f"{item.location}: {item.message}") for item in result.failures)

    tree = ElementTree.ElementTree(suite)
    ElementTree.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _summary(report: RuleTestReport) -> str:
    passed = sum(result.status == PASS for result in report.results)
    failed = sum(result.status == FAIL for result in report.results)
    without = sum(result.status == NO_EXAMPLES for result in report.results)
    return (
        f"{count_noun(len(report.results), 'rule file')} tested: {passed} passed, {failed} failed, "
        f"{without} without examples"
    )


def _row(*fields: str) -> str:
    return "\t".join(safe_text(text) for text in fields)
