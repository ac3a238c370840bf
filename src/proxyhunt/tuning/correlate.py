"""Join each proxy finding to the rclone process behind it, as ``Process*`` and ``Rclone*`` columns of ``findings``.

This runs after the rules have filled the ``findings`` table and before the
Sigma filters run, so that filters can test the process's command line,
user, config file and destination. Each event is matched once (several rules
may have found the same event) by ``matching.match_request``.

Without process-creation logs the columns are still added, empty, so that a
filter testing them is valid SQL and simply matches nothing. ``TimeOfDayUtc``
(``HH:MM`` of ``TimeGenerated``) is added too, for exclusions that allow a
nightly time window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from proxyhunt.engines.duckdb import FINDINGS_TABLE
from proxyhunt.formats.sql import quote_identifier
from proxyhunt.process.event import ProcessLogSet
from proxyhunt.process.recognize import RcloneProcess
from proxyhunt.tuning.hosts import HostDirectory
from proxyhunt.tuning.matching import (
    AMBIGUOUS,
    FOUND,
    NOT_FOUND,
    CorrelationSettings,
    Match,
    ProcessIndex,
    ProxyRequest,
    match_request,
)

log = logging.getLogger(__name__)

# The columns that correlation adds, in order, with their DuckDB types.
PROCESS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ProcessMatch", "VARCHAR"),
    ("ProcessId", "BIGINT"),
    ("ProcessCommandLine", "VARCHAR"),
    ("ProcessImage", "VARCHAR"),
    ("ProcessOriginalFileName", "VARCHAR"),
    ("ProcessUser", "VARCHAR"),
    ("ProcessHostname", "VARCHAR"),
    ("ProcessStartTime", "TIMESTAMP"),
    ("ProcessParentImage", "VARCHAR"),
    ("ProcessSourceFile", "VARCHAR"),
    ("ProcessSourceLine", "BIGINT"),
    ("RcloneSubcommand", "VARCHAR"),
    ("RcloneSource", "VARCHAR"),
    ("RcloneDestination", "VARCHAR"),
    ("RcloneDestinationRemote", "VARCHAR"),
    ("RcloneDestinationBucket", "VARCHAR"),
    ("RcloneConfig", "VARCHAR"),
    ("RcloneUserAgent", "VARCHAR"),
    ("RcloneFlags", "VARCHAR"),
)
TIME_OF_DAY_COLUMN = "TimeOfDayUtc"

_REQUEST_COLUMNS = ("SourceFile", "SourceLine", "TimeGenerated", "SrcIpAddr", "SrcHostname", "SrcUsername",
                    "DstHostname", "UrlPath", "HttpUserAgent")


@dataclass
class CorrelationSummary:
    """How many distinct proxy events were matched to a process, not matched, or ambiguous."""

    events: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {FOUND: 0, NOT_FOUND: 0, AMBIGUOUS: 0})
    processes_without_host: int = 0
    ran: bool = False


def add_process_columns(connection: duckdb.DuckDBPyConnection) -> None:
    """Add the ``Process*``, ``Rclone*`` and ``TimeOfDayUtc`` columns to ``findings`` when missing."""
    for name, sql_type in (*PROCESS_COLUMNS, (TIME_OF_DAY_COLUMN, "VARCHAR")):
        connection.execute(f"ALTER TABLE {FINDINGS_TABLE} ADD COLUMN IF NOT EXISTS {quote_identifier(name)} {sql_type}")
    connection.execute(
        f"UPDATE {FINDINGS_TABLE} SET {TIME_OF_DAY_COLUMN} = strftime(TimeGenerated, '%H:%M') "
        "WHERE TimeGenerated IS NOT NULL"
    )


def correlate_findings(
    connection: duckdb.DuckDBPyConnection,
    logs: ProcessLogSet | None,
    hosts: HostDirectory | None = None,
    settings: CorrelationSettings | None = None,
) -> CorrelationSummary:
    """Fill the process columns of every finding that came from a proxy event; ``logs`` None only adds them."""
    add_process_columns(connection)
    summary = CorrelationSummary()
    if logs is None:
        return summary

    hosts = hosts or HostDirectory()
    hosts.add_addresses(logs.addresses)
    index = ProcessIndex.build(logs.processes, logs.exits, hosts)
    summary.processes_without_host = index.without_host
    settings = settings or CorrelationSettings()

    columns = ", ".join(_REQUEST_COLUMNS)
    rows = connection.execute(
        f"SELECT DISTINCT {columns} FROM {FINDINGS_TABLE} WHERE SourceFile IS NOT NULL AND SourceLine IS NOT NULL"
    ).fetchall()
    matched: list[tuple] = []
    for row in rows:
        values = dict(zip(_REQUEST_COLUMNS, row))
        request = ProxyRequest(
            time=values["TimeGenerated"],
            src_ip=values["SrcIpAddr"],
            src_hostname=values["SrcHostname"],
            src_username=values["SrcUsername"],
            dst_hostname=values["DstHostname"],
            url_path=values["UrlPath"],
            user_agent=values["HttpUserAgent"],
        )
        match = match_request(request, index, settings)
        summary.counts[match.status] += 1
        matched.append((values["SourceFile"], values["SourceLine"], *_column_values(match)))
    summary.events = len(rows)
    summary.ran = True
    _write_matches(connection, matched)
    log.info("process correlation: %d events, %s", summary.events,
             ", ".join(f"{count} {status}" for status, count in summary.counts.items()))
    return summary


def _column_values(match: Match) -> tuple:
    """Return the values of ``PROCESS_COLUMNS`` for one match; only ``ProcessMatch`` when no process is assigned."""
    process: RcloneProcess | None = match.process
    if process is None:
        return (match.text, *([None] * (len(PROCESS_COLUMNS) - 1)))
    event = process.event
    command = process.command
    destination = command.destination
    return (
        match.text,
        event.process_id,
        event.command_line,
        event.image,
        event.original_file_name,
        event.user,
        event.hostname,
        event.time,
        event.parent_image,
        event.source_file,
        event.source_line,
        command.subcommand,
        command.source.raw if command.source else None,
        destination.raw if destination else None,
        destination.remote if destination else None,
        destination.bucket if destination else None,
        command.config,
        command.user_agent,
        command.flags_text or None,
    )


def _write_matches(connection: duckdb.DuckDBPyConnection, matched: list[tuple]) -> None:
    """Copy the matches into ``findings`` through a temporary table joined on SourceFile and SourceLine."""
    if not matched:
        return
    names = ["SourceFile", "SourceLine", *(name for name, _ in PROCESS_COLUMNS)]
    types = {"SourceFile": pa.string(), "SourceLine": pa.int64(), "ProcessId": pa.int64(),
             "ProcessSourceLine": pa.int64(), "ProcessStartTime": pa.timestamp("us")}
    arrays = [
        pa.array([row[position] for row in matched], type=types.get(name, pa.string()))
        for position, name in enumerate(names)
    ]
    process_matches = pa.Table.from_arrays(arrays, names=names)
    connection.register("process_matches", process_matches)
    try:
        assignments = ", ".join(
            f"{quote_identifier(name)} = process_matches.{quote_identifier(name)}" for name, _ in PROCESS_COLUMNS
        )
        connection.execute(
            f"UPDATE {FINDINGS_TABLE} SET {assignments} FROM process_matches "
            f"WHERE {FINDINGS_TABLE}.SourceFile = process_matches.SourceFile "
            f"AND {FINDINGS_TABLE}.SourceLine = process_matches.SourceLine"
        )
    finally:
        connection.unregister("process_matches")
