"""Write a hunt as one self-contained HTML file: findings, charts, rules, suppressions and inputs.

The file needs no network: its CSS, its script and plotly.js (from the plotly
Python package, MIT licence) are inlined. Log values are attacker-controlled,
so they are HTML-escaped by Jinja2's autoescaping, shown with control and
bidirectional-formatting characters made visible, and embedded as JSON only
with ``<``, ``>`` and ``&`` written as ``\\u`` escapes. A Content Security
Policy allows only the report's own scripts, by hash, and no network request,
so an escaping mistake could still not run a script or leak data.
"""

from __future__ import annotations

import base64
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from proxyhunt import __version__
from proxyhunt.hunt import HuntResult
from proxyhunt.report.charts import top_destinations_figure, upload_volume_figure
from proxyhunt.report.jsonl import replace_when_done
from proxyhunt.report.findings import is_correlation
from proxyhunt.report.html_views import correlation_view, finding_view, rule_options, table_rows
from proxyhunt.report.model import HuntReport, build_report
from proxyhunt.report.text import count_noun, format_bytes, format_time, safe_text

# Above this many findings per table, the report shows the first ones with a
# notice, because a browser grows slow with tens of thousands of rows. The CSV
# and JSON Lines outputs contain all of them.
HTML_ROW_LIMIT = 10_000
# Characters that could end a <script> element or start an HTML comment inside embedded JSON.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def embedded_json(value: Any) -> Markup:
    """Return JSON that is safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for character, escape in _JSON_ESCAPES.items():
        text = text.replace(character, escape)
    return Markup(text)


def _script_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _asset(name: str) -> str:
    return (resources.files("proxyhunt.report") / "templates" / name).read_text(encoding="utf-8")


def _plotly_js() -> tuple[str, str]:
    """Return plotly.min.js as the plotly Python package bundles it, and its version."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    source = get_plotlyjs()
    if "</script" in source.lower():
        # Inlined, it would end its <script> element early; no plotly.js release so far contains it.
        raise ValueError("the bundled plotly.min.js contains '</script' and cannot be inlined")
    return source, get_plotlyjs_version()


def _verdict(report: HuntReport) -> tuple[str, str]:
    events = report.scanned_text
    suppressed = f"; {len(report.suppressed)} more suppressed by filters" if report.suppressed else ""
    if report.alerts:
        return f"{count_noun(len(report.alerts), 'finding')} in {events}{suppressed}", "alert"
    if report.result.failed_files or report.result.rule_problems or report.result.blind or not report.events_parsed:
        return f"No findings in {events}, but see the warnings: some data or rules could not be used{suppressed}", "caution"
    return f"No findings in {events}{suppressed}", "clean"


def render_html(result: HuntResult | HuntReport) -> str:
    """Return the report of a hunt as one self-contained HTML document."""
    report = result if isinstance(result, HuntReport) else build_report(result)
    plotly_js, plotly_version = _plotly_js()
    report_js = _asset("report.js")

    charts = {}
    upload_figure = upload_volume_figure(report)
    destination_figure = top_destinations_figure(report)
    if upload_figure:
        charts["chart-upload-volume"] = upload_figure
    if destination_figure:
        charts["chart-top-destinations"] = destination_figure

    detections = [finding for finding in report.alerts if not is_correlation(finding)]
    correlations = [finding for finding in report.alerts if is_correlation(finding)]
    verdict, verdict_class = _verdict(report)
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_script_hash(plotly_js)} {_script_hash(report_js)}",
            # plotly.js sets style attributes and adds style elements as it draws.
            "style-src 'unsafe-inline'",
            # plotly.js's "download plot as PNG" button draws through data: and blob: images.
            "img-src data: blob:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    files = report.result.files
    rows = table_rows(report)

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("proxyhunt.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        content_security_policy=policy,
        css=Markup(_asset("report.css")),
        plotly_js=Markup(plotly_js),
        report_js=Markup(report_js),
        plotly_version=plotly_version,
        chart_json=embedded_json(charts),
        version=__version__,
        generated_at=format_time(report.generated_at),
        verdict=verdict,
        verdict_class=verdict_class,
        alerts_count=len(report.alerts),
        suppressed_count=len(report.suppressed),
        source_count=len(report.sources),
        bytes_uploaded=format_bytes(report.bytes_uploaded),
        events_parsed=report.events_parsed,
        files_label=count_noun(len(files), "file"),
        lines_read=report.lines_read,
        lines_rejected=report.lines_rejected,
        lines_skipped=sum(item.skipped for item in files),
        lines_prefiltered=report.lines_prefiltered,
        invalid_utf8=sum(item.invalid_utf8_lines for item in files),
        alerts=[finding_view(finding) for finding in detections[:HTML_ROW_LIMIT]],
        alerts_cut=len(detections) > HTML_ROW_LIMIT,
        correlations=[correlation_view(finding, report) for finding in correlations[:HTML_ROW_LIMIT]],
        suppressed=[finding_view(finding) for finding in report.suppressed[:HTML_ROW_LIMIT]],
        suppressed_cut=len(report.suppressed) > HTML_ROW_LIMIT,
        rules_with_alerts=rule_options(report, detections),
        rules_with_suppressed=rule_options(report, report.suppressed),
        has_upload_chart=upload_figure is not None,
        has_destination_chart=destination_figure is not None,
        upload_unknown=sum(source.upload_unknown for source in report.sources),
        process_lines=[safe_text(line) for line in report.process_lines],
        **rows,
    )


def write_html(result: HuntResult | HuntReport, path: str | Path) -> None:
    """Write the HTML report of a hunt to ``path``, replacing the file only when the whole report is written."""
    document = render_html(result)
    with replace_when_done(path) as handle:
        handle.write(document)
