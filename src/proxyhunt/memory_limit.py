"""DuckDB memory limits as ``--memory-limit`` gives them, checked once and read back in bytes."""

from __future__ import annotations

import duckdb

# The units in which DuckDB reports its memory limit, such as ``488.2 MiB``.
_REPORTED_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5}


class MemoryLimitError(ValueError):
    """A ``--memory-limit`` that DuckDB cannot read as a size, or one below what the command needs."""


def memory_limit_bytes(connection: duckdb.DuckDBPyConnection) -> int:
    """Return the memory limit of ``connection`` in bytes, parsed from the text DuckDB reports."""
    text = connection.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    number, _, unit = text.partition(" ")
    return int(float(number) * _REPORTED_UNITS.get(unit, 1))


def check_memory_limit(memory_limit: str, minimum_bytes: int, too_small: str) -> int:
    """Return ``memory_limit`` in bytes; raise MemoryLimitError unless DuckDB reads it as at least ``minimum_bytes``.

    ``too_small`` ends the message for a size below the minimum, saying why
    and what to give. The size is tried on a connection of its own, because
    a tiny limit would leave the caller's database unable to run even the
    query that reads the limit back.
    """
    if memory_limit.strip().startswith("-"):
        # DuckDB reads a negative size as no limit at all.
        raise MemoryLimitError(f"invalid --memory-limit {memory_limit}: give a positive size, such as 512MB or 2GB")

    with duckdb.connect() as probe:
        try:
            probe.execute("SET memory_limit = ?", [memory_limit])
        except duckdb.Error as error:
            raise MemoryLimitError(
                f"invalid --memory-limit {memory_limit} ({str(error).splitlines()[0]}); "
                "write a size as DuckDB reads it, such as 512MB or 2GB"
            ) from None

        try:
            limit_bytes = memory_limit_bytes(probe)
        except duckdb.OutOfMemoryException:
            # Below a few kilobytes even reading the setting back runs out of memory.
            limit_bytes = 0

    if limit_bytes < minimum_bytes:
        raise MemoryLimitError(f"--memory-limit {memory_limit} {too_small}")
    return limit_bytes
