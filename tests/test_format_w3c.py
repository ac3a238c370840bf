"""W3C extended log reader (IIS, ProxySG ELFF, CloudFront) and headerless ProxySG lines, on hand-written files."""

from __future__ import annotations

import gzip
from datetime import datetime

import duckdb

from proxyhunt.formats import all_formats
from proxyhunt.formats.detect import MIN_CONFIDENCE, score_formats
from proxyhunt.formats.loader import Loader
from proxyhunt.formats.w3c import BCREPORTERMAIN_V1, PROXYSG_MAIN

IIS_FIELDS = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) "
    "sc-status sc-substatus sc-win32-status time-taken"
)
IIS_WIDE_FIELDS = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs-version cs(User-Agent) "
    "cs(Cookie) cs-host sc-status sc-bytes cs-bytes"
)
IIS_LINES = [
    "#Software: Microsoft Internet Information Services 10.0",
    "#Version: 1.0",
    "#Date: 2024-07-01 00:00:00",
    f"#Fields: {IIS_FIELDS}",
    # 5: spaces of the user agent written as "+", a query, a user.
    "2024-07-01 10:00:00 192.0.2.1 PUT /upload/data.bin part=1 443 CORP\\alice 198.51.100.7 "
    "rclone/v1.66.0+(linux) - 201 0 0 15",
    # 6: placeholders everywhere they may be, and an IPv6 client.
    "2024-07-01 10:00:01 192.0.2.1 GET / - 80 - 2001:db8::7 - - 404 0 2 1",
    # 7: one field short.
    "2024-07-01 10:00:02 192.0.2.1 GET / - 80 - 198.51.100.7 curl/8 - 200 0 0",
    # 8 to 11: a new header in the middle of the file, as after an IIS restart.
    "#Software: Microsoft Internet Information Services 10.0",
    "#Version: 1.0",
    "#Date: 2024-07-01 11:00:00",
    f"#Fields: {IIS_WIDE_FIELDS}",
    # 12: read with the new layout.
    "2024-07-01 11:00:00 192.0.2.1 POST /api - 443 - 198.51.100.8 HTTP/1.1 Mozilla/5.0+(Windows+NT+10.0) "
    "a=1;+b=2 files.example.com 200 512 10485760",
    # 13: a line in the first layout, as concatenated logs whose header lines were cut have.
    "2024-07-01 11:00:01 192.0.2.1 GET /old - 80 - 198.51.100.9 Wget/1.21 - 200 0 0 3",
]

PROXYSG_FIELDS = (
    "date time time-taken c-ip cs-username cs-auth-group sc-filter-result cs-categories cs(Referer) sc-status "
    "s-action cs-method rs(Content-Type) cs-uri-scheme cs-host cs-uri-port cs-uri-path cs-uri-query "
    "cs(User-Agent) s-ip r-ip sc-bytes cs-bytes"
)
PROXYSG_LINES = [
    "#Software: SGOS 7.3.1.1",
    "#Version: 1.0",
    "#Start-Date: 2024-07-01 00:00:00",
    "#Date: 2024-07-01 00:00:00",
    f"#Fields: {PROXYSG_FIELDS}",
    # 6: quoted fields with spaces and a doubled quote, an upload over HTTPS.
    '2024-07-01 09:00:00 15 10.1.2.3 alice - OBSERVED "Technology/Internet;Cloud Storage" - 200 TCP_NC_MISS PUT '
    '"application/json; charset=utf-8" https s3.example.com 443 /bucket/a.tar ?uploadId=7 '
    '"rclone/v1.66.0 say ""hi""" 10.0.0.1 203.0.113.9 350 52428800',
    # 7: a CONNECT tunnel that the proxy denied, quoted "-" placeholders, an IPv6 client.
    '2024-07-01 09:00:01 1 2001:db8::5 - - DENIED "Uncategorized" - 403 TCP_DENIED CONNECT "-" tcp '
    'mega.example 443 / - "-" 10.0.0.1 - 120 80',
    # 8: a quoted field that is never closed.
    '2024-07-01 09:00:02 1 10.1.2.4 - - OBSERVED "Broken - 200 TCP_HIT GET - http a.example 80 / - - 10.0.0.1 - 1 1',
    # 9: HTTP on a port other than 80.
    '2024-07-01 09:00:03 2 10.1.2.5 - - OBSERVED "News" "http://ref.example/" 200 TCP_HIT GET text/html http '
    "news.example 8080 /index.html - Wget/1.21 10.0.0.1 203.0.113.10 900 200",
]

