"""Squid access logs written with a custom ``logformat`` from squid.conf.

The reader is built from the ``logformat`` line itself, such as::

    logformat mine %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt "%{User-Agent}>h"

The leading ``logformat NAME`` is optional, and Squid's predefined formats
(``squid``, ``common``, ``combined``, ``referrer``, ``useragent``) can be
named instead of written out. Each format code follows Squid's syntax
``%[quoting][-][[0]width][.precision][{argument}]code[{argument}]``.

Squid writes ``-`` for a value it does not have. How a value is escaped
depends on the quoting modifier (Squid's ``Format::Format::assemble``):

- none: header values (``%>h``, ``%<h``) and user names are URL-encoded with
  ``rfc1738_escape_unescaped``, which leaves ``%`` as it is. They are
  percent-decoded once. So a user agent that was already percent-encoded
  when it was sent stays encoded once, as the client sent it.
- ``"``: ``\\"``, ``\\\\``, ``\\r``, ``\\n`` and ``\\t`` escapes, decoded.
- ``[``: the escaping of ``log_mime_hdrs``, decoded as for the native format.
- ``#``: URL-encoded, decoded once.
- ``'``: written as is.

A format code that proxyhunt does not know is matched as text and ignored,
and the format's ``notes`` list it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from proxyhunt.formats.base import LineFormat, match_ratio, non_blank
from proxyhunt.formats.sql import quote_literal, register_function
from proxyhunt.formats.squid import register_functions as register_mime_functions

# The formats that Squid predefines, as the logformat documentation of Squid 4 lists them.
PREDEFINED: dict[str, str] = {
    "squid": "%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt",
    "common": '%>a %[ui %[un [%tl] "%rm %ru HTTP/%rv" %>Hs %<st %Ss:%Sh',
    "combined": '%>a %[ui %[un [%tl] "%rm %ru HTTP/%rv" %>Hs %<st "%{Referer}>h" "%{User-Agent}>h" %Ss:%Sh',
    "referrer": "%ts.%03tu %>a %{Referer}>h %ru",
    "useragent": '%>a [%tl] "%{User-Agent}>h"',
}

# Format codes that Squid documents and proxyhunt recognizes, mapped or not.
# Longer names are tried first, as Squid's own parser does.
KNOWN_CODES: tuple[str, ...] = tuple(
    sorted(
        """
        >a >A >p <a <A <p la lp >la >lp <la <lp >qos <qos >nfmark <nfmark >eui
        ts tu tl tg tr tt dt busy_time
        >h >ha <h un ul ui ue us credentials
        rm ru rp rv rs rd >rm >ru >rp >rv >rs >rd >rP <rm <ru <rp <rv <rs <rd
        >st <st st >sh <sh mt Ss Sh Hs >Hs <Hs <bs >bs <tt <pt
        et ea err_code err_detail note sn master_xaction
        """.split(),
        key=len,
        reverse=True,
    )
)
# The syntax of a code name that is not in KNOWN_CODES, such as ssl::>cert_subject.
_UNKNOWN_CODE = re.compile(r"[<>]*[A-Za-z_][A-Za-z0-9_]*(?:::[<>]*[A-Za-z_][A-Za-z0-9_]*)?")
_CODE_PREFIX = re.compile(r"%([\"\[#'/]?)(-?)(0?)(\d*)(?:\.(\d+))?(?:\{([^}]*)\})?")

# Codes whose value is a number; their pattern is stricter, which sharpens detection.
_NUMERIC = {
    "ts", "tu", "tr", "tt", "dt", ">p", "<p", "lp", ">lp", "<lp", ">Hs", "Hs", "<Hs",
    "<st", ">st", "st", ">sh", "<sh", "<bs", ">bs", "<tt", "<pt", "busy_time",
}
_NUMBER_PATTERN = r"-|-?\d+(?:\.\d+)?"
# The default %tl and %tg times, such as 14/Nov/2023:22:13:20 +0000.
_CLF_TIME_PATTERN = r"\d{1,2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}(?: [+-]\d{4})?"
_CLF_LOCAL_TIME = "%d/%b/%Y:%H:%M:%S %z"
_CLF_GMT_TIME = "%d/%b/%Y:%H:%M:%S"

# Code -> WebSession column, the first code present winning.
_CODE_COLUMNS: dict[str, tuple[str, ...]] = {
    "SrcIpAddr": (">a",),
    "SrcHostname": (">A",),
    "SrcPortNumber": (">p",),
    "SrcUsername": ("un", "ul", "ue", "us", "ui"),
    "DstIpAddr": ("<a",),
    "DstPortNumber": ("<p",),
    "DstHostname": (">rd",),
    "HttpRequestMethod": ("rm", ">rm"),
    "Url": ("ru", ">ru"),
    "UrlPath": ("rp", ">rp"),
    "HttpVersion": ("rv", ">rv"),
    "HttpStatusCode": (">Hs", "Hs"),
    "SrcBytes": (">st",),
    "DstBytes": ("<st",),
    "HttpContentType": ("mt",),
}
# Header name (lower case) of %{Name}>h and %{Name}<h -> WebSession column.
_REQUEST_HEADERS = {"user-agent": "HttpUserAgent", "referer": "HttpReferrer", "cookie": "HttpCookie", "host": "DstHostname"}
_REPLY_HEADERS = {"content-type": "HttpContentType"}
_TYPES = {"SrcPortNumber": "INTEGER", "DstPortNumber": "INTEGER", "HttpStatusCode": "INTEGER", "SrcBytes": "BIGINT", "DstBytes": "BIGINT"}
# Codes whose value Squid URL-encodes when no quoting modifier is given.
_URL_ENCODED_BY_DEFAULT = {">h", "<h", "un", "ul", "ue", "us", "ui"}
# A cache peer is logged by host name, an origin server by address.
_PEER_IP = r"\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"


class LogformatError(ValueError):
    """A ``logformat`` definition that cannot be read; the message names the position and the fix."""


@dataclass(frozen=True)
class Literal:
    """Text of a logformat written as it is, between format codes."""

    text: str


@dataclass(frozen=True)
class FormatCode:
    """One ``%`` format code with its modifiers."""

    code: str
    quoting: str = ""
    left_aligned: bool = False
    zero_padded: bool = False
    width: int | None = None
    precision: int | None = None
    argument: str | None = None
    known: bool = True

    def __str__(self) -> str:
        argument = f"{{{self.argument}}}" if self.argument is not None else ""
        return f"%{argument}{self.code}"


@dataclass
class Logformat:
    """A parsed logformat definition: its name, its tokens and notes about codes that are ignored."""

    name: str
    definition: str
    tokens: list[Literal | FormatCode]
    notes: list[str] = field(default_factory=list)


def parse_logformat(text: str) -> Logformat:
    """Parse a ``logformat`` line, its format specification alone, or the name of a predefined format.

    Raises LogformatError for an empty definition or a ``%`` with no code.
    """
    definition = text.strip()
    name = "custom"
    words = definition.split(None, 2)
    if words and words[0] == "logformat":
        if len(words) < 3:
            raise LogformatError(
                f"the logformat line {definition!r} has no format specification after its name; "
                "write it as in squid.conf: logformat NAME %ts.%03tu %6tr %>a ..."
            )
        name, definition = words[1], words[2]
    if definition in PREDEFINED:
        name, definition = definition, PREDEFINED[definition]
    if "%" not in definition:
        raise LogformatError(
            f"the logformat {definition!r} has no format code; pass a squid.conf logformat line "
            f"or one of the predefined formats: {', '.join(PREDEFINED)}"
        )

    tokens: list[Literal | FormatCode] = []
    notes: list[str] = []
    position = 0
    literal = ""
    while position < len(definition):
        if definition[position] != "%":
            literal += definition[position]
            position += 1
            continue
        if definition.startswith("%%", position):
            literal += "%"
            position += 2
            continue
        if literal:
            tokens.append(Literal(literal))
            literal = ""
        code, position = _parse_code(definition, position)
        if not code.known:
            notes.append(f"format code {code} at character {position - len(code.code)} is not known to proxyhunt; its value is read and ignored")
        tokens.append(code)
    if literal:
        tokens.append(Literal(literal))
    return Logformat(name, definition, tokens, notes)


def _parse_code(definition: str, start: int) -> tuple[FormatCode, int]:
    """Parse the format code that starts with the ``%`` at ``start``; return it and the position after it."""
    prefix = _CODE_PREFIX.match(definition, start)
    assert prefix is not None  # every group is optional, so "%" alone matches
    quoting, left, zero, width, precision, argument = prefix.groups()
    position = prefix.end()

    if definition.startswith("{", position):
        # _CODE_PREFIX takes a closed {argument}, so this one is never closed.
        raise LogformatError(f"the {{ at character {position} of the logformat {definition!r} is never closed")
    rest = definition[position:]
    code = next((known for known in KNOWN_CODES if rest.startswith(known)), None)
    known = code is not None
    if code is None:
        unknown = _UNKNOWN_CODE.match(rest)
        if unknown is None:
            raise LogformatError(
                f"the % at character {start} of the logformat {definition!r} is not followed by a format code; "
                "write a literal percent sign as %%"
            )
        code = unknown.group()
    position += len(code)

    if argument is None and definition.startswith("{", position):
        end = definition.find("}", position)
        if end < 0:
            raise LogformatError(f"the {{ at character {position} of the logformat {definition!r} is never closed")
        argument = definition[position + 1 : end]
        position = end + 1
    return (
        FormatCode(
            code=code,
            quoting=quoting,
            left_aligned=bool(left),
            zero_padded=bool(zero),
            width=int(width) if width else None,
            precision=int(precision) if precision else None,
            argument=argument,
            known=known,
        ),
        position,
    )


# strftime directives -> RE2 pattern of what they write; other directives match one non-space run.
_STRFTIME_PATTERNS = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{1,2}", "d": r"\d{1,2}", "e": r" ?\d{1,2}", "H": r"\d{1,2}",
    "I": r"\d{1,2}", "M": r"\d{2}", "S": r"\d{2}", "f": r"\d+", "j": r"\d{3}", "b": "[A-Za-z]{3}",
    "h": "[A-Za-z]{3}", "B": "[A-Za-z]+", "a": "[A-Za-z]{3}", "A": "[A-Za-z]+", "p": "[AaPp][Mm]",
    "z": r"[+-]\d{2}:?\d{2}|Z", "Z": "[A-Za-z]+", "s": r"\d+", "%": "%",
}
_OTHER_DIRECTIVE = r"\S+?"


def strftime_pattern(spec: str) -> str:
    """Return the RE2 pattern of the text that a strftime specification such as ``%d/%b/%Y:%H:%M:%S`` writes."""
    parts = []
    position = 0
    while position < len(spec):
        if spec[position] == "%" and position + 1 < len(spec):
            directive = _STRFTIME_PATTERNS.get(spec[position + 1], _OTHER_DIRECTIVE)
            parts.append(f"(?:{directive})")
            position += 2
        else:
            parts.append(re.escape(spec[position]))
            position += 1
    return "".join(parts)


def _value_pattern(code: FormatCode, following: Literal | FormatCode | None) -> str:
    """Return the RE2 pattern of a code's value, given the token after it."""
    if code.code in _NUMERIC:
        return _NUMBER_PATTERN
    if code.code in ("tl", "tg"):
        return _CLF_TIME_PATTERN if code.argument is None else strftime_pattern(code.argument)
    if code.quoting in ('"', "/") and isinstance(following, Literal) and following.text.startswith('"'):
        return r'(?:[^"\\]|\\.)*'
    if isinstance(following, Literal) and code.code not in ("tl", "tg"):
        stop = following.text[0]
        if stop == "\\" or stop == "]" or stop == "^" or stop == "-":
            stop = "\\" + stop
        return f"[^{stop}]*"
    if following is None:
        return ".*"
    return ".*?"


