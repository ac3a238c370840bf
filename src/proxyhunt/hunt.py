"""The hunt as a Python API: the same steps, names and results as ``proxyhunt hunt``.

>>> from proxyhunt.hunt import hunt
>>> result = hunt(["samples/"])            # doctest: +SKIP
>>> [finding["RuleTitle"] for finding in result.findings]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from proxyhunt.engines.correlation import CompiledCorrelation, compile_correlations
from proxyhunt.engines.prefilter import Clauses, rule_clauses, rule_set_clauses
from proxyhunt.engines.duckdb import (
    FINDINGS_TABLE,
    RULE_TYPE_CORRELATION,
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
from proxyhunt.formats.dataset_paths import logs_held_by_datasets, split_datasets
from proxyhunt.formats.loader import PREFILTER_SAMPLE_LINES, TABLE, FileReport, Loader, ProgressCallback, custom_formats, expand_paths
from proxyhunt.formats.parquet import TimeRange, attach_parquet_datasets, load_parquet_dataset, restrict_to_range
from proxyhunt.memory_limit import check_memory_limit
from proxyhunt.rules.loader import KIND_CORRELATION, KIND_FILTER, RuleProblem, RuleSet, load_rules
from proxyhunt.rules.placeholders import PlaceholderLists, apply_lists, lists_in_force
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
from proxyhunt.tuning.triage import TriageSettings, WorkingHours, apply_triage, parse_working_hours

log = logging.getLogger(__name__)

ENGINE_DUCKDB = "duckdb"
ENGINE_SPARK = "spark"

# DuckDB's cap on the memory of its buffer manager, which stores the parsed
# events. Beyond it, DuckDB spills them to a temporary directory, so a hunt
# that parses every line of a large log stays bounded, as with normalize's
# default. The rest of the process (Python, pyarrow, the reader) adds roughly
# 300 to 400 MB, measured on 1 GB logs. ``--memory-limit`` sets it.
DEFAULT_MEMORY_LIMIT = "512MB"
# Below this, the loader's batches of about 32MB and the rules' queries may not
# fit. DuckDB reads "64MB" as 61.0 MiB, which passes.
MIN_MEMORY_LIMIT_BYTES = 60 * 1024 * 1024

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
    # A correlation rule's own fields: its group-by and value fields.
    correlation: bool = False
    # The prefilter left lines of the file unparsed, so the fields are judged from the parsed lines only.
    sampled: bool = False

    def __str__(self) -> str:
        outcome = "could not match" if self.blind else "was only partly evaluated"
        return f"{self.path}: rule '{self.rule_title}' {outcome}: {self.absence()}"

    def absence(self, missing: tuple[str, ...] | None = None) -> str:
        """Return which fields the file lacks, and for a prefiltered file, which lines that was judged from."""
        columns = ", ".join(self.missing if missing is None else missing)
        if self.sampled:
            return (
                f"its parsed lines (the first {PREFILTER_SAMPLE_LINES:,} and those that hold a rule's literal) "
                f"carry no {columns}; --no-prefilter checks every line"
            )
        return f"the file carries no {columns}"


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
    # The events that alert correlation findings count, one per source line, with SUMMARY_EVENT_COLUMNS.
    correlation_events: list[dict[str, Any]] = field(default_factory=list)
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
        # A file is blind when every rule that reads fields is blind in it, not just one of several rules.
        # A prefiltered file is never called blind: its unparsed lines may carry the fields.
        checked_rules = sum(1 for rule in self.compiled if rule.runnable and rule.columns)
        blind_rules_per_file: dict[str, int] = {}
        for gap in self.coverage:
            if gap.blind and not gap.correlation and not gap.sampled:
                blind_rules_per_file[gap.path] = blind_rules_per_file.get(gap.path, 0) + 1
        blind_files = {path for path, count in blind_rules_per_file.items() if count >= checked_rules}
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
    lists: PlaceholderLists | None = None,
    working_hours: str | WorkingHours | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
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

    ``lists_path`` is a lists file with the values of ``|expand`` placeholders
    and correlation thresholds, as ``--lists`` gives; one that cannot be read
    raises PlaceholderListsError. Its values replace the bundled defaults
    name by name. ``lists``, lists already read (see
    ``proxyhunt.rules.lists.lists_in_force``), takes the place of
    ``lists_path``. A rule, filter or correlation whose placeholder has no
    usable value is reported as not runnable.

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

    ``connection`` is the DuckDB database that the events are loaded into.
    Without it, the hunt opens one with ``open_database``, which spills the
    events to disk beyond ``memory_limit``, as ``--memory-limit`` sets. A
    size that is invalid or below 64MB raises MemoryLimitError.

    Every finding gets a triage ``Priority`` and its ``PriorityReasons``
    (see ``proxyhunt.tuning.triage``): the rule's level, moved by the lists
    ``server_sources`` and ``known_backup_sources`` and by ``working_hours``,
    as ``--working-hours`` sets (``'Mon-Fri 07:00-19:00 Europe/Berlin'``); a
    bad value raises WorkingHoursError before any log is read.
    """
    connection = connection or open_database(memory_limit)
    rule_paths = list(rule_paths or []) + resolve_exclusions(list(exclusions or []))
    hours = parse_working_hours(working_hours) if isinstance(working_hours, str) else working_hours
    lists = lists if lists is not None else lists_in_force(lists_path)
    triage_settings = TriageSettings.from_lists(lists, hours)
    ruleset = load_rules(rule_paths, include_bundled=include_bundled, lists=lists)
    apply_lists(ruleset, lists)
    time_range = TimeRange.of(since, until)
    spark = start_spark_engine(master, time_range) if engine == ENGINE_SPARK else None
    if spark is None:
        compiled = compile_rules(ruleset.rules)
        extra_formats = custom_formats(squid_logformat, map_path)
        clauses = _prefilter_clauses(compiled) if prefilter else None
        reports = _load_logs(connection, paths, format_name, progress, extra_formats, time_range, clauses)
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
    apply_triage(result.findings, triage_settings)
    return result


