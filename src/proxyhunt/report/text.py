"""Text helpers shared by every report: attacker-safe values, byte counts, times and plurals.

Values from a log (user agents, URLs, user names, hosts) are attacker-controlled.
``safe_text`` is the one place that decides which characters are shown as
escapes instead of being passed to a terminal, a spreadsheet or a browser.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

# Every character but printable ASCII is looked up, and those of these Unicode
# categories are escaped. Controls: C0, DEL and C1, where 0x9b is a one-byte
# CSI on some terminals. Format characters: the bidirectional marks and
# overrides that reorder text, zero-width spaces and joiners, invisible tag
# characters. Line and paragraph separators, and surrogates left by
# undecodable bytes. So a value can neither hide characters nor change how
# the text around it reads.
_CANDIDATES = re.compile(r"[^\x20-\x7e]")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Characters of other categories that most fonts draw as nothing: the
# combining grapheme joiner, the Mongolian free variation selectors, the
# variation selectors, the Hangul fillers and the blank braille pattern.
_INVISIBLE = frozenset(
    {chr(code) for code in (0x034F, 0x115F, 0x1160, 0x2800, 0x3164, 0xFFA0)}
    | {chr(code) for code in range(0x180B, 0x1810)}
    | {chr(code) for code in range(0xFE00, 0xFE10)}
    | {chr(code) for code in range(0xE0100, 0xE01F0)}
)


def _escape_character(match: re.Match[str]) -> str:
    character = match.group()
    if unicodedata.category(character) not in _UNSAFE_CATEGORIES and character not in _INVISIBLE:
        return character
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe_text(value: Any) -> str:
    """Return a value as text, with control, format and separator characters shown as ``\\xHH``, ``\\uHHHH`` or ``\\UHHHHHHHH``.

    ``None`` becomes an empty string. The result contains no character that a
    terminal interprets (so no escape sequence, OSC 8 hyperlink or window title
    passes through) and none that reorders the text around it.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return _CANDIDATES.sub(_escape_character, text)


def format_bytes(value: int | None) -> str:
    """Return a byte count in B, KiB, MiB, GiB or TiB, or an empty string for NULL."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def format_time(value: datetime | None) -> str:
    """Return a UTC time as ``YYYY-MM-DD HH:MM:SS``, or an empty string for NULL."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def count_noun(number: int, noun: str) -> str:
    """Return '1 line' or '3 lines'."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
