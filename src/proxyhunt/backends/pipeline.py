"""The processing pipeline that maps Sigma proxy fields to WebSession columns.

The mapping itself lives in ``proxyhunt.schema``, so that every backend and
export target uses the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import FieldMappingTransformationBase

from proxyhunt.schema import column_for_field


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


def websession_pipeline() -> ProcessingPipeline:
    """Return the pipeline that maps Sigma proxy field names to WebSession columns."""
    return ProcessingPipeline(
        name="proxyhunt WebSession field mapping",
        priority=20,
        items=[ProcessingItem(identifier="websession_fields", transformation=WebSessionFieldMapping())],
    )
