"""Common and combined log format reader, on hand-written lines loaded through the real loader."""

from __future__ import annotations

import tracemalloc
from datetime import datetime

from proxyhunt.formats import all_formats

LINES = [
    # 1: Apache combined with a user, a referrer and a user agent with spaces.
    '192.0.2.10 - alice [10/Oct/2023:13:55:36 +0100] "GET /files/report.PDF?id=7&x=%20 HTTP/1.1" 200 2326 '
    '"http://ref.example/start" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) rclone/v1.65.0"',
    # 2: a CONNECT tunnel from an IPv6 client. The negative offset moves the time to the next day.
    '2001:db8::7 - - [10/Oct/2023:23:30:00 -0230] "CONNECT drive.google.com:443 HTTP/1.1" 200 - "-" '
    '"Go-http-client/1.1"',
    # 3: an absolute URL, as a forward proxy logs it, with empty referrer and user agent.
    '192.0.2.12 - - [01/Jan/2024:00:00:00 +0000] "GET http://example.org:8080/x.js HTTP/1.0" 304 0 "" ""',
    # 4: Apache escapes a quote as \" and a backslash as \\ inside quoted fields.
    r'192.0.2.13 - - [01/Jan/2024:00:00:01 +0000] "GET /q HTTP/1.1" 200 5 "-" "say \"hi\" \\ there"',
    # 5: not a log line.
    "not a log line",
    # 6: common log format: no referrer and no user agent fields at all.
    '192.0.2.14 - - [01/Jan/2024:00:00:02 +0000] "GET /common HTTP/1.1" 404 -',
    # 7: blank, counted as a skipped line.
    "",
    # 8: nginx writes the quote and bytes outside printable ASCII as \xHH, and Apache writes a tab as \t.
    r'192.0.2.15 - - [01/Jan/2024:00:00:03 +0000] "GET /caf\xC3\xA9 HTTP/1.1" 200 1 "-" "a\tb \x22x\x22"',
    # 9: a malformed request line whose target contains a space, logged as received.
    '192.0.2.16 - - [01/Jan/2024:00:00:04 +0000] "GET /a b HTTP/1.1" 400 0 "-" "-"',
    # 10: Squid's combined logformat appends the result code and hierarchy.
    '192.0.2.17 - - [01/Jan/2024:00:00:05 +0000] "GET http://example.net/ HTTP/1.1" 200 10 "-" "curl/8.4.0" '
    "TCP_MISS:HIER_DIRECT",
]
TEXT = "\n".join(LINES) + "\n"


def test_combined_columns(load_text):
    loaded = load_text(TEXT)
    row = loaded.line(1)

    assert row["TimeGenerated"] == datetime(2023, 10, 10, 12, 55, 36)
    assert row["SrcIpAddr"] == "192.0.2.10"
    assert row["SrcUsername"] == "alice"
    assert row["HttpRequestMethod"] == "GET"
    assert row["Url"] == "/files/report.PDF?id=7&x=%20"
    assert row["HttpVersion"] == "1.1"
    assert row["HttpStatusCode"] == 200
    assert row["DstBytes"] == 2326
    assert row["HttpReferrer"] == "http://ref.example/start"
    assert row["HttpUserAgent"] == "Mozilla/5.0 (Windows NT 10.0; Win64; x64) rclone/v1.65.0"
    assert row["SourceFile"] == loaded.path


def test_combined_unlogged_columns_null(load_text):
    row = load_text(TEXT).line(1)

    # The bytes field counts the response. The format has no request size, port or vendor.
    assert row["SrcBytes"] is None
    assert row["SrcPortNumber"] is None
    assert row["DstIpAddr"] is None
    assert row["EventProduct"] is None
    assert row["EventVendor"] is None


def test_combined_origin_form_url(load_text):
    row = load_text(TEXT).line(1)

    assert row["UrlPath"] == "/files/report.PDF"
    assert row["UrlQuery"] == "id=7&x=%20"
    assert row["UrlExtension"] == "PDF"
    assert row["DstHostname"] is None
    assert row["DstPortNumber"] is None


def test_combined_offsets_to_utc(load_text):
    loaded = load_text(TEXT)

    # +0100 is one hour ahead of UTC, and -0230 is two and a half hours behind.
    assert loaded.line(1)["TimeGenerated"] == datetime(2023, 10, 10, 12, 55, 36)
    assert loaded.line(2)["TimeGenerated"] == datetime(2023, 10, 11, 2, 0, 0)
    assert loaded.line(3)["TimeGenerated"] == datetime(2024, 1, 1, 0, 0, 0)


