"""Check Sigma rules, filters and correlation rules without logs: which ones a hunt can run, and why not.

>>> from proxyhunt.check import check_rules
>>> [status.status for status in check_rules(["my-rules/"]).statuses]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proxyhunt.engines.correlation import compile_correlations
from proxyhunt.engines.duckdb import FINDING_COLUMNS, compile_rules
from proxyhunt.report.text import safe_text
from proxyhunt.rules.loader import RuleProblem, RuleSet, load_rules
from proxyhunt.rules.placeholders import PlaceholderLists, apply_lists, lists_in_force, placeholder_names
from proxyhunt.schema import COLUMN_NAMES
from proxyhunt.tuning.filters import PROCESS_COLUMNS, compile_filters

READY = "ready"
PARTLY_RUNNABLE = "partly runnable"
NOT_RUNNABLE = "not runnable"
SKIPPED = "skipped"


@dataclass(frozen=True)
class RuleStatus:
    """Whether one rule, filter or correlation can run in a hunt, and the reason when it cannot."""

    kind: str
    rule_id: str
    title: str
    path: str
    status: str
    reason: str = ""


@dataclass
class RuleCheck:
    """The status of every rule, filter and correlation found under the checked paths."""

    statuses: list[RuleStatus] = field(default_factory=list)

    @property
    def failed(self) -> list[RuleStatus]:
        """The entries that a hunt would report as rule problems."""
        return [status for status in self.statuses if status.status in (NOT_RUNNABLE, PARTLY_RUNNABLE)]


def check_rules(rule_paths: list[str], include_bundled: bool = True, lists_path: str | None = None) -> RuleCheck:
    """Load and compile the rules under ``rule_paths`` (and the bundled ones) as a hunt would, without logs.

    Filters are checked against the findings columns including the Process*
    columns, so a filter that tests them is ready but needs process-creation
    events in the hunt; the reason says so.
    """
    lists = lists_in_force(lists_path)
    ruleset = load_rules(list(rule_paths), include_bundled=include_bundled, lists=lists)
    defaults_used = _default_placeholders(ruleset, lists)
    apply_lists(ruleset, lists)
    check = RuleCheck()
    compiled = compile_rules(ruleset.rules)
    for rule in compiled:
        loaded = rule.loaded
        status = NOT_RUNNABLE if rule.error else READY
        reason = rule.error or defaults_used.get(loaded.key, "")
        check.statuses.append(RuleStatus("rule", loaded.rule_id, loaded.title, loaded.path, status, reason))

    columns = [name for name, _ in FINDING_COLUMNS] + list(COLUMN_NAMES) + list(PROCESS_COLUMNS)
    for compiled_filter in compile_filters(ruleset, compiled, columns):
        loaded = compiled_filter.loaded
        reasons = [compiled_filter.error] if compiled_filter.error else list(compiled_filter.problems)
        if compiled_filter.error:
            status = NOT_RUNNABLE
        elif compiled_filter.problems:
            status = PARTLY_RUNNABLE
        else:
            status = READY
        process_columns = sorted(set(compiled_filter.columns) & set(PROCESS_COLUMNS))
        if process_columns and not compiled_filter.error:
            reasons.append(f"tests {', '.join(process_columns)}, which only process correlation fills")
        if loaded.key in defaults_used and not compiled_filter.error:
            reasons.append(defaults_used[loaded.key])
        check.statuses.append(
            RuleStatus("filter", loaded.filter_id, loaded.title, loaded.path, status, "; ".join(reasons))
        )

    for correlation in compile_correlations(ruleset, {rule.loaded.key: rule.error for rule in compiled}):
        loaded = correlation.loaded
        status = NOT_RUNNABLE if correlation.error else READY
        check.statuses.append(
            RuleStatus(
                f"correlation ({loaded.correlation_type})",
                loaded.rule_id,
                loaded.title,
                loaded.path,
                status,
                correlation.error or defaults_used.get(loaded.key, ""),
            )
        )

    for problem in ruleset.problems:
        check.statuses.append(_problem_status(problem, NOT_RUNNABLE))
    for problem in ruleset.skipped:
        check.statuses.append(_problem_status(problem, SKIPPED))
    return check


def _default_placeholders(ruleset: RuleSet, lists: PlaceholderLists) -> dict[str, str]:
    """Return, per rule, filter and correlation key, a note naming the placeholders filled from the default lists.

    The note shows a detection engineer which values are the bundled
    defaults and not the site's own.
    """
    notes: dict[str, str] = {}
    items = [(rule.key, placeholder_names(rule.rule.detection)) for rule in ruleset.rules]
    items += [(item.key, placeholder_names(item.filter.filter)) for item in ruleset.filters]
    items += [(item.key, list(item.placeholders)) for item in ruleset.correlations]
    for key, names in items:
        defaults = [name for name in names if lists.from_defaults(name)]
        if defaults:
            notes[key] = f"uses the default lists for {', '.join(defaults)}; give your own values with --lists"
    return notes


def _problem_status(problem: RuleProblem, status: str) -> RuleStatus:
    return RuleStatus(problem.kind, problem.rule_id, problem.title or "", problem.path, status, problem.message)


def format_check(check: RuleCheck) -> list[str]:
    """Return the check as text lines: one per entry, tab-separated, then a count line."""
    lines = ["STATUS\tTYPE\tID\tTITLE\tFILE\tREASON"]
    for status in check.statuses:
        fields = [status.status, status.kind, status.rule_id or "-", status.title or "-", status.path, status.reason or "-"]
        # Titles, file names and reasons come from rule files: a tab, a line break or a
        # terminal escape sequence in them is shown escaped, never passed through.
        lines.append("\t".join(safe_text(field) for field in fields))
    ready = sum(status.status == READY for status in check.statuses)
    skipped = sum(status.status == SKIPPED for status in check.statuses)
    lines.append(f"{len(check.statuses)} checked: {ready} ready, {len(check.failed)} cannot run (fully), {skipped} skipped")
    return lines
