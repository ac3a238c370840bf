"""Elastic ES|QL over Elastic Common Schema (ECS) fields.

ES|QL's ``LIKE`` matches the whole value with ``*`` and ``?`` as wildcards and
``\\`` as escape, which is Sigma's own wildcard syntax, so Sigma strings keep
their meaning: ``TO_LOWER(field) LIKE "..."`` with a lower-cased pattern, or
``field LIKE "..."`` for ``|cased``. ES|QL is three-valued and ``NOT`` over a
missing field must be true, so each comparison is guarded by
``IS NOT NULL``. ``|re`` becomes ``RLIKE``, whose Lucene regular expressions
match the whole value and lack some PCRE syntax; see ``lucene_regex``.
"""

from __future__ import annotations

from typing import ClassVar

from sigma.backends.elasticsearch import ESQLBackend as SigmaESQLBackend
from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionNOT
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import SigmaCompareExpression, SigmaRegularExpression, SigmaRegularExpressionFlag

from proxyhunt.backends.pipeline import websession_pipeline
from proxyhunt.export.base import ExactMatchMixin
from proxyhunt.export.fields import ECS_FIELDS, TargetField
from proxyhunt.export.values import MatchKind, StringMatch

DEFAULT_INDEX = "logs-*"

# ECS fields of the ip, long and date types, which string functions read through TO_STRING.
NON_KEYWORD_FIELDS = frozenset(
    {
        "@timestamp",
        "source.ip",
        "destination.ip",
        "source.port",
        "destination.port",
        "http.response.status_code",
        "http.request.bytes",
        "http.response.bytes",
    }
)

# PCRE classes that Lucene regular expressions lack, spelled as Lucene classes.
_CLASS_ESCAPES = {"d": "[0-9]", "w": "[A-Za-z0-9_]", "s": "[ \\t\\n\\r\\f\\v]"}
# Characters that are operators in Lucene's regular expressions but literal in PCRE.
_LUCENE_ONLY_OPERATORS = frozenset('@&<>~#"')


