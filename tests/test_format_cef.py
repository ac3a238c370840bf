"""CEF and LEEF lines, read through the real loader into DuckDB."""

from __future__ import annotations

from datetime import datetime

import pytest

from proxyhunt.formats import all_formats
from proxyhunt.formats.detect import best_format
from proxyhunt.formats.leef import java_date_format_to_strptime

HEADER = "CEF:0|Forcepoint|Web Security|8.5|1|Web request|3|"


def test_cef_extension_keys(load_text):
    line = (
        HEADER + "rt=1709547072345 src=10.0.0.5 spt=50123 dst=93.184.216.34 dpt=443 suser=CORP\\\\alice "
        "request=https://example.com/upload?a\\=1 requestMethod=PUT requestClientApplication=rclone/v1.68.2 "
        "in=1048576 out=512 act=permitted cs1Label=URL Category cs1=File Sharing outcome=201"
    )
    loaded = load_text(line + "\n")
    row = loaded.line(1)

    assert loaded.report.format == "cef"
    assert row["TimeGenerated"] == datetime(2024, 3, 4, 10, 11, 12, 345000)
    assert row["SrcIpAddr"] == "10.0.0.5"
    assert row["SrcPortNumber"] == 50123
    assert row["DstIpAddr"] == "93.184.216.34"
    assert row["DstPortNumber"] == 443
    assert row["SrcUsername"] == "CORP\\alice"
    assert row["Url"] == "https://example.com/upload?a=1"
    assert row["UrlQuery"] == "a=1"
    assert row["DstHostname"] == "example.com"
    assert row["HttpRequestMethod"] == "PUT"
    assert row["HttpUserAgent"] == "rclone/v1.68.2"
    assert row["SrcBytes"] == 1048576
    assert row["DstBytes"] == 512
    assert row["DvcAction"] == "Allow"
    assert row["UrlCategory"] == "File Sharing"
    assert row["HttpStatusCode"] == 201
    assert row["EventVendor"] == "Forcepoint"
    assert row["EventProduct"] == "Web Security"


def test_cef_value_with_spaces(load_text):
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    row = load_text(f"{HEADER}requestClientApplication={agent} src=10.0.0.1\n").line(1)

    assert row["HttpUserAgent"] == agent
    assert row["SrcIpAddr"] == "10.0.0.1"


def test_cef_escaped_header_pipe(load_text):
    row = load_text("CEF:0|Ven\\|dor|Pro\\\\duct|1|2|name|5|src=10.0.0.1\n").line(1)

    assert row["EventVendor"] == "Ven|dor"
    assert row["EventProduct"] == "Pro\\duct"


def test_cef_extension_escapes(load_text):
    row = load_text(HEADER + "request=/a?x\\=1 requestClientApplication=a\\\\b\\nc\\rd\\=e\n").line(1)

    assert row["Url"] == "/a?x=1"
    assert row["HttpUserAgent"] == "a\\b\nc\rd=e"


def test_cef_escaped_backslash_before_n(load_text):
    # "\\n" is an escaped backslash followed by the letter n, not a line break.
    row = load_text(HEADER + "requestClientApplication=x\\\\ny\n").line(1)

    assert row["HttpUserAgent"] == "x\\ny"


def test_cef_syslog_prefixes(load_text):
    text = (
        "<134>1 2024-03-04T10:11:12.5Z fw01 CEF - - - " + HEADER + "src=10.0.0.1\n"
        "Mar  4 10:11:12 fw01 " + HEADER + "src=10.0.0.2 end=Mar 04 2024 10:11:13 UTC\n"
    )
    loaded = load_text(text)

    assert loaded.report.rejected == 0
    assert loaded.line(1)["TimeGenerated"] == datetime(2024, 3, 4, 10, 11, 12, 500000)
    assert loaded.line(2)["TimeGenerated"] == datetime(2024, 3, 4, 10, 11, 13)


