"""Read values from a JSON object or CSV row of a process-creation export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from proxyhunt.process.times import parse_time


def text_value(record: dict[str, Any], key: str) -> str | None:
    """Return ``record[key]`` as stripped text, with a missing or empty value as None."""
    value = record.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def first_time(record: dict[str, Any], *keys: str) -> datetime | None:
    """Return the time in the first of ``keys`` that contains one, as a naive UTC datetime."""
    for key in keys:
        time = parse_time(record.get(key))
        if time is not None:
            return time
    return None


def account(record: dict[str, Any], domain_key: str, name_key: str) -> str | None:
    """Return ``DOMAIN\\name``, or the name alone when the domain is missing."""
    name = text_value(record, name_key)
    if not name:
        return None
    domain = text_value(record, domain_key)
    return f"{domain}\\{name}" if domain else name
