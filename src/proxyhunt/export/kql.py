"""KQL for Microsoft Sentinel over the ASIM WebSession schema (``imWebSession``).

Sigma semantics in KQL:

- a value without wildcards in the middle uses ``=~``, ``startswith``,
  ``endswith`` or ``contains``, which ignore case, or their ``==`` and ``_cs``
  forms for ``|cased``. Any other wildcard becomes ``matches regex`` with an
  anchored RE2 expression;
- keywords search every column with ``* contains``, never ``has``: ``has``
  matches whole terms only, and a Sigma keyword matches any substring;
- KQL strings are never null, so a missing field and an empty one are the
  same: ``isempty()`` is true for both, and ``field: null`` matches an empty
  value too;
- numbers are null when a field is missing, and ``not`` over null is not
  true, so each number comparison is guarded by ``isnotnull()``;
- ``|cidr`` uses ``ipv4_is_in_range()`` or ``ipv6_is_in_range()``, which
  compare addresses as numbers, so every spelling of an IPv6 address matches;
- UrlPath, UrlQuery and UrlExtension are not ASIM fields, so the query derives
  them from Url with ``extend``, as the local loader derives its columns.
"""

from __future__ import annotations

from typing import ClassVar

from sigma.backends.kusto import KustoBackend
from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionOR
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import SigmaCasedString, SigmaCompareExpression, SigmaRegularExpression, SigmaString

from proxyhunt.backends.pipeline import websession_pipeline
from proxyhunt.export.base import ExactMatchMixin, inline_flags
from proxyhunt.export.fields import (
    ASIM_FIELDS,
    EXTENSION_REGEX,
    PATH_OF_ABSOLUTE_REGEX,
    PATH_OF_ORIGIN_FORM_REGEX,
    QUERY_REGEX,
    SCHEME_REGEX,
)
from proxyhunt.export.values import MatchKind, StringMatch, anchored_regex, classify

ASIM_TABLE = "imWebSession"
ASIM_PARSER = "_Im_WebSession"

# ASIM WebSession fields of a numeric type. HttpStatusCode is not among them:
# ASIM makes it an alias of EventResultDetails, which is a string.
ASIM_NUMERIC_FIELDS = frozenset({"SrcPortNumber", "DstPortNumber", "SrcBytes", "DstBytes"})

_OPERATORS = {
    MatchKind.STARTSWITH: "startswith",
    MatchKind.ENDSWITH: "endswith",
    MatchKind.CONTAINS: "contains",
}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def kql_string(text: str) -> str:
    """Return ``text`` as a double-quoted KQL string literal, backslashes and quotes escaped."""
    return '"' + "".join(_ESCAPES.get(character, character) for character in text) + '"'


# Derived columns, in the order their definitions depend on each other.
DERIVED_COLUMNS: dict[str, str] = {
    "UrlPath": (
        f"case(Url matches regex {kql_string(SCHEME_REGEX)}, extract({kql_string(PATH_OF_ABSOLUTE_REGEX)}, 1, Url), "
        f'Url startswith "/" or Url startswith "*", extract({kql_string(PATH_OF_ORIGIN_FORM_REGEX)}, 1, Url), "")'
    ),
    "UrlQuery": (
        f'iff(Url matches regex {kql_string(SCHEME_REGEX)} or Url startswith "/", '
        f'extract({kql_string(QUERY_REGEX)}, 1, Url), "")'
    ),
    "UrlExtension": f"extract({kql_string(EXTENSION_REGEX)}, 1, UrlPath)",
}


def derived_columns_needed(columns: set[str]) -> list[str]:
    """Return the derived columns a query must ``extend``, with the ones they depend on, in order."""
    needed = set(columns)
    if "UrlExtension" in needed:
        needed.add("UrlPath")
    return [column for column in DERIVED_COLUMNS if column in needed]


def extend_clause(columns: list[str]) -> str:
    """Return the ``| extend`` lines that define the derived columns, or an empty string.

    Each column gets its own line, because a column that one ``extend``
    defines cannot be read in that same ``extend`` (UrlExtension reads UrlPath).
    """
    return "\n".join(f"| extend {column} = {DERIVED_COLUMNS[column]}" for column in columns)


