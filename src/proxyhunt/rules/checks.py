"""Checks of a rule's or filter's detection that pySigma leaves out or reports in its own terms.

Each check names the search, field or condition of the rule and gives the fix.
Without them, pySigma 1.5.1 raises a TypeError for a condition that is not a
string and reads an empty list of values as a null test. It also reports an
unknown search identifier only when the rule is converted, in its own words.
"""

from __future__ import annotations

import datetime
import json
import re

from pyparsing import ParseException, ParseResults
from sigma.conditions import ConditionIdentifier, ConditionItem, ConditionSelector
from sigma.conditions import condition as condition_grammar
from sigma.filters import SigmaFilter
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetections

# The name a rule writes for each pySigma modifier class, such as contains.
_MODIFIER_NAMES = {modifier: name for name, modifier in modifier_mapping.items()}
# How much of a condition a syntax error shows from the position of the error.
_QUOTED_LENGTH = 20
_SYNTAX_FIX = (
    "write 'and', 'or' and 'not' in lowercase, search identifiers with letters, digits, '_' and '-', "
    "'1 of', 'any of' or 'all of' followed by a search identifier, a pattern with '*', or 'them', "
    "and a ')' for each '('"
)
_OPERATORS = frozenset({"and", "or", "not"})
# YAML names for the types that a condition can have instead of a string.
_YAML_TYPES = {bool: "a boolean", int: "a number", float: "a number", dict: "a mapping", list: "a list"}


def detection_problem(item: object) -> str | None:
    """Return why a rule's or filter's detection cannot mean what its author wrote, in terms of the rule, or None.

    Correlation rules have no detection and always get None.
    """
    kind = "filter" if isinstance(item, SigmaFilter) else "rule"
    detections: SigmaDetections | None = getattr(item, "filter" if kind == "filter" else "detection", None)
    if detections is None:
        return None

    empty = _empty_lists(detections)
    if empty:
        return empty

    names = sorted(detections.detections)
    for condition in detections.condition:
        problem = _condition_problem(condition, names, kind)
        if problem:
            return problem
    return None


def _empty_lists(detections: SigmaDetections) -> str | None:
    """Return a message for the searches that are empty lists and the fields with an empty list of values, or None."""
    searches: list[str] = []
    fields: list[str] = []

    def visit(name: str, detection: SigmaDetection, nested: bool) -> None:
        for detection_item in detection.detection_items:
            if isinstance(detection_item, SigmaDetection):
                visit(name, detection_item, True)
            elif detection_item.original_value:
                continue
            elif detection_item.field is None:
                # A keyword list without values, which pySigma rejects only when converting.
                searches.append(f"search '{name}' {'contains' if nested else 'is'} an empty list")
            else:
                modifiers = "".join(
                    f"|{_MODIFIER_NAMES.get(modifier, modifier.__name__)}" for modifier in detection_item.modifiers
                )
                fields.append(f"{name}: {detection_item.field}{modifiers}")

    for name, detection in detections.detections.items():
        visit(name, detection, False)

    if searches:
        return f"{', '.join(searches)}; give at least one value (a keyword), or a map of fields and values"
    if fields:
        # pySigma 1.5.1 turns a field with no values into a test that the field is null.
        field = fields[0].split(": ", 1)[1].split("|", 1)[0]
        return (
            f"an empty list of values ({', '.join(fields)}) would be read by pySigma as a test for a missing field, "
            f"which a rule rarely means; give at least one value, or write '{field}: null' to match a missing field"
        )
    return None


