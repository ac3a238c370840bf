"""The hunt as a Python API: the same steps, names and results as ``proxyhunt hunt``.

>>> from proxyhunt.hunt import hunt
>>> result = hunt(["samples/"])            # doctest: +SKIP
>>> [finding["RuleTitle"] for finding in result.findings]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from proxyhunt.engines.duckdb import FINDINGS_TABLE, CompiledRule, compile_rules, create_findings_table, run_rules
from proxyhunt.formats.loader import TABLE, FileReport, Loader, ProgressCallback, expand_paths
from proxyhunt.rules.loader import RuleProblem, RuleSet, load_rules

log = logging.getLogger(__name__)

# A file where at least this share of requests are CONNECT tunnels shows almost
# no user agents of HTTPS traffic: the proxy does not intercept TLS.
CONNECT_SHARE_WARNING = 0.9


@dataclass(frozen=True)
class CoverageGap:
    """A rule that could not see all of its fields in one file."""

    path: str
    rule_title: str
    missing: tuple[str, ...]
    blind: bool

    def __str__(self) -> str:
        columns = ", ".join(self.missing)
        if self.blind:
            return f"{self.path}: rule '{self.rule_title}' could not match: the file carries no {columns}"
        return f"{self.path}: rule '{self.rule_title}' was only partly evaluated: the file carries no {columns}"


@dataclass(frozen=True)
class SourceSummary:
    """Hits of one client (address and user) across all rules."""

    src_ip: str | None
    src_user: str | None
    hits: int
    bytes_uploaded: int | None
    bytes_downloaded: int | None
    destinations: int
    first_seen: datetime | None
    last_seen: datetime | None
    # Hits whose log records no request size (Squid native, combined): left out of bytes_uploaded.
    upload_unknown: int = 0


@dataclass
class HuntResult:
    """Everything a hunt produced: inputs, rules, findings and what could not be seen."""

    files: list[FileReport]
    ruleset: RuleSet
    compiled: list[CompiledRule]
    findings: list[dict[str, Any]]
    sources: list[SourceSummary]
    coverage: list[CoverageGap]
    notes: list[str] = field(default_factory=list)
    hits_per_rule: dict[str, int] = field(default_factory=dict)

    @property
    def rule_problems(self) -> list[RuleProblem]:
        """Rules that were requested but cannot run, with their reasons."""
        problems = list(self.ruleset.problems)
        for rule in self.compiled:
            if rule.error:
                problems.append(RuleProblem(rule.loaded.path, rule.error, rule.loaded.title))
        return problems

    @property
    def blind(self) -> bool:
        """True when events were read but no file carries any field that the rules read."""
        read_files = {report.path for report in self.files if report.parsed}
        blind_files = {gap.path for gap in self.coverage if gap.blind}
        return bool(read_files) and read_files <= blind_files

    @property
    def failed_files(self) -> list[FileReport]:
        return [report for report in self.files if report.error]


def hunt(
    paths: list[str],
    rule_paths: list[str] | None = None,
    include_bundled: bool = True,
    format_name: str | None = None,
    progress: ProgressCallback | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> HuntResult:
    """Load the logs at ``paths``, run the rules over them and return the findings.

    ``format_name`` forces one format for every file; by default each file's
    format is detected from its content. Problems with single files or rules are
    reported in the result, never raised.
    """
    connection = connection or duckdb.connect()
    ruleset = load_rules(list(rule_paths or []), include_bundled=include_bundled)
    compiled = compile_rules(ruleset.rules)

    loader = Loader(connection)
    files, missing = expand_paths(paths)
    reports = list(missing)
    try:
        for path in files:
            reports.append(loader.load(path, format_name=format_name, progress=progress))
    finally:
        loader.close()

    hits = run_rules(connection, compiled)
    create_findings_table(connection)
    findings = _fetch_findings(connection)
    _flag_damaged_sources(findings, reports)
    result = HuntResult(
        files=reports,
        ruleset=ruleset,
        compiled=compiled,
        findings=findings,
        sources=_summarize_sources(connection),
        coverage=_coverage_gaps(reports, compiled),
        hits_per_rule=hits,
    )
    result.notes = _visibility_notes(connection, reports)
    return result


def _fetch_findings(connection: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cursor = connection.execute(f"SELECT * FROM {FINDINGS_TABLE} ORDER BY TimeGenerated NULLS LAST, SourceFile, SourceLine")
    names = [description[0] for description in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _flag_damaged_sources(findings: list[dict[str, Any]], reports: list[FileReport]) -> None:
    """Set ``SourceDamaged`` on each finding: true when its line was decoded from a damaged archive member."""
    suspect = {report.path: report.suspect_lines for report in reports if report.suspect_lines}
    for finding in findings:
        lines = suspect.get(finding["SourceFile"])
        finding["SourceDamaged"] = bool(lines and lines[0] <= finding["SourceLine"] <= lines[1])


def _summarize_sources(connection: duckdb.DuckDBPyConnection) -> list[SourceSummary]:
    # An event that several rules match counts once for bytes and hits.
    rows = connection.execute(
        f"""
        WITH events AS (
            SELECT DISTINCT SourceFile, SourceLine, SrcIpAddr, SrcUsername, DstHostname, DstIpAddr,
                   SrcBytes, DstBytes, TimeGenerated
            FROM {FINDINGS_TABLE}
        )
        SELECT SrcIpAddr, SrcUsername, count(*), sum(SrcBytes), sum(DstBytes),
               count(DISTINCT coalesce(DstHostname, DstIpAddr)), min(TimeGenerated), max(TimeGenerated),
               count(*) FILTER (WHERE SrcBytes IS NULL)
        FROM events
        GROUP BY SrcIpAddr, SrcUsername
        ORDER BY sum(SrcBytes) DESC NULLS LAST, count(*) DESC, SrcIpAddr
        """
    ).fetchall()
    return [SourceSummary(*row) for row in rows]


def _coverage_gaps(reports: list[FileReport], compiled: list[CompiledRule]) -> list[CoverageGap]:
    gaps = []
    for report in reports:
        if not report.parsed:
            continue
        present = set(report.columns)
        for rule in compiled:
            if not rule.runnable or not rule.columns:
                continue
            missing = tuple(sorted(rule.columns - present))
            if missing:
                blind = not (rule.columns & present)
                gaps.append(CoverageGap(report.path, rule.loaded.title, missing, blind))
    return gaps


def _visibility_notes(connection: duckdb.DuckDBPyConnection, reports: list[FileReport]) -> list[str]:
    """Return notes about traffic the proxy could not see inside, such as untapped TLS tunnels."""
    notes = []
    rows = connection.execute(
        f"SELECT SourceFile, count(*), count(*) FILTER (WHERE upper(HttpRequestMethod) = 'CONNECT') "
        f"FROM {TABLE} GROUP BY SourceFile ORDER BY SourceFile"
    ).fetchall()
    for path, total, connects in rows:
        if total and connects / total >= CONNECT_SHARE_WARNING:
            notes.append(
                f"{path}: {connects} of {total} requests are CONNECT tunnels; without TLS interception the proxy "
                "never sees the user agent or URL of HTTPS requests, so rclone's user agent cannot show there"
            )
    return notes
