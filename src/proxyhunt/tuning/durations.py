"""Parse durations such as ``90s``, ``15m``, ``12h``, ``1d`` or ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Return the duration that ``text`` names; raise ValueError naming the accepted units.

    Each part is a number and a unit: ``ms``, ``s``, ``m`` (minutes), ``h`` or
    ``d``. ``0`` alone is a zero duration.
    """
    value = text.strip().lower()
    if value == "0":
        return timedelta(0)
    position = 0
    seconds = 0.0
    for match in _PART.finditer(value):
        if match.start() != position and value[position : match.start()].strip():
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position == 0 or value[position:].strip():
        raise ValueError(f"invalid duration '{text}'; write a number and a unit: 90s, 15m, 12h, 1d or 1h30m")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """Return ``duration`` as text such as ``2h03m10s``, for messages."""
    total = int(abs(duration.total_seconds()))
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    sign = "-" if duration.total_seconds() < 0 else ""
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{seconds:02d}s"
    if minutes:
        return f"{sign}{minutes}m{seconds:02d}s"
    return f"{sign}{seconds}s"
