"""Write findings as CSV that is safe to open in Excel or LibreOffice Calc.

Log values are attacker-controlled, and a spreadsheet runs a cell that starts
with ``=``, ``+``, ``-`` or ``@`` as a formula (CSV injection, which reaches
DDE and links). ``spreadsheet_cell`` writes such a cell with a leading ``'``
so that it stays text. Control and bidirectional-formatting characters are
shown as ``\\xHH`` / ``\\uHHHH`` as in the terminal; the JSON Lines output
keeps every value byte for byte.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from proxyhunt.hunt import HuntResult
from proxyhunt.report.jsonl import replace_when_done
from proxyhunt.report.findings import (
    describe_suppressions,
    describe_values,
    events_of,
    group_by_of,
    priority_reasons_of,
    rule_type_of,
    verdict_of,
)
from proxyhunt.report.model import HuntReport
from proxyhunt.report.text import safe_text
from proxyhunt.schema import COLUMN_NAMES

# The characters that make Excel or LibreOffice Calc read a cell as a formula,
# and the tab and carriage return that OWASP's CSV injection guidance adds
# because some importers drop them before looking at the next character.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Excel keeps at most this many characters in a cell and cuts the rest without a word.
EXCEL_CELL_CHARACTERS = 32_767

# The columns an analyst reads first, then the other WebSession columns in schema order.
_LEADING_COLUMNS = (
    "Verdict",
    "RuleType",
    "RuleTitle",
    "RuleLevel",
    "Priority",
    "RuleId",
    "RuleTags",
    "TimeGenerated",
    "SrcIpAddr",
    "SrcUsername",
    "DstHostname",
    "DstIpAddr",
    "HttpRequestMethod",
    "Url",
    "HttpStatusCode",
    "HttpUserAgent",
    "SrcBytes",
    "DstBytes",
    "SourceFile",
    "SourceLine",
)
_TRAILING_COLUMNS = (
    "SourceDamaged",
    "Suppressions",
    "CorrelationType",
    "GroupBy",
    "WindowStart",
    "WindowEnd",
    "Value",
    "Destinations",
    "Events",
    "PriorityReasons",
    "RuleSource",
)


def spreadsheet_cell(value: Any) -> str | int | float:
    """Return a value as a CSV cell that a spreadsheet shows as it is and never runs.

    Numbers stay numbers. Text whose first character, or first character after
    leading spaces, is a formula trigger gets a leading ``'``. Control and
    bidirectional-formatting characters are made visible. Text longer than
    EXCEL_CELL_CHARACTERS is cut, and the cell ends with a note of the cut.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        text = describe_values(value)
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(item) for item in value)
    else:
        text = str(value)

    if text.lstrip(" ")[:1] in FORMULA_TRIGGERS and text.lstrip(" "):
        text = "'" + text
    text = safe_text(text)
    if len(text) > EXCEL_CELL_CHARACTERS:
        marker = f"… ({len(text) - EXCEL_CELL_CHARACTERS + 100} more characters in the JSON Lines output)"
        text = text[: EXCEL_CELL_CHARACTERS - 100] + marker
    return text


def _columns(findings: list[dict[str, Any]]) -> list[str]:
    """Return the CSV header: fixed columns first, then any other finding key in first-seen order."""
    columns = list(_LEADING_COLUMNS)
    columns += [name for name in COLUMN_NAMES if name not in columns]
    columns += [name for name in _TRAILING_COLUMNS if name not in columns]
    known = set(columns)
    for finding in findings:
        for key in finding:
            if key not in known:
                columns.append(key)
                known.add(key)
    return columns


def _cell_value(finding: dict[str, Any], column: str) -> Any:
    """Return the value of one column, with nested values flattened to readable text."""
    if column == "Verdict":
        return verdict_of(finding)
    if column == "RuleType":
        return rule_type_of(finding)
    if column == "Suppressions":
        return describe_suppressions(finding)
    if column == "GroupBy":
        return describe_values(group_by_of(finding)) if "GroupBy" in finding else None
    if column == "PriorityReasons":
        # A reason may contain a comma, so reasons are joined with semicolons.
        return "; ".join(priority_reasons_of(finding)) or None
    if column == "Events":
        events = events_of(finding)
        return "; ".join(f"{event.get('SourceFile')}:{event.get('SourceLine')}" for event in events) or None
    return finding.get(column)


def write_csv_rows(findings: Iterable[dict[str, Any]], handle: Any) -> int:
    """Write a header and one row per finding to an open text stream; return the number of rows."""
    rows = list(findings)
    columns = _columns(rows)
    writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for finding in rows:
        writer.writerow([spreadsheet_cell(_cell_value(finding, column)) for column in columns])
    return len(rows)


def write_csv(result: HuntResult | HuntReport, path: str | Path) -> int:
    """Write every finding, alerts and suppressed ones, to ``path`` as CSV; return the number of rows.

    The file is UTF-8 with a byte order mark, which Excel needs to detect
    UTF-8, and rows end with CRLF as RFC 4180 specifies. Times are UTC, as
    ``YYYY-MM-DD HH:MM:SS``, a form both spreadsheets parse as a date.
    """
    findings = result.result.findings if isinstance(result, HuntReport) else result.findings
    with replace_when_done(path) as handle:
        handle.write("\ufeff")
        return write_csv_rows(findings, handle)
