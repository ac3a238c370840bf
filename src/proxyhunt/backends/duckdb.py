"""A pySigma backend that turns Sigma rules into DuckDB SQL over the WebSession table.

The output of ``convert_rule`` is a boolean SQL expression for the ``WHERE``
clause of a query over ``websession``. Semantics follow the Sigma specification:

- strings match case-insensitively unless ``|cased``; ``*`` and ``?`` are
  wildcards, and every other character, ``%``, ``_`` and ``\\`` included, is
  matched literally (values become LIKE patterns with ``\\`` as escape);
- ``|re`` is a regular expression (RE2 syntax) that matches anywhere in the
  value, case-sensitively unless the ``i`` flag is set;
- numbers compare as numbers, whether a column stores them as numbers or text;
- a missing field (NULL) matches nothing but ``null``, and ``not`` over a
  missing field is true: every negated expression is wrapped in
  ``coalesce(..., false)`` so that SQL's three-valued logic gives the
  two-valued result that Sigma defines;
- keywords (values without a field) are substring matches over ``RawEvent``.

No value from a rule reaches SQL except as an escaped string literal.
"""

from __future__ import annotations

from typing import ClassVar

from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionItem, ConditionNOT, ConditionOR
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import (
    CompareOperators,
    SigmaCompareExpression,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from proxyhunt.backends.pipeline import websession_pipeline
from proxyhunt.formats.sql import quote_identifier, quote_literal
from proxyhunt.schema import COLUMN_NAMES, KEYWORD_COLUMN

_LIKE_ESCAPE = "\\"
_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


def like_pattern(value: SigmaString) -> str:
    """Return a SigmaString as a LIKE pattern with ``\\`` as the escape character."""
    return value.convert(
        escape_char=_LIKE_ESCAPE,
        wildcard_multi="%",
        wildcard_single="_",
        add_escaped=_LIKE_ESCAPE,
    )


class DuckDBBackend(TextQueryBackend):
    """Sigma to DuckDB SQL over the WebSession table."""

    name: ClassVar[str] = "proxyhunt DuckDB backend"
    formats: ClassVar[dict[str, str]] = {"default": "WHERE expression over the websession table"}
    requires_pipeline: ClassVar[bool] = False
    backend_processing_pipeline = websession_pipeline()

    precedence: ClassVar[tuple[type[ConditionItem], type[ConditionItem], type[ConditionItem]]] = (
        ConditionNOT,
        ConditionAND,
        ConditionOR,
    )
    group_expression: ClassVar[str] = "({expr})"
    token_separator: str = " "
    or_token: ClassVar[str] = "OR"
    and_token: ClassVar[str] = "AND"
    not_token: ClassVar[str] = "NOT"
    eq_token: ClassVar[str] = " = "
    str_quote: ClassVar[str] = "'"
    escape_char: ClassVar[str] = _LIKE_ESCAPE
    wildcard_multi: ClassVar[str] = "%"
    wildcard_single: ClassVar[str] = "_"
    add_escaped: ClassVar[str] = _LIKE_ESCAPE
    field_null_expression: ClassVar[str] = "{field} IS NULL"
    field_exists_expression: ClassVar[str] = "{field} IS NOT NULL"
    field_not_exists_expression: ClassVar[str] = "{field} IS NULL"
    compare_op_expression: ClassVar[str] = "TRY_CAST({field} AS DOUBLE) {operator} {value}"
    compare_operators: ClassVar[dict[CompareOperators, str]] = {
        CompareOperators.LT: "<",
        CompareOperators.LTE: "<=",
        CompareOperators.GT: ">",
        CompareOperators.GTE: ">=",
    }
    # Lists stay ORs of single comparisons: an IN list would lose the LIKE semantics.
    convert_or_as_in: ClassVar[bool] = False
    convert_and_as_in: ClassVar[bool] = False

    def escape_and_quote_field(self, field_name: str) -> str:
        """Return the quoted WebSession column; reject a field that has none."""
        if field_name not in COLUMN_NAMES:
            raise SigmaFeatureNotSupportedByBackendError(
                f"field '{field_name}' is not a Sigma proxy field or a WebSession column"
            )
        return quote_identifier(field_name)

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str:
        expression = self.convert_condition(cond.args[0], state)
        return f"NOT coalesce({expression}, false)"

    def convert_condition_field_eq_val_str(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return self._string_match(self.escape_and_quote_field(cond.field), cond.value, cased=False)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self._string_match(self.escape_and_quote_field(cond.field), cond.value, cased=True)

    def _string_match(self, column: str, value: SigmaString, cased: bool) -> str:
        text = f"CAST({column} AS VARCHAR)"
        if not value.contains_special():
            plain = quote_literal(str(value.convert(escape_char=None, wildcard_multi=None, wildcard_single=None)))
            if cased:
                return f"{text} = {plain}"
            return f"lower({text}) = lower({plain})"

        pattern = quote_literal(like_pattern(value))
        operator = "LIKE" if cased else "ILIKE"
        return f"{text} {operator} {pattern} ESCAPE '{_LIKE_ESCAPE}'"

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        number = cond.value
        assert isinstance(number, SigmaNumber)
        return f"TRY_CAST({self.escape_and_quote_field(cond.field)} AS DOUBLE) = {float(number.number)!r}"

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        comparison = cond.value
        assert isinstance(comparison, SigmaCompareExpression)
        return self.compare_op_expression.format(
            field=self.escape_and_quote_field(cond.field),
            operator=self.compare_operators[comparison.op],
            value=repr(float(comparison.number.number)),
        )

    def convert_condition_field_eq_val_bool(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        literal = "true" if cond.value.boolean else "false"
        return f"lower(CAST({self.escape_and_quote_field(cond.field)} AS VARCHAR)) = '{literal}'"

    def _regex(self, column: str, regex: SigmaRegularExpression) -> str:
        flags = "".join(_REGEX_FLAGS[flag] for flag in regex.flags if flag in _REGEX_FLAGS)
        prefix = f"(?{flags})" if flags else ""
        return f"regexp_matches(CAST({column} AS VARCHAR), {quote_literal(prefix + regex.regexp.original)})"

    def convert_condition_field_eq_val_re(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return self._regex(self.escape_and_quote_field(cond.field), cond.value)

    def convert_condition_field_eq_val_re_contains(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self._regex(self.escape_and_quote_field(cond.field), cond.value)

    def convert_condition_val_str(self, cond, state: ConversionState) -> str:
        value = cond.value
        if not value.startswith(SpecialChars.WILDCARD_MULTI):
            value = SpecialChars.WILDCARD_MULTI + value
        if not value.endswith(SpecialChars.WILDCARD_MULTI):
            value = value + SpecialChars.WILDCARD_MULTI
        return self._string_match(quote_identifier(KEYWORD_COLUMN), value, cased=False)

    def convert_condition_val_num(self, cond, state: ConversionState) -> str:
        value = SigmaString(str(cond.value.number))
        return self._string_match(
            quote_identifier(KEYWORD_COLUMN),
            SpecialChars.WILDCARD_MULTI + value + SpecialChars.WILDCARD_MULTI,
            cased=False,
        )

    def convert_condition_val_re(self, cond, state: ConversionState) -> str:
        return self._regex(quote_identifier(KEYWORD_COLUMN), cond.value)

    def convert_condition_field_eq_field(self, cond, state: ConversionState) -> str:
        left = self.escape_and_quote_field(cond.field)
        right = self.escape_and_quote_field(cond.value.field)
        return f"lower(CAST({left} AS VARCHAR)) = lower(CAST({right} AS VARCHAR))"

    def finalize_query_default(self, rule, query: str, index: int, state: ConversionState) -> str:
        return f"coalesce({query}, false)"