def test_cef_ipv6_addresses(load_text):
    row = load_text(HEADER + "src=2001:db8::1 dst=fe80::1%eth0 request=http://[2001:db8::2]:8080/x\n").line(1)

    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["DstIpAddr"] == "fe80::1%eth0"
    assert row["DstHostname"] == "2001:db8::2"
    assert row["DstPortNumber"] == 8080


def test_cef_missing_keys_null(load_text):
    row = load_text(HEADER + "src=10.0.0.1\n").line(1)

    assert row["HttpUserAgent"] is None
    assert row["Url"] is None
    assert row["TimeGenerated"] is None


def test_cef_placeholders_null(load_text):
    row = load_text(HEADER + 'suser="-" duser=- requestCookies= requestClientApplication=-\n').line(1)

    assert row["SrcUsername"] is None
    assert row["HttpCookie"] is None
    assert row["HttpUserAgent"] is None


def test_cef_invalid_values_counted(load_text):
    loaded = load_text(HEADER + "rt=yesterday spt=http src=10.0.0.1\n")

    assert loaded.report.parsed == 1
    assert loaded.report.invalid_values == {"TimeGenerated": 1, "SrcPortNumber": 1}


def test_cef_malformed_line_rejected(load_text):
    loaded = load_text(HEADER + "src=10.0.0.1\nCEF:0|only|three|fields\n" + HEADER + "src=10.0.0.2\n")

    assert loaded.line_numbers == [1, 3]
    assert [(number, reason.startswith("not a CEF line")) for number, reason, _ in loaded.rejects] == [(2, True)]


def test_cef_invalid_utf8_bytes_counted(tmp_path):
    import duckdb

    from proxyhunt.formats.loader import Loader

    path = tmp_path / "bytes.cef"
    path.write_bytes(HEADER.encode() + b"requestClientApplication=caf\xe9 src=10.0.0.1\n")
    loader = Loader(duckdb.connect())
    report = loader.load(str(path))

    [(agent,)] = loader.connection.execute("SELECT HttpUserAgent FROM websession").fetchall()

    assert report.format == "cef"
    assert report.parsed == 1
    assert report.invalid_utf8_lines == 1
    assert agent == "caf\ufffd"


def test_cef_one_megabyte_line(load_text):
    url = "http://example.com/" + "a" * (1024 * 1024)
    row = load_text(f"{HEADER}request={url} src=10.0.0.1\n").line(1)

    assert row["Url"] == url
    assert row["SrcIpAddr"] == "10.0.0.1"


def test_cef_empty_file(load_text):
    loaded = load_text("", format_name="cef")

    assert loaded.report.error is None
    assert loaded.report.lines_read == 0
    assert loaded.rows == []


def test_cef_label_maps_user_agent(load_text):
    row = load_text(HEADER + "cs2Label=User-Agent cs2=curl/8.0 cs3Label=Referer cs3=http://r/\n").line(1)

    assert row["HttpUserAgent"] == "curl/8.0"
    assert row["HttpReferrer"] == "http://r/"


def test_leef_one_tab_delimited(load_text):
    line = (
        "LEEF:1.0|Forcepoint|Web Security|8.5|transaction:permitted|src=10.0.0.5\tdst=93.184.216.34\t"
        "usrName=alice\tsrcBytes=512\tdstBytes=2048\turl=https://example.com/a?b=c=d\tuserAgent=rclone/v1.68.2\t"
        "devTime=Mar 04 2024 10:11:12\thttpStatus=200\taction=blocked\n"
    )
    loaded = load_text(line)
    row = loaded.line(1)

    assert loaded.report.format == "leef"
    assert row["TimeGenerated"] == datetime(2024, 3, 4, 10, 11, 12)
    assert row["SrcUsername"] == "alice"
    assert row["Url"] == "https://example.com/a?b=c=d"
    assert row["HttpUserAgent"] == "rclone/v1.68.2"
    assert row["SrcBytes"] == 512
    assert row["DstBytes"] == 2048
    assert row["HttpStatusCode"] == 200
    assert row["DvcAction"] == "Deny"
    assert row["EventVendor"] == "Forcepoint"


