"""Convert proxy logs to a WebSession Parquet dataset partitioned by event date, the layout a data lake holds.

>>> from proxyhunt.normalize import normalize
>>> result = normalize(["samples/"], to="lake/websession")   # doctest: +SKIP
>>> [(output.source, output.rows) for output in result.outputs]  # doctest: +SKIP

Memory stays bounded: the rows of an input are parsed into an in-memory DuckDB
table whose buffer manager is capped at ``memory_limit`` (DuckDB spills to disk
beyond it). Whenever the table fills a share of the limit, its rows are
written out as one Parquet file per event date and the table is emptied. So a
large input never sits in memory or in a database file as a whole.

Re-runs are idempotent. The rows of one input go to files named
``part-<identity>-<n>.parquet``, where the identity is derived from the input's
absolute path and ``n`` counts the chunks written for that input. Normalizing
the same path again first removes every file with that identity, in every
partition, so a re-run, or a log that grew since the last run, never
duplicates rows. A log renamed by rotation (``access.log`` to
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

from proxyhunt.formats.dataset_paths import MANIFEST_DIRECTORY, end_hashes
from proxyhunt.formats.loader import TABLE, FileReport, Loader, ProgressCallback, custom_formats, expand_paths
from proxyhunt.formats.parquet import NULL_PARTITION, PARQUET_SUFFIX, PARTITION_COLUMN
from proxyhunt.formats.sql import quote_identifier
from proxyhunt.memory_limit import MemoryLimitError, check_memory_limit, memory_limit_bytes
from proxyhunt.schema import COLUMN_NAMES, create_table_sql

log = logging.getLogger(__name__)

# The process takes about 300 MB besides DuckDB's memory for Python, pyarrow
# and the reader's text batches (measured on 100 MB logs). So 512MB keeps a
# run under 1 GiB of resident memory, and chunked writes need no more.
DEFAULT_MEMORY_LIMIT = "512MB"
# The loader reads text in batches of about 32MB, so DuckDB needs at least that much.
# DuckDB shows a limit in MiB with one decimal, so "32MB" reads back as 30.5 MiB.
MIN_MEMORY_LIMIT_BYTES = 30 * 1024 * 1024
# Below this limit the work database is a file. With a 32MB limit, DuckDB 2.0.1
# ran out of memory on a batch of lines in an in-memory database, and spilled
# to the file fine. 64MB, which DuckDB reads as 61.0 MiB, worked in memory.
# NOTE: 32MB is not always enough even with the file: an 80 MB combined log of
# 330-byte lines ran out of memory at 32MB, before and after chunked writes.
IN_MEMORY_MIN_LIMIT_BYTES = 60 * 1024 * 1024
# Row groups of at most this many rows keep each Parquet file's min/max
# statistics on TimeGenerated narrow enough for engines to skip row groups.
ROW_GROUP_SIZE = 122_880
# COPY buffers a whole row group before compressing it, so row groups are also
# capped at this share of the memory limit. With a 128MB limit and log lines
# of about 180 bytes, a fifth was measured to fit, and row groups of
# ROW_GROUP_SIZE rows ran out of memory.
ROW_GROUP_MEMORY_SHARE = 5
MAX_ROW_GROUP_BYTES = 128 * 1024 * 1024
# The rows parsed so far are written out when DuckDB's memory and spill files
# reach this share of the memory limit. The rest is left for the next batch of
# lines and for the row group that COPY buffers.
FLUSH_MEMORY_SHARE = 3
# zstd at level 1 writes files as small as the default level 3 and about as fast
# as snappy, whose files are about 60% larger (measured by DuckDB 2.0.1 on the
# benchmark's combined and Zeek logs).
PARQUET_COMPRESSION = "zstd, COMPRESSION_LEVEL 1"


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
    files = _outside_dataset(files, target)
    result = NormalizeResult(str(target), list(missing))
    with _work_database(target, memory_limit) as connection:
        loader = Loader(connection, custom_formats(squid_logformat, map_path))
        try:
            for path in files:
                writer = _ChunkWriter(connection, target, path)
                try:
                    report = loader.load(path, format_name=format_name, progress=writer.progress_callback(progress))
                    # An input read without error replaces its earlier rows, also when it now has none,
                    # as a log emptied by copytruncate rotation has.
                    if report.parsed or report.error is None:
                        writer.flush()
                        result.outputs.append(writer.commit(report))
                    result.files.append(report)
                except duckdb.OutOfMemoryException as error:
                    # One file with huge lines must not stop the others; nothing of it is written.
                    log.debug("%s: out of memory at --memory-limit %s: %s", path, memory_limit, str(error).splitlines()[0])
                    result.files.append(
                        FileReport(
                            path,
                            error=(
                                f"out of memory at --memory-limit {memory_limit}, nothing of this file was written; "
                                "raise --memory-limit, such as 2GB, and run normalize on it again"
                            ),
                        )
                    )
                finally:
                    writer.discard()
                _clear_events(connection)
        finally:
            loader.close()
        if rejects_path:
            from proxyhunt.report.jsonl import write_rejects

            write_rejects(connection, rejects_path)
    return result


def _outside_dataset(files: list[str], target: Path) -> list[str]:
    """Return ``files`` without those inside the dataset, which a --to under an input directory would read back."""
    dataset = target.resolve()
    inputs = []
    for path in files:
        if path != "-" and Path(path).resolve().is_relative_to(dataset):
            log.info("%s: skipped, because it is inside the dataset directory %s", path, target)
            continue
        inputs.append(path)
    return inputs


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
    """Open a DuckDB database that spills to a hidden work directory inside the dataset, and remove that after.

    The database is in memory, because its table contains one chunk at a time,
    and inserts into a database file took about 40% longer. Below
    IN_MEMORY_MIN_LIMIT_BYTES it is a file in the work directory instead.
    The work directory sits on the dataset's file system, so that finished
    files are moved into place by rename. Its name starts with a dot, which
    every Parquet reader skips.
    """
    limit_bytes = _check_memory_limit(memory_limit)
    work = Path(tempfile.mkdtemp(prefix=".proxyhunt-work-", dir=target))
    try:
        if limit_bytes < IN_MEMORY_MIN_LIMIT_BYTES:
            connection = duckdb.connect(str(work / "normalize.duckdb"))
        else:
            connection = duckdb.connect()
        try:
            connection.execute(f"SET temp_directory = '{_sql_text(str(work / 'spill'))}'")
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


class _ChunkWriter:
    """Writes the rows of one input to a staging directory chunk by chunk, then swaps them in for its earlier files.

    ``progress_callback`` returns the callback that the loader calls after
    each batch of lines. It empties the WebSession table into Parquet files
    whenever DuckDB's memory and spill files reach 1/FLUSH_MEMORY_SHARE of
    the memory limit, so the table never contains more than a chunk of the
    input. DuckDB compresses the table, so a chunk is more text than that.
    Below IN_MEMORY_MIN_LIMIT_BYTES the table lives in a database file,
    which this does not measure, so the whole input is one chunk. Each
    flush writes ``part-<identity>-<n>.parquet`` in every event date it
    contains. The column counts and time range of the flushed rows are kept,
    because the loader describes only the rows still in the table.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, target: Path, path: str) -> None:
        self.connection = connection
        self.target = target
        self.path = path
        self.identity = input_identity(path)
        # The input's size and time before it is read, which its manifest records.
        self.source_status = _status(path)
        self.staging = Path(tempfile.mkdtemp(prefix=f".staging-{self.identity}-", dir=target))
        self.chunks = 0
        self.flush_bytes = memory_limit_bytes(connection) // FLUSH_MEMORY_SHARE
        self.row_group_bytes = max(
            1024 * 1024, min(MAX_ROW_GROUP_BYTES, memory_limit_bytes(connection) // ROW_GROUP_MEMORY_SHARE)
        )
        self.column_counts = [0] * len(COLUMN_NAMES)
        self.first_seen: datetime | None = None
        self.last_seen: datetime | None = None

    def progress_callback(self, progress: ProgressCallback | None) -> ProgressCallback:
        def after_batch(raw_bytes: int) -> None:
            if progress is not None:
                progress(raw_bytes)
            if self._stored_bytes() >= self.flush_bytes:
                self.flush()

        return after_batch

    def _stored_bytes(self) -> int:
        """Return the bytes that DuckDB uses in memory and in its spill files, where the table's blocks are kept."""
        # NOTE: DuckDB 2.0.1 kept its spill files at their size after the table
        # was emptied, so once it has spilled, every batch of lines is a chunk.
        query = (
            "SELECT (SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()) "
            "+ (SELECT coalesce(sum(size), 0) FROM duckdb_temporary_files())"
        )
        return self.connection.execute(query).fetchall()[0][0]

    def flush(self) -> None:
        """Write the rows in the WebSession table as the next chunk, one Parquet file per event date, and empty it.

        Each date is its own ``COPY``. DuckDB's ``PARTITION_BY`` keeps a row
        group open for every partition at once, so a chunk that spans many
        days would need that many row groups in memory. One date at a time
        needs one.
        """
        # NOTE: the rows are parsed into a table and read again by COPY. Writing
        # each parsed batch straight to Parquet would save that second pass.
        self._count_columns()
        days = [row[0] for row in self.connection.execute(f"SELECT DISTINCT CAST(TimeGenerated AS DATE) FROM {TABLE}").fetchall()]
        for day in days:
            name = NULL_PARTITION if day is None else day.isoformat()
            partition = self.staging / f"{PARTITION_COLUMN}={name}"
            partition.mkdir(exist_ok=True)
            condition = "TimeGenerated IS NULL" if day is None else f"CAST(TimeGenerated AS DATE) = DATE '{name}'"
            file = partition / f"part-{self.identity}-{self.chunks}{PARQUET_SUFFIX}"
            self.connection.execute(
                f"COPY (SELECT * FROM {TABLE} WHERE {condition}) TO '{_sql_text(str(file))}' "
                f"(FORMAT parquet, COMPRESSION {PARQUET_COMPRESSION}, ROW_GROUP_SIZE {ROW_GROUP_SIZE}, "
                f"ROW_GROUP_SIZE_BYTES {self.row_group_bytes})"
            )
        if days:
            self.chunks += 1
        _clear_events(self.connection)

    def _count_columns(self) -> None:
        counts = ", ".join(f"count({quote_identifier(column)})" for column in COLUMN_NAMES)
        row = self.connection.execute(f"SELECT {counts}, min(TimeGenerated), max(TimeGenerated) FROM {TABLE}").fetchall()[0]
        self.column_counts = [total + count for total, count in zip(self.column_counts, row)]
        first, last = row[-2], row[-1]
        if first is not None and (self.first_seen is None or first < self.first_seen):
            self.first_seen = first
        if last is not None and (self.last_seen is None or last > self.last_seen):
            self.last_seen = last

    def commit(self, report: FileReport) -> InputOutput:
        """Replace the input's files from earlier runs with the staged chunks, and describe all of them in ``report``."""
        report.columns = [column for column, count in zip(COLUMN_NAMES, self.column_counts) if count]
        report.first_seen, report.last_seen = self.first_seen, self.last_seen
        replaced = _remove_input_files(self.target, self.identity)
        written = _move_into_place(self.staging, self.target)

        output = InputOutput(self.path, self.identity, report.parsed, tuple(written), replaced)
        _write_manifest(self.target, output, report, self.source_status)
        log.info(
            "%s: wrote %d events to %d files in %s, replacing %d earlier files",
            self.path, report.parsed, len(written), self.target, replaced,
        )
        return output

    def discard(self) -> None:
        """Remove the staging directory with any chunk that was not committed."""
        shutil.rmtree(self.staging, ignore_errors=True)


def _check_memory_limit(memory_limit: str) -> int:
    """Return ``memory_limit`` in bytes; raise NormalizeError unless DuckDB reads it as a size of at least 32MB."""
    try:
        return check_memory_limit(
            memory_limit,
            MIN_MEMORY_LIMIT_BYTES,
            "is below 32MB, the size of one batch of lines that the reader holds; give at least 32MB",
        )
    except MemoryLimitError as error:
        raise NormalizeError(str(error)) from None


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


def _status(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _write_manifest(target: Path, output: InputOutput, report: FileReport, status: os.stat_result | None) -> None:
    """Record which input an identity stands for, so that a reader of the dataset can trace its files.

    ``status`` is the input's, taken before it was read. A log that grew while
    it was read then counts as grown since, and a hunt reads it in full
    rather than take the dataset's copy for all of it.
    """
    if status is not None:
        size, modified = status.st_size, datetime.fromtimestamp(status.st_mtime, timezone.utc).isoformat()
    else:
        size, modified = None, None
    # The ends of the file as it was before it was read, so that a hunt can tell a log that only grew since.
    ends = end_hashes(output.source, size) if size is not None else None
    manifest = {
        "identity": output.identity,
        "source": output.source,
        "resolved_path": os.path.realpath(output.source),
        "size": size,
        "modified": modified,
        "head_sha256": ends[0] if ends else None,
        "tail_sha256": ends[1] if ends else None,
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
    """Empty the WebSession table so that the next chunk or input starts from nothing."""
    connection.execute(f"DROP TABLE {TABLE}")
    connection.execute(create_table_sql(TABLE))
