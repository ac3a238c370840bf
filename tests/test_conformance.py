"""Sigma conformance: a table of (rule, event, expected result) cases from the Sigma specification.

Every case converts the rule with the DuckDB backend, inserts the event into a
real DuckDB WebSession table and checks that the rule matches exactly when the
specification requires it to. The same table also checks the pure-Python
reference matcher in ``sigma_reference``, which the differential test relies on.

The expected results follow the Sigma rules specification and its modifiers
appendix (version 2.1.0). Some cases come from mistakes that other Sigma tools
have made: a case-sensitive ``startswith``, a ``\\?`` treated as a wildcard, a
trailing backslash that escapes the wildcard ``contains`` adds, an empty string
that matches every event, swapped ``exists`` values, and a status code that
matches only when stored as a number.
"""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from sigma.collection import SigmaCollection

import sigma_reference
from proxyhunt.backends.duckdb import DuckDBBackend
from proxyhunt.engines.duckdb import compile_rules
from proxyhunt.formats.sql import quote_identifier
from proxyhunt.rules.loader import LoadedRule, load_rules
from proxyhunt.rules.placeholders import PlaceholderLists, expand_placeholders
from proxyhunt.schema import COLUMNS


@dataclass(frozen=True)
class Case:
    """One rule, one event, and whether the rule matches it."""

    name: str
    detection: dict[str, Any]
    event: dict[str, Any]
    expected: bool
    # Column types that differ from the WebSession schema, as another reader might store them.
    types: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)


CASES: list[Case] = []


def rule_cases(name: str, detection: dict[str, Any], outcomes: list[tuple[dict[str, Any], bool]], **options: Any) -> None:
    """Add one case per (event, expected) pair for a detection block."""
    for number, (event, expected) in enumerate(outcomes, start=1):
        CASES.append(Case(f"{name}-{number}", detection, event, expected, **options))


def field_cases(name: str, key: str, value: Any, column: str, outcomes: list[tuple[Any, bool]], **options: Any) -> None:
    """Add one case per (column value, expected) pair for a single ``key: value`` selection."""
    detection = {"selection": {key: value}, "condition": "selection"}
    rule_cases(name, detection, [({column: actual}, expected) for actual, expected in outcomes], **options)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


UA = "HttpUserAgent"
URL = "Url"
HOST = "DstHostname"
RAW = "RawEvent"

# Strings: case-insensitive unless |cased, non-ASCII letters included.
field_cases("startswith-any-case", "c-useragent|startswith", "rclone/v", UA,
            [("RClone/V1.66.0", True), ("rclone/v1.68.2", True), ("xrclone/v1.0", False), ("Mozilla/5.0 rclone/v1", False), (None, False)])
field_cases("plain-whole-value", "c-useragent", "curl/8.5.0", UA,
            [("curl/8.5.0", True), ("CURL/8.5.0", True), ("curl/8.5.0 extra", False), ("my curl/8.5.0", False)])
field_cases("contains", "c-useragent|contains", "rclone", UA, [("Mozilla rclone/v1", True), ("RCLONE", True), ("rclon", False)])
field_cases("endswith", "c-uri|endswith", ".exe", URL, [("/A.EXE", True), ("/a.exe.txt", False)])
field_cases("unicode-latin", "c-useragent", "ÉCOLE", UA, [("école", True), ("ÉCOLE", True), ("ecole", False)])
field_cases("unicode-umlaut-startswith", "c-useragent|startswith", "Äpfel", UA, [("äPFEL/1.0", True), ("Apfel/1.0", False)])
field_cases("unicode-cyrillic-contains", "c-useragent|contains", "ПРИВЕТ", UA, [("бот привет мир", True), ("бот пока", False)])
field_cases("unicode-greek", "c-useragent", "ΣΟΦΙΑ", UA, [("σοφια", True), ("ΣΟΦΙΑ", True)])
field_cases("cased-plain", "c-useragent|cased", "rclone/v1", UA, [("rclone/v1", True), ("RCLONE/V1", False)])
field_cases("cased-startswith", "c-useragent|cased|startswith", "rclone/v", UA, [("rclone/v1.68.2", True), ("RClone/V1.66.0", False)])
field_cases("cased-unicode", "c-useragent|cased|contains", "é", UA, [("café", True), ("CAFÉ", False)])