@pytest.mark.parametrize("delimiter", ["^", "x5E", "0x5e"])
def test_leef_two_custom_delimiter(load_text, delimiter):
    line = f"LEEF:2.0|V|P|1.0|42|{delimiter}|src=10.0.0.6^userAgent=Go-http-client/1.1^dstPort=443\n"
    row = load_text(line).line(1)

    assert row["SrcIpAddr"] == "10.0.0.6"
    assert row["HttpUserAgent"] == "Go-http-client/1.1"
    assert row["DstPortNumber"] == 443


def test_leef_two_hex_tab_delimiter(load_text):
    row = load_text("LEEF:2.0|V|P|1.0|42|x09|src=10.0.0.7\tusrName=bob\n").line(1)

    assert row["SrcUsername"] == "bob"


def test_leef_dev_time_format(load_text):
    line = (
        "<13>Mar  4 10:11:12 host LEEF:2.0|V|P|1|42|^|devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ"
        "^devTime=2024-03-04T10:11:12.345+0100^src=10.0.0.1\n"
    )
    row = load_text(line).line(1)

    assert row["TimeGenerated"] == datetime(2024, 3, 4, 9, 11, 12, 345000)


def test_leef_epoch_dev_time(load_text):
    row = load_text("LEEF:1.0|V|P|1|42|devTime=1709547072000\tsrc=10.0.0.1\n").line(1)

    assert row["TimeGenerated"] == datetime(2024, 3, 4, 10, 11, 12)


def test_java_date_format_translation():
    assert java_date_format_to_strptime("MMM dd yyyy HH:mm:ss.SSS zzz") == "%b %d %Y %H:%M:%S.%f %Z"
    assert java_date_format_to_strptime("yyyy-MM-dd'T'HH:mm:ssXXX") == "%Y-%m-%dT%H:%M:%S%z"


SAMPLES = {
    "cef": [HEADER + "src=10.0.0.1 request=http://a/", "Mar  4 10:11:12 fw " + HEADER + "src=10.0.0.2"],
    "leef": ["LEEF:1.0|V|P|1|42|src=10.0.0.1\turl=http://a/", "LEEF:2.0|V|P|1|42|^|src=10.0.0.1^url=http://a/"],
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_detected_as_own_format(name):
    fmt, confidence = best_format(SAMPLES[name], all_formats())

    assert fmt is not None
    assert fmt.name == name
    assert confidence >= 0.9


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_other_formats_score_low(name):
    for fmt in all_formats():
        if fmt.name != name:
            assert fmt.detect(SAMPLES[name]) < 0.5, fmt.name


def test_cef_zscaler_out_is_request(load_text):
    text = (
        "CEF:0|Zscaler|NSSWeblog|5.7|Allowed|None|3|out=1048576 in=512 requestClientApplication=rclone/v1.68.2\n"
        "CEF:0|Other|Proxy|1|1|n|3|out=1048576 in=512\n"
    )
    loaded = load_text(text)

    assert (loaded.line(1)["SrcBytes"], loaded.line(1)["DstBytes"]) == (1048576, 512)
    assert (loaded.line(2)["SrcBytes"], loaded.line(2)["DstBytes"]) == (512, 1048576)


def test_leef_missing_keys_null(load_text):
    row = load_text("LEEF:1.0|V|P|1|42|src=10.0.0.1\n").line(1)

    assert row["HttpUserAgent"] is None
    assert row["TimeGenerated"] is None
    assert row["EventProduct"] == "P"


def test_leef_empty_file(load_text):
    loaded = load_text("", format_name="leef")

    assert loaded.report.error is None
    assert loaded.rows == []


def test_leef_invalid_dev_time_counted(load_text):
    loaded = load_text("LEEF:1.0|V|P|1|42|devTime=soon\tsrc=10.0.0.1\n")

    assert loaded.report.invalid_values == {"TimeGenerated": 1}
