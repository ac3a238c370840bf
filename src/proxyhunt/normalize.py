"""Convert proxy logs to a WebSession Parquet dataset partitioned by event date, the layout a data lake holds.

>>> from proxyhunt.normalize import normalize
>>> result = normalize(["samples/"], to="lake/websession")   # doctest: +SKIP
>>> [(output.source, output.rows) for output in result.outputs]  # doctest: +SKIP

Memory stays bounded: each input is parsed into a disk-backed DuckDB database
whose buffer manager is capped at ``memory_limit`` (DuckDB spills to disk
beyond it), written out with DuckDB's partitioned ``COPY``, and dropped before
the next input is read.

Re-runs are idempotent. The rows of one input go to files named
``part-<identity>-<n>.parquet``, where the identity is derived from the input's
absolute path. Normalizing the same path again first removes every file with
that identity, in every partition, so a re-run, or a log that grew since the
last run, never duplicates rows. A log renamed by rotation (``access.log`` to
``access.log.1``) is a new input with a new identity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from proxyhunt.formats.loader import TABLE, FileReport, Loader, ProgressCallback, custom_formats, expand_paths
from proxyhunt.formats.parquet import NULL_PARTITION, PARQUET_SUFFIX, PARTITION_COLUMN
from proxyhunt.schema import create_table_sql

log = logging.getLogger(__name__)

# Per-input manifests live here, under the dataset; readers skip names that start with "_".
MANIFEST_DIRECTORY = "_inputs"
DEFAULT_MEMORY_LIMIT = "1GB"
# The loader reads text in batches of about 32MB, so DuckDB needs at least that much.
# DuckDB shows a limit in MiB with one decimal, so "32MB" reads back as 30.5 MiB.
MIN_MEMORY_LIMIT_BYTES = 30 * 1024 * 1024
# Row groups of at most this many rows keep each Parquet file's min/max
# statistics on TimeGenerated narrow enough for engines to skip row groups.
ROW_GROUP_SIZE = 122_880
# COPY buffers a whole row group before compressing it, so row groups are also
# capped at this share of the memory limit. With a 128MB limit and log lines
# of about 180 bytes, a fifth was measured to fit, and row groups of
# ROW_GROUP_SIZE rows ran out of memory.
ROW_GROUP_MEMORY_SHARE = 5
MAX_ROW_GROUP_BYTES = 128 * 1024 * 1024
_SIZE_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5}


class NormalizeError(Exception):
    """A problem with the output directory or options that stops the whole run."""


@dataclass(frozen=True)
class InputOutput:
    """The Parquet files written for one input and the rows they hold."""

    source: str
    identity: str
    rows: int
    files: tuple[str, ...]
    replaced: int


@dataclass
class NormalizeResult:
    """The inputs that a normalize run read and the files it wrote for them."""

    directory: str
    files: list[FileReport]
    outputs: list[InputOutput] = field(default_factory=list)

    @property
    def failed_files(self) -> list[FileReport]:
        return [report for report in self.files if report.error]

    @property
    def rows(self) -> int:
        return sum(output.rows for output in self.outputs)


def input_identity(path: str) -> str:
    """Return the identity of an input file: 16 hex digits of SHA-256 over its absolute, resolved path."""
    return hashlib.sha256(os.path.realpath(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def normalize(
    paths: list[str],
    to: str,
    format_name: str | None = None,
    squid_logformat: str | None = None,
    map_path: str | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    rejects_path: str | None = None,
    progress: ProgressCallback | None = None,
) -> NormalizeResult:
    """Write the WebSession rows of the logs at ``paths`` into the Parquet dataset at ``to``.

    ``format_name``, ``squid_logformat`` and ``map_path`` choose how inputs are
    read, as in ``proxyhunt.hunt.hunt``. ``memory_limit`` caps DuckDB's
    memory (DuckDB syntax, such as ``512MB``).
    Problems with single files are reported in the result, and a file that
    could not be read leaves its earlier output in place. Raises
    NormalizeError when the output directory cannot be used, and for standard
    input, which has no identity that a re-run could replace.
    """
    if "-" in paths:
        raise NormalizeError(
            "normalize cannot read standard input (-), because a re-run could not replace its rows; "
            "write the input to a file and normalize that file"
        )
    target = Path(to)
    _prepare_directory(target)

    files, missing = expand_paths(paths)
    result = NormalizeResult(str(target), list(missing))
    with _work_database(target, memory_limit) as connection:
        loader = Loader(connection, custom_formats(squid_logformat, map_path))
        try:
            for path in files:
                report = loader.load(path, format_name=format_name, progress=progress)
                result.files.append(report)
                if report.parsed:
                    result.outputs.append(_write_input(connection, target, path, report))
                _clear_events(connection)
        finally:
            loader.close()
        if rejects_path:
            from proxyhunt.report.jsonl import write_rejects

            write_rejects(connection, rejects_path)
    return result


def _prepare_directory(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise NormalizeError(f"--to {target} is a file; give a directory for the dataset")
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / MANIFEST_DIRECTORY).mkdir(exist_ok=True)
    except OSError as error:
        raise NormalizeError(f"cannot create the dataset directory {target}: {error.strerror}; choose a writable --to") from None


@contextmanager
def _work_database(target: Path, memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a disk-backed DuckDB database in a hidden work directory inside the dataset, and remove it after.

    The work directory sits on the dataset's file system, so that finished
    files are moved into place by rename. Its name starts with a dot, which
    every Parquet reader skips.
    """
    work = Path(tempfile.mkdtemp(prefix=".proxyhunt-work-", dir=target))
    try:
        connection = duckdb.connect(str(work / "normalize.duckdb"))
        try:
            connection.execute(f"SET temp_directory = '{_sql_text(str(work / 'spill'))}'")
            _check_memory_limit(memory_limit)
            connection.execute(f"SET memory_limit = '{_sql_text(memory_limit)}'")
            # Keeping insertion order would make COPY buffer whole partitions,
            # and ROW_GROUP_SIZE_BYTES needs it off.
            connection.execute("SET preserve_insertion_order = false")
            yield connection
        finally:
            connection.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _write_input(connection: duckdb.DuckDBPyConnection, target: Path, path: str, report: FileReport) -> InputOutput:
    """Write the events of one input to a staging directory, then swap them in for that input's earlier files."""
    identity = input_identity(path)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{identity}-", dir=target))
    try:
        _copy_partitions(connection, staging, identity)
        replaced = _remove_input_files(target, identity)
        written = _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    output = InputOutput(path, identity, report.parsed, tuple(written), replaced)
    _write_manifest(target, output, report)
    log.info("%s: wrote %d events to %d files in %s, replacing %d earlier files", path, report.parsed, len(written), target, replaced)
    return output


