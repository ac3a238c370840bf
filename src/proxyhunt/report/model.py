"""The data behind every report, built once from a ``HuntResult``.

Renderers (terminal, CSV, HTML) only lay out what ``build_report`` computes,
so the three outputs agree on what is an alert, who uploaded how much and why a
finding was suppressed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from proxyhunt.hunt import HuntResult, SourceSummary
from proxyhunt.report.findings import (
    CORRELATION,
    DETECTION,
    SUPPRESSED,
    destination_of,
    is_correlation,
    rule_key_of,
    rule_type_of,
    source_label,
    suppressions_of,
    verdict_of,
)
from proxyhunt.report.messages import ReportMessage, collect_messages
from proxyhunt.report.text import count_noun, format_bytes
from proxyhunt.tuning.triage import triage_order

# The upload chart uses the narrowest of these bucket widths that needs no more than MAX_BUCKETS bars.
BUCKET_WIDTHS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
)
MAX_BUCKETS = 60
# The upload chart draws this many sources on their own and adds the rest up as one.
CHART_SOURCES = 10
TOP_DESTINATIONS = 15
OTHER_SOURCES = "other sources"
_EPOCH = datetime(1970, 1, 1)
# Correlation types whose value is an amount of the condition's field, so a
# value over SrcBytes or DstBytes is a number of bytes.
_AMOUNT_TYPES = frozenset({"value_sum", "value_avg", "value_percentile", "value_median"})
_BYTE_COLUMNS = frozenset({"SrcBytes", "DstBytes"})


@dataclass(frozen=True)
class RuleSummary:
    """A rule that ran or fired: how many of its findings are alerts and how many were suppressed."""

    key: str
    title: str
    level: str
    rule_type: str
    tags: tuple[str, ...]
    source: str
    alerts: int = 0
    suppressed: int = 0
    # Titles of the correlations that count this rule's events without it giving findings of its own.
    feeds: tuple[str, ...] = ()


@dataclass(frozen=True)
class FilterSummary:
    """A Sigma filter and the number of findings it suppressed."""

    filter_id: str
    title: str
    source: str
    suppressed: int


@dataclass(frozen=True)
class DestinationSummary:
    """A destination host and the alert events that uploaded to it."""

    host: str
    bytes_uploaded: int
    hits: int
    sources: int
    # Hits whose log records no request size: left out of bytes_uploaded.
    upload_unknown: int


@dataclass(frozen=True)
class UploadSeries:
    """Bytes one source uploaded in each time bucket of the upload chart, by bucket start (UTC)."""

    source: str
    buckets: tuple[tuple[datetime, int], ...]

    @property
    def total(self) -> int:
        return sum(size for _, size in self.buckets)

@dataclass
class HuntReport:
    """The alerts, suppressions and summaries that every output shows about one hunt, computed once."""

    result: HuntResult
    alerts: list[dict[str, Any]]
    suppressed: list[dict[str, Any]]
    rules: list[RuleSummary]
    filters: list[FilterSummary]
    sources: list[SourceSummary]
    destinations: list[DestinationSummary]
    upload_series: list[UploadSeries]
    bucket_width: timedelta
    messages: list[ReportMessage]
    # What the process-creation logs gave the correlation, one line each; the terminal prints these itself.
    process_lines: list[str] = field(default_factory=list)
    # Keys of the correlation rules whose Value is a number of bytes.
    byte_valued_rules: frozenset[str] = frozenset()
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(tzinfo=None))

    @property
    def events_parsed(self) -> int:
        return sum(report.parsed for report in self.result.files)

    @property
    def lines_read(self) -> int:
        return sum(report.lines_read for report in self.result.files)

    @property
    def lines_prefiltered(self) -> int:
        """Lines left unparsed because they contain none of the rules' literals."""
        return sum(report.prefiltered for report in self.result.files)

    @property
    def scanned_text(self) -> str:
        """Return what the rules were run over, for a closing line: the events, or with a prefilter the lines."""
        events = count_noun(self.events_parsed, "event")
        if not self.lines_prefiltered:
            return events
        # Every line read counts: parsed, rejected, header or unparsed. A dataset's events count as its lines.
        lines = count_noun(sum(max(report.lines_read, report.parsed) for report in self.result.files), "line")
        return f"{lines} ({self.lines_prefiltered} without the rules' literals left unparsed)"

    @property
    def lines_rejected(self) -> int:
        return sum(report.rejected for report in self.result.files)

    @property
    def bytes_uploaded(self) -> int:
        return sum(source.bytes_uploaded or 0 for source in self.sources)

    def value_text(self, finding: dict[str, Any]) -> str:
        """Return a correlation finding's Value for a reader: bytes in IEC units, else the number."""
        value = finding.get("Value")
        if value is None:
            return ""
        if rule_key_of(finding) in self.byte_valued_rules:
            return format_bytes(round(value))
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def build_report(result: HuntResult, rejects_written: bool = False) -> HuntReport:
    """Split the findings into alerts and suppressed ones and compute every summary the reports show.

    Alerts and suppressed findings are each ordered by triage priority,
    highest first, then by time.

    Sources, destinations and the upload chart count the events of alert
    detection findings and the events that alert correlation findings count,
    each (SourceFile, SourceLine) once however many findings name it.
    ``rejects_written`` drops the hint to write rejected lines with --rejects.
    """
    alerts = triage_order(finding for finding in result.findings if verdict_of(finding) != SUPPRESSED)
    suppressed = triage_order(finding for finding in result.findings if verdict_of(finding) == SUPPRESSED)

    detected = [finding for finding in alerts if not is_correlation(finding)]
    events = _unique_events([*detected, *(getattr(result, "correlation_events", None) or [])])
    series, width = _upload_series(events)
    return HuntReport(
        result=result,
        alerts=alerts,
        suppressed=suppressed,
        rules=_rule_summaries(result),
        filters=_filter_summaries(result, suppressed),
        sources=_source_summaries(events),
        destinations=_destination_summaries(events),
        upload_series=series,
        bucket_width=width,
        messages=collect_messages(result, rejects_written),
        process_lines=_process_lines(result),
        byte_valued_rules=_byte_valued_rules(result),
    )


