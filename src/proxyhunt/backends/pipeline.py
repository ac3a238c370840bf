"""The processing pipeline that maps Sigma proxy fields to WebSession columns.

The mapping of Sigma proxy fields lives in ``proxyhunt.schema``, so that every
backend and export target uses the same one. Rules for Zeek http.log
(``product: zeek``, ``service: http``) name Zeek's own fields, which map to the
columns that the Zeek reader fills.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import FieldMappingTransformationBase
from sigma.rule import SigmaLogSource

from proxyhunt.backends.modifiers import ExactModifierTransformation
from proxyhunt.formats.zeek import FIELD_MAP as ZEEK_FIELD_MAP
from proxyhunt.rules.loader import is_zeek_http
from proxyhunt.schema import column_for_field


def _zeek_http_columns() -> dict[str, str]:
    # Some exports flatten id.orig_h to id_orig_h, so both spellings map.
    columns: dict[str, str] = {}
    for zeek_field, (column, _) in ZEEK_FIELD_MAP.items():
        columns[zeek_field] = column
        columns[zeek_field.replace(".", "_")] = column
    return columns


# Zeek http.log field -> WebSession column, as the Zeek reader fills them.
ZEEK_HTTP_COLUMNS: dict[str, str] = _zeek_http_columns()


def column_for_rule_field(logsource: SigmaLogSource, field: str) -> str | None:
    """Return the WebSession column that a field of a rule with this log source reads, or None."""
    if is_zeek_http(logsource) and field in ZEEK_HTTP_COLUMNS:
        return ZEEK_HTTP_COLUMNS[field]
    return column_for_field(field)


@dataclass
class WebSessionFieldMapping(FieldMappingTransformationBase):
    """Rename Sigma proxy fields (``c-useragent`` …) to WebSession columns (``HttpUserAgent`` …).

    Names are matched case-insensitively. A field with no WebSession column is
    left unchanged, so that the backend can reject the rule and name the field.
    """

    def apply_field_name(self, field: str | None) -> None | str | list[str]:
        if field is None:
            return None
        return column_for_field(field)


@dataclass
class ZeekHttpFieldMapping(FieldMappingTransformationBase):
    """Rename Zeek http.log fields (``user_agent``, ``id.orig_h`` …) to WebSession columns.

    Zeek field names are case-sensitive, so they are matched exactly.
    """

    def apply_field_name(self, field: str | None) -> None | str | list[str]:
        if field is None:
            return None
        return ZEEK_HTTP_COLUMNS.get(field)


def websession_pipeline() -> ProcessingPipeline:
    """Return the pipeline that maps Sigma proxy and Zeek http.log field names to WebSession columns."""
    return ProcessingPipeline(
        name="proxyhunt WebSession field mapping",
        priority=20,
        items=[
            ProcessingItem(
                identifier="zeek_http_fields",
                transformation=ZeekHttpFieldMapping(),
                rule_conditions=[LogsourceCondition(product="zeek", service="http")],
            ),
            ProcessingItem(identifier="websession_fields", transformation=WebSessionFieldMapping()),
        ],
    )


def sql_pipeline() -> ProcessingPipeline:
    """Return the pipeline of the SQL backends: the exact windash modifier, then the WebSession field mapping.

    The exact windash leaves a placeholder that only the SQL backends convert,
    so the export targets use ``websession_pipeline`` alone.
    """
    exact = ProcessingPipeline(
        name="proxyhunt exact Sigma modifiers",
        priority=15,
        items=[ProcessingItem(identifier="exact_modifiers", transformation=ExactModifierTransformation())],
    )
    return exact + websession_pipeline()
