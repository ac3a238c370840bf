"""Sigma value modifiers where pySigma 1.5 departs from the specification, and the transformation that fixes them.

pySigma applies modifiers when it parses a rule. Three of them differ from the
modifiers appendix of the Sigma specification (version 2.1.0):

- ``windash`` swaps only a ``-`` or ``/`` that starts a word, while the
  specification permutes every ``-``, ``/``, en dash, em dash and horizontal bar;
- ``utf16le``, ``utf16be`` and ``wide`` reject characters whose UTF-16 code
  units contain a byte above 0x7F;
- ``utf16`` prepends U+FEFF as a character instead of the bytes FF FE, so that
  ``|utf16|base64`` encodes the wrong bytes;
- ``utf16le`` is missing, although ``wide`` is its alias.

The exact encoding modifiers replace pySigma's in its modifier table (see
``register_exact_modifiers``). ``ExactModifierTransformation`` runs in the
backend's pipeline and recomputes the values of a detection item that uses
``windash`` from its original value, because its exact form, a placeholder,
only this backend can convert. Encoded bytes are held as a
string of the characters U+0000 to U+00FF, one character a byte, which is how
they compare against text columns and how the base64 modifiers read them.

A ``windash`` dash becomes the placeholder ``_windash`` inside the string, so
one value stands for all its permutations: the backend matches it by mapping
every dash character in the column text to ``-``.
"""

from __future__ import annotations

from base64 import b64encode
from dataclasses import dataclass
from typing import Any

from sigma.exceptions import SigmaValueError
from sigma.modifiers import (
    SigmaExpandModifier,
    SigmaModifier,
    SigmaValueModifier,
    SigmaWindowsDashModifier,
    modifier_mapping,
    reverse_modifier_mapping,
)
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetectionItem
from sigma.types import Placeholder, SigmaExpansion, SigmaString

from proxyhunt.rules.placeholders import WINDASH_PLACEHOLDER

# The characters that the windash modifier treats as one: -, /, en dash, em dash, horizontal bar.
WINDASH_CHARACTERS = "-/\u2013\u2014\u2015"


def _replace_text(value: SigmaString, convert) -> SigmaString:
    """Return ``value`` with ``convert`` applied to each plain-text part, leaving wildcards and placeholders as they are."""
    result = SigmaString()
    result.s = [convert(part) if isinstance(part, str) else part for part in value.s]
    return result


def _bytes_as_text(data: bytes) -> str:
    return data.decode("latin-1")


class ExactWindashModifier(SigmaValueModifier[SigmaString, SigmaString]):
    """Replace each dash character with a placeholder that matches any of the five that Windows accepts in flags."""

    def modify(self, val: SigmaString) -> SigmaString:
        parts: list[Any] = []
        for part in val.s:
            if not isinstance(part, str):
                parts.append(part)
                continue
            for character in part:
                parts.append(Placeholder(WINDASH_PLACEHOLDER) if character in WINDASH_CHARACTERS else character)
        result = SigmaString()
        result.s = parts
        return result._merge_strs()


class ExactUTF16LEModifier(SigmaValueModifier[SigmaString, SigmaString]):
    """Encode as UTF-16LE bytes, such as ``cmd`` to ``63 00 6d 00 64 00``."""

    def modify(self, val: SigmaString) -> SigmaString:
        return _replace_text(val, lambda text: _bytes_as_text(text.encode("utf-16-le")))


class ExactUTF16BEModifier(SigmaValueModifier[SigmaString, SigmaString]):
    """Encode as UTF-16BE bytes, such as ``cmd`` to ``00 63 00 6d 00 64``."""

    def modify(self, val: SigmaString) -> SigmaString:
        return _replace_text(val, lambda text: _bytes_as_text(text.encode("utf-16-be")))


class ExactUTF16Modifier(SigmaValueModifier[SigmaString, SigmaString]):
    """Encode as UTF-16LE bytes after the byte order mark FF FE."""

    def modify(self, val: SigmaString) -> SigmaString:
        encoded = _replace_text(val, lambda text: _bytes_as_text(text.encode("utf-16-le")))
        return _bytes_as_text(b"\xff\xfe") + encoded


