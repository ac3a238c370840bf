"""The hunt as a Python API: the same steps, names and results as ``proxyhunt hunt``.

>>> from proxyhunt.hunt import hunt
>>> result = hunt(["samples/"])            # doctest: +SKIP
>>> [finding["RuleTitle"] for finding in result.findings]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from proxyhunt.engines.correlation import CompiledCorrelation, compile_correlations
from proxyhunt.engines.prefilter import rule_set_literals
from proxyhunt.engines.duckdb import (
    FINDINGS_TABLE,
    RULE_TYPE_DETECTION,
    VERDICT_ALERT,
    VERDICT_SUPPRESSED,
    CompiledRule,
    compile_rules,
    create_findings_table,
    drop_correlated_rule_findings,
    fetch_findings,
    findings_columns,
    run_correlations,
    run_rules,
)
from proxyhunt.engines.spark import SparkEngine, start_spark_engine
from proxyhunt.formats.base import LineFormat
from proxyhunt.formats.loader import TABLE, FileReport, Loader, ProgressCallback, custom_formats, expand_paths
from proxyhunt.formats.parquet import (
    TimeRange,
    attach_parquet_datasets,
    load_parquet_dataset,
    restrict_to_range,
    split_datasets,
)
from proxyhunt.rules.loader import KIND_CORRELATION, KIND_FILTER, RuleProblem, RuleSet, load_rules
from proxyhunt.rules.placeholders import apply_lists, load_lists
from proxyhunt.tuning.exclusions import resolve_exclusions
from proxyhunt.tuning.filters import (
    PROCESS_COLUMNS,
    CompiledFilter,
    apply_filters,
    compile_filters,
    empty_findings_columns,
)
from proxyhunt.tuning.matching import DEFAULT_CLOCK_SKEW, DEFAULT_WINDOW, CorrelationSettings
from proxyhunt.tuning.process_correlation import ProcessCorrelation, correlate_hits

log = logging.getLogger(__name__)

ENGINE_DUCKDB = "duckdb"
ENGINE_SPARK = "spark"

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
    filters: list[CompiledFilter] = field(default_factory=list)
    correlations: list[CompiledCorrelation] = field(default_factory=list)
    suppressed_per_filter: dict[str, int] = field(default_factory=dict)
    findings_per_correlation: dict[str, int] = field(default_factory=dict)
    # The process-creation logs read and how the findings matched them; None without --process-logs.
    process_correlation: ProcessCorrelation | None = None

    @property
    def rule_problems(self) -> list[RuleProblem]:
        """Rules, filters and correlations that were requested but cannot run (fully), with their reasons."""
        problems = list(self.ruleset.problems)
        for rule in self.compiled:
            if rule.error:
                problems.append(RuleProblem(rule.loaded.path, rule.error, rule.loaded.title, rule_id=rule.loaded.rule_id))
        for compiled_filter in self.filters:
            loaded = compiled_filter.loaded
            reasons = [compiled_filter.error] if compiled_filter.error else list(compiled_filter.problems)
            problems += [RuleProblem(loaded.path, reason, loaded.title, KIND_FILTER, loaded.filter_id) for reason in reasons]
        for correlation in self.correlations:
            if correlation.error:
                loaded = correlation.loaded
                problems.append(RuleProblem(loaded.path, correlation.error, loaded.title, KIND_CORRELATION, loaded.rule_id))
        return problems

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The findings that no Sigma filter suppressed."""
        return [finding for finding in self.findings if finding.get("Verdict", VERDICT_ALERT) != VERDICT_SUPPRESSED]

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
    squid_logformat: str | None = None,
    map_path: str | None = None,
    process_logs: list[str] | None = None,
    assets_path: str | None = None,
    process_window: timedelta = DEFAULT_WINDOW,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    exclusions: list[str] | None = None,
    lists_path: str | None = None,
    engine: str = ENGINE_DUCKDB,
    master: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    prefilter: bool = True,
) -> HuntResult:
    """Load the logs at ``paths``, run the rules, filters and correlations over them and return the findings.

    ``format_name`` forces one format for every file; by default each file's
    format is detected from its content. ``rule_paths`` may hold Sigma rules,
    filters and correlation rules. ``squid_logformat`` and ``map_path``
    describe more formats, as ``--squid-logformat`` and ``--map`` do; one that
    cannot be read raises LogformatError or MappingError. Problems with single
    files or rules are reported in the result, never raised.

    ``exclusions`` names bundled exclusions (or ``all-safe``), as ``--exclusions``
    does; an unknown name raises UnknownExclusionError. ``process_logs`` are
    process-creation logs whose rclone processes are joined to the findings
    (``Process*`` and ``Rclone*`` columns), with ``assets_path`` a CSV of host
    names and addresses, as ``--process-logs``, ``--assets``,
    ``--process-window`` and ``--clock-skew`` do.

    ``lists_path`` is a lists file with the values of ``|expand`` placeholders,
    as ``--lists`` gives; one that cannot be read raises PlaceholderListsError.
    A rule or filter whose placeholder has no values is reported as not
    runnable.

    ``engine`` is ``duckdb`` (the default) or ``spark``, as ``--engine`` sets.
    Spark hunts WebSession datasets (Parquet, JSON Lines, Delta) on the
    active Spark session, or on a new one at ``master`` that stays running for
    later calls; it raises SparkEngineError when pyspark or Java is missing.
    ``since`` and ``until`` restrict the hunt to events in that UTC range, as
    ``--since`` and ``--until`` do, and a bad value raises ValueError.

    ``prefilter`` lets the loader skip, without parsing, the lines of Squid,
    combined and Zeek TSV logs that contain none of the literals that the
    rules provably need (see ``proxyhunt.engines.prefilter``); the findings
    are the same either way. ``prefilter=False``, as ``--no-prefilter`` sets,
    parses every line, so that rejected lines are counted in the whole file.
    """
    connection = connection or duckdb.connect()
    rule_paths = list(rule_paths or []) + resolve_exclusions(list(exclusions or []))
    ruleset = load_rules(rule_paths, include_bundled=include_bundled)
    if lists_path is not None:
        apply_lists(ruleset, load_lists(lists_path))
    time_range = TimeRange.of(since, until)
    spark = start_spark_engine(master, time_range) if engine == ENGINE_SPARK else None
    if spark is None:
        compiled = compile_rules(ruleset.rules)
        extra_formats = custom_formats(squid_logformat, map_path)
        literals = _prefilter_literals(compiled) if prefilter else None
        reports = _load_logs(connection, paths, format_name, progress, extra_formats, time_range, literals)
        hits = run_rules(connection, compiled)
    else:
        compiled = spark.compile_rules(ruleset.rules)
        reports = spark.load(list(paths))
        hits = spark.run_rules(connection, compiled)

    # After the hits are found and before the filters run, so that filters can
    # test the Process* and Rclone* columns that correlation adds.
    process_correlation = correlate_hits(
        connection, process_logs, assets_path, CorrelationSettings(process_window, clock_skew)
    )

    filters, suppressed = _apply_filters(connection, ruleset, compiled)
    correlations, correlated = _run_correlations(connection, ruleset, compiled, spark)
    result = _summarize(connection, reports, ruleset, compiled, hits, filters, suppressed, correlations, correlated)
    if spark is not None:
        result.notes = _visibility_notes(connection, reports, spark.connect_counts())
    result.process_correlation = process_correlation
    return result