def esql_string(text: str) -> str:
    """Return ``text`` as a double-quoted ES|QL string literal, backslashes and quotes escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def like_pattern(match: StringMatch) -> str:
    """Return an ES|QL LIKE pattern (``*``, ``?``, ``\\`` escape) for a sorted Sigma value."""
    return match.value.convert(escape_char="\\", wildcard_multi="*", wildcard_single="?", add_escaped="\\")


def lucene_regex(pattern: str) -> str:
    """Translate a Sigma regular expression (PCRE syntax, found anywhere) to a Lucene one (whole value).

    ``\\d``, ``\\w`` and ``\\s`` outside brackets become classes, characters that
    only Lucene treats as operators are escaped, and the expression is wrapped
    in ``.*`` unless anchored. Raises SigmaFeatureNotSupportedByBackendError for
    syntax Lucene does not have: groups with ``(?``, backreferences, word
    boundaries, class escapes inside brackets, and anchors inside the expression.
    """
    # NOTE: Lucene's '.' also matches a line break, which PCRE's matches only with the s flag.
    anchored_start = pattern.startswith("^")
    anchored_end = pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[1:] if anchored_start else pattern
    if anchored_end:
        body = body[:-1]

    output: list[str] = []
    in_brackets = False
    index = 0
    while index < len(body):
        character = body[index]
        if character == "\\" and index + 1 < len(body):
            escaped = body[index + 1]
            if escaped in _CLASS_ESCAPES and not in_brackets:
                output.append(_CLASS_ESCAPES[escaped])
            elif escaped.isalnum():
                raise _unsupported_regex(pattern, f"the escape \\{escaped}")
            else:
                output.append("\\" + escaped)
            index += 2
            continue
        if character == "[":
            in_brackets = True
        elif character == "]":
            in_brackets = False
        elif character == "(" and body[index + 1 : index + 2] == "?":
            raise _unsupported_regex(pattern, "groups that start with (?")
        elif character in "^$" and not in_brackets:
            raise _unsupported_regex(pattern, f"the anchor {character} inside the expression")
        if character in _LUCENE_ONLY_OPERATORS:
            output.append("\\" + character)
        else:
            output.append(character)
        index += 1

    # The group keeps an alternation inside it: ".*a|b.*" would read as (.*a)|(b.*).
    translated = "(" + "".join(output) + ")"
    if not anchored_start:
        translated = ".*" + translated
    if not anchored_end:
        translated += ".*"
    return translated


def _unsupported_regex(pattern: str, what: str) -> SigmaFeatureNotSupportedByBackendError:
    return SigmaFeatureNotSupportedByBackendError(
        f"ES|QL RLIKE uses Lucene regular expressions, which have no {what} (in '{pattern}')"
    )


class ESQLBackend(ExactMatchMixin, SigmaESQLBackend):
    """Sigma to an ES|QL ``WHERE`` expression over ECS fields."""

    name: ClassVar[str] = "proxyhunt ES|QL backend (Elastic Common Schema)"
    identifier: ClassVar[str] = "proxyhunt-esql"
    target_name: ClassVar[str] = "ES|QL (ECS)"
    target_fields = ECS_FIELDS
    requires_pipeline: ClassVar[bool] = False
    backend_processing_pipeline = websession_pipeline()

    convert_or_as_in: ClassVar[bool] = False
    convert_and_as_in: ClassVar[bool] = False
    parenthesize: ClassVar[bool] = True
    field_null_expression: ClassVar[str] = "{field} IS NULL"
    field_exists_expression: ClassVar[str] = "{field} IS NOT NULL"
    field_not_exists_expression: ClassVar[str] = "{field} IS NULL"

    def quote_target_field(self, field: TargetField) -> str:
        name = field.name or field.column
        # Names that start with @ or hold other characters than letters, digits, _ and . need backquotes.
        if name.replace(".", "").replace("_", "").isalnum() and not name[0].isdigit():
            return name
        return "`" + name.replace("`", "``") + "`"

    def match_string(self, field: str, match: StringMatch, cased: bool) -> str:
        if match.kind is MatchKind.CONTAINS and not match.text:
            return f"{field} IS NOT NULL"
        guard = field
        if field.strip("`") in NON_KEYWORD_FIELDS:
            field = f"TO_STRING({field})"
        if match.kind is MatchKind.EQUALS:
            if cased:
                return f"({guard} IS NOT NULL AND {field} == {esql_string(match.text)})"
            return f"({guard} IS NOT NULL AND TO_LOWER({field}) == {esql_string(match.text.lower())})"
        pattern = like_pattern(match)
        if cased:
            return f"({guard} IS NOT NULL AND {field} LIKE {esql_string(pattern)})"
        return f"({guard} IS NOT NULL AND TO_LOWER({field}) LIKE {esql_string(pattern.lower())})"

    def match_regex(self, field: str, regex: SigmaRegularExpression) -> str:
        if regex.flags - {SigmaRegularExpressionFlag.DOTALL}:
            flags = ", ".join(sorted(flag.name.lower() for flag in regex.flags))
            raise SigmaFeatureNotSupportedByBackendError(f"ES|QL RLIKE has no regular expression flags ({flags})")
        return f"({field} IS NOT NULL AND {field} RLIKE {esql_string(lucene_regex(regex.regexp.original))})"

    def convert_condition_field_eq_val_cidr(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        field = self.escape_and_quote_field(cond.field)
        return f"({field} IS NOT NULL AND CIDR_MATCH({field}, {esql_string(str(cond.value.network))}))"

    def match_keyword(self, match: StringMatch, cased: bool) -> str:
        return self.match_string(self.escape_and_quote_field("RawEvent"), match, cased)

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str:
        return f"NOT ({self.convert_condition(cond.args[0], state)})"

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        number = f"TO_DOUBLE({self.escape_and_quote_field(cond.field)})"
        return f"({number} IS NOT NULL AND {number} == {float(cond.value.number)!r})"

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        comparison = cond.value
        assert isinstance(comparison, SigmaCompareExpression)
        number = f"TO_DOUBLE({self.escape_and_quote_field(cond.field)})"
        operator = self.compare_operators[comparison.op]
        return f"({number} IS NOT NULL AND {number} {operator} {float(comparison.number.number)!r})"

    def convert_condition_field_eq_val_bool(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        field = self.escape_and_quote_field(cond.field)
        literal = "true" if cond.value.boolean else "false"
        return f'({field} IS NOT NULL AND TO_LOWER(TO_STRING({field})) == "{literal}")'

    def convert_condition_field_eq_field(self, cond, state: ConversionState) -> str:
        left = self.escape_and_quote_field(cond.field)
        right = self.escape_and_quote_field(cond.value.field)
        return f"({left} IS NOT NULL AND {right} IS NOT NULL AND TO_LOWER(TO_STRING({left})) == TO_LOWER(TO_STRING({right})))"

    def finalize_query_default(self, rule, query: str, index: int, state: ConversionState) -> str:
        return query
