"""The shape of a Sigma string value, shared by the query-language targets.

A Sigma string with wildcards only at its ends is a plain comparison (equals,
starts with, ends with, contains), which every query language has as an
operator. Any other wildcard needs a pattern. Sorting values into these shapes
once lets each target pick its own operator and keep escaped characters
(``\\*``, ``\\?``, a trailing ``\\``) as the literal text they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sigma.exceptions import SigmaValueError
from sigma.types import SigmaString, SpecialChars


class MatchKind(Enum):
    """The comparison that a Sigma string value makes with a field."""

    EQUALS = "equals"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    CONTAINS = "contains"
    PATTERN = "pattern"


@dataclass(frozen=True)
class StringMatch:
    """A Sigma string value sorted into a comparison.

    ``text`` is the literal text to compare with, free of wildcards and
    escapes, for every kind but PATTERN. A PATTERN keeps the Sigma value in
    ``value`` so that the target can build its own pattern or regular expression.
    """

    kind: MatchKind
    text: str
    value: SigmaString


def _is_multi(part: object) -> bool:
    return part is SpecialChars.WILDCARD_MULTI


def classify(value: SigmaString) -> StringMatch:
    """Sort a Sigma string into EQUALS, STARTSWITH, ENDSWITH, CONTAINS or PATTERN."""
    parts = list(value.s)
    for part in parts:
        if not isinstance(part, (str, SpecialChars)):
            # An unexpanded %placeholder% would otherwise vanish from the text.
            name = getattr(part, "name", part)
            raise SigmaValueError(f"placeholder %{name}% in '{value.original}' has no values; give them with --lists")
    leading = bool(parts) and _is_multi(parts[0])
    inner = parts[1:] if leading else parts
    trailing = bool(inner) and _is_multi(inner[-1])
    if trailing:
        inner = inner[:-1]

    if any(isinstance(part, SpecialChars) for part in inner):
        return StringMatch(MatchKind.PATTERN, "", value)

    text = "".join(part for part in inner if isinstance(part, str))
    if (leading or trailing) and not text:
        # A lone '*' matches any value that is present; targets test presence for it.
        return StringMatch(MatchKind.CONTAINS, "", value)
    if leading and trailing:
        kind = MatchKind.CONTAINS
    elif leading:
        kind = MatchKind.ENDSWITH
    elif trailing:
        kind = MatchKind.STARTSWITH
    else:
        kind = MatchKind.EQUALS
    return StringMatch(kind, text, value)


# Characters with a meaning in RE2, PCRE and Java regular expressions outside brackets.
_REGEX_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def regex_literal(text: str) -> str:
    """Return a regular expression that matches ``text`` literally.

    Only the characters that are special outside brackets are escaped, so
    spaces, ``-`` and ``/`` stay readable; RE2, PCRE and Java read the result alike.
    """
    return "".join("\\" + character if character in _REGEX_SPECIAL else character for character in text)


def anchored_regex(value: SigmaString, end_anchor: str = "$") -> str:
    """Return a regular expression that matches exactly the strings the Sigma value matches.

    The expression is anchored at both ends. ``*`` becomes ``.*`` and ``?``
    becomes ``.``; callers add the flag that lets ``.`` match a line break,
    because Sigma wildcards match any character. Literal text is escaped with
    ``regex_literal``.
    ``end_anchor`` is ``$`` for RE2, where it matches only at the end of the
    text, and ``\\z`` for PCRE, where ``$`` also matches before a final line break.
    """
    pieces = []
    for part in value.s:
        if part is SpecialChars.WILDCARD_MULTI:
            pieces.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            pieces.append(".")
        elif isinstance(part, str):
            pieces.append(regex_literal(part))
        else:
            raise ValueError(f"unsupported special part {part!r} in Sigma value '{value.original}'")
    return "^" + "".join(pieces) + end_anchor


def with_implied_wildcards(value: SigmaString) -> SigmaString:
    """Return a keyword value with ``*`` at both ends: a Sigma keyword matches anywhere in the event."""
    if not value.startswith(SpecialChars.WILDCARD_MULTI):
        value = SpecialChars.WILDCARD_MULTI + value
    if not value.endswith(SpecialChars.WILDCARD_MULTI):
        value = value + SpecialChars.WILDCARD_MULTI
    return value
