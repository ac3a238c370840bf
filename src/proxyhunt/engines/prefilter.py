"""Literals that every event a rule set matches must contain, for skipping lines before parsing.

Parsing is the slow part of a hunt, and a rule such as the rclone one
matches a small share of the lines. Like ripgrep, the loader can first look for a literal in the
raw bytes and parse only the lines that contain one. That is exact only when
every event the rules can match contains one of the literals in its raw line.
This module therefore derives literals from a rule's condition tree, and it
returns None whenever it cannot prove that:

- an AND needs the literals of any one of its operands, an OR those of all of
  them, and a NOT or a non-string test (numbers, regular expressions, cidr,
  null, exists, field references) proves nothing;
- a literal is the longest ASCII part of a Sigma string, between wildcards
  or placeholders, lowercased. Any part of a string that a value must
  contain is itself contained, so ``downloads.rclone.org`` gives itself and
  ``*.wasabisys.com`` gives ``.wasabisys.com``. Lowercasing raw bytes folds
  only ASCII, so the line prefilter also keeps every line with a non-ASCII
  character that DuckDB lowercases to an ASCII letter (U+0130 to ``i``,
  U+212A to ``k``; see ``proxyhunt.formats.prefilter.FOLDED_INTO_ASCII``);
- the field must be a column that the format copies from the raw line (its
  ``prefilter_columns``); ``RawEvent`` always is, for keyword searches.

Beyond the one set of literals that the block search looks for, a rule whose
condition is an AND requires the literals of each operand that proves some
(``rule_clauses``). A line that the search finds is parsed only when it
contains one literal of every such set for some rule. So a rule such as
``CONNECT`` to a URL ending in ``:22`` does not parse every combined-log
line whose time reads ``10:22``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import SigmaString

from proxyhunt.backends.pipeline import column_for_rule_field
from proxyhunt.formats.prefilter import without_longer
from proxyhunt.schema import KEYWORD_COLUMN

# Shorter literals would keep too many lines to be worth a separate scan.
MIN_LITERAL_LENGTH = 3
# The request methods of RFC 9110 and WebDAV, lowercased, and the share of lines
# that ``_expected_share`` assumes one of them is in (a rough estimate).
HTTP_METHODS = frozenset(
    {"get", "head", "post", "put", "delete", "connect", "options", "trace", "patch", "propfind", "mkcol", "move", "copy"}
)
COMMON_SHARE = 0.5
# Non-ASCII characters cannot be part of a literal: a raw line may spell them
# in another case or as escapes that a byte search does not fold.
_UNUSABLE = re.compile(r"[^\x00-\x7f]+")

Literals = frozenset[str]
# Sets of literals of which a line contains one literal of every set, the most selective set first.
Clauses = tuple[Literals, ...]


def rule_literals(rule: SigmaRule, columns: frozenset[str]) -> Literals | None:
    """Return literals of which each event the rule matches contains one, or None when none can be proven.

    ``columns`` are the WebSession columns whose values appear in the raw line.
    """
    literals: set[str] = set()
    for condition in rule.detection.parsed_condition:
        required = _required(condition.parse(), rule, columns | {KEYWORD_COLUMN})
        if required is None:
            return None
        literals |= required
    return without_longer(literals) or None


def rule_clauses(rule: SigmaRule, columns: frozenset[str]) -> Clauses | None:
    """Return the sets of literals of which each event the rule matches contains one of every set, or None when none can be proven.

    The first set is ``rule_literals``. A rule with several conditions
    matches when any of them does, so it gets that one set only.
    """
    conditions = rule.detection.parsed_condition
    if len(conditions) != 1:
        literals = rule_literals(rule, columns)
        return None if literals is None else (literals,)

    clauses = _clauses(conditions[0].parse(), rule, columns | {KEYWORD_COLUMN})
    if not clauses:
        return None
    # Sorting is stable, so among equally selective sets the first operand's comes first, as in rule_literals.
    distinct = dict.fromkeys(without_longer(set(clause)) for clause in clauses)
    return tuple(sorted(distinct, key=_expected_share))


def rule_set_clauses(rules: Iterable[SigmaRule], columns: frozenset[str]) -> list[Clauses] | None:
    """Return the ``rule_clauses`` of each rule, or None when one rule proves none (or there are no rules)."""
    found = []
    for rule in rules:
        clauses = rule_clauses(rule, columns)
        if clauses is None:
            return None
        found.append(clauses)
    return found or None


def rule_set_literals(rules: Iterable[SigmaRule], columns: frozenset[str]) -> Literals | None:
    """Return the union of the rules' literals, or None when one rule proves none (or there are no rules)."""
    literals: set[str] = set()
    for rule in rules:
        required = rule_literals(rule, columns)
        if required is None:
            return None
        literals |= required
    return without_longer(literals) or None


def _clauses(node, rule: SigmaRule, columns: frozenset[str]) -> list[Literals] | None:
    """Return the literal sets that ``node`` requires all of: those of each AND operand that proves some."""
    if isinstance(node, ConditionAND):
        found = [clause for arg in node.args for clause in (_clauses(arg, rule, columns) or [])]
        return found or None
    required = _required(node, rule, columns)
    return None if required is None else [required]


def _required(node, rule: SigmaRule, columns: frozenset[str]) -> Literals | None:
    if isinstance(node, ConditionAND):
        options = [_required(arg, rule, columns) for arg in node.args]
        proven = [option for option in options if option is not None]
        return min(proven, key=_expected_share, default=None)

    if isinstance(node, ConditionOR):
        literals: set[str] = set()
        for arg in node.args:
            required = _required(arg, rule, columns)
            if required is None:
                return None
            literals |= required
        return frozenset(literals)

    if isinstance(node, ConditionNOT):
        return None

    if isinstance(node, ConditionFieldEqualsValueExpression):
        column = column_for_rule_field(rule.logsource, node.field)
        if column not in columns:
            return None
        return _string_literal(node.value)

    if isinstance(node, ConditionValueExpression):
        return _string_literal(node.value)
    return None


def _expected_share(literals: Literals) -> float:
    """Estimate the share of lines that contain one of ``literals``; a longer literal is rarer.

    The estimate only ranks the operands of an AND: three long URL fragments
    keep fewer lines than ``get``, which occurs in almost every request. An
    HTTP method such as ``connect`` is counted as common whatever its length,
    because a few methods make up nearly all requests.
    """
    return sum(COMMON_SHARE if literal in HTTP_METHODS else 0.1 ** len(literal) for literal in literals)


def _string_literal(value) -> Literals | None:
    # Only a plain SigmaString is a substring test; its subclasses and other
    # value types (numbers, regular expressions, cidr, null) are not.
    if type(value) is not SigmaString and type(value).__name__ != "SigmaCasedString":
        return None
    runs: list[str] = []
    current = ""
    for part in value.s:
        if isinstance(part, str):
            current += part
            continue
        # A wildcard or a placeholder ends the run.
        runs.append(current)
        current = ""
    runs.append(current)

    candidates = [piece for run in runs for piece in _UNUSABLE.split(run.lower()) if len(piece) >= MIN_LITERAL_LENGTH]
    if not candidates:
        return None
    return frozenset({max(candidates, key=len)})
