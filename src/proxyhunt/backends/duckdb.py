"""A pySigma backend that turns Sigma rules into DuckDB SQL over the WebSession table.

The output of ``convert_rule`` is a boolean SQL expression for the ``WHERE``
clause of a query over ``websession``. Semantics follow the Sigma specification:

- strings match case-insensitively unless ``|cased``, non-ASCII letters
  included: both sides go through ``lower()``; ``*`` and ``?`` are wildcards,
  and every other character, ``%``, ``_`` and ``\\`` included, is matched
  literally (values become LIKE patterns with ``\\`` as escape);
- ``|re`` is a regular expression (RE2 syntax) that matches anywhere in the
  value, case-sensitively unless the ``i`` flag is set;
- numbers compare as numbers, whether a column stores them as numbers or as
  decimal text;
- ``|cidr`` matches IPv4 and IPv6 address text exactly (see ``network``);
- a missing field (NULL) matches nothing but ``null``, and ``not`` over a
  missing field is true: every negated expression is wrapped in
  ``coalesce(..., false)`` so that SQL's three-valued logic gives the
  two-valued result that Sigma defines;
- keywords (values without a field) are substring matches over ``RawEvent``;
- a ``|expand`` placeholder that no processing pipeline replaced stops the
  conversion with an error that names it.

No value from a rule reaches SQL except as an escaped string literal.

SQL that differs between dialects sits in small methods (``text``,
``fold_case``, ``like``, ``regex_search``, ``regex_full_match``,
``unify_dashes``, ``number``, ``ipv6_hex``, ``timestamp_part``,
``string_literal``, ``quote_column``, ``text_contains``), so that a backend for
another SQL engine overrides only those.
"""

from __future__ import annotations

from typing import ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError, SigmaValueError
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from proxyhunt.backends.modifiers import WINDASH_CHARACTERS
from proxyhunt.backends.network import IPV4_OCTET, IPV6_TEXT, ipv4_network_regex, ipv6_network_regex
from proxyhunt.backends.pipeline import sql_pipeline
from proxyhunt.formats.sql import quote_identifier, quote_literal
from proxyhunt.rules.placeholders import WINDASH_PLACEHOLDER, UnresolvedPlaceholderError
from proxyhunt.schema import COLUMN_NAMES, KEYWORD_COLUMN

LIKE_ESCAPE = "\\"

_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}

# A decimal number as text: what a number in a rule matches in a text column.
DECIMAL_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"

_TIMESTAMP_PARTS = {
    TimestampPart.MINUTE: "minute",
    TimestampPart.HOUR: "hour",
    TimestampPart.DAY: "day",
    # ISO 8601 week of the year, 1 to 53.
    TimestampPart.WEEK: "week",
    TimestampPart.MONTH: "month",
    TimestampPart.YEAR: "year",
}


def like_pattern(value: SigmaString) -> str:
    """Return a SigmaString as a LIKE pattern with ``\\`` as the escape character.

    A windash placeholder becomes ``-``; any other placeholder raises ``UnresolvedPlaceholderError``.
    """
    value = resolve_windash(value)
    return value.convert(
        escape_char=LIKE_ESCAPE,
        wildcard_multi="%",
        wildcard_single="_",
        add_escaped=LIKE_ESCAPE,
    )


def has_windash(value: SigmaString) -> bool:
    """True when ``value`` came through the windash modifier, so that each of its dashes matches any dash character."""
    return any(isinstance(part, Placeholder) and part.name == WINDASH_PLACEHOLDER for part in value.s)


def resolve_windash(value: SigmaString) -> SigmaString:
    """Return ``value`` with each windash placeholder as ``-``, and raise ``UnresolvedPlaceholderError`` on any other."""
    parts = []
    for part in value.s:
        if isinstance(part, Placeholder):
            if part.name != WINDASH_PLACEHOLDER:
                raise UnresolvedPlaceholderError(part.name)
            part = "-"
        parts.append(part)
    resolved = SigmaString()
    resolved.s = parts
    return resolved._merge_strs()