def _load_logs(
    connection: duckdb.DuckDBPyConnection,
    paths: list[str],
    format_name: str | None,
    progress: ProgressCallback | None,
    extra_formats: list[LineFormat],
    time_range: TimeRange,
    prefilter_literals: Callable[[frozenset[str]], frozenset[str] | None] | None = None,
) -> list[FileReport]:
    loader = Loader(connection, extra_formats, prefilter_literals)
    datasets, paths = split_datasets(paths)
    if datasets and not paths:
        # Only datasets: the rules read the Parquet files in place, with their time range applied.
        loader.close()
        return attach_parquet_datasets(connection, datasets, time_range)
    reports = [load_parquet_dataset(connection, path, time_range) for path in datasets]
    files, missing = expand_paths(paths) if paths else ([], [])
    reports += missing
    try:
        for path in files:
            reports.append(loader.load(path, format_name=format_name, progress=progress))
    finally:
        loader.close()
    outside = restrict_to_range(connection, time_range)
    if outside:
        log.info("left out %d events outside %s", outside, time_range)
    return reports


def _prefilter_literals(compiled: list[CompiledRule]) -> Callable[[frozenset[str]], frozenset[str] | None]:
    """Return the function that gives, for a format's prefilter columns, the literals every rule's events contain."""
    rules = [rule.loaded.rule for rule in compiled if rule.runnable]

    def literals(columns: frozenset[str]) -> frozenset[str] | None:
        return rule_set_literals(rules, columns)

    return literals


