"""Expansion of Sigma ``|expand`` placeholders with the site's own values from placeholder lists.

A lists file (read by ``proxyhunt.rules.lists``, over the bundled defaults)
is YAML that maps a placeholder name to a list of strings::

    known_backup_destinations:
      - backup.example.com
      - "*.backup.example.net"

A rule value ``cs-host|expand: '%known_backup_destinations%'`` then matches any
of those values. Each value is a Sigma string, so ``*`` and ``?`` keep their
wildcard meaning and ``\\`` escapes them, exactly as in a rule. Several values
make an OR, as a value list in a rule does.

The Sigma specification requires a tool that cannot fill a placeholder to
reject the rule, so a rule whose placeholder has no values is reported as not
runnable, never run as if it matched nothing.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sigma.exceptions import SigmaError, SigmaPlaceholderError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.placeholder import BasePlaceholderTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaDetections, SigmaRule
from sigma.types import Placeholder, SigmaRegularExpression, SigmaString

# The lists file reader lives in proxyhunt.rules.lists; its names are imported
# from here too.
from proxyhunt.rules.lists import (  # noqa: F401
    PlaceholderLists,
    PlaceholderListsError,
    lists_in_force,
    load_default_lists,
    load_lists,
    overlay_lists,
)
from proxyhunt.rules.loader import KIND_FILTER, KIND_RULE, LoadedFilter, LoadedRule, RuleProblem, RuleSet

# The placeholder that the SQL backends' exact windash modifier puts in place of
# each dash. It is no list name, so list expansion leaves it alone.
WINDASH_PLACEHOLDER = "_windash"


class UnresolvedPlaceholderError(SigmaPlaceholderError):
    """A ``|expand`` placeholder that has no values, so the rule cannot run."""

    def __init__(self, name: str, lists_path: str | None = None) -> None:
        self.name = name
        self.lists_path = lists_path
        if not lists_path:
            message = (
                f"placeholder %{name}% of a |expand value has no values; "
                f"list them under '{name}' in a lists file and pass it with --lists"
            )
        else:
            message = f"placeholder %{name}% of a |expand value has no values in {lists_path}; add a list '{name}' there"
        super().__init__(message)


@dataclass
class ListsPlaceholderTransformation(BasePlaceholderTransformation):
    """Replace ``%name%`` placeholders with the values of list ``name``, as Sigma strings.

    A placeholder without values raises ``UnresolvedPlaceholderError``.
    """

    # A lists path of "" means that no lists file was given.
    lists: PlaceholderLists = field(default_factory=lambda: PlaceholderLists(""))

    def placeholder_replacements(self, p: Placeholder) -> Iterable[SigmaString]:
        values = self.lists.get(p.name)
        if not values and p.name in self.lists.scalars:
            value = self.lists.scalars[p.name]
            raise SigmaPlaceholderError(
                f"placeholder %{p.name}% of a |expand value has a single value at {self.lists.location_of(p.name)}, "
                f"and |expand needs a list; write it as '{p.name}: [{value}]'"
            )
        if not values:
            raise UnresolvedPlaceholderError(p.name, self.lists.path)
        return [SigmaString(value) for value in values]


def placeholder_pipeline(lists: PlaceholderLists) -> ProcessingPipeline:
    """Return a pySigma pipeline that expands ``|expand`` placeholders from ``lists``."""
    return ProcessingPipeline(
        name="proxyhunt placeholder lists",
        priority=10,
        items=[
            ProcessingItem(
                identifier="placeholder_lists",
                transformation=ListsPlaceholderTransformation(exclude=[WINDASH_PLACEHOLDER], lists=lists),
            )
        ],
    )


def apply_lists(ruleset: RuleSet, lists: PlaceholderLists) -> None:
    """Expand the placeholders of the ruleset's rules and filters from ``lists``, in place.

    A rule or filter whose placeholder has no values leaves the ruleset and
    becomes a problem that names the placeholder and the lists file.
    """
    ruleset.rules, rule_problems = expand_placeholders(ruleset.rules, lists)
    ruleset.filters, filter_problems = expand_filter_placeholders(ruleset.filters, lists)
    ruleset.problems.extend(rule_problems + filter_problems)


def expand_placeholders(rules: list[LoadedRule], lists: PlaceholderLists) -> tuple[list[LoadedRule], list[RuleProblem]]:
    """Return the rules with their placeholders expanded, and a problem for each rule that cannot be expanded.

    Each rule is expanded on a copy, so the loaded rule keeps its placeholders
    for export. Rules without placeholders come back unchanged.
    """
    expanded: list[LoadedRule] = []
    problems: list[RuleProblem] = []
    for loaded in rules:
        if not _has_placeholders(loaded.rule.detection):
            expanded.append(loaded)
            continue
        rule = copy.deepcopy(loaded.rule)
        try:
            placeholder_pipeline(lists).apply(rule)
        except SigmaError as error:
            problems.append(_problem(loaded.path, loaded.title, KIND_RULE, loaded.rule_id, error))
            continue
        expanded.append(dataclasses.replace(loaded, rule=rule))
    return expanded, problems


def expand_filter_placeholders(
    filters: list[LoadedFilter], lists: PlaceholderLists
) -> tuple[list[LoadedFilter], list[RuleProblem]]:
    """Return the Sigma filters with their placeholders expanded, and a problem for each that cannot be expanded.

    A filter left out this way suppresses nothing, so the findings it would
    have suppressed stay alerts.
    """
    expanded: list[LoadedFilter] = []
    problems: list[RuleProblem] = []
    for loaded in filters:
        if not _has_placeholders(loaded.filter.filter):
            expanded.append(loaded)
            continue
        sigma_filter = copy.deepcopy(loaded.filter)
        detections = sigma_filter.filter
        # pySigma pipelines apply to rules, so the filter's detections are expanded
        # inside a rule that shares them.
        carrier = SigmaRule(
            title=loaded.title,
            logsource=sigma_filter.logsource,
            detection=SigmaDetections(detections.detections, list(detections.condition)),
        )
        try:
            placeholder_pipeline(lists).apply(carrier)
        except SigmaError as error:
            problems.append(_problem(loaded.path, loaded.title, KIND_FILTER, loaded.filter_id, error))
            continue
        expanded.append(dataclasses.replace(loaded, filter=sigma_filter))
    return expanded, problems


def _problem(path: str, title: str, kind: str, rule_id: str, error: SigmaError) -> RuleProblem:
    message = str(error).split(" (while ")[0]
    return RuleProblem(path, f"not runnable: {message}", title, kind=kind, rule_id=rule_id)


def placeholder_names(detections: SigmaDetections) -> list[str]:
    """Return the names of the ``%name%`` placeholders in the values of a rule's or filter's detections."""
    names: list[str] = []
    for detection in detections.detections.values():
        for item in _detection_items(detection):
            for value in item.value:
                if not isinstance(value, SigmaString | SigmaRegularExpression) or not value.contains_placeholder():
                    continue
                parts = value.s if isinstance(value, SigmaString) else value.regexp.s
                for part in parts:
                    if isinstance(part, Placeholder) and part.name not in names and part.name != WINDASH_PLACEHOLDER:
                        names.append(part.name)
    return names


def _has_placeholders(detections: SigmaDetections) -> bool:
    return any(
        isinstance(value, SigmaString | SigmaRegularExpression) and value.contains_placeholder()
        for detection in detections.detections.values()
        for item in _detection_items(detection)
        for value in item.value
    )


def _detection_items(detection: SigmaDetection) -> Iterator[SigmaDetectionItem]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _detection_items(item)
        else:
            yield item
