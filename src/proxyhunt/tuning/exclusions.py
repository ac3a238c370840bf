"""The bundled exclusions: Sigma filters for known-good rclone use, enabled by name.

Each exclusion is a file ``<name>.yml`` in ``proxyhunt/rules/bundled/exclusions``
whose ``name`` attribute is the same. ``all-safe`` enables every exclusion
that suppresses only requests to a known destination. Those in
``UNSAFE_EXCLUSIONS`` suppress by source, user or user-given credentials
whatever the destination, so they can hide real exfiltration and must be
named one by one.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

ALL_SAFE = "all-safe"

# Exclusions that can hide real exfiltration: never enabled by all-safe.
UNSAFE_EXCLUSIONS = frozenset({"user-transfer", "proxy-known-sources", "proxy-known-users"})


class UnknownExclusionError(ValueError):
    """An exclusion name that is not bundled; the message lists the names there are."""


def bundled_exclusions() -> dict[str, Path]:
    """Return the bundled exclusion files by name."""
    folder = resources.files("proxyhunt.rules") / "bundled" / "exclusions"
    return {
        entry.name.removesuffix(".yml"): Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".yml")
    }


def resolve_exclusions(names: list[str]) -> list[str]:
    """Return the files of the exclusions named in ``names`` (comma-separated values allowed), in name order.

    Raise ``UnknownExclusionError`` for a name that is not bundled. Enabling an
    exclusion from ``UNSAFE_EXCLUSIONS`` is logged as a warning.
    """
    available = bundled_exclusions()
    chosen: set[str] = set()
    for entry in names:
        for name in (part.strip() for part in entry.split(",")):
            if not name:
                continue
            if name == ALL_SAFE:
                chosen.update(key for key in available if key not in UNSAFE_EXCLUSIONS)
                continue
            if name not in available:
                known = ", ".join([ALL_SAFE, *sorted(available)])
                raise UnknownExclusionError(f"unknown exclusion '{name}'; choose from {known}")
            chosen.add(name)
    for name in sorted(chosen & UNSAFE_EXCLUSIONS):
        log.warning("exclusion %s is enabled: it can hide real exfiltration; review its suppressions", name)
    return [str(available[name]) for name in sorted(chosen)]