CLOUDFRONT_FIELDS = [
    "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem", "sc-status",
    "cs(Referer)", "cs(User-Agent)", "cs-uri-query", "cs(Cookie)", "x-edge-result-type", "x-host-header",
    "cs-protocol", "cs-bytes",
]
CLOUDFRONT_LINES = [
    "#Version: 1.0",
    "#Fields: " + " ".join(CLOUDFRONT_FIELDS),
    # 3: the user agent percent-encoded twice, as CloudFront logs some of them.
    "\t".join([
        "2024-07-01", "08:00:00", "FRA56-C1", "2390", "192.0.2.100", "GET", "d111111abcdef8.cloudfront.net",
        "/index.html", "200", "-", "rclone/v1.66.0%2520(linux)", "-", "-", "Hit", "www.example.com", "https", "120",
    ]),
]


def iis_text() -> str:
    return "\n".join(IIS_LINES) + "\n"


def test_iis_columns(load_text):
    loaded = load_text(iis_text())
    row = loaded.line(5)

    assert loaded.report.format == "w3c"
    assert row["TimeGenerated"] == datetime(2024, 7, 1, 10, 0, 0)
    assert row["SrcIpAddr"] == "198.51.100.7"
    assert row["SrcUsername"] == "CORP\\alice"
    assert row["DstIpAddr"] == "192.0.2.1"
    assert row["DstPortNumber"] == 443
    assert row["HttpRequestMethod"] == "PUT"
    assert row["UrlPath"] == "/upload/data.bin"
    assert row["UrlQuery"] == "part=1"
    assert row["Url"] == "/upload/data.bin?part=1"
    assert row["UrlExtension"] == "bin"
    assert row["HttpStatusCode"] == 201
    assert row["HttpUserAgent"] == "rclone/v1.66.0 (linux)"
    assert row["HttpReferrer"] is None
    assert row["EventProduct"] == "IIS"
    assert row["EventVendor"] == "Microsoft"
    assert row["RawEvent"] == IIS_LINES[4]


def test_iis_placeholders_are_null(load_text):
    row = load_text(iis_text()).line(6)

    assert row["SrcIpAddr"] == "2001:db8::7"
    assert row["UrlQuery"] is None
    assert row["Url"] == "/"
    assert row["SrcUsername"] is None
    assert row["HttpUserAgent"] is None


def test_iis_header_change_mid_file(load_text):
    loaded = load_text(iis_text())
    row = loaded.line(12)

    assert row["HttpVersion"] == "1.1"
    assert row["HttpUserAgent"] == "Mozilla/5.0 (Windows NT 10.0)"
    assert row["HttpCookie"] == "a=1; b=2"
    assert row["DstHostname"] == "files.example.com"
    assert row["DstBytes"] == 512
    assert row["SrcBytes"] == 10485760
    assert row["TimeGenerated"] == datetime(2024, 7, 1, 11, 0, 0)


def test_iis_earlier_layout_still_read(load_text):
    row = load_text(iis_text()).line(13)

    assert row["Url"] == "/old"
    assert row["HttpUserAgent"] == "Wget/1.21"
    assert row["HttpStatusCode"] == 200


def test_iis_accounting(load_text):
    loaded = load_text(iis_text())
    report = loaded.report

    assert report.lines_read == len(IIS_LINES)
    assert report.skipped == 8
    assert report.parsed == 4
    assert report.rejected == 1
    assert report.parsed + report.rejected + report.skipped == report.lines_read
    assert loaded.rejects[0][0] == 7
    assert "has 14 fields" in loaded.rejects[0][1]
    assert "names 15" in loaded.rejects[0][1]


def test_proxysg_columns(load_text):
    loaded = load_text("\n".join(PROXYSG_LINES) + "\n")
    row = loaded.line(6)

    assert loaded.report.format == "w3c"
    assert row["EventProduct"] == "ProxySG"
    assert row["SrcIpAddr"] == "10.1.2.3"
    assert row["SrcUsername"] == "alice"
    assert row["UrlCategory"] == "Technology/Internet;Cloud Storage"
    assert row["HttpContentType"] == "application/json; charset=utf-8"
    assert row["HttpUserAgent"] == 'rclone/v1.66.0 say "hi"'
    assert row["Url"] == "https://s3.example.com/bucket/a.tar?uploadId=7"
    assert row["UrlQuery"] == "uploadId=7"
    assert row["DstHostname"] == "s3.example.com"
    assert row["DstPortNumber"] == 443
    # s-ip is the proxy itself; the origin server is r-ip.
    assert row["DstIpAddr"] == "203.0.113.9"
    assert row["DstBytes"] == 350
    assert row["SrcBytes"] == 52428800
    assert row["DvcAction"] == "Allow"


