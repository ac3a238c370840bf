"""Squid native access.log reader, on hand-written lines loaded through the real loader."""

from __future__ import annotations

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
