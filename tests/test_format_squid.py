"""Squid native access.log reader, on hand-written lines loaded through the real loader."""

from __future__ import annotations

import tracemalloc
from datetime import datetime

from proxyhunt.formats import all_formats

LINES = [
    # 1: a plain GET with every field present.
    "1700000000.123    150 192.0.2.10 TCP_MISS/200 5120 GET http://example.com:8080/a/b.tar.gz?x=1&y=2 alice "
    "HIER_DIRECT/203.0.113.5 application/x-gzip",
    # 2: blank, counted as a skipped line.
    "",
    # 3: a CONNECT tunnel from an IPv6 client, without user or content type.
    "1700000001.000      5 2001:db8::1 TCP_TUNNEL/200 3000 CONNECT drive.google.com:443 - HIER_DIRECT/2001:db8::2 -",
    # 4: not a Squid line.
    "this is not a squid line",
    # 5: a request denied by the proxy, with no peer.
    "1700000002.5 0 192.0.2.11 TCP_DENIED/403 300 GET http://blocked.example/ - HIER_NONE/- text/html",
    # 6: a request sent to a cache peer that is logged by host name.
    "1700000003.000 12 192.0.2.12 TCP_MISS/200 100 GET http://cdn.example/x - FIRSTUP_PARENT/cafe text/plain",
    # 7: a transaction that ended before any reply: status 000 and method "-".
    "1700000004.000 0 192.0.2.13 NONE_NONE/000 0 - error:transaction-end-before-headers - HIER_NONE/- -",
]
TEXT = "\n".join(LINES) + "\n"


def test_squid_columns(load_text):
    loaded = load_text(TEXT)
    row = loaded.line(1)

    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20, 123000)
    assert row["SrcIpAddr"] == "192.0.2.10"
    assert row["SrcUsername"] == "alice"
    assert row["DstIpAddr"] == "203.0.113.5"
    assert row["Url"] == "http://example.com:8080/a/b.tar.gz?x=1&y=2"
    assert row["HttpRequestMethod"] == "GET"
    assert row["HttpStatusCode"] == 200
    assert row["DstBytes"] == 5120
    assert row["HttpContentType"] == "application/x-gzip"
    assert row["DvcAction"] == "Allow"
    assert row["EventProduct"] == "Squid"
    assert row["EventVendor"] == "Squid"
    assert row["SourceFile"] == loaded.path


def test_squid_unlogged_columns_null(load_text):
    row = load_text(TEXT).line(1)

    # The native format has no User-Agent, referrer, request size or client port.
    assert row["HttpUserAgent"] is None
    assert row["HttpReferrer"] is None
    assert row["SrcBytes"] is None
    assert row["SrcPortNumber"] is None
    assert row["HttpVersion"] is None


def test_squid_derived_url_columns(load_text):
    row = load_text(TEXT).line(1)

    assert row["UrlPath"] == "/a/b.tar.gz"
    assert row["UrlQuery"] == "x=1&y=2"
    assert row["UrlExtension"] == "gz"
    assert row["DstHostname"] == "example.com"
    assert row["DstPortNumber"] == 8080


def test_squid_connect_target(load_text):
    row = load_text(TEXT).line(3)

    assert row["HttpRequestMethod"] == "CONNECT"
    assert row["Url"] == "drive.google.com:443"
    assert row["DstHostname"] == "drive.google.com"
    assert row["DstPortNumber"] == 443
    assert row["UrlPath"] is None
    assert row["UrlQuery"] is None
    assert row["UrlExtension"] is None


def test_squid_ipv6_addresses(load_text):
    row = load_text(TEXT).line(3)

    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["DstIpAddr"] == "2001:db8::2"


def test_squid_dash_is_null(load_text):
    loaded = load_text(TEXT)
    tunnel = loaded.line(3)
    denied = loaded.line(5)

    assert tunnel["SrcUsername"] is None
    assert tunnel["HttpContentType"] is None
    assert denied["DstIpAddr"] is None


def test_squid_denied_action(load_text):
    row = load_text(TEXT).line(5)

    assert row["DvcAction"] == "Deny"
    assert row["HttpStatusCode"] == 403
    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 22, 500000)
    assert row["UrlPath"] == "/"
    assert row["UrlExtension"] is None


def test_squid_peer_hostname_not_ip(load_text):
    # Regression: a peer host name made only of hex letters was taken for an IPv6 address.
    row = load_text(TEXT).line(6)

    assert row["DstIpAddr"] is None
    assert row["DstHostname"] == "cdn.example"


def test_squid_status_zero_null(load_text):
    row = load_text(TEXT).line(7)

    assert row["HttpStatusCode"] is None
    assert row["HttpRequestMethod"] is None
    assert row["DstBytes"] == 0
    assert row["UrlPath"] is None


def test_squid_line_numbers(load_text):
    loaded = load_text(TEXT)

    assert loaded.line_numbers == [1, 3, 5, 6, 7]
    assert loaded.report.lines_read == 7
    assert loaded.report.parsed == 5
    assert loaded.report.rejected == 1
    assert loaded.report.skipped == 1


def test_squid_raw_event_is_line(load_text):
    loaded = load_text(TEXT)

    for row in loaded.rows:
        assert row["RawEvent"] == LINES[row["SourceLine"] - 1]


