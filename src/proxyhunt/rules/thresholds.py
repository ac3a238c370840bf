"""Threshold placeholders: a correlation rule's timespan and condition values taken from the lists.

A correlation rule may write a placeholder, as a quoted string, where the
Sigma correlation specification expects a timespan or a condition number::

    correlation:
        type: value_sum
        timespan: '%rclone_cloud_upload_window%'
        condition:
            gte: '%rclone_cloud_upload_bytes%'
            field: cs-bytes

pySigma parses neither, so each placeholder is replaced with its single value
from the lists in force (the user's lists file over the bundled defaults)
before pySigma reads the rule. A missing or malformed value makes the
correlation not runnable, with a message that names the list key, the file
and the fix.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from proxyhunt.rules.lists import PlaceholderLists

# A whole value that is one placeholder, as |expand writes them: %name%.
_PLACEHOLDER = re.compile(r"%([^%\s]+)%")
# A Sigma timespan, as pySigma 1.5 reads it: a whole number and a unit, where M is a month and m a minute.
_TIMESPAN = re.compile(r"\+?([0-9]+)([smhdwMy])")
_WHOLE_NUMBER = re.compile(r"\+?[0-9]+")
_CONDITION_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")

# The seconds of each unit, as pySigma 1.5 counts them (a month is 1/12 of a Gregorian year).
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2629746, "y": 31556952}
# The maximum timespan, 10 years. DuckDB and Spark SQL store intervals as
# 64-bit microseconds and KQL stores timespans as 64-bit ticks of 100 ns, so each
# reaches thousands of years, but 100000000y overflows DuckDB's timestamp
# arithmetic. Ten years covers any hunt window and leaves a wide margin.
MAX_TIMESPAN = "10y"
MAX_TIMESPAN_SECONDS = 10 * _UNIT_SECONDS["y"]
# The largest condition number, because Spark SQL and KQL hold counts and sums as signed 64-bit integers.
MAX_CONDITION_NUMBER = 2**63 - 1

THRESHOLD_FORMS = (
    "a threshold is a whole number of 0 or more, such as 1073741824 (bytes) or 20 (events), "
    "and a timespan is a whole number above 0 and one unit (s, m, h, d, w, M for month or y), such as 4h, "
    f"at most {MAX_TIMESPAN}; compound timespans such as 1h30m are not read, so write 90m"
)


class ThresholdError(ValueError):
    """A threshold placeholder without a usable value; the message names the key, the file and the fix."""


@dataclass
class ThresholdSubstitution:
    """A correlation document with its placeholders replaced, and the names it used."""

    document: dict
    names: list[str] = field(default_factory=list)


def substitute_thresholds(document: dict, lists: PlaceholderLists, rule_text: str = "", rule_path: str = "") -> ThresholdSubstitution:
    """Return a copy of a Sigma document with the placeholders of its correlation timespan and condition replaced.

    A document that is not a correlation rule, or has no such placeholder,
    comes back unchanged. ``rule_text`` and ``rule_path`` are the rule file's
    text and name, used to give the line of a placeholder in messages. Raises
    ``ThresholdError`` for a missing or malformed value.
    """
    correlation = document.get("correlation")
    if not isinstance(correlation, dict):
        return ThresholdSubstitution(document)

    substitution = ThresholdSubstitution(copy.deepcopy(document))
    target = substitution.document["correlation"]
    where = _Location(rule_text, rule_path)

    name = _placeholder_name(target.get("timespan"))
    if name:
        target["timespan"] = _timespan_value(name, lists, where)
        substitution.names.append(name)

    condition = target.get("condition")
    if isinstance(condition, dict):
        for operator in [*_CONDITION_OPERATORS, "percentile"]:
            name = _placeholder_name(condition.get(operator))
            if name:
                condition[operator] = _number_value(name, lists, where)
                substitution.names.append(name)
    return substitution


@dataclass(frozen=True)
class _Location:
    """The rule file, for messages that give the line where a placeholder is written."""

    text: str
    path: str

    def line_of(self, name: str) -> str:
        token = f"%{name}%"
        for number, line in enumerate(self.text.splitlines(), start=1):
            if token in line:
                return f"{self.path}:{number}"
        return self.path or "the rule"


def _placeholder_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = _PLACEHOLDER.fullmatch(value.strip())
    return match.group(1) if match else None


def _single_value(name: str, lists: PlaceholderLists, where: _Location, example: str) -> str:
    """Return the one value of ``name``: a single value, or a list of exactly one."""
    if name in lists.scalars:
        return lists.scalars[name]
    values = lists.get(name)
    if len(values) == 1:
        return values[0]
    if values:
        raise ThresholdError(
            f"placeholder %{name}% ({where.line_of(name)}) needs one value, and {lists.location_of(name)} lists "
            f"{len(values)}; write it as '{name}: {example}'"
        )
    if lists.path:
        raise ThresholdError(
            f"placeholder %{name}% ({where.line_of(name)}) has no value in {lists.path} nor in the default lists; "
            f"add '{name}: {example}' to {lists.path}"
        )
    raise ThresholdError(
        f"placeholder %{name}% ({where.line_of(name)}) has no value; "
        f"add '{name}: {example}' to a lists file and pass it with --lists"
    )


def _timespan_value(name: str, lists: PlaceholderLists, where: _Location) -> str:
    value = _single_value(name, lists, where, "1h").strip()
    match = _TIMESPAN.fullmatch(value)
    if not match or int(match.group(1)) == 0:
        raise ThresholdError(_invalid_value_message(name, value, lists, f"the timespan at {where.line_of(name)}"))

    count, unit = int(match.group(1)), match.group(2)
    if count * _UNIT_SECONDS[unit] > MAX_TIMESPAN_SECONDS:
        raise ThresholdError(
            f"{lists.location_of(name)}: the value '{value}' of '{name}', used as the timespan at "
            f"{where.line_of(name)}, is over the maximum timespan of {MAX_TIMESPAN}; give a shorter window"
        )
    return f"{count}{unit}"


def _number_value(name: str, lists: PlaceholderLists, where: _Location) -> int:
    value = _single_value(name, lists, where, "1073741824").strip()
    if not _WHOLE_NUMBER.fullmatch(value):
        raise ThresholdError(_invalid_value_message(name, value, lists, f"the condition at {where.line_of(name)}"))

    number = int(value)
    if number > MAX_CONDITION_NUMBER:
        raise ThresholdError(
            f"{lists.location_of(name)}: the value '{value}' of '{name}', used in the condition at "
            f"{where.line_of(name)}, is over the maximum of {MAX_CONDITION_NUMBER} (a signed 64-bit integer)"
        )
    return number


def _invalid_value_message(name: str, value: str, lists: PlaceholderLists, use: str) -> str:
    return f"{lists.location_of(name)}: invalid value '{value}' of '{name}', used as {use}: {THRESHOLD_FORMS}"
