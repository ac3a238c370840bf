"""WebSession datasets in Parquet: the layout that ``proxyhunt normalize`` writes, and reading it into DuckDB.

A dataset is a directory of Parquet files partitioned Hive-style by the UTC
date of each event, ``EventDate=YYYY-MM-DD/part-<input>-<n>.parquet``, the
layout that Spark, Databricks and DuckDB read as one table. Events without a
time sit in ``EventDate=__HIVE_DEFAULT_PARTITION__``, the name Hive and Spark
give a NULL partition value. A single ``.parquet`` file is a dataset too.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import duckdb

from proxyhunt.formats.loader import TABLE, FileReport
from proxyhunt.formats.sql import quote_identifier, quote_literal
from proxyhunt.schema import COLUMN_NAMES, COLUMN_TYPES

log = logging.getLogger(__name__)

PARTITION_COLUMN = "EventDate"
PARQUET_SUFFIX = ".parquet"
DATASET_FORMAT = "parquet"
DATASET_TITLE = "WebSession Parquet dataset"
# The directory name that Hive, Spark and DuckDB write for a NULL partition value.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

# Hive partition directories are not read as columns: EventDate is derived from
# TimeGenerated, and a dataset written by another tool may partition otherwise.
_READ_PARQUET = "read_parquet(?, hive_partitioning = false, union_by_name = true)"
_PARTITION_DIRECTORY = re.compile(rf"^{PARTITION_COLUMN}=(.+)$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class TimeRange:
    """The events to hunt: ``since <= TimeGenerated < until`` in UTC, either end open when None.

    Events without a time fall outside every range that has an end.
    """

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> TimeRange:
        """Build a range from ``--since`` and ``--until`` text; raise ValueError with the fix.

        A date alone (``2026-11-03``) means the whole day: ``--since`` starts
        at its first instant and ``--until`` includes it to its last. A time
        (``2026-11-03T14:00:00``, ``2026-11-03 14:00``) is taken as UTC unless
        it carries an offset, and ``--until`` then excludes that instant.
        """
        start = _parse_bound(since, "--since", end_of_day=False) if since else None
        end = _parse_bound(until, "--until", end_of_day=True) if until else None
        if start is not None and end is not None and start >= end:
            raise ValueError(f"--since {since} is not before --until {until}; swap them or widen the range")
        return cls(start, end)

    @classmethod
    def of(cls, since: str | datetime | None, until: str | datetime | None) -> TimeRange:
        """Build a range from text as ``parse`` reads it, or from datetimes (naive ones are UTC, ``until`` excluded)."""
        if not isinstance(since, datetime) and not isinstance(until, datetime):
            return cls.parse(since, until)
        start = _as_utc(since) if isinstance(since, datetime) else cls.parse(since, None).since
        end = _as_utc(until) if isinstance(until, datetime) else cls.parse(None, until).until
        if start is not None and end is not None and start >= end:
            raise ValueError(f"since {start} is not before until {end}; swap them or widen the range")
        return cls(start, end)

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def sql_condition(self, time_column: str = "TimeGenerated") -> str:
        """Return a condition on a TIMESTAMP column, in SQL that both DuckDB and Spark SQL accept.

        The literals are formatted from datetimes here, never from user text.
        """
        parts = []
        if self.since is not None:
            parts.append(f"{time_column} >= TIMESTAMP '{self.since.isoformat(sep=' ')}'")
        if self.until is not None:
            parts.append(f"{time_column} < TIMESTAMP '{self.until.isoformat(sep=' ')}'")
        return " AND ".join(parts) if parts else "true"

    def partition_condition(self, date_column: str = PARTITION_COLUMN) -> str:
        """Return the condition on the event-date partition column that lets an engine skip whole partitions."""
        first, last = self.first_date, self.last_date
        parts = []
        if first is not None:
            parts.append(f"{date_column} >= DATE '{first.isoformat()}'")
        if last is not None:
            parts.append(f"{date_column} <= DATE '{last.isoformat()}'")
        return " AND ".join(parts) if parts else "true"

    @property
    def first_date(self) -> date | None:
        return self.since.date() if self.since is not None else None

    @property
    def last_date(self) -> date | None:
        # until is exclusive, so an until at midnight ends on the day before.
        return (self.until - timedelta(microseconds=1)).date() if self.until is not None else None

    def includes_date(self, day: date) -> bool:
        """True when events of this UTC date can fall in the range."""
        first, last = self.first_date, self.last_date
        return (first is None or day >= first) and (last is None or day <= last)

    def __str__(self) -> str:
        since = self.since.isoformat() + "Z" if self.since else "the first event"
        until = self.until.isoformat() + "Z" if self.until else "the last event"
        return f"from {since} until before {until}"


def _parse_bound(text: str, option: str, end_of_day: bool) -> datetime:
    value = text.strip()
    if _DATE_ONLY.match(value):
        day = date.fromisoformat(value)
        start = datetime.combine(day, time())
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is not a date or time; write a UTC date such as 2026-11-03 "
            "or a time such as 2026-11-03T14:00:00Z"
        ) from None
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    """Return a datetime as naive UTC, the way WebSession stores times; a naive one is taken as UTC already."""
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def restrict_to_range(connection: duckdb.DuckDBPyConnection, time_range: TimeRange) -> int:
    """Delete the events outside ``time_range`` from the WebSession table; return how many were deleted."""
    if not time_range.bounded:
        return 0
    condition = time_range.sql_condition(quote_identifier("TimeGenerated"))
    return connection.execute(f"DELETE FROM {TABLE} WHERE NOT coalesce({condition}, false)").fetchall()[0][0]


def is_parquet_dataset(path: str) -> bool:
    """True when ``path`` is a ``.parquet`` file or a directory with a ``.parquet`` file below it."""
    if os.path.isfile(path):
        return path.lower().endswith(PARQUET_SUFFIX)
    if not os.path.isdir(path):
        return False
    return any(True for _ in _parquet_files_with_dates(path))


def dataset_files(path: str, time_range: TimeRange) -> tuple[list[str], int]:
    """Return the Parquet files of a dataset that can hold events in ``time_range``, and how many were pruned.

    Partition directories (``EventDate=...``) outside the range are skipped by
    name, without opening their files. Hidden entries and those starting with
    ``_`` (the ``_inputs`` manifests, Spark's ``_SUCCESS``) are not data.
    """
    if os.path.isfile(path):
        return [path], 0
    kept: list[str] = []
    pruned = 0
    for file, day in _parquet_files_with_dates(path):
        if day is not None and not time_range.includes_date(day):
            pruned += 1
        elif day is None and time_range.bounded and _in_null_partition(file):
            pruned += 1
        else:
            kept.append(file)
    return kept, pruned


def _parquet_files_with_dates(root: str):
    """Yield each visible Parquet file below ``root`` in sorted order, with the date of its partition or None."""
    for directory, subdirectories, files in os.walk(root, followlinks=True):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith((".", "_")))
        day = _partition_date(Path(directory).relative_to(root).parts)
        for name in sorted(files):
            if name.lower().endswith(PARQUET_SUFFIX) and not name.startswith((".", "_")):
                yield os.path.join(directory, name), day


def _partition_date(parts: tuple[str, ...]) -> date | None:
    for part in parts:
        match = _PARTITION_DIRECTORY.match(part)
        if match and match.group(1) != NULL_PARTITION:
            try:
                return date.fromisoformat(match.group(1))
            except ValueError:
                return None
    return None


def _in_null_partition(file: str) -> bool:
    return f"{PARTITION_COLUMN}={NULL_PARTITION}" in Path(file).parts


def load_parquet_dataset(
    connection: duckdb.DuckDBPyConnection, path: str, time_range: TimeRange, excluded: frozenset[str] = frozenset()
) -> FileReport:
    """Insert the events of a Parquet dataset that fall in ``time_range`` into the WebSession table.

    Columns are matched by name and cast to the WebSession types, and a
    WebSession column that the dataset lacks is NULL, except SourceFile,
    which then names the dataset. Returns a report whose
    ``parsed`` count is the number of events inserted. A dataset that cannot
    be read is reported in ``error``, never raised.
    """
    report, select = dataset_select(connection, path, time_range, excluded)
    if select is not None:
        try:
            connection.execute(f"INSERT INTO {TABLE} BY NAME {select}")
        except duckdb.Error as error:
            report.error = f"cannot read the Parquet dataset ({str(error).splitlines()[0]}); check that its files are complete"
    return report


def attach_parquet_datasets(
    connection: duckdb.DuckDBPyConnection, paths: list[str], time_range: TimeRange, excluded: frozenset[str] = frozenset()
) -> list[FileReport]:
    """Make the WebSession table a view over Parquet datasets, so that rules read the files in place.

    Copying a dataset into an in-memory table costs memory in proportion to
    the dataset. A view lets DuckDB stream each rule's scan instead, with the
    rule's columns and conditions pushed down into the Parquet reader. The
    table can then only be read, which is all a hunt does when every input
    is a dataset. Returns one report per dataset, as ``load_parquet_dataset`` does.
    """
    reports = []
    selects = []
    for path in paths:
        report, select = dataset_select(connection, path, time_range, excluded)
        reports.append(report)
        if select is not None:
            selects.append(select)
    if selects:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.execute(f"CREATE VIEW {TABLE} AS " + " UNION ALL BY NAME ".join(f"({select})" for select in selects))
    return reports


def dataset_select(
    connection: duckdb.DuckDBPyConnection, path: str, time_range: TimeRange, excluded: frozenset[str] = frozenset()
) -> tuple[FileReport, str | None]:
    """Return the report of a Parquet dataset and the SELECT of its WebSession rows in ``time_range``.

    Files whose resolved paths are in ``excluded`` are left out, such as the
    older copy of a log that the hunt reads in full as a log. The SELECT
    names its files as literals, so that it can define a view.
    It is None when the dataset cannot be read, and the report's ``error``
    gives the reason.
    """
    report = FileReport(path, format=DATASET_FORMAT, format_title=DATASET_TITLE, confidence=1.0)
    files, pruned = dataset_files(path, time_range)
    if excluded:
        files = [file for file in files if os.path.realpath(file) not in excluded]
    if pruned:
        log.info("%s: skipped %d Parquet files in partitions outside %s", path, pruned, time_range)
    if not files:
        if not pruned:
            report.error = "the dataset contains no .parquet files; write one with proxyhunt normalize"
        return report, None

    try:
        present = _dataset_columns(connection, files)
        if not present & set(COLUMN_NAMES):
            report.error = (
                "no column of the dataset is a WebSession column (TimeGenerated, SrcIpAddr, HttpUserAgent ...); "
                "write the dataset with proxyhunt normalize"
            )
            return report, None
        if time_range.bounded and "TimeGenerated" not in present:
            report.error = "the dataset has no TimeGenerated column, so --since and --until cannot select its events"
            return report, None

        select_list = ", ".join(_column_expression(name, present, path) for name in COLUMN_NAMES)
        where = time_range.sql_condition("CAST(TimeGenerated AS TIMESTAMP)")
        _describe(connection, report, files, present, where)
    except duckdb.Error as error:
        report.error = f"cannot read the Parquet dataset ({str(error).splitlines()[0]}); check that its files are complete"
        return report, None

    file_list = "[" + ", ".join(quote_literal(file) for file in files) + "]"
    source = f"read_parquet({file_list}, hive_partitioning = false, union_by_name = true)"
    return report, f"SELECT {select_list} FROM {source} WHERE {where}"


def _column_expression(name: str, present: set[str], path: str) -> str:
    """Return the select item for one WebSession column; SourceFile falls back to the dataset's path."""
    value = quote_identifier(name) if name in present else "NULL"
    if name == "SourceFile":
        value = f"coalesce({value}, {quote_literal(path)})"
    return f"CAST({value} AS {COLUMN_TYPES[name]}) AS {quote_identifier(name)}"


def _dataset_columns(connection: duckdb.DuckDBPyConnection, files: list[str]) -> set[str]:
    rows = connection.execute(f"DESCRIBE SELECT * FROM {_READ_PARQUET}", [files]).fetchall()
    return {row[0] for row in rows}


def _describe(
    connection: duckdb.DuckDBPyConnection, report: FileReport, files: list[str], present: set[str], where: str
) -> None:
    """Fill the report's counts, columns and time span from the dataset rows that ``where`` selects.

    The counts come from a second, columnar scan of the files rather than from
    the WebSession table, which may already hold events of other inputs.
    """
    counts = ", ".join(f"count({quote_identifier(name)})" if name in present else "0" for name in COLUMN_NAMES)
    times = "CAST(TimeGenerated AS TIMESTAMP)" if "TimeGenerated" in present else "NULL"
    row = connection.execute(
        f"SELECT count(*), {counts}, min({times}), max({times}) FROM {_READ_PARQUET} WHERE {where}",
        [files],
    ).fetchall()[0]
    report.parsed = report.lines_read = row[0]
    report.columns = [name for name, count in zip(COLUMN_NAMES, row[1:-2]) if count]
    report.first_seen, report.last_seen = row[-2], row[-1]
