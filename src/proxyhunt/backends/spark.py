"""A pySigma backend that turns Sigma rules into Spark SQL over the WebSession table.

It is the DuckDB backend with Spark SQL's spelling, so that both engines give
the same hits. It overrides only the dialect methods of ``DuckDBBackend``
and the places that quote identifiers. What differs in Spark SQL (3.4 or newer):

- string literals treat ``\\`` as an escape character, so a backslash in a
  value is doubled and a quote is written ``\\'``;
- identifiers are quoted with backquotes, and text casts name ``STRING``;
- regular expressions run with ``rlike``, whose Java syntax reads the RE2
  expressions of Sigma rules the same way. A full match is anchored with
  ``\\z``, because Java's ``$`` also matches before a final line break;
- IPv6 ``|cidr`` values expand the address with ``transform`` and lambdas.
"""

from __future__ import annotations

from typing import ClassVar

from sigma.conditions import ConditionValueExpression
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import SigmaCasedString, SigmaString, SpecialChars

from proxyhunt.backends.duckdb import DuckDBBackend
from proxyhunt.backends.network import IPV4_OCTET, IPV6_TEXT
from proxyhunt.schema import COLUMN_NAMES, KEYWORD_COLUMN


def spark_literal(text: str) -> str:
    """Return ``text`` as a single-quoted Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def spark_identifier(name: str) -> str:
    """Return a column name quoted with backquotes."""
    return "`" + name.replace("`", "``") + "`"


class SparkSQLBackend(DuckDBBackend):
    """Sigma to a Spark SQL ``WHERE`` expression over the WebSession table."""

    name: ClassVar[str] = "proxyhunt Spark SQL backend"
    formats: ClassVar[dict[str, str]] = {"default": "Spark SQL WHERE expression over the websession table"}

    # Dialect

    def text(self, column: str) -> str:
        return f"CAST({column} AS STRING)"

    def like(self, expression: str, pattern: str) -> str:
        # The literal '\\' is one backslash in Spark SQL.
        return f"{expression} LIKE {pattern} ESCAPE '\\\\'"

    def regex_search(self, expression: str, regex: str) -> str:
        return f"{expression} rlike {regex}"

    def regex_full_match(self, expression: str, regex: str) -> str:
        return f"{expression} rlike concat('^(?:', {regex}, ')\\\\z')"

    def string_literal(self, text: str) -> str:
        return spark_literal(text)

    def ipv6_hex(self, text: str) -> str:
        """Return Spark SQL for the IPv6 address in ``text`` as 32 hex digits, NULL when it is not one.

        The steps are those of the DuckDB backend. ``let`` bindings are written
        as ``element_at(transform(array(value), name -> body), 1)``, and
        ``try_element_at`` reads list items, because ANSI mode makes an index
        past the end an error.
        """
        octet = IPV4_OCTET
        tail = self.string_literal(rf"(.*:)({octet})\.({octet})\.({octet})\.({octet})")
        hex_groups = (
            "CASE "
            f"WHEN {self.regex_full_match('t', tail)} THEN concat(regexp_extract(t, '^(.*:)', 1), format_string('%x:%x', "
            f"CAST(regexp_extract(t, {tail}, 2) AS INT) * 256 + CAST(regexp_extract(t, {tail}, 3) AS INT), "
            f"CAST(regexp_extract(t, {tail}, 4) AS INT) * 256 + CAST(regexp_extract(t, {tail}, 5) AS INT))) "
            "WHEN instr(t, '.') > 0 THEN NULL ELSE t END"
        )
        empty = "CAST(array() AS ARRAY<STRING>)"
        head = f"CASE WHEN try_element_at(p, 1) = '' THEN {empty} ELSE split(try_element_at(p, 1), ':') END"
        rest = f"CASE WHEN size(p) = 2 AND try_element_at(p, 2) <> '' THEN split(try_element_at(p, 2), ':') ELSE {empty} END"
        groups = (
            "CASE WHEN size(p) = 1 THEN h "
            "WHEN size(p) = 2 AND size(h) + size(r) <= 7 "
            "THEN concat(h, array_repeat('0', 8 - size(h) - size(r)), r) END"
        )
        canonical = (
            "CASE WHEN size(g) = 8 AND forall(g, x -> x rlike '^[0-9a-f]{1,4}\\\\z') "
            "THEN array_join(transform(g, x -> lpad(x, 4, '0')), '') END"
        )
        expand = (
            f"element_at(transform(array(split({hex_groups}, '::')), p -> "
            f"element_at(transform(array({head}), h -> element_at(transform(array({rest}), r -> "
            f"element_at(transform(array({groups}), g -> {canonical}), 1)), 1)), 1)), 1)"
        )
        valid_text = self.regex_full_match("t", self.string_literal(IPV6_TEXT))
        # A zone index (fe80::1%eth0) names an interface and leaves the address as it is.
        zone = self.regex_full_match("z", self.string_literal("[^%]+%[^%/]+"))
        address = f"CASE WHEN {zone} THEN substring_index(z, '%', 1) ELSE z END"
        return (
            f"element_at(transform(array({text}), z -> element_at(transform(array({address}), "
            f"t -> CASE WHEN {valid_text} THEN {expand} END), 1)), 1)"
        )

    # Identifiers

    def escape_and_quote_field(self, field_name: str) -> str:
        if field_name not in COLUMN_NAMES:
            raise SigmaFeatureNotSupportedByBackendError(
                f"field '{field_name}' is not a Sigma proxy field or a WebSession column"
            )
        return spark_identifier(field_name)

    def convert_condition_val_str(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        value = cond.value
        if not value.startswith(SpecialChars.WILDCARD_MULTI):
            value = SpecialChars.WILDCARD_MULTI + value
        if not value.endswith(SpecialChars.WILDCARD_MULTI):
            value = value + SpecialChars.WILDCARD_MULTI
        cased = isinstance(cond.value, SigmaCasedString)
        return self.string_match(spark_identifier(KEYWORD_COLUMN), value, cased=cased)

    def convert_condition_val_num(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        value = SpecialChars.WILDCARD_MULTI + SigmaString(str(cond.value.number)) + SpecialChars.WILDCARD_MULTI
        return self.string_match(spark_identifier(KEYWORD_COLUMN), value, cased=False)

    def convert_condition_val_re(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        return self.regex(spark_identifier(KEYWORD_COLUMN), cond.value)