def line_pattern(logformat: Logformat) -> str:
    """Return the RE2 pattern of a whole line, with one group per format code, in order."""
    parts = [r"^\s*"]
    tokens = logformat.tokens
    for index, token in enumerate(tokens):
        if isinstance(token, Literal):
            # Runs of spaces match runs of spaces, because width padding adds more.
            parts.append(" +".join(re.escape(piece) for piece in re.split(" +", token.text)))
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        padding = " *" if token.width else ""
        parts.append(f"{padding}({_value_pattern(token, following)}){padding}")
    parts.append(r"\s*$")
    return "".join(parts)


def unescape_quoted(value: str | None) -> str | None:
    """Decode the backslash escapes of Squid's ``"`` quoting: ``\\r``, ``\\n``, ``\\t`` and a backslash before any other character."""
    if value is None or "\\" not in value:
        return value
    return re.sub(r"\\(.)", lambda match: {"r": "\r", "n": "\n", "t": "\t"}.get(match.group(1), match.group(1)), value)


class SquidLogformat(LineFormat):
    """Squid access log in a logformat given by the user."""

    name = "squid-logformat"
    title = "Squid custom logformat"
    product = "Squid"
    vendor = "Squid"

    def __init__(self, definition: str) -> None:
        self.logformat = parse_logformat(definition)
        self.title = f"Squid logformat {self.logformat.name}"  # type: ignore[misc]
        self.pattern = line_pattern(self.logformat)
        self._detect = re.compile(self.pattern)
        self.codes = [token for token in self.logformat.tokens if isinstance(token, FormatCode)]
        if not any(code.known and self._column_of(code) for code in self.codes):
            raise LogformatError(
                f"the logformat {self.logformat.definition!r} has no format code that fills a WebSession column; "
                "include at least one such as %>a, %ru or %{User-Agent}>h"
            )

    @property
    def notes(self) -> list[str]:
        """Remarks about the definition, such as format codes that are ignored."""
        return self.logformat.notes

    def detect(self, sample: list[str]) -> float:
        # A user who passes a logformat means it: a full match outranks every built-in format.
        return 0.99 * match_ratio(non_blank(sample), lambda line: bool(self._detect.match(line)))

    def prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        register_mime_functions(connection)
        register_function(connection, "ph_squid_quoted", unescape_quoted)

    @staticmethod
    def _column_of(code: FormatCode) -> str | None:
        if code.code in (">h", "<h") and code.argument:
            headers = _REQUEST_HEADERS if code.code == ">h" else _REPLY_HEADERS
            return headers.get(code.argument.split(":", 1)[0].strip().lower())
        for column, codes in _CODE_COLUMNS.items():
            if code.code in codes:
                return column
        if code.code in ("ts", "tl", "tg"):
            return "TimeGenerated"
        if code.code == "Ss":
            return "DvcAction"
        return None

    def _decoded(self, code: FormatCode, group: str) -> str:
        """Return the SQL that decodes a code's value by its quoting; ``-`` is NULL."""
        value = f"ph_dash({group})"
        if code.quoting in ('"', "/"):
            return f"ph_squid_quoted({value})"
        if code.quoting == "[":
            return f"ph_squid_unquote({value})"
        if code.quoting == "#" or (code.quoting == "" and code.code in _URL_ENCODED_BY_DEFAULT):
            return f"CASE WHEN contains({value}, '%') THEN coalesce(try(url_decode({value})), {value}) ELSE {value} END"
        return value

    def _time_items(self, groups: dict[str, tuple[FormatCode, str]]) -> list[str]:
        if "ts" in groups:
            seconds = f"ph_dash({groups['ts'][1]})"
            if "tu" in groups:
                code, group = groups["tu"]
                # %03tu writes milliseconds padded to 3 digits; the width gives the digits of the fraction.
                divisor = 10 ** code.width if code.zero_padded and code.width else 1000
                epoch = f"TRY_CAST({seconds} AS DOUBLE) + coalesce(TRY_CAST(ph_dash({group}) AS DOUBLE), 0) / {divisor}"
                return [f"ph_epoch(CAST({epoch} AS VARCHAR)) AS TimeGenerated", f"{seconds} AS _raw_TimeGenerated"]
            return [f"ph_epoch({seconds}) AS TimeGenerated", f"{seconds} AS _raw_TimeGenerated"]
        for name, default in (("tl", _CLF_LOCAL_TIME), ("tg", _CLF_GMT_TIME)):
            if name in groups:
                code, group = groups[name]
                spec = code.argument or default
                value = f"ph_dash({group})"
                return [
                    f"CAST(try_strptime({value}, {quote_literal(spec)}) AS TIMESTAMP) AS TimeGenerated",
                    f"{value} AS _raw_TimeGenerated",
                ]
        return []

    def select_sql(self) -> str:
        groups: dict[str, tuple[FormatCode, str]] = {}
        columns: dict[str, list[tuple[FormatCode, str]]] = {}
        names = []
        for index, code in enumerate(self.codes):
            # A left-aligned value with a width is padded with spaces that its group takes in.
            group = f"trim(f.g{index})" if code.width else f"f.g{index}"
            names.append(f"'g{index}'")
            groups.setdefault(code.code, (code, group))
            column = self._column_of(code)
            if column and column not in ("TimeGenerated", "DvcAction"):
                columns.setdefault(column, []).append((code, group))

        items = [
            "SourceLine",
            "RawEvent",
            "CASE WHEN NOT regexp_full_match(RawEvent, {pattern}) THEN {reason} END AS _reject".format(
                pattern=quote_literal(self.pattern),
                reason=quote_literal(
                    f"does not match the logformat {self.logformat.name}: {self.logformat.definition}"
                ),
            ),
        ]
        for column, found in columns.items():
            # Codes of one column are ordered as _CODE_COLUMNS prefers them.
            preferred = _CODE_COLUMNS.get(column, ())
            found.sort(key=lambda pair: preferred.index(pair[0].code) if pair[0].code in preferred else len(preferred))
            value = f"coalesce({', '.join(self._decoded(code, group) for code, group in found)})"
            if column == "DstIpAddr":
                value = f"CASE WHEN regexp_full_match({value}, '{_PEER_IP}') THEN {value} END"
            sql_type = _TYPES.get(column)
            if sql_type:
                typed = f"TRY_CAST({value} AS {sql_type})"
                if column == "HttpStatusCode":
                    # Squid logs status 000 when no reply was sent.
                    typed = f"nullif({typed}, 0)"
                    value = f"nullif(ltrim({value}, '0'), '')"
                items += [f"{typed} AS {column}", f"{value} AS _raw_{column}"]
            else:
                items.append(f"{value} AS {column}")
        items += self._time_items(groups)
        if "Ss" in groups:
            result = f"ph_dash({groups['Ss'][1]})"
            items.append(f"CASE WHEN {result} ILIKE '%DENIED%' THEN 'Deny' WHEN {result} IS NOT NULL THEN 'Allow' END AS DvcAction")

        select_list = ",\n            ".join(items)
        return f"""
        SELECT
            {select_list}
        FROM (SELECT SourceLine, RawEvent, regexp_extract(RawEvent, {quote_literal(self.pattern)}, [{', '.join(names)}]) AS f FROM lines)
        """
