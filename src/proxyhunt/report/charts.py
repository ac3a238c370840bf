"""Plotly figure specifications for the HTML report: upload volume over time, and top destinations.

The figures are plain dictionaries in plotly.js's JSON schema; plotly.js,
embedded in the report, draws them in the browser. plotly.js reads trace
names, category labels and hover text as its own small HTML dialect (``<b>``,
``<br>``, ``<a href>``), so every log value in a figure goes through
``chart_text`` first.
"""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

from proxyhunt.report.model import HuntReport
from proxyhunt.report.text import count_noun, format_bytes, safe_text

# Category labels longer than this are cut on the axis; hover text shows them whole.
AXIS_LABEL_CHARACTERS = 48
_UNITS = (("B", 1), ("KiB", 1024), ("MiB", 1024**2), ("GiB", 1024**3), ("TiB", 1024**4))
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def chart_text(value: object) -> str:
    """Return a log value as text that plotly.js shows literally, tags and entities included."""
    return html.escape(safe_text(value), quote=False)


def _unit_for(largest: int) -> tuple[str, int]:
    """Return the largest binary unit in which ``largest`` bytes is at least 1."""
    chosen = _UNITS[0]
    for unit in _UNITS:
        if largest >= unit[1]:
            chosen = unit
    return chosen


def _describe_width(width: timedelta) -> str:
    minutes = int(width.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def upload_volume_figure(report: HuntReport) -> dict[str, Any] | None:
    """Return stacked bars of bytes uploaded per time bucket, one trace per source, or None with no data."""
    if not report.upload_series:
        return None
    largest_bucket = max(size for series in report.upload_series for _, size in series.buckets)
    unit, divisor = _unit_for(largest_bucket)
    width_ms = report.bucket_width.total_seconds() * 1000

    traces = []
    for series in report.upload_series:
        traces.append(
            {
                "type": "bar",
                "name": chart_text(series.source),
                "x": [start.isoformat(sep=" ") for start, _ in series.buckets],
                "y": [round(size / divisor, 3) for _, size in series.buckets],
                "customdata": [format_bytes(size) for _, size in series.buckets],
                "width": width_ms,
                "offset": 0,
                "hovertemplate": "%{x|%Y-%m-%d %H:%M} UTC<br>%{customdata}<extra>%{fullData.name}</extra>",
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": f"Upload volume per source ({_describe_width(report.bucket_width)} buckets)"},
            "barmode": "stack",
            "xaxis": {"type": "date", "title": {"text": "Time (UTC)"}},
            "yaxis": {"title": {"text": f"{unit} uploaded"}, "rangemode": "tozero"},
            "legend": {"title": {"text": "Source"}, "traceorder": "normal"},
            "margin": {"t": 60, "r": 20},
        },
        "config": _CONFIG,
    }


def top_destinations_figure(report: HuntReport) -> dict[str, Any] | None:
    """Return horizontal bars of bytes uploaded per destination host, largest on top, or None with no data."""
    destinations = [item for item in report.destinations if item.bytes_uploaded > 0]
    if not destinations:
        return None
    unit, divisor = _unit_for(max(item.bytes_uploaded for item in destinations))

    # plotly.js draws the first category at the bottom, so the largest goes last.
    ordered = list(reversed(destinations))
    labels = []
    for item in ordered:
        host = safe_text(item.host) or "(no host)"
        if len(host) > AXIS_LABEL_CHARACTERS:
            host = "…" + host[-(AXIS_LABEL_CHARACTERS - 1) :]
        labels.append(html.escape(host, quote=False))
    hover = [
        f"{chart_text(item.host)}<br>{format_bytes(item.bytes_uploaded)} in {count_noun(item.hits, 'hit')} "
        f"from {count_noun(item.sources, 'source')}"
        for item in ordered
    ]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                # Bars sit at positions 0, 1, 2 … named by tick labels, so two hosts cut alike stay apart.
                "y": list(range(len(ordered))),
                "x": [round(item.bytes_uploaded / divisor, 3) for item in ordered],
                "customdata": hover,
                "hovertemplate": "%{customdata}<extra></extra>",
                "marker": {"color": "#c0392b"},
            }
        ],
        "layout": {
            "title": {"text": "Top destinations by bytes uploaded"},
            "xaxis": {"title": {"text": f"{unit} uploaded"}, "rangemode": "tozero"},
            "yaxis": {"tickvals": list(range(len(ordered))), "ticktext": labels, "automargin": True, "showgrid": False},
            "margin": {"t": 60, "r": 20, "l": 10},
            "height": max(380, 60 + 28 * len(ordered)),
        },
        "config": _CONFIG,
    }
