"""Leaf conversions shared by the query-language targets (KQL, SPL, ES|QL).

The pySigma backends for these languages approximate some Sigma values: the
Kusto backend turns a wildcard inside a value into several ``contains`` and
ignores ``|cased``, and others drop escapes next to wildcards. Each target
backend here keeps the pySigma class for the boolean structure (``and``,
``or``, ``not`` and grouping) and converts every field and value comparison
through this mixin. The mixin sorts the value with
``proxyhunt.export.values.classify`` and calls the target's method for the
exact operator.
"""

from __future__ import annotations

from typing import ClassVar

from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionValueExpression
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import SigmaRegularExpression, SigmaRegularExpressionFlag, SigmaString

from proxyhunt.export.fields import TargetField, target_field
from proxyhunt.export.values import StringMatch, classify, with_implied_wildcards

# Regular expression flags as inline flags, which RE2, PCRE and Java read alike.
REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


def inline_flags(regex: SigmaRegularExpression) -> str:
    """Return the ``(?ims)`` prefix for a Sigma regular expression's flags, or an empty string."""
    flags = "".join(REGEX_FLAGS[flag] for flag in sorted(regex.flags, key=lambda flag: flag.name) if flag in REGEX_FLAGS)
    return f"(?{flags})" if flags else ""


class ExactMatchMixin:
    """Field and value comparisons with Sigma's exact meaning, for a pySigma TextQueryBackend.

    A subclass sets ``target_name`` and ``target_fields`` and implements
    ``match_string``, ``match_regex`` and ``match_keyword``. Fields reach these
    methods as WebSession column names, because the backend's pipeline maps
    Sigma proxy fields to columns first.
    """

    target_name: ClassVar[str]
    target_fields: ClassVar[dict[str, TargetField]]

    def field_of(self, column: str) -> TargetField:
        """Return the target's field for a column, or raise naming what is missing."""
        return target_field(self.target_fields, column, self.target_name)

    def quote_target_field(self, field: TargetField) -> str:
        """Return the field as the query names it; subclasses quote names that need it."""
        return field.name or field.column

    def escape_and_quote_field(self, field_name: str) -> str:
        return self.quote_target_field(self.field_of(field_name))

    def match_string(self, field: str, match: StringMatch, cased: bool) -> str:
        raise NotImplementedError

    def match_regex(self, field: str, regex: SigmaRegularExpression) -> str:
        raise NotImplementedError

    def match_keyword(self, match: StringMatch, cased: bool) -> str:
        raise NotImplementedError

    def convert_condition_field_eq_val_str(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return self.match_string(self.escape_and_quote_field(cond.field), classify(cond.value), cased=False)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self.match_string(self.escape_and_quote_field(cond.field), classify(cond.value), cased=True)

    def convert_condition_field_eq_val_re(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return self.match_regex(self.escape_and_quote_field(cond.field), cond.value)

    def convert_condition_field_eq_val_re_contains(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self.convert_condition_field_eq_val_re(cond, state)

    def convert_condition_val_str(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        value = cond.value
        if not isinstance(value, SigmaString):
            raise SigmaFeatureNotSupportedByBackendError(f"keyword value {value!r} is not a string")
        return self.match_keyword(classify(with_implied_wildcards(value)), cased=False)

    def convert_condition_val_num(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        return self.match_keyword(classify(with_implied_wildcards(SigmaString(str(cond.value.number)))), cased=False)

    def convert_condition_val_re(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        raise SigmaFeatureNotSupportedByBackendError(
            f"{self.target_name} has no regular expression search over whole events; "
            "give the regular expression a field"
        )
