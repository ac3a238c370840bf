"""Text helpers shared by every report: attacker-safe values, byte counts, times and plurals.

Values from a log (user agents, URLs, user names, hosts) are attacker-controlled.
``safe_text`` is the one place that decides which characters are shown as
escapes instead of being passed to a terminal, a spreadsheet or a browser.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on some terminals), the
# Unicode line and paragraph separators, and the bidirectional marks, embeddings,
# overrides and isolates that can make text display in another order than it is stored.
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape_character(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: Any) -> str:
    """Return a value as text, with control and bidirectional-formatting characters shown as ``\\xHH`` or ``\\uHHHH``.

    ``None`` becomes an empty string. The result contains no character that a
    terminal interprets (so no escape sequence, OSC 8 hyperlink or window title
    passes through) and none that reorders the text around it.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE_CHARACTERS.sub(_escape_character, text)


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
