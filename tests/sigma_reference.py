"""A small Sigma matcher in pure Python, written from the Sigma specification, to check the backends against.

It reads a rule's ``detection`` mapping as YAML gives it, without pySigma, and
decides whether one event matches. An event is a dict of WebSession column to
value; a column that is absent or None is a missing field. The sources are the
Sigma rules specification and its modifiers appendix, version 2.1.0:

- values are case-insensitive strings unless ``|cased``. ``*`` matches any run
  of characters and ``?`` exactly one. ``\\`` escapes ``*``, ``?`` and itself,
  and is a plain backslash before any other character or at the end;
- a list of values is an OR (an AND with ``|all``), a map is an AND, a list of
  maps is an OR, and a list of plain values without a field is a keyword search
  of the whole event (here the ``RawEvent`` column, as a substring);
- ``''`` is an empty value and ``null`` a missing field;
- ``|re`` is a regular expression found anywhere in the value, case-sensitive
  unless ``i``; ``m`` and ``s`` are the multi-line and dot-all flags;
- numbers compare as numbers; a text value is a number when it is decimal text.

Case folding lower-cases character by character (a character whose lower case
is longer than one character, such as U+0130, is left as it is), which is what
SQL ``lower()`` does.
"""

from __future__ import annotations

import base64
import fnmatch
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from proxyhunt.schema import column_for_field

ANY = object()  # the * wildcard
ONE = object()  # the ? wildcard

DASHES = "-/\u2013\u2014\u2015"
DECIMAL_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


class UnsupportedRule(ValueError):
    """The rule uses something that this matcher does not model."""


def fold(text: str) -> str:
    """Lower-case ``text`` one character at a time."""
    return "".join(character.lower() if len(character.lower()) == 1 else character for character in text)


def parse_string(text: str) -> list[Any]:
    """Split a Sigma string value into characters and the ANY and ONE wildcards, resolving escapes."""
    tokens: list[Any] = []
    index = 0
    while index < len(text):
        character = text[index]
        following = text[index + 1] if index + 1 < len(text) else None
        if character == "\\" and following in ("*", "?", "\\"):
            tokens.append(following)
            index += 2
            continue
        if character == "*":
            tokens.append(ANY)
        elif character == "?":
            tokens.append(ONE)
        else:
            tokens.append(character)
        index += 1
    return tokens


def tokens_to_regex(tokens: list[Any], fold_case: bool) -> re.Pattern[str]:
    parts = []
    for token in tokens:
        if token is ANY:
            parts.append(".*")
        elif token is ONE:
            parts.append(".")
        else:
            parts.append(re.escape(fold(token) if fold_case else token))
    return re.compile("".join(parts), re.DOTALL)


# Values after the modifiers have been applied.


@dataclass
class StringValue:
    tokens: list[Any]
    cased: bool = False
    windash: bool = False


@dataclass
class RegexValue:
    pattern: str
    flags: int = 0


@dataclass
class NumberValue:
    number: float
    operator: str = "=="


@dataclass
class CidrValue:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class ExistsValue:
    exists: bool


@dataclass
class FieldRefValue:
    field: str
    starts_with: bool = False
    ends_with: bool = False


@dataclass
class TimePartValue:
    """A part of a timestamp; ``week`` is the ISO 8601 week."""

    part: str
    number: int


@dataclass
class NullValue:
    pass


@dataclass
class BoolValue:
    value: bool


@dataclass
class Plain:
    """A string value before a type modifier has parsed it: the raw text, or bytes after an encoding modifier."""

    text: str | bytes


def _plain_text(value: Any) -> str | bytes:
    if isinstance(value, Plain):
        return value.text
    if isinstance(value, StringValue):
        if any(token is ANY or token is ONE for token in value.tokens):
            raise UnsupportedRule("encoding a value with wildcards")
        return "".join(value.tokens)
    raise UnsupportedRule(f"encoding a {type(value).__name__}")


