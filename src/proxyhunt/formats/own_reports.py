"""Recognize proxyhunt's own reports, so that a hunt over a directory skips the reports it wrote there earlier.

A findings file read as a log would raise every finding again, because its
records carry the URLs and user agents that matched. The marks checked are
those the report writers in ``proxyhunt.report`` always write: the
``RuleId`` and ``Verdict`` keys of a JSON Lines finding, the same two columns
in the CSV header, and the ``<title>`` of the HTML report.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence

# Keys that every finding has and that no supported log format uses.
FINDING_KEYS = ("RuleId", "Verdict")
_HTML_TITLE = "<title>proxyhunt report"
# The HTML title comes within the first few lines of the document head.
_HTML_HEAD_LINES = 20


def own_report_kind(lines: Sequence[str]) -> str | None:
    """Return the kind of proxyhunt report whose first non-blank lines are ``lines``, or None for any other file."""
    if not lines:
        return None
    first = lines[0].lstrip("\ufeff").strip()

    if first.startswith("{") and _is_finding(first):
        return "findings file (JSON Lines)"
    if first.startswith("<!DOCTYPE html") or first.startswith("<html"):
        if any(line.strip().startswith(_HTML_TITLE) for line in lines[:_HTML_HEAD_LINES]):
            return "HTML report"
        return None
    if _is_findings_header(first):
        return "findings file (CSV)"
    return None


def _is_finding(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and all(key in record for key in FINDING_KEYS)


def _is_findings_header(line: str) -> bool:
    try:
        header = next(csv.reader([line]))
    except csv.Error:
        return False
    return all(key in header for key in FINDING_KEYS)
