"""Checks of a rule's detection that pySigma leaves out or reports in its own terms.

Each check names the search, field or condition of the rule and gives the fix,
where pySigma would raise an IndexError for an empty list of values
or a parser message for a condition.
"""

from __future__ import annotations

import fnmatch
import re

from pyparsing import ParseException
from sigma.conditions import condition as condition_grammar
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaDetection

# A quantified search in a condition, such as "1 of selection_*", with its name or pattern.
_QUANTIFIED = re.compile(r"\b(?:1|any|all)\s+of\s+([\w*]+)")
# The name a rule writes for each pySigma modifier class, such as contains.
_MODIFIER_NAMES = {modifier: name for name, modifier in modifier_mapping.items()}


def _empty_value_lists(item: object) -> list[str]:
    """Return ``search: field|modifiers`` for each detection item of a rule or filter that has an empty list of values."""
    detections = getattr(getattr(item, "detection", None) or getattr(item, "filter", None), "detections", None) or {}
    found: list[str] = []

    def visit(name: str, detection: SigmaDetection) -> None:
        for detection_item in detection.detection_items:
            if isinstance(detection_item, SigmaDetection):
                visit(name, detection_item)
            elif not detection_item.original_value:
                modifiers = "".join(f"|{_MODIFIER_NAMES.get(modifier, modifier.__name__)}" for modifier in detection_item.modifiers)
                found.append(f"{name}: {detection_item.field or 'keywords'}{modifiers}")

    for name, detection in detections.items():
        visit(name, detection)
    return found


def detection_problem(item: object) -> str | None:
    """Return why a rule's detection cannot mean what its author wrote, in terms of the rule, or None."""
    empty = _empty_value_lists(item)
    if empty:
        return _empty_value_lists_message(empty)

    detection = getattr(item, "detection", None)
    if detection is None:
        return None
    names = sorted(detection.detections)
    for condition in detection.condition:
        for pattern in _QUANTIFIED.findall(condition):
            if pattern != "them" and not fnmatch.filter(names, pattern):
                return (
                    f"the condition '{condition}' names '{pattern}', which matches no search identifier "
                    f"(the rule has {', '.join(names)}); fix the name or the pattern"
                )
        if "|" in condition:
            # A pipe aggregation gets pySigma's own message, which points to correlation rules.
            continue
        try:
            condition_grammar.parse_string(condition, parse_all=True)
        except ParseException as error:
            return (
                f"the condition '{condition}' is not valid Sigma condition syntax at character {error.loc + 1} "
                "(expected a search identifier, '1 of', 'all of', 'not' or a parenthesis there); fix the condition"
            )
    return None


def _empty_value_lists_message(items: list[str]) -> str:
    # pySigma reads an empty list as a test for a missing field, which a rule author rarely means.
    field = items[0].split(": ", 1)[1].split("|", 1)[0]
    return (
        f"an empty list of values ({', '.join(items)}) has no meaning in Sigma; "
        f"give at least one value, or write '{field}: null' to match a missing field"
    )