def test_combined_connect_target(load_text):
    row = load_text(TEXT).line(2)

    assert row["HttpRequestMethod"] == "CONNECT"
    assert row["Url"] == "drive.google.com:443"
    assert row["DstHostname"] == "drive.google.com"
    assert row["DstPortNumber"] == 443
    assert row["UrlPath"] is None
    assert row["UrlQuery"] is None


def test_combined_ipv6_client(load_text):
    row = load_text(TEXT).line(2)

    assert row["SrcIpAddr"] == "2001:db8::7"
    assert row["HttpUserAgent"] == "Go-http-client/1.1"


def test_combined_dash_is_null(load_text):
    row = load_text(TEXT).line(2)

    assert row["SrcUsername"] is None
    assert row["DstBytes"] is None
    assert row["HttpReferrer"] is None


def test_combined_absolute_url(load_text):
    row = load_text(TEXT).line(3)

    assert row["Url"] == "http://example.org:8080/x.js"
    assert row["DstHostname"] == "example.org"
    assert row["DstPortNumber"] == 8080
    assert row["UrlPath"] == "/x.js"
    assert row["UrlExtension"] == "js"
    assert row["UrlQuery"] is None
    assert row["HttpVersion"] == "1.0"
    assert row["DstBytes"] == 0


def test_combined_empty_quotes_empty_string(load_text):
    row = load_text(TEXT).line(3)

    assert row["HttpUserAgent"] == ""
    assert row["HttpReferrer"] == ""


def test_combined_common_format_null_agent(load_text):
    row = load_text(TEXT).line(6)

    assert row["HttpUserAgent"] is None
    assert row["HttpReferrer"] is None
    assert row["HttpStatusCode"] == 404
    assert row["DstBytes"] is None


def test_combined_apache_escapes(load_text):
    row = load_text(TEXT).line(4)

    assert row["HttpUserAgent"] == 'say "hi" \\ there'
    assert row["HttpReferrer"] is None


def test_combined_hex_escapes(load_text):
    # Regression: \xHH and C escapes such as \t were kept as text.
    row = load_text(TEXT).line(8)

    assert row["Url"] == "/café"
    assert row["UrlPath"] == "/café"
    assert row["HttpUserAgent"] == 'a\tb "x"'


def test_combined_request_target_with_space(load_text):
    # Regression: the whole request line went into Url and the method was lost.
    row = load_text(TEXT).line(9)

    assert row["HttpRequestMethod"] == "GET"
    assert row["Url"] == "/a b"
    assert row["HttpVersion"] == "1.1"
    assert row["HttpStatusCode"] == 400


def test_combined_squid_trailing_fields(load_text):
    row = load_text(TEXT).line(10)

    assert row["HttpUserAgent"] == "curl/8.4.0"
    assert row["HttpReferrer"] is None
    assert row["DstHostname"] == "example.net"
    assert row["RawEvent"].endswith("TCP_MISS:HIER_DIRECT")


def test_combined_vhost_prefix(load_text):
    # Regression: the servername:port of vhost_combined was read as the client address.
    line = 'www.example.com:443 192.0.2.18 - bob [01/Jan/2024:00:00:06 +0000] "GET /v HTTP/1.1" 200 5 "-" "curl/8.4.0"'
    loaded = load_text(line + "\n")
    row = loaded.line(1)

    assert loaded.report.format == "combined"
    assert row["SrcIpAddr"] == "192.0.2.18"
    assert row["SrcUsername"] == "bob"
    assert row["DstHostname"] == "www.example.com"
    assert row["DstPortNumber"] == 443
    assert row["HttpUserAgent"] == "curl/8.4.0"


def test_combined_vhost_forward_proxy(load_text):
    # For a forward proxy the server name is the proxy, so the host of the request target wins.
    absolute = 'proxy.corp:3128 192.0.2.21 - - [01/Jan/2024:00:00:08 +0000] "GET http://example.net/f HTTP/1.1" 200 5'
    tunnel = 'proxy.corp:3128 192.0.2.21 - - [01/Jan/2024:00:00:09 +0000] "CONNECT drive.google.com:443 HTTP/1.1" 200 5'
    loaded = load_text(absolute + "\n" + tunnel + "\n")

    assert loaded.line(1)["DstHostname"] == "example.net"
    assert loaded.line(1)["DstPortNumber"] is None
    assert loaded.line(2)["DstHostname"] == "drive.google.com"
    assert loaded.line(2)["DstPortNumber"] == 443


