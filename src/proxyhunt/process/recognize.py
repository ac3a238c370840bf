"""Recognize rclone among process creations, renamed binaries included.

In order of trust: the ``OriginalFileName`` of the binary's version resource
(Sysmon, Defender, ASIM; renaming the file does not change it), the image's
file name, the program name on the command line, and last the command line's
shape: an rclone subcommand followed by a ``remote:path`` argument or a flag
that few programs other than rclone have (``--transfers``, ``--s3-...``).
"""

from __future__ import annotations

import ntpath
import posixpath
from dataclasses import dataclass

from proxyhunt.process.cmdline import looks_like_windows, split_command_line
from proxyhunt.process.event import ProcessEvent
from proxyhunt.process.rclone_cmdline import SUBCOMMANDS, RcloneCommand, parse_rclone

_RCLONE_NAMES = frozenset({"rclone", "rclone.exe"})

# Subcommands that move no data, so their shape alone would not tell rclone apart.
_SHAPE_EXCLUDED = frozenset({"help", "version", "completion", "genautocomplete", "gendocs", "test"})


@dataclass(frozen=True)
class RcloneProcess:
    """A process recognized as rclone, with its parsed command line and how it was recognized."""

    event: ProcessEvent
    command: RcloneCommand
    recognized_by: str


def file_name(path: str | None) -> str:
    """Return the last component of a Windows or POSIX path, lower-cased."""
    if not path:
        return ""
    return posixpath.basename(ntpath.basename(path.strip().strip('"'))).lower()


def recognize_rclone(event: ProcessEvent) -> RcloneProcess | None:
    """Return ``event`` as an ``RcloneProcess`` when it is rclone, else None."""
    windows = looks_like_windows(event.command_line, event.image)
    if event.argv:
        argv = list(event.argv)
    elif event.command_line:
        argv = split_command_line(event.command_line, windows)
    else:
        argv = [event.image] if event.image else []
    command = parse_rclone(argv, windows=windows)

    if file_name(event.original_file_name) in _RCLONE_NAMES:
        return RcloneProcess(event, command, f"OriginalFileName {event.original_file_name}")
    if file_name(event.image) in _RCLONE_NAMES:
        return RcloneProcess(event, command, "image name")
    if argv and file_name(argv[0]) in _RCLONE_NAMES:
        return RcloneProcess(event, command, "program name on the command line")

    subcommand = command.subcommand
    if subcommand not in SUBCOMMANDS or subcommand in _SHAPE_EXCLUDED:
        return None
    remote = next((e for e in (command.source, command.destination) if e is not None and e.is_remote), None)
    if remote is not None:
        return RcloneProcess(event, command, f"command-line shape (subcommand {subcommand}, remote {remote.remote}:)")
    if command.has_distinctive_flag:
        return RcloneProcess(event, command, f"command-line shape (subcommand {subcommand} with rclone flags)")
    return None