def _condition_problem(condition: object, names: list[str], kind: str) -> str | None:
    """Return what is wrong with one condition of a rule or filter whose search identifiers are ``names``, or None."""
    if not isinstance(condition, str):
        return (
            "the condition must be a string or a list of strings, such as 'selection and not filter'; "
            f"found {_yaml_value(condition)}"
        )
    if not condition.strip():
        return "the condition is empty; write one, such as 'selection and not filter'"
    if "|" in condition:
        # A pipe aggregation gets pySigma's own message, which points to correlation rules.
        return None

    try:
        tree = condition_grammar.parse_string(condition, parse_all=True)[0]
    except ParseException as error:
        return _syntax_problem(condition, error.loc)

    for operand in _operands(tree):
        if isinstance(operand, ConditionSelector):
            problem = _selector_problem(condition, operand.pattern, names, kind)
        else:
            problem = _identifier_problem(condition, operand.identifier, names, kind)
        if problem:
            return problem
    return None


def _syntax_problem(condition: str, position: int) -> str:
    rest = condition[position:]
    if rest.strip():
        excerpt = rest if len(rest) <= _QUOTED_LENGTH else rest[:_QUOTED_LENGTH].rstrip() + "…"
        where = f"'{excerpt}'"
    else:
        where = "the end of the condition"
    return (
        f"the condition '{condition}' is not valid Sigma condition syntax at character {position + 1} ({where}); "
        f"fix the condition: {_SYNTAX_FIX}"
    )


def _operands(node: object) -> list[ConditionIdentifier | ConditionSelector]:
    """Return the search identifiers and the '1 of' or 'all of' selectors of a parsed condition, left to right."""
    while isinstance(node, ParseResults) and len(node) == 1:
        node = node[0]
    if isinstance(node, (ConditionIdentifier, ConditionSelector)):
        return [node]
    if isinstance(node, ConditionItem):
        return [operand for arg in node.args for operand in _operands(arg)]
    return []


def _identifier_problem(condition: str, identifier: str, names: list[str], kind: str) -> str | None:
    if identifier in names:
        return None
    if identifier.lower() in _OPERATORS:
        # pySigma 1.5.1 accepts only lowercase operators, so its grammar reads 'AND' as a search identifier.
        return (
            f"the condition '{condition}' names '{identifier}', which is not a search of the {kind}; "
            f"Sigma operators are lowercase, so write '{identifier.lower()}'"
        )
    return (
        f"the condition '{condition}' names '{identifier}', which is not a search of the {kind} "
        f"(the {kind} has {', '.join(names)}); fix the name"
    )


def _selector_problem(condition: str, pattern: str, names: list[str], kind: str) -> str | None:
    matching = _matching(pattern, names)
    if _selected(pattern, matching):
        return None
    if matching:
        # pySigma 1.5.1 keeps '_' names for the searches that a filter adds to a rule when it is applied.
        return (
            f"the condition '{condition}' names '{pattern}', which selects no search, because pySigma leaves out "
            f"search identifiers that start with '_' unless the pattern does too (the {kind} has {', '.join(names)}); "
            "rename the searches or fix the pattern"
        )
    return (
        f"the condition '{condition}' names '{pattern}', which matches no search identifier "
        f"(the {kind} has {', '.join(names)}); fix the name or the pattern"
    )


def _matching(pattern: str, names: list[str]) -> list[str]:
    """Return the search identifiers that the pattern of '1 of pattern' matches, '_' names included."""
    if pattern == "them":
        return names
    # The grammar allows only letters, digits, '_' and '*' in a pattern, so only '*' is special.
    expression = re.compile(pattern.replace("*", ".*"))
    return [name for name in names if expression.fullmatch(name)]


def _selected(pattern: str, matching: list[str]) -> list[str]:
    """Return the matching search identifiers that '1 of pattern' selects, as pySigma 1.5.1 resolves them."""
    return [name for name in matching if pattern.startswith("_") or not name.startswith("_")]


def _yaml_value(value: object) -> str:
    """Return a condition value that is not a string as YAML would show it, with its type."""
    if value is None:
        return "null"
    if isinstance(value, datetime.date):
        return f"{value.isoformat()} (a date)"
    text = json.dumps(value, default=str)
    kind = next((name for type_, name in _YAML_TYPES.items() if type(value) is type_), type(value).__name__)
    return f"{text} ({kind})"