def test_combined_client_with_port(load_text):
    # Three fields before the time: the first is the client, even when it ends in :port.
    line = '192.0.2.19:5555 - - [01/Jan/2024:00:00:07 +0000] "GET /p HTTP/1.1" 200 5'
    row = load_text(line + "\n").line(1)

    assert row["SrcIpAddr"] == "192.0.2.19:5555"
    assert row["DstHostname"] is None
    assert row["DstPortNumber"] is None


def test_combined_line_numbers(load_text):
    loaded = load_text(TEXT)

    assert loaded.line_numbers == [1, 2, 3, 4, 6, 8, 9, 10]
    assert loaded.report.lines_read == 10
    assert loaded.report.parsed == 8
    assert loaded.report.rejected == 1
    assert loaded.report.skipped == 1


def test_combined_raw_event_is_line(load_text):
    loaded = load_text(TEXT)

    for row in loaded.rows:
        assert row["RawEvent"] == LINES[row["SourceLine"] - 1]


def test_combined_malformed_line_rejected(load_text):
    loaded = load_text(TEXT)

    assert len(loaded.rejects) == 1
    line, reason, raw_event = loaded.rejects[0]
    assert line == 5
    assert reason.startswith("not a common or combined log line")
    assert raw_event == "not a log line"
    assert loaded.report.error is None


def test_combined_invalid_time_counted(load_text):
    line = '192.0.2.20 - - [31/Foo/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
    loaded = load_text(line + "\n", format_name="combined")

    assert loaded.report.parsed == 1
    assert loaded.line(1)["TimeGenerated"] is None
    assert loaded.report.invalid_values == {"TimeGenerated": 1}


def test_combined_detection(load_text):
    scores = {fmt.name: fmt.detect(LINES) for fmt in all_formats()}
    combined_score = scores.pop("combined")

    # Eight of the nine non-blank lines are in the format.
    assert combined_score > 0.5
    for name, score in scores.items():
        assert score < combined_score, name
    assert load_text(TEXT).report.format == "combined"


def test_combined_detection_clean_file():
    clean = [line for line in LINES if line and line != "not a log line"]
    scores = {fmt.name: fmt.detect(clean) for fmt in all_formats()}

    assert scores["combined"] == 0.9
    assert max(score for name, score in scores.items() if name != "combined") == 0.0


PUT = '"PUT http://x.test/a HTTP/1.1" 200 355'
AGENT_NOT_QUOTED = [
    # A quote inside the user agent that the writer did not escape.
    f'10.0.0.1 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "rclone/v1.68.2 "odd" quote"',
    # The user agent has no closing quote.
    f'10.0.0.2 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "rclone/v1.68.2',
    # The user agent is not quoted.
    f'10.0.0.3 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" rclone/v1.68.2',
    # The last quote is escaped, so the user agent never closes.
    f'10.0.0.4 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "rclone/v1.68.2\\"',
    # Text glued to the closing quote of the user agent.
    f'10.0.0.5 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "rclone/v1.68.2"x',
    # Only one quoted field after the byte count.
    f'10.0.0.6 - - [03/Nov/2026:02:58:13 +0100] {PUT} "rclone/v1.68.2"',
]


def test_combined_agent_not_quoted_rejected(load_text):
    # Regression: these lines were parsed with the user agent silently dropped.
    good = f'10.0.0.9 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "rclone/v1.68.2"'
    loaded = load_text("\n".join([*AGENT_NOT_QUOTED, good]) + "\n", format_name="combined")

    assert loaded.line_numbers == [len(AGENT_NOT_QUOTED) + 1]
    assert loaded.report.rejected == len(AGENT_NOT_QUOTED)
    assert [line for line, _, _ in loaded.rejects] == list(range(1, len(AGENT_NOT_QUOTED) + 1))
    for line, reason, raw_event in loaded.rejects:
        assert reason.startswith("the referer and user-agent fields are not two quoted strings"), line
        assert raw_event == AGENT_NOT_QUOTED[line - 1]
    assert loaded.report.error is None


def test_combined_agent_not_quoted_detection():
    combined = next(fmt for fmt in all_formats() if fmt.name == "combined")

    for line in AGENT_NOT_QUOTED:
        assert combined.detect([line]) == 0.0, line