# Wildcards and escapes.
field_cases("star", "c-useragent", "a*c", UA, [("ac", True), ("abbbc", True), ("abd", False), ("xabc", False)])
field_cases("question-mark", "c-useragent", "a?c", UA, [("abc", True), ("a?c", True), ("ac", False), ("abbc", False)])
field_cases("escaped-question-mark", "c-useragent", r"a\?c", UA, [("a?c", True), ("abc", False), (r"a\?c", False)])
field_cases("escaped-question-mark-contains", "c-uri|contains", r"/index.php\?id=", URL,
            [("http://x/index.php?id=1", True), ("http://x/index.phpXid=1", False)])
field_cases("escaped-star", "c-useragent", r"a\*c", UA, [("a*c", True), ("abc", False), ("ac", False)])
field_cases("escaped-backslash", "c-useragent", r"a\\c", UA, [("a\\c", True), ("a\\\\c", False)])
field_cases("backslash-then-wildcard", "c-useragent", r"a\\*", UA, [("a\\", True), ("a\\tail", True), ("a*", False)])
field_cases("backslash-then-literal-star", "c-useragent", r"a\\\*", UA, [("a\\*", True), ("a\\x", False), ("a*", False)])
field_cases("four-backslashes", "c-useragent", r"a\\\\b", UA, [("a\\\\b", True), ("a\\b", False)])
field_cases("plain-backslash", "c-uri", r"C:\Windows", URL, [("c:\\windows", True), ("C:Windows", False)])
field_cases("contains-trailing-backslash", "c-uri|contains", "C:\\temp\\", URL,
            [("x C:\\temp\\y", True), ("c:\\TEMP\\", True), ("C:\\temp", False), ("C:\\tempy", False)])
field_cases("endswith-trailing-backslash", "c-uri|endswith", "\\temp\\", URL, [("C:\\temp\\", True), ("C:\\temp\\x", False)])
field_cases("like-percent-literal", "c-uri|contains", "100%", URL, [("x100%y", True), ("x100y", False)])
field_cases("like-underscore-literal", "c-uri", "a_b", URL, [("a_b", True), ("axb", False)])
field_cases("single-quote", "c-useragent", "it's", UA, [("it's", True), ("its", False)])
field_cases("star-alone", "c-useragent", "*", UA, [("anything", True), ("", True), (None, False)])
field_cases("question-mark-alone", "c-useragent", "?", UA, [("x", True), ("", False), ("xy", False)])

# Empty values, null and field existence.
field_cases("empty-string", "c-useragent", "", UA, [("", True), (None, False), ("curl/8.5.0", False), (" ", False)])
field_cases("null", "c-useragent", None, UA, [(None, True), ("", False), ("x", False)])
field_cases("null-in-list", "c-useragent", ["rclone", None], UA, [(None, True), ("rclone", True), ("curl", False)])
field_cases("contains-empty", "c-useragent|contains", "", UA, [("x", True), ("", True), (None, False)])
field_cases("exists-true", "c-useragent|exists", True, UA, [("x", True), ("", True), (None, False)])
field_cases("exists-false", "c-useragent|exists", False, UA, [(None, True), ("x", False), ("", False)])
rule_cases("not-null", {"selection": {"c-useragent": None}, "condition": "not selection"},
           [({UA: "x"}, True), ({UA: None}, False)])

# Numbers compare as numbers, whatever the column type.
field_cases("number-int-column", "sc-status", 407, "HttpStatusCode", [(407, True), (200, False), (4070, False), (None, False)])
field_cases("number-text-column", "sc-status", 407, "HttpStatusCode",
            [("407", True), ("407.0", True), ("x407", False), ("", False), ("4070", False), ("4_07", False)],
            types={"HttpStatusCode": "VARCHAR"})
field_cases("number-double-column", "sc-status", 407, "HttpStatusCode", [(407.0, True), (407.5, False)], types={"HttpStatusCode": "DOUBLE"})
field_cases("quoted-number-int-column", "sc-status", "407", "HttpStatusCode", [(407, True), (200, False)])
field_cases("number-list", "sc-status", [200, 407], "HttpStatusCode", [(200, True), (407, True), (404, False)])
field_cases("gt", "cs-bytes|gt", 1000, "SrcBytes", [(1001, True), (1000, False), (None, False)])
field_cases("gte", "cs-bytes|gte", 1000, "SrcBytes", [(1000, True), (999, False), (5000000000, True)])
field_cases("lt", "cs-bytes|lt", 1000, "SrcBytes", [(999, True), (1000, False), (-5, True)])
field_cases("lte", "cs-bytes|lte", 1000, "SrcBytes", [(1000, True), (1001, False)])
field_cases("gte-text-column", "cs-bytes|gte", 1000, "SrcBytes", [("1000", True), ("999", False), ("abc", False)],
            types={"SrcBytes": "VARCHAR"})
