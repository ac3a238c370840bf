"""The warnings and notes of a hunt, one message each, as the terminal and the HTML report list them."""

from __future__ import annotations

from dataclasses import dataclass

from proxyhunt.formats.loader import FileReport
from proxyhunt.hunt import CoverageGap, HuntResult
from proxyhunt.report.text import count_noun

# Above this many skipped rules, warnings count them per reason instead of listing each.
SKIPPED_RULES_LISTED = 10


@dataclass(frozen=True)
class ReportMessage:
    """One line of the warnings: ``kind`` is error, warning or note."""

    kind: str
    text: str


def collect_messages(result: HuntResult, rejects_written: bool = False) -> list[ReportMessage]:
    """Return file errors, rule problems, coverage gaps and visibility notes, one message each."""
    messages: list[ReportMessage] = []
    for report in result.files:
        messages += file_messages(report, rejects_written)

    for problem in result.rule_problems:
        messages.append(ReportMessage("error", f"rule {problem}"))

    skipped = result.ruleset.skipped
    if len(skipped) > SKIPPED_RULES_LISTED:
        reasons: dict[str, int] = {}
        for problem in skipped:
            reasons[problem.message] = reasons.get(problem.message, 0) + 1
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            messages.append(ReportMessage("note", f"{count} rules skipped: {reason}"))
    else:
        for problem in skipped:
            messages.append(ReportMessage("note", f"rule skipped: {problem}"))

    messages += _coverage_messages(result.coverage)
    for note in result.notes:
        messages.append(ReportMessage("note", note))
    return messages


def file_messages(report: FileReport, rejects_written: bool = False, rejected: bool = True) -> list[ReportMessage]:
    """Return the error, warnings and notes about one input file; ``rejected`` false leaves out the count of rejected lines."""
    messages: list[ReportMessage] = []
    if report.error:
        messages.append(ReportMessage("error", f"{report.path}: {report.error}"))
    if report.own_report:
        messages.append(
            ReportMessage(
                "note",
                f"{report.path}: skipped, because it is a proxyhunt {report.own_report}, not a proxy log; "
                "write reports outside the hunted directory, or pass --format to read it as a log",
            )
        )

    if report.held_by:
        messages.append(
            ReportMessage(
                "note",
                f"{report.path}: read from the dataset {report.held_by}, which holds it unchanged since it was "
                "normalized, so its events count once",
            )
        )
    if report.grown_from:
        messages.append(
            ReportMessage(
                "note",
                f"{report.path}: grew since it was normalized into {report.grown_from}, so it is hunted in full "
                "as a log and the dataset's older copy of it is left out",
            )
        )

    for warning in report.warnings:
        messages.append(ReportMessage("warning", f"{report.path}: {warning}"))
    if report.rejected and rejected:
        hint = "" if rejects_written else "; write them with --rejects FILE"
        messages.append(ReportMessage("warning", f"{report.path}: {count_noun(report.rejected, 'line')} rejected{hint}"))
    for column, count in sorted(report.invalid_values.items()):
        messages.append(
            ReportMessage("warning", f"{report.path}: {count_noun(count, f'invalid {column} value')} left empty (NULL)")
        )
    if report.ignored_text_lines:
        messages.append(
            ReportMessage(
                "warning",
                f"{report.path}: {count_noun(report.ignored_text_lines, 'line')} with text at the end that "
                f"{report.format} does not define; it is kept in RawEvent but matched by no field",
            )
        )

    if report.invalid_utf8_lines:
        messages.append(
            ReportMessage(
                "warning",
                f"{report.path}: {count_noun(report.invalid_utf8_lines, 'line')} not valid UTF-8, decoded with U+FFFD",
            )
        )
    return messages


def _coverage_messages(gaps: list[CoverageGap]) -> list[ReportMessage]:
    """Return one warning per file and set of missing fields, for the rules that could not match or were only partly evaluated.

    A bundled rule pack reads many columns, so a format without a user agent
    would otherwise give one line per rule. Only rules that miss the same
    fields share a warning, so that no warning names a field that one of its rules does not read.
    """
    groups: dict[tuple[str, bool, tuple[str, ...]], list[CoverageGap]] = {}
    for gap in gaps:
        groups.setdefault((gap.path, gap.blind, tuple(sorted(gap.missing))), []).append(gap)

    messages = []
    for (path, blind, missing_columns), group in groups.items():
        if len(group) == 1:
            messages.append(ReportMessage("warning", str(group[0])))
            continue
        titles = _quoted_titles([gap.rule_title for gap in group])
        outcome = "could not match" if blind else "were only partly evaluated"
        messages.append(ReportMessage("warning", f"{path}: rules {titles} {outcome}: {group[0].absence(missing_columns)}"))
    return messages


def _quoted_titles(titles: list[str]) -> str:
    """Return ``'A', 'B' and 'C'``."""
    quoted = [f"'{title}'" for title in titles]
    return ", ".join(quoted[:-1]) + f" and {quoted[-1]}"