def test_combined_bytes_glued_to_text_rejected(load_text):
    line = '10.0.0.7 - - [03/Nov/2026:02:58:13 +0100] "GET /a HTTP/1.1" 200 355abc'
    loaded = load_text(line + "\n", format_name="combined")

    assert loaded.report.parsed == 0
    assert loaded.rejects[0][1].startswith("not a common or combined log line")


def test_combined_ignored_text_counted(load_text):
    lines = [
        # 1: nginx with $http_x_forwarded_for and $request_time appended.
        f'10.0.0.1 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "rclone/v1.68.2" "198.51.100.7" 0.003',
        # 2: the common format with a field appended.
        f"10.0.0.2 - - [03/Nov/2026:02:58:13 +0100] {PUT} extra",
        # 3 and 4: Squid's combined and common logformats end with code:hierarchy.
        f'10.0.0.3 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "rclone/v1.68.2" TCP_MISS:HIER_DIRECT',
        f"10.0.0.4 - - [03/Nov/2026:02:58:13 +0100] {PUT} TCP_DENIED:HIER_NONE",
        # 5: trailing spaces are no text.
        f'10.0.0.5 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "rclone/v1.68.2"   ',
    ]
    loaded = load_text("\n".join(lines) + "\n", format_name="combined")

    assert loaded.report.parsed == 5
    assert loaded.report.ignored_text_lines == 2
    assert loaded.line(1)["HttpUserAgent"] == "rclone/v1.68.2"
    assert loaded.line(2)["HttpUserAgent"] is None
    assert loaded.line(3)["HttpUserAgent"] == "rclone/v1.68.2"
    assert loaded.line(4)["HttpStatusCode"] == 200
    assert loaded.line(5)["HttpUserAgent"] == "rclone/v1.68.2"


def test_combined_file_without_ignored_text(load_text):
    assert load_text(TEXT).report.ignored_text_lines == 0


LONG_LINE_CHARACTERS = 5_000_000
LONG_LINES = [
    # A long user agent, then a long escaped one.
    f'10.0.0.1 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "{"a" * LONG_LINE_CHARACTERS}"',
    f'10.0.0.1 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "' + '\\"a' * (LONG_LINE_CHARACTERS // 3) + '"',
    # A user agent that never closes.
    f'10.0.0.1 - - [03/Nov/2026:02:58:13 +0100] {PUT} "-" "{"a b " * (LONG_LINE_CHARACTERS // 4)}',
    # Long runs of spaces and of unclosed brackets before the time.
    "a b c" + " " * LONG_LINE_CHARACTERS + "d",
    "a b c" + " [x" * (LONG_LINE_CHARACTERS // 3),
]


def test_combined_detection_long_lines_memory():
    # Regression: a 5 MB quoted field made Python's re keep a backtracking
    # entry per character, 2.5 GB in all.
    combined = next(fmt for fmt in all_formats() if fmt.name == "combined")

    for number, line in enumerate(LONG_LINES, start=1):
        tracemalloc.start()
        try:
            combined.detect([line])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 16 * 1024 * 1024, f"line {number}: {peak} bytes"


def test_combined_detection_long_line_score():
    combined = next(fmt for fmt in all_formats() if fmt.name == "combined")

    assert combined.detect(LONG_LINES[:2]) == 0.9
    assert combined.detect(LONG_LINES[2:]) == 0.0


def test_combined_long_agent_loaded(load_text):
    loaded = load_text(LONG_LINES[0] + "\n")

    assert loaded.report.format == "combined"
    assert loaded.line(1)["HttpUserAgent"] == "a" * LONG_LINE_CHARACTERS


def test_bracketed_ipv6_client_unwrapped(load_text) -> None:
    line = '[2001:db8::2] - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"\n'

    loaded = load_text(line)

    assert loaded.line(1)["SrcIpAddr"] == "2001:db8::2"


def test_escaped_host_decoded_like_url(load_text) -> None:
    # nginx may write any byte of the request line as \xHH; the host comes from the same text as the URL.
    line = '10.0.0.9 - - [17/May/2015:10:05:03 +0000] "GET http://api-drive\\x2emypikpak\\x2ecom/drive HTTP/1.1" 200 5 "-" "-"\n'

    loaded = load_text(line)

    assert loaded.line(1)["Url"] == "http://api-drive.mypikpak.com/drive"
    assert loaded.line(1)["DstHostname"] == "api-drive.mypikpak.com"