class KQLBackend(ExactMatchMixin, KustoBackend):
    """Sigma to a KQL ``where`` expression over the ASIM WebSession schema."""

    name: ClassVar[str] = "proxyhunt KQL backend (Microsoft Sentinel ASIM)"
    identifier: ClassVar[str] = "proxyhunt-kql"
    target_name: ClassVar[str] = "KQL (ASIM WebSession)"
    target_fields = ASIM_FIELDS
    backend_processing_pipeline = websession_pipeline()

    convert_and_as_in: ClassVar[bool] = False
    in_expressions_allow_wildcards: ClassVar[bool] = False
    field_null_expression: ClassVar[str] = "isempty({field})"

    def decide_convert_condition_as_in_expression(self, cond: ConditionOR | ConditionAND, state: ConversionState) -> bool:
        """Use ``in~`` for an OR of plain strings of one field, all cased or all not."""
        if not super().decide_convert_condition_as_in_expression(cond, state):
            return False
        values = [arg.value for arg in cond.args]
        if not all(isinstance(value, SigmaString) for value in values):
            return False
        cased = {isinstance(value, SigmaCasedString) for value in values}
        return len(cased) == 1 and len(values) > 1

    def convert_condition_as_in_expression(self, cond: ConditionOR | ConditionAND, state: ConversionState) -> str:
        first = cond.args[0]
        assert isinstance(first, ConditionFieldEqualsValueExpression)
        operator = "in" if isinstance(first.value, SigmaCasedString) else "in~"
        values = ", ".join(kql_string(classify(arg.value).text) for arg in cond.args)
        return f"{self.escape_and_quote_field(first.field)} {operator} ({values})"

    def match_string(self, field: str, match: StringMatch, cased: bool) -> str:
        if match.kind is MatchKind.PATTERN:
            flags = "(?s)" if cased else "(?is)"
            return f"{field} matches regex {kql_string(flags + anchored_regex(match.value))}"
        if match.kind is MatchKind.EQUALS:
            return f"{field} {'==' if cased else '=~'} {kql_string(match.text)}"
        if match.kind is MatchKind.CONTAINS and not match.text:
            # A lone '*' matches any value that is present.
            return f"isnotempty({field})"
        operator = _OPERATORS[match.kind] + ("_cs" if cased else "")
        return f"{field} {operator} {kql_string(match.text)}"

    def match_regex(self, field: str, regex: SigmaRegularExpression) -> str:
        return f"{field} matches regex {kql_string(inline_flags(regex) + regex.regexp.original)}"

    def match_keyword(self, match: StringMatch, cased: bool) -> str:
        if match.kind is not MatchKind.CONTAINS:
            # NOTE: KQL has no regular expression over every column, so a keyword
            # with a wildcard inside it cannot be expressed.
            raise self._unsupported("a keyword with a wildcard inside it")
        return f"* {'contains_cs' if cased else 'contains'} {kql_string(match.text)}"

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        number = self._number(cond.field)
        return f"(isnotnull({number}) and {number} == {cond.value.number!r})"

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        comparison = cond.value
        assert isinstance(comparison, SigmaCompareExpression)
        operator = self.compare_operators[comparison.op]
        number = self._number(cond.field)
        return f"(isnotnull({number}) and {number} {operator} {comparison.number.number!r})"

    def convert_condition_field_eq_val_bool(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        literal = "true" if cond.value.boolean else "false"
        return f'tolower(tostring({self.escape_and_quote_field(cond.field)})) == "{literal}"'

    def convert_condition_field_eq_field(self, cond, state: ConversionState) -> str:
        left = self.escape_and_quote_field(cond.field)
        right = self.escape_and_quote_field(cond.value.field)
        return f"tostring({left}) =~ tostring({right})"

    def convert_condition_field_eq_val_cidr(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        """Compare the address with the network exactly, for any spelling of an IPv6 address.

        ipv4_is_in_range() and ipv6_is_in_range() return null for text that is
        not an address of their family, so coalesce() makes the comparison false
        there, and ``not`` over it true.
        """
        network = cond.value.network
        function = "ipv4_is_in_range" if network.version == 4 else "ipv6_is_in_range"
        field = self.escape_and_quote_field(cond.field)
        return f"coalesce({function}({field}, {kql_string(str(network))}), false)"

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        return kql_string(classify(s).text)

    def finalize_query_default(self, rule, query: str, index: int, state: ConversionState) -> str:
        return query

    def _number(self, column: str) -> str:
        """Return the field as a number; a comparison with it is guarded by isnotnull() to stay two-valued.

        A number in a text field (HttpStatusCode included) compares as a
        number, as in the local engine, and text that is no number is null.
        """
        field = self.escape_and_quote_field(column)
        return field if column in ASIM_NUMERIC_FIELDS else f"todouble({field})"

    def _unsupported(self, what: str) -> SigmaFeatureNotSupportedByBackendError:
        return SigmaFeatureNotSupportedByBackendError(f"{self.target_name} cannot express {what}")