def _as_string(value: Any) -> StringValue:
    if isinstance(value, StringValue):
        return value
    if isinstance(value, Plain) and isinstance(value.text, bytes):
        # Encoded bytes compare as text of one character a byte.
        return StringValue(list(value.text.decode("latin-1")))
    if isinstance(value, Plain):
        return StringValue(parse_string(value.text))
    raise UnsupportedRule(f"string modifier on a {type(value).__name__}")


def _base64offset(data: bytes) -> list[Plain]:
    variants = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode()
        # Characters that mix bits of the unknown neighbouring bytes are dropped.
        start = {0: 0, 1: 2, 2: 3}[shift]
        remainder = (len(data) + shift) % 3
        end = {0: len(encoded), 1: len(encoded) - 3, 2: len(encoded) - 2}[remainder]
        variants.append(Plain(encoded[start:end]))
    return variants


@dataclass
class Item:
    """One field (or keyword) with its values after modifiers."""

    field: str | None
    values: list[Any]
    all_values: bool = False
    negated: bool = False


def _apply_modifiers(field_name: str | None, modifiers: list[str], raw: Any, lists: dict[str, list[str]]) -> Item:
    raw_values = raw if isinstance(raw, list) else [raw]
    item = Item(field_name, [])
    values: list[Any] = []
    for value in raw_values:
        if value is None:
            values.append(NullValue())
        elif isinstance(value, bool):
            values.append(BoolValue(value))
        elif isinstance(value, int | float):
            values.append(NumberValue(float(value)))
        else:
            values.append(Plain(str(value)))

    for modifier in modifiers:
        if modifier == "all":
            item.all_values = True
        elif modifier == "neq":
            item.negated = True
        elif modifier in ("contains", "startswith", "endswith"):
            updated = []
            for value in values:
                if isinstance(value, FieldRefValue):
                    starts = value.starts_with or modifier in ("contains", "startswith")
                    ends = value.ends_with or modifier in ("contains", "endswith")
                    updated.append(FieldRefValue(value.field, starts, ends))
                    continue
                string = _as_string(value)
                tokens = list(string.tokens)
                if modifier in ("contains", "endswith") and not (tokens and tokens[0] is ANY):
                    tokens.insert(0, ANY)
                if modifier in ("contains", "startswith") and not (tokens and tokens[-1] is ANY):
                    tokens.append(ANY)
                updated.append(StringValue(tokens, string.cased, string.windash))
            values = updated
        elif modifier == "cased":
            values = [StringValue(_as_string(value).tokens, True, _as_string(value).windash) for value in values]
        elif modifier == "windash":
            values = [StringValue(_as_string(value).tokens, _as_string(value).cased, True) for value in values]
        elif modifier in ("re", "i", "m", "s"):
            if modifier == "re":
                values = [RegexValue(_plain_text(value)) for value in values]
            else:
                flag = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[modifier]
                values = [RegexValue(value.pattern, value.flags | flag) for value in values]
        elif modifier in ("utf16le", "wide", "utf16be", "utf16"):
            codec = "utf-16-be" if modifier == "utf16be" else "utf-16-le"
            bom = b"\xff\xfe" if modifier == "utf16" else b""
            values = [Plain(bom + str(_plain_text(value)).encode(codec)) for value in values]
        elif modifier == "base64":
            values = [Plain(base64.b64encode(_bytes(_plain_text(value))).decode()) for value in values]
        elif modifier == "base64offset":
            values = [variant for value in values for variant in _base64offset(_bytes(_plain_text(value)))]
        elif modifier == "cidr":
            values = [CidrValue(ipaddress.ip_network(_plain_text(value), strict=False)) for value in values]
        elif modifier in ("gt", "gte", "lt", "lte"):
            operator = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[modifier]
            values = [NumberValue(value.number, operator) for value in values]
        elif modifier in ("minute", "hour", "day", "week", "month", "year"):
            values = [TimePartValue(modifier, int(value.number)) for value in values]
        elif modifier == "exists":
            values = [ExistsValue(value.value) for value in values]
        elif modifier == "fieldref":
            values = [FieldRefValue(str(_plain_text(value))) for value in values]
        elif modifier == "expand":
            values = [expanded for value in values for expanded in _expand(value, lists)]
        else:
            raise UnsupportedRule(f"modifier {modifier}")

    item.values = [_as_string(value) if isinstance(value, Plain) else value for value in values]
    return item


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def _expand(value: Any, lists: dict[str, list[str]]) -> list[Plain]:
    """Replace each ``%name%`` with each value of list ``name``; ``\\%`` is a plain percent sign."""
    texts = [""]
    for escaped, name, plain in re.findall(r"(\\%)|%([^%]+)%|([^%\\]+|\\|%)", str(_plain_text(value))):
        if name:
            values = lists.get(name)
            if not values:
                raise UnsupportedRule(f"placeholder {name} without values")
            texts = [text + entry for text in texts for entry in values]
        else:
            texts = [text + ("%" if escaped else plain) for text in texts]
    return [Plain(text) for text in texts]