def _copy_partitions(connection: duckdb.DuckDBPyConnection, staging: Path, identity: str) -> None:
    """Write one Parquet file per event date of the WebSession table into ``staging``.

    Each date is its own ``COPY``. DuckDB's ``PARTITION_BY`` keeps a row group
    open for every partition at once, so a file that spans many days needs
    that many row groups in memory. One date at a time needs one.
    """
    row_group_bytes = max(1024 * 1024, min(MAX_ROW_GROUP_BYTES, _memory_limit_bytes(connection) // ROW_GROUP_MEMORY_SHARE))
    days = [row[0] for row in connection.execute(f"SELECT DISTINCT CAST(TimeGenerated AS DATE) FROM {TABLE}").fetchall()]
    for day in days:
        name = NULL_PARTITION if day is None else day.isoformat()
        partition = staging / f"{PARTITION_COLUMN}={name}"
        partition.mkdir()
        condition = "TimeGenerated IS NULL" if day is None else f"CAST(TimeGenerated AS DATE) = DATE '{name}'"
        file = partition / f"part-{identity}-0{PARQUET_SUFFIX}"
        connection.execute(
            f"COPY (SELECT * FROM {TABLE} WHERE {condition}) TO '{_sql_text(str(file))}' "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_SIZE}, ROW_GROUP_SIZE_BYTES {row_group_bytes})"
        )


