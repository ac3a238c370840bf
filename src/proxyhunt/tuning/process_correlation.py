"""The hunt's process step: read the process-creation logs and asset list, then correlate the findings.

``correlate_hits`` is what ``proxyhunt.hunt`` calls between running the rules
and applying the Sigma filters. Problems with single files are kept in the
result, never raised, as for proxy logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from proxyhunt.process.event import ProcessLogReport
from proxyhunt.process.reader import read_process_logs
from proxyhunt.tuning.correlate import CorrelationSummary, correlate_findings
from proxyhunt.tuning.durations import format_duration
from proxyhunt.tuning.hosts import AssetFileError, HostDirectory, load_assets
from proxyhunt.tuning.matching import AMBIGUOUS, FOUND, NOT_FOUND, CorrelationSettings


@dataclass
class ProcessCorrelation:
    """The process logs read and the matches made, for the report and the exit status."""

    settings: CorrelationSettings
    reports: list[ProcessLogReport] = field(default_factory=list)
    summary: CorrelationSummary = field(default_factory=CorrelationSummary)
    assets: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def failed_files(self) -> list[ProcessLogReport]:
        return [report for report in self.reports if report.error]

    def errors(self) -> list[str]:
        """Return one message per process log or asset file that could not be read."""
        return [f"process log {report.error}" for report in self.failed_files] + list(self.problems)

    def describe(self) -> list[str]:
        """Return one line per process log read and a closing line on the correlation, for the terminal."""
        lines = []
        for report in self.reports:
            if report.error:
                continue
            rejected = f", {len(report.rejected)} rejected" if report.rejected else ""
            lines.append(
                f"process log {report.path}: {report.format}, {report.records} records, "
                f"{report.process_events} process creations, {report.rclone_processes} rclone{rejected}"
            )
        if self.summary.ran:
            counts = self.summary.counts
            lines.append(
                f"process correlation (window {format_duration(self.settings.window)}, clock skew "
                f"{format_duration(self.settings.clock_skew)}): {self.summary.events} proxy events, "
                f"{counts[FOUND]} matched to an rclone process, {counts[AMBIGUOUS]} ambiguous, "
                f"{counts[NOT_FOUND]} with no process found"
            )
        if self.summary.processes_without_host:
            lines.append(
                f"{self.summary.processes_without_host} rclone processes have no host name and cannot be "
                "correlated (for auditd, set name_format = hostname in auditd.conf)"
            )
        return lines


def correlate_hits(
    connection: duckdb.DuckDBPyConnection,
    process_logs: list[str] | None,
    assets_path: str | None = None,
    settings: CorrelationSettings | None = None,
) -> ProcessCorrelation | None:
    """Add the process columns to ``findings``, filled when ``process_logs`` are given; None when none are."""
    settings = settings or CorrelationSettings()
    if not process_logs:
        correlate_findings(connection, None)
        return None

    result = ProcessCorrelation(settings)
    hosts = HostDirectory()
    if assets_path:
        try:
            result.assets = load_assets(assets_path, hosts)
        except AssetFileError as error:
            result.problems.append(f"{error}; the hunt continues without the asset list")
    logs = read_process_logs(process_logs)
    result.reports = logs.reports
    result.summary = correlate_findings(connection, logs, hosts, settings)
    return result
