"""Log formats: detection from content and readers into the WebSession table.

Each module covers one family of formats. ``all_formats`` returns one instance
of each, in the order used to break ties in detection.
"""

from __future__ import annotations

from proxyhunt.formats.base import LineFormat, LogFormat
from proxyhunt.formats.cef import Cef
from proxyhunt.formats.combined import CombinedLog
from proxyhunt.formats.leef import Leef
from proxyhunt.formats.sentinel import SentinelJson
from proxyhunt.formats.zscaler import ZscalerNss
from proxyhunt.formats.squid import SquidNative
from proxyhunt.formats.w3c import ProxySgHeaderless, W3CExtended
from proxyhunt.formats.websession import WebSessionCsv, WebSessionJson
from proxyhunt.formats.zeek import ZeekJson, ZeekTsv


def all_formats() -> list[LineFormat]:
    """Return one instance of every supported format."""
    return [
        ZeekTsv(),
        ZeekJson(),
        SquidNative(),
        CombinedLog(),
        W3CExtended(),
        ProxySgHeaderless(),
        Cef(),
        Leef(),
        ZscalerNss(),
        WebSessionJson(),
        WebSessionCsv(inner_formats=_line_formats),
        SentinelJson(inner_formats=_line_formats),
    ]


def _line_formats() -> list[LineFormat]:
    return [fmt for fmt in all_formats() if not isinstance(fmt, (WebSessionCsv, SentinelJson))]


def format_names() -> list[str]:
    """Return the names accepted by ``--format``."""
    return [fmt.name for fmt in all_formats()]


def get_format(name: str) -> LineFormat:
    """Return the format called ``name``; raise KeyError listing the known names."""
    for fmt in all_formats():
        if fmt.name == name:
            return fmt
    raise KeyError(f"unknown format {name!r}; known formats: {', '.join(format_names())}")


__all__ = ["LineFormat", "LogFormat", "all_formats", "format_names", "get_format"]