def _check_memory_limit(memory_limit: str) -> None:
    """Raise NormalizeError unless DuckDB reads ``memory_limit`` as a size of at least 32MB.

    The size is tried on a separate connection, because a tiny limit would
    leave the work database unable to run even the query that reads it back.
    """
    if memory_limit.strip().startswith("-"):
        # DuckDB reads a negative size as no limit at all.
        raise NormalizeError(f"invalid --memory-limit {memory_limit}: give a positive size, such as 512MB or 2GB")
    with duckdb.connect() as probe:
        try:
            probe.execute(f"SET memory_limit = '{_sql_text(memory_limit)}'")
        except duckdb.Error as error:
            raise NormalizeError(
                f"invalid --memory-limit {memory_limit} ({str(error).splitlines()[0]}); "
                "write a size as DuckDB reads it, such as 512MB or 2GB"
            ) from None
        try:
            too_small = _memory_limit_bytes(probe) < MIN_MEMORY_LIMIT_BYTES
        except duckdb.OutOfMemoryException:
            # Below a few kilobytes even reading the setting back runs out of memory.
            too_small = True
        if too_small:
            raise NormalizeError(
                f"--memory-limit {memory_limit} is below 32MB, the size of one batch of lines that the reader "
                "holds; give at least 32MB"
            )


def _memory_limit_bytes(connection: duckdb.DuckDBPyConnection) -> int:
    """Return DuckDB's memory limit in bytes, parsed from the text it reports, such as ``122.0 MiB``."""
    text = connection.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    number, _, unit = text.partition(" ")
    return int(float(number) * _SIZE_UNITS.get(unit, 1))


def _remove_input_files(target: Path, identity: str) -> int:
    """Delete every Parquet file that an earlier run wrote for this input; return how many."""
    removed = 0
    for partition in target.glob(f"{PARTITION_COLUMN}=*"):
        for old in partition.glob(f"part-{identity}-*{PARQUET_SUFFIX}"):
            old.unlink()
            removed += 1
    return removed


def _move_into_place(staging: Path, target: Path) -> list[str]:
    written = []
    for partition in sorted(staging.iterdir()):
        destination = target / partition.name
        destination.mkdir(exist_ok=True)
        for file in sorted(partition.iterdir()):
            os.replace(file, destination / file.name)
            written.append(str(destination / file.name))
    return written


def _write_manifest(target: Path, output: InputOutput, report: FileReport) -> None:
    """Record which input an identity stands for, so that a reader of the dataset can trace its files."""
    try:
        status = os.stat(output.source)
        size, modified = status.st_size, datetime.fromtimestamp(status.st_mtime, timezone.utc).isoformat()
    except OSError:
        size, modified = None, None
    manifest = {
        "identity": output.identity,
        "source": output.source,
        "resolved_path": os.path.realpath(output.source),
        "size": size,
        "modified": modified,
        "format": report.format,
        "lines_read": report.lines_read,
        "rows": output.rows,
        "rejected": report.rejected,
        "skipped": report.skipped,
        "error": report.error,
        "files": [os.path.relpath(file, target) for file in output.files],
        "normalized_at": datetime.now(timezone.utc).isoformat(),
    }
    manifest_path = target / MANIFEST_DIRECTORY / f"{output.identity}.json"
    temporary = manifest_path.with_suffix(".json.partial")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, manifest_path)


def _clear_events(connection: duckdb.DuckDBPyConnection) -> None:
    """Empty the WebSession table so that the next input starts from nothing; its disk blocks are reused."""
    connection.execute(f"DROP TABLE {TABLE}")
    connection.execute(create_table_sql(TABLE))