# Matching one value against one event.


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and DECIMAL_NUMBER.fullmatch(value):
        return float(value)
    return None


def _unify_dashes(text: str) -> str:
    return "".join("-" if character in DASHES else character for character in text)


def match_value(event: dict[str, Any], column: str, value: Any) -> bool:
    """Decide whether the event's ``column`` matches one value."""
    actual = event.get(column)
    if isinstance(value, NullValue):
        return actual is None
    if isinstance(value, ExistsValue):
        return (actual is not None) == value.exists

    if actual is None:
        return False

    if isinstance(value, StringValue):
        text = _text(actual)
        tokens = value.tokens
        if value.windash:
            text = _unify_dashes(text)
            tokens = [_unify_dashes(token) if isinstance(token, str) else token for token in tokens]
        if not value.cased:
            text = fold(text)
        return tokens_to_regex(tokens, fold_case=not value.cased).fullmatch(text) is not None

    if isinstance(value, RegexValue):
        return re.search(value.pattern, _text(actual), value.flags) is not None

    if isinstance(value, NumberValue):
        number = _number(actual)
        if number is None:
            return False
        return {"==": number == value.number, ">": number > value.number, ">=": number >= value.number,
                "<": number < value.number, "<=": number <= value.number}[value.operator]

    if isinstance(value, TimePartValue):
        if not isinstance(actual, datetime):
            return False
        parts = {"minute": actual.minute, "hour": actual.hour, "day": actual.day, "week": actual.isocalendar().week,
                 "month": actual.month, "year": actual.year}
        return parts[value.part] == value.number

    if isinstance(value, BoolValue):
        return _text(actual).lower() == ("true" if value.value else "false")

    if isinstance(value, CidrValue):
        try:
            address = ipaddress.ip_address(_text(actual))
        except ValueError:
            return False
        return address.version == value.network.version and address in value.network

    if isinstance(value, FieldRefValue):
        other = event.get(column_for_field(value.field) or value.field)
        if other is None:
            return False
        left, right = fold(_text(actual)), fold(_text(other))
        if value.starts_with and value.ends_with:
            return right in left
        if value.starts_with:
            return left.startswith(right)
        if value.ends_with:
            return left.endswith(right)
        return left == right

    raise UnsupportedRule(f"value {value!r}")


def _keyword(value: Any) -> Any:
    """Return a keyword value as a substring search; a number searches for its text."""
    if isinstance(value, NumberValue) and value.operator == "==":
        number = int(value.number) if value.number.is_integer() else value.number
        value = StringValue(parse_string(str(number)))
    if isinstance(value, StringValue):
        return StringValue([ANY, *value.tokens, ANY], value.cased, value.windash)
    return value


