"""SQL that reads values out of JSON-object lines, shared by the JSON formats.

A key may be spelled several ways; the first one present wins. An object or
array where a column expects one value is not matched as its JSON text: the
column stays NULL and the value is returned separately, so that the loader
counts it as invalid.
"""

from __future__ import annotations

from proxyhunt.formats.sql import quote_literal

REJECT_ITEM = (
    "CASE WHEN NOT coalesce(json_valid(RawEvent), false) THEN 'invalid JSON' "
    "WHEN json_type(RawEvent) <> 'OBJECT' THEN 'not a JSON object' END AS _reject"
)


class JsonFields:
    """Collects JSON paths and builds the ``SELECT`` that extracts them from ``lines`` in one pass."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def value(self, paths: list[str], dash_is_null: bool = False) -> tuple[str, str]:
        """Return SQL for the first scalar value at ``paths``, and SQL for an object or array found there."""
        values = []
        non_scalars = []
        for path in paths:
            self.paths.append(path)
            position = len(self.paths)
            non_scalar = f"json_type(j[{position}]) IN ('OBJECT', 'ARRAY')"
            scalar = f"nullif(v[{position}], '-')" if dash_is_null else f"v[{position}]"
            values.append(f"CASE WHEN {non_scalar} THEN NULL ELSE {scalar} END")
            non_scalars.append(f"CASE WHEN {non_scalar} THEN v[{position}] END")
        return f"coalesce({', '.join(values)})", f"coalesce({', '.join(non_scalars)})"

    def select(self, items: list[str]) -> str:
        """Return the ``SELECT`` of ``SourceLine``, ``RawEvent``, the reject reason and ``items``."""
        path_list = ", ".join(quote_literal(path) for path in self.paths) or "'$.__none__'"
        select_list = ",\n            ".join(["SourceLine", "RawEvent", REJECT_ITEM, *items])
        return f"""
        SELECT
            {select_list}
        FROM (
            SELECT SourceLine, RawEvent,
                   json_extract_string(record, [{path_list}]) AS v,
                   json_extract(record, [{path_list}]) AS j
            FROM (
                -- Invalid JSON becomes NULL before any extraction, which would raise on it.
                SELECT SourceLine, RawEvent,
                       CASE WHEN json_valid(RawEvent) AND json_type(RawEvent) = 'OBJECT' THEN RawEvent END AS record
                FROM lines
            )
        )
        """