def _byte_valued_rules(result: HuntResult) -> frozenset[str]:
    """Return the keys of the correlations that sum, average or rank SrcBytes or DstBytes."""
    keys = set()
    for correlation in getattr(result, "correlations", None) or []:
        if not correlation.runnable or correlation.loaded.correlation_type not in _AMOUNT_TYPES:
            continue
        columns = {column for item in correlation.inputs for column in item.value_columns}
        if columns and columns <= _BYTE_COLUMNS:
            keys.add(correlation.loaded.key)
    return frozenset(keys)


def _process_lines(result: HuntResult) -> list[str]:
    correlation = getattr(result, "process_correlation", None)
    return list(correlation.describe()) if correlation is not None else []


def _unique_events(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[Any, Any]] = set()
    events = []
    for finding in findings:
        key = (finding.get("SourceFile"), finding.get("SourceLine"))
        if key in seen:
            continue
        seen.add(key)
        events.append(finding)
    return events


def _rule_summaries(result: HuntResult) -> list[RuleSummary]:
    """Return every runnable detection and correlation rule, and every rule with findings, in the order they ran."""
    summaries: dict[str, RuleSummary] = {}
    for compiled in result.compiled:
        if not compiled.runnable:
            continue
        loaded = compiled.loaded
        summaries[loaded.key] = RuleSummary(
            loaded.key, loaded.title, loaded.level, DETECTION, tuple(loaded.tags), loaded.path
        )
    feeds: dict[str, list[str]] = {}
    for correlation in getattr(result, "correlations", None) or []:
        if not correlation.runnable:
            continue
        loaded = correlation.loaded
        summaries[loaded.key] = RuleSummary(
            loaded.key, loaded.title, loaded.level, CORRELATION, tuple(loaded.tags), loaded.path
        )
        if not loaded.rule.generate:
            for item in correlation.inputs:
                feeds.setdefault(item.rule.key, []).append(loaded.title)

    alerts: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    for finding in result.findings:
        key = rule_key_of(finding)
        counts = suppressed if verdict_of(finding) == SUPPRESSED else alerts
        counts[key] = counts.get(key, 0) + 1
        if key not in summaries:
            summaries[key] = RuleSummary(
                key,
                finding.get("RuleTitle") or "",
                finding.get("RuleLevel") or "",
                rule_type_of(finding),
                tuple(finding.get("RuleTags") or ()),
                finding.get("RuleSource") or "",
            )

    return [
        RuleSummary(
            summary.key,
            summary.title,
            summary.level,
            summary.rule_type,
            summary.tags,
            summary.source,
            alerts.get(summary.key, 0),
            suppressed.get(summary.key, 0),
            tuple(feeds.get(summary.key, ())),
        )
        for summary in summaries.values()
    ]