def _apply_filters(
    connection: duckdb.DuckDBPyConnection, ruleset: RuleSet, compiled: list[CompiledRule]
) -> tuple[list[CompiledFilter], dict[str, int]]:
    """Compile the Sigma filters against the findings table as it is now, and mark what they suppress."""
    create_findings_table(connection)
    columns = findings_columns(connection)
    process_columns = [column for column in columns if column in PROCESS_COLUMNS]
    empty = empty_findings_columns(connection, process_columns)
    filters = compile_filters(ruleset, compiled, columns, empty)
    return filters, apply_filters(connection, filters)


def _run_correlations(
    connection: duckdb.DuckDBPyConnection, ruleset: RuleSet, compiled: list[CompiledRule], spark: SparkEngine | None
) -> tuple[list[CompiledCorrelation], dict[str, int]]:
    """Run the correlation rules over the findings that filters left as alerts.

    The findings of rules that feed only correlations (``generate`` false)
    are removed afterwards.
    """
    correlations = compile_correlations(ruleset, {rule.loaded.key: rule.error for rule in compiled})
    counts = spark.run_correlations(connection, correlations) if spark else run_correlations(connection, correlations)
    drop_correlated_rule_findings(connection, correlations)
    return correlations, counts


def _summarize(
    connection: duckdb.DuckDBPyConnection,
    reports: list[FileReport],
    ruleset: RuleSet,
    compiled: list[CompiledRule],
    hits: dict[str, int],
    filters: list[CompiledFilter],
    suppressed: dict[str, int],
    correlations: list[CompiledCorrelation],
    correlated: dict[str, int],
) -> HuntResult:
    findings = fetch_findings(connection)
    _flag_damaged_sources(findings, reports)
    result = HuntResult(
        files=reports,
        ruleset=ruleset,
        compiled=compiled,
        findings=findings,
        sources=_summarize_sources(connection),
        coverage=_coverage_gaps(reports, compiled),
        hits_per_rule=hits,
        filters=filters,
        correlations=correlations,
        suppressed_per_filter=suppressed,
        findings_per_correlation=correlated,
    )
    result.notes = _visibility_notes(connection, reports)
    return result


def _flag_damaged_sources(findings: list[dict[str, Any]], reports: list[FileReport]) -> None:
    """Set ``SourceDamaged`` on each finding: true when its line was decoded from a damaged archive member."""
    suspect = {report.path: report.suspect_lines for report in reports if report.suspect_lines}
    for finding in findings:
        # A correlation finding has no single source line; its Events name the lines.
        lines = suspect.get(finding["SourceFile"])
        line = finding["SourceLine"]
        finding["SourceDamaged"] = bool(lines and line is not None and lines[0] <= line <= lines[1])


def _summarize_sources(connection: duckdb.DuckDBPyConnection) -> list[SourceSummary]:
    # An event that several rules match counts once for bytes and hits. Only
    # detection alerts count: suppressed findings are tuned out, and a
    # correlation finding stands for events that are counted already.
    rows = connection.execute(
        f"""
        WITH events AS (
            SELECT DISTINCT SourceFile, SourceLine, SrcIpAddr, SrcUsername, DstHostname, DstIpAddr,
                   SrcBytes, DstBytes, TimeGenerated
            FROM {FINDINGS_TABLE}
            WHERE RuleType = '{RULE_TYPE_DETECTION}' AND Verdict = '{VERDICT_ALERT}'
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


def _visibility_notes(
    connection: duckdb.DuckDBPyConnection, reports: list[FileReport], counts: list[tuple[str, int, int]] | None = None
) -> list[str]:
    """Return notes about traffic the proxy could not see inside, such as untapped TLS tunnels.

    ``counts`` gives (SourceFile, requests, CONNECT requests) when the events
    are not in DuckDB, as with the Spark engine.
    """
    notes = []
    # A prefiltered file is judged by the lines that were parsed: its first lines and its candidates.
    prefiltered = {report.path for report in reports if report.prefiltered}
    rows = counts if counts is not None else connection.execute(
        f"SELECT SourceFile, count(*), count(*) FILTER (WHERE upper(HttpRequestMethod) = 'CONNECT') "
        f"FROM {TABLE} GROUP BY SourceFile ORDER BY SourceFile"
    ).fetchall()
    for path, total, connects in rows:
        if total and connects / total >= CONNECT_SHARE_WARNING:
            counted = f"{connects} of the {total} parsed requests" if path in prefiltered else f"{connects} of {total} requests"
            notes.append(
                f"{path}: {counted} are CONNECT tunnels; without TLS interception the proxy "
                "never sees the user agent or URL of HTTPS requests, so rclone's user agent cannot show there"
            )
    return notes
