"""Linux auditd logs (``/var/log/audit/audit.log``): ``EXECVE`` records joined to their ``SYSCALL`` record.

One ``execve`` writes several records that share the event's time and serial
number, ``msg=audit(<epoch seconds>:<serial>)``: ``SYSCALL`` carries the
process id, user ids and ``exe``, and ``EXECVE`` the argument vector
(``argc``, ``a0``, ``a1``, ...). auditd writes an argument in double quotes,
or hex-encoded without quotes when it contains a space, a quote or a control
character, and splits a long argument into ``a1[0]``, ``a1[1]``, ... after an
``a1_len`` field. The host name appears as ``node=`` only when auditd's
``name_format`` is set. The ``ENRICHED`` log format appends, after a 0x1D
byte, the names of the user ids (``UID="alice"``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from proxyhunt.process.event import ProcessEvent, RejectedRecord

SOURCE_KIND = "auditd EXECVE"

_RECORD = re.compile(r"^(?:node=(?P<node>\S+) )?type=(?P<type>\w+) msg=audit\((?P<time>\d+(?:\.\d+)?):(?P<serial>\d+)\):")
_FIELD = re.compile(r"(?P<key>[\w-]+(?:\[\d+\])?)=(?P<value>\"[^\"]*\"|'[^']*'|\S*)")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")


def is_audit_line(line: str) -> bool:
    """True when ``line`` is an auditd record in the raw log format."""
    return bool(_RECORD.match(line))


@dataclass
class _Execution:
    """The records of one ``execve`` event, gathered by time and serial number."""

    node: str | None
    time: datetime
    first_line: int
    syscall: dict[str, str] = field(default_factory=dict)
    enriched: dict[str, str] = field(default_factory=dict)
    arguments: dict[str, str] = field(default_factory=dict)
    has_execve: bool = False


def read_audit_lines(lines: Iterable[str], source_file: str, rejected: list[RejectedRecord]) -> tuple[int, list[ProcessEvent]]:
    """Return the number of audit records read and the processes that ``EXECVE`` records start.

    Lines that are not audit records are added to ``rejected``; an ``EXECVE``
    record without a ``SYSCALL`` record is still read, without process id or user.
    """
    executions: dict[tuple[str | None, str, str], _Execution] = {}
    records = 0
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        match = _RECORD.match(text)
        if not match:
            rejected.append(RejectedRecord(number, "not an auditd record (expected 'type=... msg=audit(...)')"))
            continue
        records += 1
        record_type = match.group("type")
        if record_type not in ("SYSCALL", "EXECVE"):
            continue

        key = (match.group("node"), match.group("time"), match.group("serial"))
        execution = executions.get(key)
        if execution is None:
            moment = datetime.fromtimestamp(float(match.group("time")), tz=timezone.utc).replace(tzinfo=None)
            execution = executions[key] = _Execution(match.group("node"), moment, number)
        body, _, enrichment = text[match.end() :].partition("\x1d")
        fields = {item.group("key"): item.group("value") for item in _FIELD.finditer(body)}
        if record_type == "SYSCALL":
            execution.syscall = fields
            execution.enriched = {item.group("key"): _unquote(item.group("value")) for item in _FIELD.finditer(enrichment)}
        else:
            execution.has_execve = True
            execution.arguments.update(fields)

    processes = [
        _process(execution, source_file) for execution in executions.values() if execution.has_execve
    ]
    return records, processes


def _process(execution: _Execution, source_file: str) -> ProcessEvent:
    argv = _argv(execution.arguments)
    syscall = execution.syscall
    user = execution.enriched.get("UID") or _unquote(syscall.get("uid", "")) or None
    pid = syscall.get("pid")
    return ProcessEvent(
        time=execution.time,
        hostname=execution.node,
        process_id=int(pid) if pid and pid.isdigit() else None,
        command_line=shlex.join(argv) if argv else None,
        image=_unquote(syscall.get("exe", "")) or None,
        original_file_name=None,
        user=user,
        parent_image=None,
        source_file=source_file,
        source_line=execution.first_line,
        source_kind=SOURCE_KIND,
        argv=tuple(argv),
    )


def _argv(fields: dict[str, str]) -> list[str]:
    """Rebuild the argument vector from ``a0``, ``a1``, ... and the ``aN[i]`` pieces of long arguments."""
    count_text = fields.get("argc", "")
    count = int(count_text) if count_text.isdigit() else _highest_index(fields) + 1
    argv = []
    for index in range(count):
        name = f"a{index}"
        if name in fields:
            argv.append(_decode(fields[name]))
            continue
        pieces = []
        piece = 0
        while f"{name}[{piece}]" in fields:
            pieces.append(_decode(fields[f"{name}[{piece}]"]))
            piece += 1
        argv.append("".join(pieces))
    return argv


def _highest_index(fields: dict[str, str]) -> int:
    indexes = [int(match.group(1)) for key in fields if (match := re.match(r"^a(\d+)", key))]
    return max(indexes, default=-1)


def _decode(value: str) -> str:
    """Decode one argument: quoted text as it is, unquoted text as hex when it is hex."""
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return value[1:-1]
    if _HEX.match(value):
        return bytes.fromhex(value).decode("utf-8", errors="replace")
    return value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value
