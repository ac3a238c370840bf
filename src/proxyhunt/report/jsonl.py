"""Write findings as JSON Lines: one JSON object per finding, every WebSession column included."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import duckdb

from proxyhunt.formats.loader import REJECTS_TABLE


@contextmanager
def replace_when_done(target: str | Path) -> Iterator[IO[str]]:
    """Open ``target`` for writing text so that a failed write leaves an earlier file unchanged.

    A regular file, or a new path, is written as a temporary file beside it
    and renamed over it only when writing succeeds, so an interrupted or
    failed write leaves no partial file behind. A symbolic link is followed:
    the file it points to is replaced and the link stays. A device, FIFO or
    socket (``/dev/stdout``, ``/dev/null``, a named pipe) is written to
    directly, because a rename would replace the device node itself.
    """
    target = Path(os.path.realpath(target))
    if target.exists() and not target.is_file():
        with open(target, "w", encoding="utf-8", newline="\n") as direct:
            yield direct
        return

    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="\n", dir=target.parent, prefix=f".{target.name}.", suffix=".partial", delete=False
    )
    try:
        # NamedTemporaryFile creates the file for its owner only; give it the
        # permissions that a plain open() would under the current umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)
        with handle:
            yield handle
        os.replace(handle.name, target)
    except BaseException:
        os.unlink(handle.name)
        raise


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        # WebSession times are UTC without a zone attached, so the text gets the Z suffix.
        text = value.isoformat()
        return text if value.tzinfo else text + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# Keys that every finding carries; a finding built without them is a detection alert.
_FINDING_DEFAULTS: dict[str, Any] = {"RuleType": "detection", "Verdict": "alert", "Suppressions": []}


def finding_to_json(finding: dict[str, Any]) -> str:
    """Return one finding as a single line of JSON.

    Suppressions, GroupBy and Events become JSON arrays and objects, and
    times (TimeGenerated, WindowStart, WindowEnd) UTC text ending in Z.
    """
    record = {**_FINDING_DEFAULTS, **finding}
    return json.dumps(record, default=_default, ensure_ascii=False)


def write_jsonl(findings: Iterable[dict[str, Any]], target: str | Path | IO[str]) -> int:
    """Write findings to a path or an open text stream; return how many were written."""
    if isinstance(target, (str, Path)):
        with replace_when_done(target) as handle:
            return write_jsonl(findings, handle)
    count = 0
    for finding in findings:
        target.write(finding_to_json(finding) + "\n")
        count += 1
    return count


def write_rejects(connection: duckdb.DuckDBPyConnection, target: str | Path) -> int:
    """Write every rejected line (SourceFile, SourceLine, Reason, RawEvent) as JSON Lines; return the count."""
    rows = connection.execute(
        f"SELECT SourceFile, SourceLine, Reason, RawEvent FROM {REJECTS_TABLE} ORDER BY SourceFile, SourceLine"
    ).fetchall()
    with replace_when_done(target) as handle:
        for source_file, source_line, reason, raw_event in rows:
            record = {"SourceFile": source_file, "SourceLine": source_line, "Reason": reason, "RawEvent": raw_event}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(rows)