def test_proxysg_denied_connect(load_text):
    row = load_text("\n".join(PROXYSG_LINES) + "\n").line(7)

    assert row["SrcIpAddr"] == "2001:db8::5"
    assert row["Url"] == "mega.example:443"
    assert row["HttpRequestMethod"] == "CONNECT"
    assert row["DvcAction"] == "Deny"
    assert row["HttpContentType"] is None
    assert row["HttpUserAgent"] is None
    assert row["DstIpAddr"] is None


def test_proxysg_non_default_port_in_url(load_text):
    row = load_text("\n".join(PROXYSG_LINES) + "\n").line(9)

    assert row["Url"] == "http://news.example:8080/index.html"
    assert row["HttpReferrer"] == "http://ref.example/"


def test_unclosed_quote_rejected(load_text):
    loaded = load_text("\n".join(PROXYSG_LINES) + "\n")

    assert [line for line, _, _ in loaded.rejects] == [8]
    assert "no closing quote" in loaded.rejects[0][1]
    assert loaded.report.parsed == 3


def test_cloudfront_agent_decoded_once(load_text):
    loaded = load_text("\n".join(CLOUDFRONT_LINES) + "\n")
    row = loaded.line(3)

    assert row["EventProduct"] == "CloudFront"
    assert row["HttpUserAgent"] == "rclone/v1.66.0%20(linux)"
    assert "rclone/v1.66.0%2520(linux)" in row["RawEvent"]
    assert row["DstHostname"] == "www.example.com"
    assert row["SrcBytes"] == 120
    assert row["DstBytes"] == 2390


def test_data_before_fields_rejected(load_text):
    text = "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n" + IIS_LINES[4] + "\n" + f"#Fields: {IIS_FIELDS}\n" + IIS_LINES[4] + "\n"

    loaded = load_text(text, format_name="w3c")

    assert [line for line, _, _ in loaded.rejects] == [3]
    assert "#Fields:" in loaded.rejects[0][1]
    assert loaded.line_numbers == [5]


def test_date_from_date_directive(load_text):
    text = "#Version: 1.0\n#Date: 2024-07-02 00:00:00\n#Fields: time c-ip cs-method cs-uri\n13:14:15 192.0.2.9 GET http://a.example/\n"

    row = load_text(text, format_name="w3c").line(4)

    assert row["TimeGenerated"] == datetime(2024, 7, 2, 13, 14, 15)
    assert row["DstHostname"] == "a.example"


def test_invalid_utf8_kept(tmp_path):
    line = IIS_LINES[4].replace("rclone/v1.66.0+(linux)", "caf\udcc3+x")
    path = tmp_path / "u_ex.log"
    data = ("\n".join(IIS_LINES[:4] + [line]) + "\n").encode("utf-8", "surrogateescape")
    path.write_bytes(data)

    connection = duckdb.connect()
    report = Loader(connection).load(str(path))
    agent = connection.execute("SELECT HttpUserAgent FROM websession").fetchone()[0]

    assert report.invalid_utf8_lines == 1
    assert report.parsed == 1
    assert agent == "caf\ufffd x"


def test_one_megabyte_user_agent(load_text):
    agent = "rclone/v1.66.0+" + "x" * 1_000_000
    lines = IIS_LINES[:5] + [IIS_LINES[4].replace("rclone/v1.66.0+(linux)", agent), IIS_LINES[5]]

    loaded = load_text("\n".join(lines) + "\n")

    assert loaded.report.parsed == 3
    assert loaded.line(6)["HttpUserAgent"] == "rclone/v1.66.0 " + "x" * 1_000_000
    assert loaded.line(7)["SrcIpAddr"] == "2001:db8::7"


def test_empty_w3c_file_forced(load_text):
    loaded = load_text("", format_name="w3c")

    assert loaded.report.lines_read == 0
    assert loaded.report.parsed == 0
    assert loaded.report.error is None