def match_item(event: dict[str, Any], item: Item) -> bool:
    if item.field is None:
        column = "RawEvent"
        values = [_keyword(value) for value in item.values]
    else:
        column = column_for_field(item.field) or item.field
        values = item.values
    combine = all if item.all_values else any
    result = combine(match_value(event, column, value) for value in values)
    return not result if item.negated else result


# Search identifiers and the condition.


@dataclass
class Detection:
    """A search identifier: a map (AND of items), a list of maps (OR), or a keyword list."""

    kind: str
    items: list[Item] = field(default_factory=list)
    alternatives: list[Detection] = field(default_factory=list)

    def matches(self, event: dict[str, Any]) -> bool:
        if self.kind == "map":
            return all(match_item(event, item) for item in self.items)
        if self.kind == "maps":
            return any(alternative.matches(event) for alternative in self.alternatives)
        return all(match_item(event, item) for item in self.items)


def _parse_key(key: str) -> tuple[str | None, list[str]]:
    name, *modifiers = key.split("|")
    return (name or None), modifiers


def parse_detection(definition: Any, lists: dict[str, list[str]]) -> Detection:
    if isinstance(definition, dict):
        items = []
        for key, raw in definition.items():
            name, modifiers = _parse_key(str(key))
            items.append(_apply_modifiers(name, modifiers, raw, lists))
        return Detection("map", items)
    if isinstance(definition, list) and definition and all(isinstance(entry, dict) for entry in definition):
        return Detection("maps", alternatives=[parse_detection(entry, lists) for entry in definition])
    if isinstance(definition, list):
        return Detection("keywords", [_apply_modifiers(None, [], definition, lists)])
    return Detection("keywords", [_apply_modifiers(None, [], [definition], lists)])


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def evaluate_condition(condition: str, detections: dict[str, Detection], event: dict[str, Any]) -> bool:
    """Evaluate a condition: or < and < not < 'x of' < parentheses, from least to most binding."""
    tokens = _TOKEN.findall(condition)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def names_for(pattern: str) -> list[str]:
        if pattern == "them":
            return [name for name in detections if not name.startswith("_")]
        return [name for name in detections if fnmatch.fnmatchcase(name, pattern)]

    def parse_or() -> Callable[[], bool]:
        terms = [parse_and()]
        while peek() is not None and peek().lower() == "or":
            take()
            terms.append(parse_and())
        return lambda: any(term() for term in terms)

    def parse_and() -> Callable[[], bool]:
        terms = [parse_not()]
        while peek() is not None and peek().lower() == "and":
            take()
            terms.append(parse_not())
        return lambda: all(term() for term in terms)

    def parse_not() -> Callable[[], bool]:
        if peek() is not None and peek().lower() == "not":
            take()
            inner = parse_not()
            return lambda: not inner()
        return parse_atom()

    def parse_atom() -> Callable[[], bool]:
        token = take()
        if token == "(":
            inner = parse_or()
            if take() != ")":
                raise UnsupportedRule("unbalanced parentheses")
            return inner
        if token.lower() in ("1", "all") and peek() is not None and peek().lower() == "of":
            take()
            names = names_for(take())
            combine = any if token == "1" else all
            return lambda: combine(detections[name].matches(event) for name in names)
        return lambda: detections[token].matches(event)

    expression = parse_or()
    if position != len(tokens):
        raise UnsupportedRule(f"unexpected token {tokens[position]!r}")
    return expression()


def matches(detection: dict[str, Any], event: dict[str, Any], lists: dict[str, list[str]] | None = None) -> bool:
    """Decide whether ``event`` matches a rule's ``detection`` mapping (condition included)."""
    lists = lists or {}
    condition = detection["condition"]
    detections = {
        name: parse_detection(definition, lists) for name, definition in detection.items() if name != "condition"
    }
    conditions: Iterable[str] = condition if isinstance(condition, list) else [condition]
    return any(evaluate_condition(text, detections, event) for text in conditions)