_BYTE_ENCODERS = (ExactUTF16LEModifier, ExactUTF16BEModifier, ExactUTF16Modifier)


def _plain_bytes(modifier: SigmaModifier, val: SigmaString) -> bytes:
    """Return the bytes that a base64 modifier encodes: text as UTF-8, or the bytes a UTF-16 modifier produced."""
    if val.contains_special() or val.contains_placeholder():
        raise SigmaValueError("Base64 encoding of strings with wildcards is not allowed", source=modifier.source)
    text = val.convert(escape_char=None, wildcard_multi=None, wildcard_single=None)
    if any(issubclass(applied, _BYTE_ENCODERS) for applied in modifier.applied_modifiers):
        return text.encode("latin-1")
    return text.encode("utf-8")


class ExactBase64Modifier(SigmaValueModifier[SigmaString, SigmaString]):
    """Encode as base64."""

    def modify(self, val: SigmaString) -> SigmaString:
        return SigmaString.from_str(b64encode(_plain_bytes(self, val)).decode())


class ExactBase64OffsetModifier(SigmaValueModifier[SigmaString, SigmaExpansion]):
    """Encode as the three base64 forms that the value takes at the three byte offsets inside a longer text."""

    def modify(self, val: SigmaString) -> SigmaExpansion:
        data = _plain_bytes(self, val)
        variants = []
        for shift in range(3):
            encoded = b64encode(b"\0" * shift + data).decode()
            # Leading characters that carry bits of the shift bytes, and trailing
            # ones that carry bits of the unknown bytes after the value, vary.
            start = (0, 2, 3)[shift]
            end = (None, -3, -2)[(len(data) + shift) % 3]
            variants.append(SigmaString.from_str(encoded[start:end]))
        return SigmaExpansion(variants)


EXACT_MODIFIERS: dict[type[SigmaModifier], type[SigmaModifier]] = {
    SigmaWindowsDashModifier: ExactWindashModifier,
}


@dataclass
class ExactModifierTransformation(DetectionItemTransformation):
    """Recompute the values of detection items that use a modifier in ``EXACT_MODIFIERS`` with its exact version."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetectionItem | None:
        modifiers = detection_item.modifiers
        if not any(modifier in EXACT_MODIFIERS for modifier in modifiers):
            return None
        # NOTE: an item that also uses |expand keeps pySigma's values, because its
        # placeholders may already be expanded and the original value would undo that.
        if SigmaExpandModifier in modifiers or detection_item.original_value is None:
            return None

        detection_item.value = list(detection_item.original_value)
        detection_item.modifiers = [EXACT_MODIFIERS.get(modifier, modifier) for modifier in modifiers]
        try:
            detection_item.apply_modifiers()
        finally:
            detection_item.modifiers = modifiers
        self.processing_item_applied(detection_item)
        return None


def register_exact_modifiers() -> None:
    """Put the exact encoding modifiers into pySigma's modifier table, and add ``utf16le``.

    pySigma looks modifiers up in a module-level table and applies them while
    it parses a rule, before any pipeline runs, and its UTF-16 modifiers reject
    non-ASCII values there. So the encoding modifiers are replaced in that
    table for every rule parsed in this process, whatever backend converts it.
    They give pySigma's values for ASCII text. Importing this module runs this
    function, so it must be imported before rules are loaded.
    """
    exact = {
        "utf16": ExactUTF16Modifier,
        "utf16le": ExactUTF16LEModifier,
        "wide": ExactUTF16LEModifier,
        "utf16be": ExactUTF16BEModifier,
        "base64": ExactBase64Modifier,
        "base64offset": ExactBase64OffsetModifier,
    }
    modifier_mapping.update(exact)
    for name, modifier in exact.items():
        reverse_modifier_mapping.setdefault(modifier.__name__, name)


register_exact_modifiers()