def test_truncated_gzip_keeps_lines(tmp_path):
    body = "\n".join(IIS_LINES[:4] + [IIS_LINES[4]] * 2000) + "\n"
    data = gzip.compress(body.encode())
    path = tmp_path / "u_ex240701.log.gz"
    path.write_bytes(data[: len(data) // 2])

    report = Loader(duckdb.connect()).load(str(path))

    assert report.format == "w3c"
    assert report.compression == "gzip"
    assert report.error is not None
    assert "truncated" in report.error
    assert f"kept the {report.lines_read - 1} complete lines" in report.error
    assert report.parsed > 100
    assert report.parsed + report.rejected + report.skipped == report.lines_read


def headerless_line(layout: list[str] = BCREPORTERMAIN_V1, **overrides: str) -> str:
    values = {
        "date": "2024-07-01", "time": "09:00:00", "time-taken": "12", "c-ip": "10.1.2.3", "cs-username": "bob",
        "cs-auth-group": "-", "x-exception-id": "-", "sc-filter-result": "OBSERVED",
        "cs-categories": '"Cloud Storage"', "cs(Referer)": "-", "sc-status": "200", "s-action": "TCP_NC_MISS",
        "cs-method": "PUT", "rs(Content-Type)": "application/octet-stream", "cs-uri-scheme": "https",
        "cs-host": "s3.example.com", "cs-uri-port": "443", "cs-uri-path": "/b/k", "cs-uri-query": "-",
        "cs-uri-extension": "-", "cs(User-Agent)": '"rclone/v1.66.0"', "s-ip": "10.0.0.1", "sc-bytes": "300",
        "cs-bytes": "4096", "x-virus-id": "-", "x-bluecoat-application-name": '"none"',
        "x-bluecoat-application-operation": '"none"', "s-supplier-name": "s3.example.com",
    }
    values.update(overrides)
    return " ".join(values[name] for name in layout)


def test_proxysg_headerless_layouts(load_text):
    lines = [
        headerless_line(),
        headerless_line() + " 8080 None 2",
        headerless_line(**{"rs(Content-Type)": "text/html charset=UTF-8"}),
        headerless_line() + " 1 2",
    ]

    loaded = load_text("\n".join(lines) + "\n")

    assert loaded.report.format == "proxysg"
    assert loaded.line_numbers == [1, 2, 3]
    assert loaded.line(1)["Url"] == "https://s3.example.com/b/k"
    assert loaded.line(1)["SrcBytes"] == 4096
    assert loaded.line(1)["HttpUserAgent"] == "rclone/v1.66.0"
    assert loaded.line(1)["DstIpAddr"] is None
    assert loaded.line(2)["SrcUsername"] == "bob"
    assert loaded.line(3)["HttpContentType"] == "text/html charset=UTF-8"
    assert loaded.line(3)["Url"] == "https://s3.example.com/b/k"
    assert loaded.rejects[0][0] == 4
    assert "has 29 fields" in loaded.rejects[0][1]


def test_proxysg_headerless_main_format(load_text):
    lines = [headerless_line(PROXYSG_MAIN), headerless_line(PROXYSG_MAIN, **{"sc-status": "403", "s-action": "TCP_DENIED"})]

    loaded = load_text("\n".join(lines) + "\n")
    row = loaded.line(1)

    assert loaded.report.format == "proxysg"
    assert loaded.report.parsed == 2
    assert row["HttpStatusCode"] == 200
    assert row["SrcUsername"] == "bob"
    assert row["DstBytes"] == 300
    assert row["SrcBytes"] == 4096
    assert row["Url"] == "https://s3.example.com/b/k"
    assert row["HttpUserAgent"] == "rclone/v1.66.0"
    assert row["UrlCategory"] == "Cloud Storage"
    assert loaded.line(2)["DvcAction"] == "Deny"


def test_detection_scores():
    iis = score_formats(IIS_LINES, all_formats())
    proxysg = score_formats([headerless_line()] * 3, all_formats())

    assert iis[0][0].name == "w3c"
    assert iis[1][1] < MIN_CONFIDENCE
    assert proxysg[0][0].name == "proxysg"
    assert proxysg[1][1] < MIN_CONFIDENCE


def test_zeek_header_is_not_w3c():
    zeek = ["#separator \\x09", "#fields\tts\tuid\tid.orig_h\tmethod\turi", "1700000000.0\tC1\t192.0.2.1\tGET\t/"]
    w3c = next(fmt for fmt in all_formats() if fmt.name == "w3c")

    assert w3c.detect(zeek) == 0.0