def test_squid_malformed_line_rejected(load_text):
    loaded = load_text(TEXT)

    assert len(loaded.rejects) == 1
    line, reason, raw_event = loaded.rejects[0]
    assert line == 4
    assert reason.startswith("not a Squid native access.log line")
    assert raw_event == LINES[3]
    assert loaded.report.error is None


def test_squid_detection(load_text):
    scores = {fmt.name: fmt.detect(LINES) for fmt in all_formats()}
    squid_score = scores.pop("squid")

    # Five of the six non-blank lines are Squid lines.
    assert squid_score > 0.5
    for name, score in scores.items():
        assert score < squid_score, name
    assert load_text(TEXT).report.format == "squid"


def test_squid_detection_clean_file():
    clean = [line for number, line in enumerate(LINES, start=1) if number != 4]
    scores = {fmt.name: fmt.detect(clean) for fmt in all_formats()}

    assert scores["squid"] == 0.95
    assert max(score for name, score in scores.items() if name != "squid") == 0.0


NATIVE = "1700000000.123    150 192.0.2.10 TCP_MISS/200 5120 PUT http://x.test/a - HIER_DIRECT/203.0.113.5 text/plain"
MIME_LINES = [
    # 1: log_mime_hdrs as Squid writes it: CR and LF as \r and \n, "%", "[", "]" and non-ASCII bytes as %xx.
    NATIVE + r" [Host: x.test\r\nUser-Agent: rclone/v1.68.2 %5bx%5d 100%25\r\nReferer: http://r.test/%e2%82%ac\r\n]"
    r" [HTTP/1.1 200 OK\r\nServer: test\r\n]",
    # 2: Squid built with OLD_LOG_MIME writes CR and LF as %0d%0a and escapes more characters.
    NATIVE + " [Host: x.test%0d%0auser-agent: rclone/v1.68.2 %28linux%3b amd64%29%0d%0a] [HTTP/1.1 200 OK%0d%0a]",
    # 3: no User-Agent request header, only one in the reply block.
    NATIVE + r" [Host: x.test\r\n] [HTTP/1.1 200 OK\r\nUser-Agent: reply\r\n]",
    # 4: an escaped backslash before "n" is no line break, so this X-Note header contains no User-Agent.
    NATIVE + r" [X-Note: a\\nUser-Agent: fake\r\nUser-Agent: rclone/v1.68.2 \\ %ff\r\n] []",
    # 5: empty header blocks.
    NATIVE + " [] []",
]


def test_squid_mime_headers_agent(load_text):
    # Regression: lines written with log_mime_hdrs on were read as carrying no user agent.
    loaded = load_text("\n".join(MIME_LINES) + "\n", format_name="squid")

    assert loaded.report.parsed == 5
    assert loaded.line(1)["HttpUserAgent"] == "rclone/v1.68.2 [x] 100%"
    assert loaded.line(1)["HttpReferrer"] == "http://r.test/€"
    assert loaded.line(2)["HttpUserAgent"] == "rclone/v1.68.2 (linux; amd64)"
    assert loaded.line(2)["HttpReferrer"] is None


def test_squid_mime_headers_agent_absent(load_text):
    loaded = load_text("\n".join(MIME_LINES) + "\n", format_name="squid")

    assert loaded.line(3)["HttpUserAgent"] is None
    assert loaded.line(5)["HttpUserAgent"] is None
    assert loaded.line(5)["HttpContentType"] == "text/plain"


def test_squid_mime_headers_escapes(load_text):
    row = load_text("\n".join(MIME_LINES) + "\n", format_name="squid").line(4)

    # The byte 0xFF is not UTF-8, so it becomes U+FFFD.
    assert row["HttpUserAgent"] == "rclone/v1.68.2 \\ \ufffd"
    assert row["RawEvent"] == MIME_LINES[3]


def test_squid_mime_headers_not_ignored(load_text):
    loaded = load_text("\n".join(MIME_LINES) + "\n", format_name="squid")

    assert loaded.report.ignored_text_lines == 0
    assert loaded.report.error is None


def test_squid_appended_text_ignored(load_text):
    # Regression: text appended by a customized logformat went unreported.
    lines = [
        NATIVE + ' "rclone/v1.68.2"',
        NATIVE + " [Host: x.test\\r\\nUser-Agent: rclone/v1.68.2\\r\\n]",
        NATIVE,
    ]
    loaded = load_text("\n".join(lines) + "\n")

    assert loaded.report.format == "squid"
    assert loaded.report.parsed == 3
    assert loaded.report.ignored_text_lines == 2
    # The meaning of appended text is unknown, so it is not taken for the user agent.
    assert loaded.line(1)["HttpUserAgent"] is None
    assert loaded.line(2)["HttpUserAgent"] is None
    assert loaded.line(1)["Url"] == "http://x.test/a"


def test_squid_file_without_ignored_text(load_text):
    assert load_text(TEXT).report.ignored_text_lines == 0


def test_squid_detection_long_lines_memory():
    squid = next(fmt for fmt in all_formats() if fmt.name == "squid")
    long_lines = [
        NATIVE.replace("/a ", "/" + "a" * 5_000_000 + " "),
        NATIVE + " [User-Agent: " + "a" * 5_000_000 + "] []",
        " " * 5_000_000 + "x",
    ]

    for number, line in enumerate(long_lines, start=1):
        tracemalloc.start()
        try:
            score = squid.detect([line])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 16 * 1024 * 1024, f"line {number}: {peak} bytes"
        assert score == (0.0 if number == 3 else 0.95), number