class DuckDBBackend(TextQueryBackend):
    """Sigma to DuckDB SQL over the WebSession table."""

    name: ClassVar[str] = "proxyhunt DuckDB backend"
    formats: ClassVar[dict[str, str]] = {"default": "WHERE expression over the websession table"}
    requires_pipeline: ClassVar[bool] = False
    backend_processing_pipeline = sql_pipeline()

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
    escape_char: ClassVar[str] = LIKE_ESCAPE
    wildcard_multi: ClassVar[str] = "%"
    wildcard_single: ClassVar[str] = "_"
    add_escaped: ClassVar[str] = LIKE_ESCAPE
    field_null_expression: ClassVar[str] = "{field} IS NULL"
    field_exists_expression: ClassVar[str] = "{field} IS NOT NULL"
    field_not_exists_expression: ClassVar[str] = "{field} IS NULL"
    compare_operators: ClassVar[dict[CompareOperators, str]] = {
        CompareOperators.LT: "<",
        CompareOperators.LTE: "<=",
        CompareOperators.GT: ">",
        CompareOperators.GTE: ">=",
        CompareOperators.NEQ: "<>",
    }
    # Lists stay ORs of single comparisons: an IN list would lose the LIKE semantics.
    convert_or_as_in: ClassVar[bool] = False
    convert_and_as_in: ClassVar[bool] = False

    # Dialect: the SQL that another engine spells differently.

    def text(self, column: str) -> str:
        """Return SQL for a column's value as text."""
        return f"CAST({column} AS VARCHAR)"

    def fold_case(self, expression: str) -> str:
        """Return SQL that lower-cases a text expression, non-ASCII letters included."""
        return f"lower({expression})"

    def like(self, expression: str, pattern: str) -> str:
        """Return a LIKE match of ``expression`` against the SQL text ``pattern`` (``\\`` escapes)."""
        return f"{expression} LIKE {pattern} ESCAPE '{LIKE_ESCAPE}'"

    def regex_search(self, expression: str, regex: str) -> str:
        """Return SQL that is true when the regular expression ``regex`` (SQL text) matches anywhere in ``expression``."""
        return f"regexp_matches({expression}, {regex})"

    def regex_full_match(self, expression: str, regex: str) -> str:
        """Return SQL that is true when the regular expression ``regex`` (SQL text) matches all of ``expression``."""
        return f"regexp_full_match({expression}, {regex})"

    def string_literal(self, text: str) -> str:
        """Return ``text`` as an SQL string literal."""
        return quote_literal(text)

    def quote_column(self, name: str) -> str:
        """Return a column name as a quoted SQL identifier."""
        return quote_identifier(name)

    def text_contains(self, text: str, part: str, starts_with: bool, ends_with: bool) -> str:
        """Return SQL that is true when text expression ``part`` is all of, the start of, the end of, or inside ``text``."""
        if starts_with and ends_with:
            return f"contains({text}, {part})"
        if starts_with:
            return f"starts_with({text}, {part})"
        if ends_with:
            return f"ends_with({text}, {part})"
        return f"{text} = {part}"

    def unify_dashes(self, expression: str) -> str:
        """Return SQL that replaces each windash character in a text expression with ``-``."""
        dashes = WINDASH_CHARACTERS.replace("-", "")
        return f"translate({expression}, {self.string_literal(dashes)}, {self.string_literal('-' * len(dashes))})"

    def number(self, column: str) -> str:
        """Return SQL for a column's value as a DOUBLE: its number, or NULL when it is not decimal number text.

        Going through text gives the same result for INTEGER, BIGINT, DOUBLE
        and VARCHAR columns, so a status code matches whether a reader stored it
        as a number or as text.
        """
        # NOTE: DOUBLE holds integers exactly only up to 2**53, far above any status code or byte count in a log.
        text = self.text(column)
        return f"TRY_CAST(CASE WHEN {self.regex_full_match(text, self.string_literal(DECIMAL_NUMBER))} THEN {text} END AS DOUBLE)"

    def timestamp_part(self, column: str, part: TimestampPart) -> str:
        """Return SQL for one part (minute, hour, day, ISO week, month, year) of a timestamp column."""
        return f"date_part('{_TIMESTAMP_PARTS[part]}', TRY_CAST({column} AS TIMESTAMP))"

    def ipv6_hex(self, text: str) -> str:
        """Return SQL for the IPv6 address in the lower-case text ``text`` as 32 hex digits, NULL when it is not one.

        The address is expanded as RFC 4291 section 2.2 writes it: ``::`` stands
        for one or more groups of zeros, and a dotted IPv4 tail for the last two
        groups. A zone index (``%eth0``) is dropped, as Python's ``ipaddress`` does.
        """
        octet = IPV4_OCTET
        tail = self.string_literal(rf"(.*:)({octet})\.({octet})\.({octet})\.({octet})")
        hex_groups = (
            "CASE "
            f"WHEN {self.regex_full_match('t', tail)} THEN regexp_extract(t, '^(.*:)', 1) || printf('%x:%x', "
            f"CAST(regexp_extract(t, {tail}, 2) AS INTEGER) * 256 + CAST(regexp_extract(t, {tail}, 3) AS INTEGER), "
            f"CAST(regexp_extract(t, {tail}, 4) AS INTEGER) * 256 + CAST(regexp_extract(t, {tail}, 5) AS INTEGER)) "
            "WHEN contains(t, '.') THEN NULL ELSE t END"
        )
        head = "CASE WHEN p[1] = '' THEN [] ELSE string_split(p[1], ':') END"
        rest = "CASE WHEN len(p) = 2 AND p[2] <> '' THEN string_split(p[2], ':') ELSE [] END"
        groups = (
            "CASE WHEN len(p) = 1 THEN h "
            "WHEN len(p) = 2 AND len(h) + len(r) <= 7 "
            "THEN list_concat(h, list_transform(range(8 - len(h) - len(r)), lambda i: '0'), r) END"
        )
        canonical = (
            "CASE WHEN len(g) = 8 AND list_bool_and(list_transform(g, lambda x: regexp_full_match(x, '[0-9a-f]{1,4}'))) "
            "THEN array_to_string(list_transform(g, lambda x: lpad(x, 4, '0')), '') END"
        )
        expand = (
            f"list_transform([string_split({hex_groups}, '::')], lambda p: "
            f"list_transform([{head}], lambda h: list_transform([{rest}], lambda r: "
            f"list_transform([{groups}], lambda g: {canonical})[1])[1])[1])[1]"
        )
        valid_text = self.regex_full_match("t", self.string_literal(IPV6_TEXT))
        # A zone index (fe80::1%eth0) names an interface and leaves the address as it is.
        zone = self.regex_full_match("z", self.string_literal("[^%]+%[^%/]+"))
        address = f"CASE WHEN {zone} THEN split_part(z, '%', 1) ELSE z END"
        return (
            f"list_transform([{text}], lambda z: list_transform([{address}], "
            f"lambda t: CASE WHEN {valid_text} THEN {expand} END)[1])[1]"
        )

    # Fields and logic

    def escape_and_quote_field(self, field_name: str) -> str:
        """Return the quoted WebSession column; reject a field that has none."""
        if field_name not in COLUMN_NAMES:
            raise SigmaFeatureNotSupportedByBackendError(
                f"field '{field_name}' is not a Sigma proxy field or a WebSession column"
            )
        return self.quote_column(field_name)

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str:
        expression = self.convert_condition(cond.args[0], state)
        return f"NOT coalesce({expression}, false)"

    def finalize_query_default(self, rule, query: str, index: int, state: ConversionState) -> str:
        return f"coalesce({query}, false)"

    # Strings

    def convert_condition_field_eq_val_str(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return self.string_match(self.escape_and_quote_field(cond.field), cond.value, cased=False)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self.string_match(self.escape_and_quote_field(cond.field), cond.value, cased=True)

    def string_match(self, column: str, value: SigmaString, cased: bool) -> str:
        """Return SQL that matches a column against a Sigma string: wildcards, escapes and case as Sigma defines them."""
        # The column is lower-cased again for every value of a list, which keeps the SQL
        # self-contained for export. The engine runs RulePassBackend's form, which folds each
        # column once per event and turns value lists into IN lists and regular expressions.
        pattern = like_pattern(value)
        text = self.text(column)
        if has_windash(value):
            text = self.unify_dashes(text)
            value = resolve_windash(value)

        if not value.contains_special():
            plain = self.string_literal(value.convert(escape_char=None, wildcard_multi=None, wildcard_single=None))
            if cased:
                return f"{text} = {plain}"
            return f"{self.fold_case(text)} = {self.fold_case(plain)}"

        if cased:
            return self.like(text, self.string_literal(pattern))
        return self.like(self.fold_case(text), self.fold_case(self.string_literal(pattern)))

    def convert_condition_field_eq_expansion(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        # An expansion (windash, base64offset) is an OR of its values.
        expansion = cond.value
        assert isinstance(expansion, SigmaExpansion)
        parts = [
            self.convert_condition(ConditionFieldEqualsValueExpression(cond.field, value), state)
            for value in expansion.values
        ]
        return "(" + " OR ".join(parts) + ")"

    # Numbers, booleans, times

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        number = cond.value
        assert isinstance(number, SigmaNumber)
        return f"{self.number(self.escape_and_quote_field(cond.field))} = {float(number.number)!r}"

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        comparison = cond.value
        assert isinstance(comparison, SigmaCompareExpression)
        column = self.number(self.escape_and_quote_field(cond.field))
        return f"{column} {self.compare_operators[comparison.op]} {float(comparison.number.number)!r}"

    def convert_condition_field_eq_val_bool(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        literal = "true" if cond.value.boolean else "false"
        return f"lower({self.text(self.escape_and_quote_field(cond.field))}) = '{literal}'"

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        part = cond.value
        assert isinstance(part, SigmaTimestampPart)
        return f"{self.timestamp_part(self.escape_and_quote_field(cond.field), part.timestamp_part)} = {int(part.number)}"

    # Regular expressions

    def regex(self, column: str, regex: SigmaRegularExpression) -> str:
        """Return SQL that searches a column's text with a Sigma regular expression and its flags."""
        # NOTE: RE2's $ matches only at the end of the text, PCRE's also before a final line break.
        flags = "".join(sorted(_REGEX_FLAGS[flag] for flag in regex.flags if flag in _REGEX_FLAGS))
        prefix = f"(?{flags})" if flags else ""
        placeholder = next((part for part in regex.regexp.s if isinstance(part, Placeholder)), None)
        if placeholder is not None:
            raise UnresolvedPlaceholderError(placeholder.name)
        return self.regex_search(self.text(column), self.string_literal(prefix + regex.regexp.original))

    def convert_condition_field_eq_val_re(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return self.regex(self.escape_and_quote_field(cond.field), cond.value)

    def convert_condition_field_eq_val_re_contains(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self.regex(self.escape_and_quote_field(cond.field), cond.value)

    # Addresses

    def convert_condition_field_eq_val_cidr(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        cidr = cond.value
        assert isinstance(cidr, SigmaCIDRExpression)
        text = self.text(self.escape_and_quote_field(cond.field))
        network = cidr.network
        if network.version == 4:
            return self.regex_full_match(text, self.string_literal(ipv4_network_regex(network)))
        return self.regex_full_match(self.ipv6_hex(self.fold_case(text)), self.string_literal(ipv6_network_regex(network)))

    # Field references

    def convert_condition_field_eq_field(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        reference = cond.value
        assert isinstance(reference, SigmaFieldReference)
        left = self.fold_case(self.text(self.escape_and_quote_field(cond.field)))
        right = self.fold_case(self.text(self.escape_and_quote_field(reference.field)))
        return self.text_contains(left, right, reference.starts_with, reference.ends_with)

    # Keywords: values without a field search the raw event.

    def convert_condition_val_str(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        value = cond.value
        if not value.startswith(SpecialChars.WILDCARD_MULTI):
            value = SpecialChars.WILDCARD_MULTI + value
        if not value.endswith(SpecialChars.WILDCARD_MULTI):
            value = value + SpecialChars.WILDCARD_MULTI
        cased = isinstance(cond.value, SigmaCasedString)
        return self.string_match(self.quote_column(KEYWORD_COLUMN), value, cased=cased)

    def convert_condition_val_num(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        value = SigmaString(str(cond.value.number))
        return self.string_match(
            self.quote_column(KEYWORD_COLUMN),
            SpecialChars.WILDCARD_MULTI + value + SpecialChars.WILDCARD_MULTI,
            cased=False,
        )

    def convert_condition_val_re(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        return self.regex(self.quote_column(KEYWORD_COLUMN), cond.value)

    def convert_condition_val(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        # pySigma dispatches no expansion (windash, base64offset) without a field.
        if isinstance(cond.value, SigmaExpansion):
            parts = [self.convert_condition(ConditionValueExpression(value), state) for value in cond.value.values]
            return "(" + " OR ".join(parts) + ")"
        return super().convert_condition_val(cond, state)

    def convert_condition_query_expr(self, cond, state: ConversionState) -> str:
        raise SigmaValueError("query expressions in keyword searches are not supported")