field_cases("float-value", "cs-bytes|lt", 1.5, "SrcBytes", [(1, True), (2, False)])
rule_cases("not-gt-missing", {"selection": {"cs-bytes|gt": 1000}, "condition": "not selection"},
           [({"SrcBytes": None}, True), ({"SrcBytes": 5000}, False)])
field_cases("boolean", "c-useragent", True, UA, [("true", True), ("True", True), ("false", False)])

# Regular expressions.
field_cases("re-anywhere-case-sensitive", "c-useragent|re", r"rclone/v1\.6", UA,
            [("x rclone/v1.66.0", True), ("RCLONE/V1.66.0", False), ("rclone/v1x6", False)])
field_cases("re-i", "c-useragent|re|i", r"rclone/v1\.6", UA, [("RClone/V1.66.0", True), ("curl", False)])
field_cases("re-anchored", "c-useragent|re", "^rclone", UA, [("rclone/v1", True), ("x rclone", False)])
field_cases("re-dot-newline", "c-useragent|re", "a.b", UA, [("a\nb", False), ("axb", True)])
field_cases("re-s", "c-useragent|re|s", "a.b", UA, [("a\nb", True)])
field_cases("re-caret-line", "c-useragent|re", "^b", UA, [("a\nb", False)])
field_cases("re-m", "c-useragent|re|m", "^b", UA, [("a\nb", True), ("a\nc", False)])
field_cases("re-i-unicode", "c-useragent|re|i", "é", UA, [("CAFÉ", True)])
field_cases("re-quote", "c-useragent|re", "^it's$", UA, [("it's", True), ("its", False)])
field_cases("re-list", "c-useragent|re", ["^rclone", "^restic"], UA, [("restic/0.16", True), ("curl", False)])
field_cases("re-alternation-class", "c-uri|re", "/(upload|put)/[0-9]{2,3}$", URL, [("/put/123", True), ("/put/1", False)])

# CIDR, IPv4 and IPv6.
field_cases("cidr-v4", "c-ip|cidr", "10.0.0.0/8", "SrcIpAddr",
            [("10.1.2.3", True), ("11.0.0.1", False), ("10.256.0.1", False), ("010.0.0.1", False), ("100.0.0.1", False), (None, False)])
field_cases("cidr-v4-24", "c-ip|cidr", "192.168.1.0/24", "SrcIpAddr", [("192.168.1.255", True), ("192.168.2.0", False)])
field_cases("cidr-v4-12", "c-ip|cidr", "172.16.0.0/12", "SrcIpAddr", [("172.31.255.255", True), ("172.32.0.0", False), ("172.15.0.1", False)])
field_cases("cidr-v4-23", "c-ip|cidr", "192.168.0.0/23", "SrcIpAddr", [("192.168.1.7", True), ("192.168.2.7", False)])
field_cases("cidr-v4-32", "c-ip|cidr", "10.0.0.5/32", "SrcIpAddr", [("10.0.0.5", True), ("10.0.0.50", False)])
field_cases("cidr-v4-0", "c-ip|cidr", "0.0.0.0/0", "SrcIpAddr", [("203.0.113.9", True), ("::1", False), ("host", False)])
field_cases("cidr-v6", "c-ip|cidr", "fe80::/10", "SrcIpAddr",
            [("FE80::1", True), ("febf:ffff::1", True), ("fec0::1", False), ("10.0.0.1", False), ("fe80::1%eth0", True)])