def _filter_summaries(result: HuntResult, suppressed: list[dict[str, Any]]) -> list[FilterSummary]:
    """Return each filter that ran or suppressed a finding, with its count, most suppressions first."""
    counts: dict[tuple[str, str, str], int] = {}
    for compiled in getattr(result, "filters", None) or []:
        if compiled.runnable:
            loaded = compiled.loaded
            counts[(loaded.filter_id, loaded.title or loaded.filter_id, loaded.path)] = 0
    for finding in suppressed:
        for suppression in suppressions_of(finding):
            key = (
                str(suppression.get("filter_id") or ""),
                str(suppression.get("filter_title") or suppression.get("filter_id") or "unnamed filter"),
                str(suppression.get("filter_source") or ""),
            )
            counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0][1]))
    return [FilterSummary(filter_id, title, source, count) for (filter_id, title, source), count in ranked]


def _source_summaries(events: list[dict[str, Any]]) -> list[SourceSummary]:
    """Return hits per client, most bytes uploaded first."""
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for event in events:
        groups.setdefault((event.get("SrcIpAddr"), event.get("SrcUsername")), []).append(event)

    summaries = []
    for (address, user), group in groups.items():
        uploads = [event["SrcBytes"] for event in group if event.get("SrcBytes") is not None]
        downloads = [event["DstBytes"] for event in group if event.get("DstBytes") is not None]
        times = [event["TimeGenerated"] for event in group if event.get("TimeGenerated") is not None]
        summaries.append(
            SourceSummary(
                src_ip=address,
                src_user=user,
                hits=len(group),
                bytes_uploaded=sum(uploads) if uploads else None,
                bytes_downloaded=sum(downloads) if downloads else None,
                destinations=len({destination_of(event) for event in group}),
                first_seen=min(times) if times else None,
                last_seen=max(times) if times else None,
                upload_unknown=len(group) - len(uploads),
            )
        )
    summaries.sort(key=lambda item: (-(item.bytes_uploaded or -1), -item.hits, item.src_ip or ""))
    return summaries


def _destination_summaries(events: list[dict[str, Any]]) -> list[DestinationSummary]:
    """Return the TOP_DESTINATIONS hosts that received the most bytes, then the most hits."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        groups.setdefault(destination_of(event), []).append(event)

    summaries = []
    for host, group in groups.items():
        sizes = [event["SrcBytes"] for event in group if event.get("SrcBytes") is not None]
        summaries.append(
            DestinationSummary(
                host=host,
                bytes_uploaded=sum(sizes),
                hits=len(group),
                sources=len({(event.get("SrcIpAddr"), event.get("SrcUsername")) for event in group}),
                upload_unknown=len(group) - len(sizes),
            )
        )
    summaries.sort(key=lambda item: (-item.bytes_uploaded, -item.hits, item.host))
    return summaries[:TOP_DESTINATIONS]


def _upload_series(events: list[dict[str, Any]]) -> tuple[list[UploadSeries], timedelta]:
    """Return bytes uploaded per source and time bucket, and the bucket width.

    The CHART_SOURCES sources with the most bytes get a series each; the rest
    are added up as one series named OTHER_SOURCES.
    """
    timed = [event for event in events if event.get("TimeGenerated") and event.get("SrcBytes") is not None]
    if not timed:
        return [], BUCKET_WIDTHS[0]
    times = [event["TimeGenerated"] for event in timed]
    width = _bucket_width(max(times) - min(times))

    totals: dict[str, int] = {}
    for event in timed:
        label = source_label(event.get("SrcIpAddr"), event.get("SrcUsername"))
        totals[label] = totals.get(label, 0) + event["SrcBytes"]
    ranked = sorted(totals, key=lambda label: (-totals[label], label))
    charted = set(ranked[:CHART_SOURCES])

    buckets: dict[str, dict[datetime, int]] = {}
    for event in timed:
        label = source_label(event.get("SrcIpAddr"), event.get("SrcUsername"))
        if label not in charted:
            label = OTHER_SOURCES
        start = _bucket_start(event["TimeGenerated"], width)
        series = buckets.setdefault(label, {})
        series[start] = series.get(start, 0) + event["SrcBytes"]

    order = [label for label in ranked if label in charted] + ([OTHER_SOURCES] if OTHER_SOURCES in buckets else [])
    return [UploadSeries(label, tuple(sorted(buckets[label].items()))) for label in order], width


def _bucket_width(span: timedelta) -> timedelta:
    for width in BUCKET_WIDTHS:
        if span / width < MAX_BUCKETS:
            return width
    return BUCKET_WIDTHS[-1]


def _bucket_start(time: datetime, width: timedelta) -> datetime:
    naive = time.replace(tzinfo=None) - (time.utcoffset() or timedelta()) if time.tzinfo else time
    return naive - (naive - _EPOCH) % width
