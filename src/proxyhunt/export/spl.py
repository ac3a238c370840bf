"""Splunk SPL over the CIM Web data model.

The detection becomes one ``| where`` eval expression after
``| datamodel Web Web search``, because Splunk's search syntax cannot express
every Sigma value: it has no single-character wildcard, no escape for a
literal ``*`` and no case-sensitive match. In eval, every string comparison is
a PCRE ``match()``, ``(?i)`` unless ``|cased``, with literal text escaped, so
dots, backslashes and ``/../`` stay literal. Eval is three-valued, and
``NOT`` over a missing field must be true, so each comparison is guarded by
``isnotnull()`` and is never null itself.
"""

from __future__ import annotations


from typing import ClassVar

from sigma.backends.splunk import SplunkBackend
from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionItem, ConditionNOT, ConditionOR
from sigma.conversion.state import ConversionState
from sigma.types import SigmaCompareExpression, SigmaRegularExpression

from proxyhunt.backends.pipeline import websession_pipeline
from proxyhunt.export.base import ExactMatchMixin, inline_flags
from proxyhunt.export.fields import CIM_WEB_FIELDS, EXTENSION_REGEX, TargetField
from proxyhunt.export.values import MatchKind, StringMatch, anchored_regex, regex_literal

SPL_SOURCE = "| datamodel Web Web search"
_PCRE_END = r"\z"


def spl_string(text: str) -> str:
    """Return ``text`` as a double-quoted SPL eval string, backslashes and quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def spl_field(name: str) -> str:
    """Return a field name as eval reads it: single-quoted, because CIM names contain dots."""
    return "'" + name.replace("'", "\\'") + "'"


def regex_for(match: StringMatch, cased: bool) -> str:
    """Return the PCRE expression for a sorted Sigma value."""
    text = regex_literal(match.text)
    if match.kind is MatchKind.PATTERN:
        body = anchored_regex(match.value, end_anchor=_PCRE_END)
        flags = "(?s)" if cased else "(?is)"
        return flags + body
    body = {
        MatchKind.EQUALS: f"^{text}{_PCRE_END}",
        MatchKind.STARTSWITH: f"^{text}",
        MatchKind.ENDSWITH: f"{text}{_PCRE_END}",
        MatchKind.CONTAINS: text,
    }[match.kind]
    return body if cased else "(?i)" + body


# The extension of the last path segment, as the local loader derives UrlExtension.
URL_EXTENSION_EVAL = (
    f"| eval UrlExtension=if(match('Web.uri_path', {spl_string(EXTENSION_REGEX.replace('$', _PCRE_END))}), "
    f"replace('Web.uri_path', {spl_string('^.*' + EXTENSION_REGEX.replace('$', _PCRE_END))}, \"\\\\1\"), null())"
)


class SPLBackend(ExactMatchMixin, SplunkBackend):
    """Sigma to a Splunk eval expression over the CIM Web data model."""

    name: ClassVar[str] = "proxyhunt SPL backend (Splunk CIM Web)"
    identifier: ClassVar[str] = "proxyhunt-spl"
    target_name: ClassVar[str] = "SPL (CIM Web)"
    target_fields = CIM_WEB_FIELDS
    requires_pipeline: ClassVar[bool] = False
    backend_processing_pipeline = websession_pipeline()

    # Eval expressions, unlike search terms, bind AND before OR.
    precedence: ClassVar[tuple[type[ConditionItem], type[ConditionItem], type[ConditionItem]]] = (
        ConditionNOT,
        ConditionAND,
        ConditionOR,
    )
    parenthesize: ClassVar[bool] = True
    and_token: ClassVar[str] = "AND"
    or_token: ClassVar[str] = "OR"
    not_token: ClassVar[str] = "NOT"
    convert_or_as_in: ClassVar[bool] = False
    convert_and_as_in: ClassVar[bool] = False
    field_null_expression: ClassVar[str] = "isnull({field})"
    field_exists_expression: ClassVar[str] = "isnotnull({field})"
    field_not_exists_expression: ClassVar[str] = "isnull({field})"

    def quote_target_field(self, field: TargetField) -> str:
        return spl_field(field.name or field.column)

    def match_string(self, field: str, match: StringMatch, cased: bool) -> str:
        if match.kind is MatchKind.CONTAINS and not match.text:
            return f"isnotnull({field})"
        return f"(isnotnull({field}) AND match({field}, {spl_string(regex_for(match, cased))}))"

    def match_regex(self, field: str, regex: SigmaRegularExpression) -> str:
        pattern = inline_flags(regex) + regex.regexp.original
        return f"(isnotnull({field}) AND match({field}, {spl_string(pattern)}))"

    def match_keyword(self, match: StringMatch, cased: bool) -> str:
        return f"match(_raw, {spl_string(regex_for(match, cased))})"

    def convert_condition_field_eq_val_cidr(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        """Compare the address with the network exactly with ``cidrmatch()``, which reads IPv4 and IPv6."""
        field = self.escape_and_quote_field(cond.field)
        return f"(isnotnull({field}) AND cidrmatch({spl_string(str(cond.value.network))}, {field}))"

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str:
        return f"NOT ({self.convert_condition(cond.args[0], state)})"

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        number = f"tonumber({self.escape_and_quote_field(cond.field)})"
        return f"(isnotnull({number}) AND {number}=={cond.value.number!r})"

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        comparison = cond.value
        assert isinstance(comparison, SigmaCompareExpression)
        number = f"tonumber({self.escape_and_quote_field(cond.field)})"
        operator = self.compare_operators[comparison.op]
        return f"(isnotnull({number}) AND {number}{operator}{comparison.number.number!r})"

    def convert_condition_field_eq_val_bool(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        field = self.escape_and_quote_field(cond.field)
        literal = "true" if cond.value.boolean else "false"
        return f'(isnotnull({field}) AND lower({field})=="{literal}")'

    def convert_condition_field_eq_field(self, cond, state: ConversionState) -> str:
        left = self.escape_and_quote_field(cond.field)
        right = self.escape_and_quote_field(cond.value.field)
        return f"(isnotnull({left}) AND isnotnull({right}) AND lower({left})==lower({right}))"

    def finalize_query_default(self, rule, query: str, index: int, state: ConversionState) -> str:
        return query