field_cases("cidr-v6-32", "c-ip|cidr", "2001:db8::/32", "SrcIpAddr",
            [("2001:0db8:0000::1", True), ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", True), ("2001:db9::", False), ("2001:db8::1::2", False)])
field_cases("cidr-v6-mapped", "c-ip|cidr", "::ffff:0:0/96", "SrcIpAddr", [("::ffff:10.0.0.5", True), ("::fffe:10.0.0.5", False)])
field_cases("cidr-v4-not-mapped", "c-ip|cidr", "10.0.0.0/8", "SrcIpAddr", [("::ffff:10.0.0.5", False)])
field_cases("cidr-list", "c-ip|cidr", ["10.0.0.0/8", "192.168.0.0/16"], "SrcIpAddr", [("192.168.3.4", True), ("172.16.0.1", False)])
rule_cases("not-cidr-missing", {"selection": {"c-ip|cidr": "10.0.0.0/8"}, "condition": "not selection"},
           [({"SrcIpAddr": None}, True), ({"SrcIpAddr": "10.0.0.1"}, False)])

# Encodings.
field_cases("base64", "c-uri|base64|contains", "rclone", URL, [(f"/q={b64(b'rclone')}", True), ("/q=rclone", False)])
field_cases("base64offset", "c-uri|base64offset|contains", "rclone", URL,
            [(b64(b"rclone config"), True), (b64(b"x rclone config"), True), (b64(b"xx rclone"), True), (b64(b"rclon"), False)])
field_cases("wide-base64offset", "c-uri|wide|base64offset|contains", "cmd", URL,
            [(b64("powershell -c cmd".encode("utf-16-le")), True), (b64(b"powershell -c cmd"), False)])
field_cases("utf16le-base64", "c-uri|utf16le|base64|contains", "cmd", URL, [(b64("cmd".encode("utf-16-le")), True)])
field_cases("utf16be-base64", "c-uri|utf16be|base64|contains", "cmd", URL,
            [(b64("cmd".encode("utf-16-be")), True), (b64("cmd".encode("utf-16-le")), False)])
field_cases("utf16-bom-base64", "c-uri|utf16|base64|contains", "cmd", URL,
            [(b64(b"\xff\xfe" + "cmd".encode("utf-16-le")), True), (b64("\ufeffcmd".encode("utf-16-le")), True)])
field_cases("wide-non-ascii", "c-uri|wide|base64offset|contains", "café", URL, [(b64("x café".encode("utf-16-le")), True)])
field_cases("wide-plain", "c-uri|wide|contains", "cmd", URL, [("x c\x00m\x00d\x00 y", True), ("cmd", False)])
field_cases("windash", "c-uri|windash|contains", " -enc ", URL,
            [("p -enc x", True), ("p /enc x", True), ("p \u2013enc x", True), ("p \u2014enc x", True), ("p \u2015enc x", True), ("p enc x", False)])
field_cases("windash-inside-word", "c-uri|windash|contains", "a-b", URL, [("xa/by", True), ("xa\u2013by", True), ("xa_by", False)])
field_cases("windash-all-dashes", "c-uri|windash", "/a-b", URL, [("-a/b", True), ("\u2014a\u2015b", True), ("-a-c", False)])

# Field references.
rule_cases("fieldref", {"selection": {"c-uri|fieldref": "cs-host"}, "condition": "selection"},
           [({URL: "example.com", HOST: "EXAMPLE.com"}, True), ({URL: "example.com", HOST: "other.com"}, False),
            ({URL: "example.com", HOST: None}, False)])
rule_cases("fieldref-contains", {"selection": {"c-uri|fieldref|contains": "cs-host"}, "condition": "selection"},
           [({URL: "http://Example.com/x", HOST: "example.com"}, True), ({URL: "http://other.com/", HOST: "example.com"}, False)])
rule_cases("fieldref-startswith", {"selection": {"c-uri|fieldref|startswith": "cs-host"}, "condition": "selection"},
           [({URL: "example.com/x", HOST: "example.com"}, True), ({URL: "x/example.com", HOST: "example.com"}, False)])
rule_cases("fieldref-endswith", {"selection": {"c-uri|fieldref|endswith": "cs-host"}, "condition": "selection"},
           [({URL: "x/example.com", HOST: "example.com"}, True), ({URL: "example.com/x", HOST: "example.com"}, False)])

# neq: the field differs from every listed value.
field_cases("neq", "cs-method|neq", "GET", "HttpRequestMethod", [("POST", True), ("get", False), (None, True)])
field_cases("neq-list", "cs-method|neq", ["GET", "HEAD"], "HttpRequestMethod", [("PUT", True), ("HEAD", False)])

# Time parts of the event time (UTC).
field_cases("hour", "TimeGenerated|hour", 3, "TimeGenerated", [(datetime(2026, 3, 1, 3, 15), True), (datetime(2026, 3, 1, 4, 3), False)])
field_cases("minute", "TimeGenerated|minute", 15, "TimeGenerated", [(datetime(2026, 3, 1, 3, 15), True)])
field_cases("day", "TimeGenerated|day", 1, "TimeGenerated", [(datetime(2026, 3, 1, 3, 15), True), (datetime(2026, 3, 2), False)])
field_cases("month", "TimeGenerated|month", 3, "TimeGenerated", [(datetime(2026, 3, 1), True)])
field_cases("year", "TimeGenerated|year", 2026, "TimeGenerated", [(datetime(2026, 3, 1), True), (datetime(2025, 3, 1), False)])
field_cases("iso-week", "TimeGenerated|week", 9, "TimeGenerated", [(datetime(2026, 3, 1), True), (datetime(2026, 3, 2), False)])

# Keywords search the raw event as a case-insensitive substring.
rule_cases("keyword", {"keywords": ["RCLONE/V"], "condition": "keywords"},
           [({RAW: '10.0.0.5 "GET /" "rclone/v1.66.0"'}, True), ({RAW: "10.0.0.5 curl"}, False), ({RAW: None}, False)])
rule_cases("keyword-list-or", {"keywords": ["rclone", "restic"], "condition": "keywords"},
           [({RAW: "restic/0.16"}, True), ({RAW: "curl"}, False)])
rule_cases("keyword-all-and", {"keywords": {"|all": ["rclone", "copy"]}, "condition": "keywords"},
           [({RAW: "rclone copy x"}, True), ({RAW: "rclone sync"}, False)])
rule_cases("keyword-wildcard", {"keywords": ["rclone*config"], "condition": "keywords"},
           [({RAW: "x rclone --config y"}, True), ({RAW: "config rclone"}, False)])
rule_cases("keyword-percent", {"keywords": ["50%_off"], "condition": "keywords"},
           [({RAW: "sale 50%_off now"}, True), ({RAW: "sale 50xxoff now"}, False)])
rule_cases("keyword-cased", {"keywords": {"|cased": ["Rclone"]}, "condition": "keywords"},
           [({RAW: "Rclone"}, True), ({RAW: "rclone"}, False)])
rule_cases("keyword-re", {"keywords": {"|re": [r"rclone/v\d"]}, "condition": "keywords"},
           [({RAW: "x rclone/v1"}, True), ({RAW: "x rclone/vx"}, False)])
rule_cases("keyword-number", {"keywords": [407], "condition": "keywords"}, [({RAW: "GET / 407 0"}, True), ({RAW: "GET / 200"}, False)])
rule_cases("keyword-unicode", {"keywords": ["ÜBER"], "condition": "keywords"}, [({RAW: "x über y"}, True)])
rule_cases("keyword-windash", {"keywords": {"|windash": ["-enc"]}, "condition": "keywords"}, [({RAW: "ps /enc abc"}, True), ({RAW: "ps enc"}, False)])

# Lists, maps and the condition grammar.
AGENT_PUT = {"c-useragent|startswith": "rclone/v", "cs-method": "PUT"}
rule_cases("map-and", {"selection": AGENT_PUT, "condition": "selection"},
           [({UA: "rclone/v1", "HttpRequestMethod": "PUT"}, True), ({UA: "rclone/v1", "HttpRequestMethod": "GET"}, False),
            ({UA: "rclone/v1", "HttpRequestMethod": None}, False)])
rule_cases("list-of-maps-or", {"selection": [{"c-useragent|startswith": "rclone/v"}, {"cs-host|endswith": ".mega.nz"}], "condition": "selection"},
           [({UA: "rclone/v1", HOST: "x"}, True), ({UA: "curl", HOST: "g.api.mega.nz"}, True), ({UA: "curl", HOST: "x"}, False)])
field_cases("value-list-or", "c-useragent|startswith", ["rclone/", "restic/"], UA, [("restic/0.16", True), ("curl/8", False)])
field_cases("contains-all", "c-uri|contains|all", ["upload", "bucket"], URL, [("/upload/bucket", True), ("/upload", False)])

SELECTIONS = {
    "sel_agent": {"c-useragent|startswith": "rclone/v"},
    "sel_method": {"cs-method": "PUT"},
    "filter_host": {"cs-host": "backup.example.com"},
    "_helper": {"c-uri|contains": "never-there"},
}
RCLONE_PUT_BACKUP = {UA: "rclone/v1", "HttpRequestMethod": "PUT", HOST: "backup.example.com"}
RCLONE_GET = {UA: "rclone/v1", "HttpRequestMethod": "GET", HOST: "mega.nz"}
CURL_PUT = {UA: "curl", "HttpRequestMethod": "PUT", HOST: "mega.nz"}
for condition, outcomes in {
    "sel_agent and not filter_host": [(RCLONE_PUT_BACKUP, False), (RCLONE_GET, True), (CURL_PUT, False)],
    "sel_agent or sel_method and filter_host": [(RCLONE_GET, True), (CURL_PUT, False)],
    "(sel_agent or sel_method) and filter_host": [(RCLONE_GET, False), (RCLONE_PUT_BACKUP, True)],
    "not sel_agent and sel_method": [(CURL_PUT, True), (RCLONE_GET, False)],
    "not (sel_agent and sel_method)": [(RCLONE_GET, True), ({**RCLONE_GET, "HttpRequestMethod": "PUT"}, False)],
    "not not sel_agent": [(RCLONE_GET, True), (CURL_PUT, False)],
    "1 of sel_*": [(CURL_PUT, True), ({UA: "curl", "HttpRequestMethod": "GET"}, False)],
    "all of sel_*": [(RCLONE_PUT_BACKUP, True), (RCLONE_GET, False)],
    "1 of them": [({UA: "curl", HOST: "backup.example.com"}, True), ({UA: "curl", URL: "/never-there"}, False)],
    "all of them": [(RCLONE_PUT_BACKUP, True), (CURL_PUT, False)],
    "1 of sel_* and not 1 of filter_*": [(RCLONE_GET, True), (RCLONE_PUT_BACKUP, False)],
    "sel_agent and not (sel_method or filter_host)": [(RCLONE_GET, True), ({**RCLONE_GET, "HttpRequestMethod": "PUT"}, False)],
}.items():
    rule_cases(f"condition {condition}", {**SELECTIONS, "condition": condition}, outcomes)
rule_cases("condition-list-or", {**SELECTIONS, "condition": ["sel_method", "filter_host"]},
           [(CURL_PUT, True), ({UA: "curl", HOST: "backup.example.com"}, True), ({UA: "curl"}, False)])
rule_cases("not-over-missing-field", {"selection": AGENT_PUT, "condition": "not selection"},
           [({UA: None, "HttpRequestMethod": "PUT"}, True), ({UA: "rclone/v1", "HttpRequestMethod": "PUT"}, False)])

# Placeholders from a lists file keep Sigma wildcard meaning.
BACKUP_LISTS = {"known_backup_destinations": ["backup.example.com", "*.backup.example.net", r"odd\*name"]}
field_cases("expand", "cs-host|expand", "%known_backup_destinations%", HOST,
            [("backup.example.com", True), ("BACKUP.example.com", True), ("x.backup.example.net", True),
             ("evil.example.org", False), ("odd*name", True), ("oddXname", False)], lists=BACKUP_LISTS)
field_cases("expand-inside-value", "cs-host|expand", "%hosts%.corp", HOST,
            [("h1x.corp", True), ("h2.corp", True), ("h2.corpx", False), ("h3.corp", False)], lists={"hosts": ["h1*", "h2"]})
field_cases("expand-two-placeholders", "cs-host|expand", "%hosts%-%zones%", HOST,
            [("h2-eu", True), ("h2-us", False)], lists={"hosts": ["h2"], "zones": ["eu"]})
field_cases("expand-escaped-percent", "c-uri|expand", r"x\%plain%hosts%", URL,
            [("x%plainh2", True), ("xplainh2", False)], lists={"hosts": ["h2"]})
rule_cases("expand-filter", {"selection": {"c-useragent|startswith": "rclone/v"},
                             "filter": {"cs-host|expand": "%known_backup_destinations%"}, "condition": "selection and not filter"},
           [({UA: "rclone/v1", HOST: "backup.example.com"}, False), ({UA: "rclone/v1", HOST: "mega.nz"}, True),
            ({UA: "rclone/v1", HOST: None}, True)], lists=BACKUP_LISTS)


def test_table_size():
    assert len(CASES) >= 150
    assert len({case.name for case in CASES}) == len(CASES)


def rule_from_detection(detection: dict[str, Any]):
    text = "title: conformance case\nlogsource:\n    category: proxy\n" + yaml.safe_dump(
        {"detection": detection}, allow_unicode=True, sort_keys=False
    )
    [rule] = SigmaCollection.from_yaml(text).rules
    return rule


def case_where(case: Case) -> str:
    rule = rule_from_detection(case.detection)
    if case.lists:
        lists = PlaceholderLists("lists.yml", {name: tuple(values) for name, values in case.lists.items()})
        [loaded], problems = expand_placeholders([LoadedRule(rule, "case.yml", bundled=False)], lists)
        assert problems == []
        rule = loaded.rule
    return " OR ".join(f"({query})" for query in DuckDBBackend().convert_rule(rule))


@pytest.fixture(scope="module")
def connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def load_event(connection: duckdb.DuckDBPyConnection, case: Case) -> None:
    """Create a fresh websession table with the case's column types and insert its one event."""
    columns = ", ".join(f"{quote_identifier(c.name)} {case.types.get(c.name, c.sql_type)}" for c in COLUMNS)
    connection.execute("DROP TABLE IF EXISTS websession")
    connection.execute(f"CREATE TABLE websession ({columns})")
    event = {"SourceLine": 1, **case.event}
    names = ", ".join(quote_identifier(name) for name in event)
    marks = ", ".join("?" for _ in event)
    connection.execute(f"INSERT INTO websession ({names}) VALUES ({marks})", list(event.values()))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_duckdb_backend_conforms(connection, case):
    load_event(connection, case)
    where = case_where(case)

    [(matched,)] = connection.execute(f"SELECT count(*) FROM websession WHERE {where}").fetchall()

    assert bool(matched) is case.expected, f"{case.detection} on {case.event}: {where}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_reference_matcher_conforms(case):
    assert sigma_reference.matches(case.detection, case.event, case.lists) is case.expected


# Rules the specification says a tool must reject, with a message naming the rule file and the reason.


def test_unknown_modifier_names_file_and_modifier(tmp_path: Path):
    path = tmp_path / "unknown-modifier.yml"
    path.write_text(
        textwrap.dedent(
            """\
            title: unknown modifier
            logsource:
                category: proxy
            detection:
                selection:
                    c-useragent|startswiths: 'rclone/v'
                condition: selection
            """
        )
    )

    ruleset = load_rules([str(path)], include_bundled=False)

    assert ruleset.rules == []
    [problem] = ruleset.problems
    assert str(path) in str(problem)
    assert "unknown Sigma modifier 'startswiths' at line 6" in str(problem)
    assert "did you mean 'startswith'?" in str(problem)


@pytest.mark.parametrize(
    ("key", "expected"),
    [('"c-useragent|contians"', "'contians' at line 6; did you mean 'contains'?"), ("c-uri|contains|ALL", "'ALL' at line 6; did you mean 'all'?")],
)
def test_unknown_modifier_in_quoted_key_or_capitals(tmp_path: Path, key: str, expected: str):
    path = tmp_path / "unknown-modifier.yml"
    path.write_text(f"title: t\nlogsource:\n    category: proxy\ndetection:\n    selection:\n        {key}: 'x'\n    condition: selection\n")

    [problem] = load_rules([str(path)], include_bundled=False).problems

    assert f"unknown Sigma modifier {expected}" in str(problem)


def test_unresolved_placeholder_not_runnable():
    rule = rule_from_detection({"selection": {"cs-host|expand": "%known_backup_destinations%"}, "condition": "selection"})

    [compiled] = compile_rules([LoadedRule(rule, "expand.yml", bundled=False)])

    assert not compiled.runnable
    assert "%known_backup_destinations%" in compiled.error
    assert "--lists" in compiled.error


def test_placeholder_missing_from_lists_not_runnable():
    rule = rule_from_detection({"selection": {"cs-host|expand": "%ci_hosts%"}, "condition": "selection"})
    lists = PlaceholderLists("site-lists.yml", {"known_backup_destinations": ("backup.example.com",)})

    rules, problems = expand_placeholders([LoadedRule(rule, "expand.yml", bundled=False)], lists)

    assert rules == []
    [problem] = problems
    assert "%ci_hosts%" in problem.message
    assert "site-lists.yml" in problem.message
