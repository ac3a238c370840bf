"""Microsoft Sentinel ASIM specifics: parser parameters and sources whose parser leaves fields empty.

``_Im_WebSession`` takes filtering parameters that each source parser applies
before it parses, which is much cheaper in Sentinel than a ``where`` after the
union of all parsers. The user agent and URL parameters filter with
``has_any``, which matches whole terms (runs of ASCII letters and digits). A
term is therefore pushed into the call only when every value that the rule
matches must contain it as a whole term. The exact ``where`` clause always
follows the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionItem, ConditionOR
from sigma.rule import SigmaRule
from sigma.types import SigmaNumber, SigmaString

from proxyhunt.backends.pipeline import column_for_rule_field
from proxyhunt.export.kql import ASIM_PARSER, kql_string
from proxyhunt.export.values import MatchKind, classify

# WebSession column -> the _Im_WebSession parameter that filters it: with has_any
# for the two text columns, and with in for the status code, which ASIM parsers
# put into EventResultDetails as text.
PARSER_PARAMETERS = {
    "HttpUserAgent": "httpuseragent_has_any",
    "Url": "url_has_any",
    "HttpStatusCode": "eventresultdetails_in",
}

_TERM = re.compile(r"[A-Za-z0-9]+")


def whole_term(kind: MatchKind, text: str) -> str | None:
    """Return the longest term that every value matched by (kind, text) contains as a whole term, or None.

    A run of letters and digits is a whole term of the matched value when
    both of its ends are fixed. An end is fixed by a non-alphanumeric
    character inside ``text``, or by the start (EQUALS, STARTSWITH) or end
    (EQUALS, ENDSWITH) of the value itself.
    """
    start_fixed = kind in (MatchKind.EQUALS, MatchKind.STARTSWITH)
    end_fixed = kind in (MatchKind.EQUALS, MatchKind.ENDSWITH)
    terms = []
    for found in _TERM.finditer(text):
        left_ok = found.start() > 0 or start_fixed
        right_ok = found.end() < len(text) or end_fixed
        if left_ok and right_ok:
            terms.append(found.group())
    return max(terms, key=len) if terms else None


def implied_terms(node: ConditionItem, rule: SigmaRule) -> dict[str, set[str]]:
    """Return, per column, terms (or status codes) of which every event the condition matches has at least one."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        column = column_for_rule_field(rule.logsource, node.field) if node.field else None
        if column == "HttpStatusCode" and isinstance(node.value, SigmaNumber):
            number = node.value.number
            return {column: {str(number)}} if isinstance(number, int) else {}
        if column not in ("HttpUserAgent", "Url") or not isinstance(node.value, SigmaString):
            return {}
        if node.value.contains_placeholder():
            # A placeholder's values are not known here (a let list or a watchlist).
            return {}
        match = classify(node.value)
        if match.kind is MatchKind.PATTERN:
            return {}
        term = whole_term(match.kind, match.text)
        return {column: {term}} if term else {}

    if isinstance(node, ConditionAND):
        merged: dict[str, set[str]] = {}
        for child in node.args:
            for column, terms in implied_terms(child, rule).items():
                if column not in merged or len(terms) < len(merged[column]):
                    merged[column] = terms
        return merged

    if isinstance(node, ConditionOR):
        children = [implied_terms(child, rule) for child in node.args]
        common = set.intersection(*(set(child) for child in children)) if children else set()
        return {column: set().union(*(child[column] for child in children)) for column in common}

    # A NOT, a keyword or any other item implies no term.
    return {}


@dataclass(frozen=True)
class ParserCall:
    """An ``_Im_WebSession(...)`` call with its time range and pushed-down filters."""

    query_period: str
    # Parameter name -> its values, such as httpuseragent_has_any -> ("rclone",).
    filters: dict[str, tuple[str, ...]]

    def __str__(self) -> str:
        arguments = [f"starttime=ago({self.query_period})", "endtime=now()"]
        for parameter, terms in self.filters.items():
            values = ", ".join(kql_string(term) for term in terms)
            arguments.append(f"{parameter}=dynamic([{values}])")
        return f"{ASIM_PARSER}({', '.join(arguments)})"


def parser_call(rule: SigmaRule, query_period: str) -> ParserCall:
    """Return the ASIM parser call for a rule: its time range and the terms its condition implies."""
    filters: dict[str, tuple[str, ...]] = {}
    for condition in rule.detection.parsed_condition:
        terms = implied_terms(condition.parsed, rule)
        for column, parameter in PARSER_PARAMETERS.items():
            if column in terms and len(rule.detection.parsed_condition) == 1:
                filters[parameter] = tuple(sorted(terms[column]))
    return ParserCall(query_period, filters)


@dataclass(frozen=True)
class SourceGap:
    """A log source whose Sentinel ASIM parser leaves some WebSession fields empty."""

    source: str
    parser: str
    empty_columns: frozenset[str]
    reason: str


# NOTE: only the gaps of the parsers listed here are known; other parsers may leave fields empty too.
ASIM_SOURCE_GAPS: tuple[SourceGap, ...] = (
    SourceGap(
        source="Squid Proxy (native access.log)",
        parser="ASimWebSessionSquidProxy",
        empty_columns=frozenset({"HttpUserAgent", "HttpReferrer", "HttpVersion", "SrcBytes", "HttpCookie"}),
        reason="Squid's native log format records no request headers and no request size",
    ),
)


def blind_sources(columns: frozenset[str]) -> list[str]:
    """Return a note for each known ASIM source on which a rule reading ``columns`` can never match.

    A rule is blind on a source when every column it reads is empty there.
    """
    notes = []
    for gap in ASIM_SOURCE_GAPS:
        if columns and columns <= gap.empty_columns:
            names = ", ".join(sorted(columns))
            notes.append(
                f"never matches events of {gap.source}: its ASIM parser {gap.parser} leaves {names} empty, "
                f"because {gap.reason}"
            )
    return notes