def open_database(memory_limit: str = DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """Open the in-memory DuckDB database of a hunt, which spills beyond ``memory_limit`` to a temporary directory.

    The directory is a new path under the system's temporary directory.
    DuckDB creates it when it first spills and removes it when the connection
    closes. A ``memory_limit`` that is not a size of at least 64MB raises
    MemoryLimitError.
    """
    if memory_limit != DEFAULT_MEMORY_LIMIT:
        # The probe opens a DuckDB database of its own, about 30 ms of every hunt, and the default is valid.
        check_memory_limit(memory_limit, MIN_MEMORY_LIMIT_BYTES, "is too small for a hunt; give at least 64MB")

    connection = duckdb.connect()
    connection.execute("SET memory_limit = ?", [memory_limit])
    spill = os.path.join(tempfile.gettempdir(), f"proxyhunt-hunt-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    connection.execute("SET temp_directory = ?", [spill])
    return connection


def _load_logs(
    connection: duckdb.DuckDBPyConnection,
    paths: list[str],
    format_name: str | None,
    progress: ProgressCallback | None,
    extra_formats: list[LineFormat],
    time_range: TimeRange,
    prefilter_clauses: Callable[[frozenset[str]], list[Clauses] | None] | None = None,
) -> list[FileReport]:
    loader = Loader(connection, extra_formats, prefilter_clauses)
    datasets, paths = split_datasets(paths)
    files, missing = expand_paths(paths) if paths else ([], [])
    # A log that a hunted dataset contains unchanged is read from the dataset only.
    overlap = logs_held_by_datasets(files, datasets)
    if datasets and not overlap.read_as_logs and not missing:
        # Only datasets: the rules read the Parquet files in place, with their time range applied.
        loader.close()
        reports = attach_parquet_datasets(connection, datasets, time_range)
    else:
        excluded = frozenset(overlap.excluded)
        reports = [load_parquet_dataset(connection, path, time_range, excluded) for path in datasets]
        reports += missing
        try:
            for path in overlap.read_as_logs:
                reports.append(loader.load(path, format_name=format_name, progress=progress))
        finally:
            loader.close()
        outside = restrict_to_range(connection, time_range)
        if outside:
            log.info("left out %d events outside %s", outside, time_range)
    reports += [FileReport(path, held_by=dataset) for path, dataset in overlap.read_from_datasets.items()]
    for report in reports:
        report.warnings += overlap.warnings.get(report.path, [])
        report.grown_from = overlap.grown.get(report.path)
    return reports


def _prefilter_clauses(compiled: list[CompiledRule]) -> Callable[[frozenset[str]], list[Clauses] | None]:
    """Return the function that gives, for a format's prefilter columns, the literal sets each rule's events contain."""
    rules = [rule.loaded for rule in compiled if rule.runnable]

    def clauses(columns: frozenset[str]) -> list[Clauses] | None:
        found = rule_set_clauses([loaded.rule for loaded in rules], columns)
        if found is None and rules:
            unproven = [loaded.title for loaded in rules if rule_clauses(loaded.rule, columns) is None]
            titles = ", ".join(repr(title) for title in unproven)
            log.info(
                "every line is parsed, because no literal is known that each line matching %s contains. "
                "Such a line can match through tests of fields that this format does not copy from its lines, "
                "or through tests that give no literal: numbers, regular expressions, CIDR ranges, null, "
                "negations, and strings without 3 ASCII characters in a row outside wildcards",
                f"the rule {titles}" if len(unproven) == 1 else f"any of the rules {titles}",
            )
        return found

    return clauses


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
    drop_correlated_rule_findings(connection, ruleset.correlation_only_rules())
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
        correlation_events=_correlation_events(connection),
        coverage=_coverage_gaps(reports, compiled, correlations),
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


# The WebSession columns that the per-source, per-destination and upload summaries read.
SUMMARY_EVENT_COLUMNS = (
    "SourceFile",
    "SourceLine",
    "SrcIpAddr",
    "SrcUsername",
    "DstHostname",
    "DstIpAddr",
    "SrcBytes",
    "DstBytes",
    "TimeGenerated",
)


def _summarize_sources(connection: duckdb.DuckDBPyConnection) -> list[SourceSummary]:
    # An event counts once for bytes and hits, however many detection rules
    # matched it and however many correlation findings count it. Suppressed
    # findings are tuned out, so only alerts count.
    columns = ", ".join(SUMMARY_EVENT_COLUMNS)
    rows = connection.execute(
        f"""
        WITH detected AS (
            SELECT DISTINCT {columns}
            FROM {FINDINGS_TABLE}
            WHERE RuleType = '{RULE_TYPE_DETECTION}' AND Verdict = '{VERDICT_ALERT}'
        ),
        correlated AS ({_correlation_events_sql(connection)}),
        events AS (
            SELECT * FROM detected
            UNION ALL BY NAME
            SELECT * FROM correlated ANTI JOIN detected USING (SourceFile, SourceLine)
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


def _correlation_events(connection: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Return the events that alert correlation findings count, one per source line, with SUMMARY_EVENT_COLUMNS."""
    cursor = connection.execute(f"SELECT * FROM ({_correlation_events_sql(connection)}) ORDER BY SourceFile, SourceLine")
    names = [description[0] for description in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _correlation_events_sql(connection: duckdb.DuckDBPyConnection) -> str:
    """Return a query for the events listed in alert correlation findings, one row per (SourceFile, SourceLine).

    A finding's Events carry only RuleId, SourceFile, SourceLine, DstHostname
    and SrcBytes, so the other columns come from the event's row in
    ``websession``. When that table is not in DuckDB (Parquet datasets read by
    Spark), the source is the finding's group and the time its window start.
    """
    # NOTE: a finding lists at most MAX_LISTED_EVENTS events, so a larger one adds only those to the summaries.
    listed = (
        "SELECT DISTINCT ON (event.SourceFile, event.SourceLine) event.SourceFile AS SourceFile, "
        "event.SourceLine AS SourceLine, event.DstHostname AS DstHostname, event.SrcBytes AS SrcBytes, "
        "SrcIpAddr, SrcUsername, WindowStart "
        f"FROM (SELECT unnest(Events) AS event, SrcIpAddr, SrcUsername, WindowStart FROM {FINDINGS_TABLE} "
        f"WHERE RuleType = '{RULE_TYPE_CORRELATION}' AND Verdict = '{VERDICT_ALERT}')"
    )
    # information_schema.tables lists views too, such as the one over attached Parquet datasets.
    (present,) = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [TABLE]
    ).fetchone()
    if not present:
        return (
            "SELECT SourceFile, SourceLine, SrcIpAddr, SrcUsername, DstHostname, "
            "CAST(NULL AS VARCHAR) AS DstIpAddr, SrcBytes, CAST(NULL AS BIGINT) AS DstBytes, "
            f"WindowStart AS TimeGenerated FROM ({listed})"
        )
    return (
        "SELECT DISTINCT ON (listed.SourceFile, listed.SourceLine) listed.SourceFile AS SourceFile, "
        "listed.SourceLine AS SourceLine, coalesce(session.SrcIpAddr, listed.SrcIpAddr) AS SrcIpAddr, "
        "coalesce(session.SrcUsername, listed.SrcUsername) AS SrcUsername, "
        "coalesce(session.DstHostname, listed.DstHostname) AS DstHostname, session.DstIpAddr AS DstIpAddr, "
        "coalesce(session.SrcBytes, listed.SrcBytes) AS SrcBytes, session.DstBytes AS DstBytes, "
        "coalesce(session.TimeGenerated, listed.WindowStart) AS TimeGenerated "
        f"FROM ({listed}) AS listed LEFT JOIN {TABLE} AS session "
        "ON session.SourceFile = listed.SourceFile AND session.SourceLine = listed.SourceLine"
    )


def _coverage_gaps(
    reports: list[FileReport], compiled: list[CompiledRule], correlations: list[CompiledCorrelation] = ()
) -> list[CoverageGap]:
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
                gaps.append(CoverageGap(report.path, rule.loaded.title, missing, blind, sampled=bool(report.prefiltered)))

        # An event without a group-by value, or without the value a value_sum adds up, never counts
        # towards a correlation, so a file without those fields cannot give it a finding.
        for correlation in correlations:
            if not correlation.runnable:
                continue
            needed = {column for item in correlation.inputs for column in (*item.group_columns, *item.value_columns)}
            missing = tuple(sorted(needed - present))
            if missing:
                gaps.append(
                    CoverageGap(
                        report.path, correlation.loaded.title, missing, True, correlation=True, sampled=bool(report.prefiltered)
                    )
                )
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
