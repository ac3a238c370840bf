"""Run one benchmark step in a child process and record its time and peak memory."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """Wall time, CPU time (user and system), peak resident set size and standard output of one child process."""

    seconds: float
    peak_rss_bytes: int
    stdout: str
    cpu_seconds: float = 0.0


def run(command: list[str], env: dict[str, str] | None = None, ok_statuses: tuple[int, ...] = (0,)) -> Measurement:
    """Run ``command`` and wait for it; raise RuntimeError with its stderr when its exit status is not in ``ok_statuses``.

    ``os.wait4`` returns the rusage of that one child, so the peak RSS is the
    child's own and not the maximum over every child this process started.
    """
    # Files rather than pipes: a child that fills one pipe while this process
    # reads the other would deadlock.
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)

        stdout.seek(0)
        stderr.seek(0)
        output = stdout.read().decode("utf-8", "replace")
        message = stderr.read().decode("utf-8", "replace").strip()

    if process.returncode not in ok_statuses:
        raise RuntimeError(f"{' '.join(command)} failed with exit status {process.returncode}: {message}")
    # Linux reports ru_maxrss in KiB.
    return Measurement(seconds, usage.ru_maxrss * 1024, output, usage.ru_utime + usage.ru_stime)


def warm_page_cache(path: str) -> None:
    """Read ``path`` once so that every step reads it from the page cache."""
    with open(path, "rb") as data:
        while data.read(1 << 24):
            pass
