"""Parse the time stamps that process-creation exports write, into naive UTC datetimes."""

from __future__ import annotations

import re
from datetime import datetime, timezone

# Windows writes 100-nanosecond fractions (7 digits), which datetime cannot hold.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")

# The Sentinel and Defender portals export times as "1/5/2024, 3:04:05.123 PM".
_PORTAL_FORMATS = ("%m/%d/%Y, %I:%M:%S.%f %p", "%m/%d/%Y, %I:%M:%S %p")


def parse_time(value: object) -> datetime | None:
    """Return ``value`` as a naive UTC datetime, or None when it is not a time.

    Accepts ISO 8601 with ``T`` or a space, any fraction and an offset or
    ``Z`` (a time without an offset is taken as UTC, as Sysmon's ``UtcTime``
    is), the portal export form, and epoch seconds as a number.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None

    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return _from_epoch(float(text))

    iso = _LONG_FRACTION.sub(r"\1", text)
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    try:
        return _to_naive_utc(datetime.fromisoformat(iso))
    except ValueError:
        pass
    for pattern in _PORTAL_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _from_epoch(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def _to_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)
