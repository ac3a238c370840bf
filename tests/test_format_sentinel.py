"""Sentinel and Log Analytics exports: JSON arrays, JSON Lines, CommonSecurityLog CSV and RawData unwrapping."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from proxyhunt.formats import all_formats
from proxyhunt.formats.detect import best_format
from proxyhunt.formats.json_array import JsonArraySplitter

ASIM_RECORD = {
    "TenantId": "00000000-0000-0000-0000-000000000000",
    "TimeGenerated [UTC]": "1/18/2021, 3:59:10.000 PM",
    "SrcIpAddr": "10.0.0.5",
    "Url": "https://rclone.example/upload",
    "HttpUserAgent": "rclone/v1.68.2",
    "SrcBytes": 1048576,
    "Type": "ASimWebSessionLogs",
}
SQUID_LINE = "1718000000.123    120 192.168.1.3 TCP_MISS/200 3807 GET http://example.com/a.zip - HIER_DIRECT/93.184.216.34 application/zip"
COMBINED_LINE = '10.0.0.9 - - [17/May/2015:08:05:26 +0000] "GET /downloads/x HTTP/1.1" 404 324 "-" "curl/8.0"'


def custom_table(raw_lines: list[str]) -> list[dict]:
    return [{"TenantId": "t", "TimeGenerated [UTC]": "1/18/2021, 3:59:10.000 PM", "RawData": line + "\n", "Type": "X_CL"}
            for line in raw_lines]


def test_pretty_array_asim_columns(load_text):
    loaded = load_text(json.dumps([ASIM_RECORD, ASIM_RECORD], indent=4) + "\n", name="export.json")

    assert loaded.report.format == "sentinel-json"
    assert loaded.report.rejected == 0
    assert loaded.report.parsed == 2
    assert loaded.report.parsed + loaded.report.skipped == loaded.report.lines_read
    first = loaded.rows[0]
    assert first["SourceLine"] == 2
    assert first["TimeGenerated"] == datetime(2021, 1, 18, 15, 59, 10)
    assert first["HttpUserAgent"] == "rclone/v1.68.2"
    assert first["SrcBytes"] == 1048576
    assert first["DstHostname"] == "rclone.example"
    assert json.loads(first["RawEvent"]) == ASIM_RECORD


def test_compact_array_on_one_line(load_text):
    loaded = load_text(json.dumps([ASIM_RECORD, ASIM_RECORD, ASIM_RECORD]) + "\n", name="export.json")

    assert loaded.report.parsed == 3
    assert loaded.report.lines_read == 1
    assert loaded.line_numbers == [1, 1, 1]
    assert loaded.report.error is None


def test_json_lines_with_sentinel_columns(load_text):
    text = "\n".join(json.dumps(ASIM_RECORD) for _ in range(2)) + "\n"
    loaded = load_text(text, name="export.jsonl")

    assert loaded.report.format == "sentinel-json"
    assert loaded.line_numbers == [1, 2]


def test_array_cut_in_the_middle(load_text):
    text = json.dumps([ASIM_RECORD, ASIM_RECORD], indent=2)
    cut = text[: text.rindex('"HttpUserAgent"')]
    loaded = load_text(cut, name="export.json")
    lines_read = cut.count("\n") + 1

    assert loaded.report.parsed == 1
    assert loaded.report.rejected > 0
    assert all("cut off" in reason for _, reason, _ in loaded.rejects)
    assert loaded.report.parsed + loaded.report.rejected + loaded.report.skipped == lines_read


def test_invalid_element_rejected_rest_kept(load_text):
    text = json.dumps([ASIM_RECORD, {"Url": "x"}, ASIM_RECORD], indent=2).replace('"Url": "x"', '"Url": x')
    loaded = load_text(text + "\n", name="export.json")

    assert loaded.report.parsed == 2
    assert loaded.report.rejected >= 1
    assert all(reason.startswith("invalid JSON array element") for _, reason, _ in loaded.rejects)
    assert loaded.report.parsed + loaded.report.rejected + loaded.report.skipped == loaded.report.lines_read


def test_raw_data_per_record_format(load_text):
    records = custom_table([SQUID_LINE, COMBINED_LINE, "2021-03-16 11:41:03 INFO catalina started", SQUID_LINE])
    loaded = load_text(json.dumps(records, indent=2) + "\n", name="custom.json")

    assert loaded.report.format in ("sentinel-json+squid,combined", "sentinel-json+combined,squid")
    assert loaded.report.parsed == 3
    assert loaded.report.rejected == 1
    agents = [row["HttpUserAgent"] for row in loaded.rows]
    assert agents.count("curl/8.0") == 1
    products = sorted(str(row["EventProduct"]) for row in loaded.rows)
    assert products.count("Squid") == 2
    [(line, reason, raw)] = loaded.rejects
    assert raw == "2021-03-16 11:41:03 INFO catalina started"


def test_raw_data_line_numbers_are_record_starts(load_text):
    records = custom_table([SQUID_LINE, SQUID_LINE])
    text = json.dumps(records, indent=2) + "\n"
    loaded = load_text(text, name="custom.json")
    starts = [number for number, line in enumerate(text.splitlines(), start=1) if line == "  {"]

    assert loaded.line_numbers == starts


def test_corelight_non_http_rejected(load_text):
    records = [
        {"message": json.dumps({"ts": "2018-08-03T23:37:28Z", "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 1,
                                "id.resp_h": "10.0.0.2", "id.resp_p": 80, "method": "GET", "host": "a",
                                "uri": "/", "user_agent": "rclone/v1.68.2"}),
         "log_file": "/var/log/corelight/http_20180803_16:37:28-16:40:00-0700.log", "hostname": "s"},
        {"message": json.dumps({"ts": "2018-08-03T23:37:28Z", "uid": "C2", "id.orig_h": "10.0.0.1", "proto": "tcp"}),
         "log_file": "/var/log/corelight/conn_20180803_16:37:28-16:40:00-0700.log", "hostname": "s"},
    ]
    loaded = load_text(json.dumps(records, indent=2) + "\n", name="corelight.json")

    assert loaded.report.parsed == 1
    assert loaded.rows[0]["HttpUserAgent"] == "rclone/v1.68.2"
    assert [reason for _, reason, _ in loaded.rejects] == ["Zeek conn record: only http.log records are web sessions"]


def test_common_security_log_csv(load_text):
    text = (
        "TenantId,TimeGenerated [UTC],DeviceVendor,DeviceProduct,SourceIP,DestinationIP,DestinationHostName,"
        "RequestURL,RequestClientApplication,RequestMethod,SourceUserName,SentBytes,ReceivedBytes,DeviceAction\n"
        't,"12/10/2020, 10:22:47.092 AM",Forcepoint CSG,Web,10.0.0.4,2001:db8::5,files.example,'
        'http://files.example/a?x\\=1,"Mozilla/5.0 (X, ""Y"")",PUT,alice,512,1048576,Allowed\n'
        "t,2020-12-10T10:22:48Z,Forcepoint CSG,Web,10.0.0.4,,,,,,,null,null,\n"
    )
    loaded = load_text(text, name="csl.csv")
    row = loaded.line(2)

    assert loaded.report.format == "csv"
    assert loaded.report.invalid_values == {}
    assert row["TimeGenerated"] == datetime(2020, 12, 10, 10, 22, 47, 92000)
    assert row["EventVendor"] == "Forcepoint CSG"
    assert row["EventProduct"] == "Web"
    assert row["DstIpAddr"] == "2001:db8::5"
    assert row["Url"] == "http://files.example/a?x=1"
    assert row["HttpUserAgent"] == 'Mozilla/5.0 (X, "Y")'
    assert row["SrcBytes"] == 1048576
    assert row["DstBytes"] == 512
    assert row["DvcAction"] == "Allowed"
    assert loaded.line(3)["SrcBytes"] is None


def test_common_security_log_json_lines(load_text):
    record = {"TimeGenerated": "2020-12-10T10:22:47Z", "DeviceVendor": "Zscaler", "DeviceProduct": "NSSWeblog",
              "RequestURL": "http://a/b", "RequestClientApplication": "rclone/v1.66.0", "SourceIP": "10.0.0.1"}
    loaded = load_text(json.dumps(record) + "\n", name="csl.jsonl")
    row = loaded.line(1)

    assert loaded.report.format == "sentinel-json"
    assert row["HttpUserAgent"] == "rclone/v1.66.0"
    assert row["EventVendor"] == "Zscaler"


def test_invalid_utf8_in_array(tmp_path):
    import duckdb

    from proxyhunt.formats.loader import Loader

    path = tmp_path / "bad.json"
    data = json.dumps([ASIM_RECORD], indent=2).replace("rclone/v1.68.2", "caf\u00e9").encode("utf-8")
    path.write_bytes(data.replace("caf\u00e9".encode(), b"caf\xe9"))
    report = Loader(duckdb.connect()).load(str(path))

    assert report.format == "sentinel-json"
    assert report.parsed == 1
    assert report.invalid_utf8_lines == 1


def test_empty_file(load_text):
    loaded = load_text("", format_name="sentinel-json", name="empty.json")

    assert loaded.report.error is None
    assert loaded.rows == []


def test_one_megabyte_value(load_text):
    record = dict(ASIM_RECORD, Url="http://a/" + "x" * (1024 * 1024))
    loaded = load_text(json.dumps([record], indent=2) + "\n", name="big.json")

    assert loaded.rows[0]["Url"] == record["Url"]


def test_splitter_accounts_every_line():
    splitter = JsonArraySplitter()
    lines = json.dumps([{"a": 1}, {"a": 2}], indent=2).splitlines()
    first = splitter.feed(list(range(1, 5)), lines[:4])
    second = splitter.feed(list(range(5, len(lines) + 1)), lines[4:])
    rest = splitter.finish()
    records = first.records + second.records + rest.records

    assert [number for number, _ in records] == [2, 5]
    assert len(records) + splitter.skipped_lines == len(lines)


SAMPLES = {
    "sentinel-json": json.dumps([ASIM_RECORD], indent=2).splitlines(),
}


def test_array_detected_as_sentinel():
    fmt, _ = best_format(SAMPLES["sentinel-json"], all_formats())

    assert fmt is not None
    assert fmt.name == "sentinel-json"


@pytest.mark.parametrize(
    "sample",
    [
        ['{"HttpUserAgent": "a", "SrcIpAddr": "10.0.0.1", "Url": "http://a/"}'],
        ['{"ts": 1.0, "uid": "C1", "id.orig_h": "10.0.0.1", "method": "GET", "user_agent": "a"}'],
    ],
)
def test_plain_json_lines_not_sentinel(sample):
    fmt, _ = best_format(sample, all_formats())

    assert fmt is not None
    assert fmt.name != "sentinel-json"


def test_array_of_zeek_records(load_text):
    records = [
        {"ts": 1591367999.305988, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 5, "id.resp_h": "10.0.0.2",
         "id.resp_p": 80, "method": "PUT", "host": "s3.example", "uri": "/b/k", "user_agent": "rclone/v1.68.2",
         "request_body_len": 1048576, "response_body_len": 0, "status_code": 200},
    ]
    loaded = load_text(json.dumps(records, indent=2) + "\n", name="zeek.json")
    row = loaded.rows[0]

    assert loaded.report.format == "sentinel-json+zeek-json"
    assert row["HttpUserAgent"] == "rclone/v1.68.2"
    assert row["SrcBytes"] == 1048576
    assert row["EventProduct"] == "Zeek"


def test_zscaler_common_security_log_bytes(load_text):
    records = [
        {"TimeGenerated": "2024-03-04T10:11:12Z", "DeviceVendor": vendor, "DeviceProduct": "p",
         "RequestURL": "http://a/", "SentBytes": 1048576, "ReceivedBytes": 512, "SourceIP": "10.0.0.1"}
        for vendor in ("Zscaler", "Other")
    ]
    loaded = load_text("\n".join(json.dumps(record) for record in records) + "\n", name="csl.jsonl")

    assert (loaded.line(1)["SrcBytes"], loaded.line(1)["DstBytes"]) == (1048576, 512)
    assert (loaded.line(2)["SrcBytes"], loaded.line(2)["DstBytes"]) == (512, 1048576)


@pytest.mark.parametrize(
    ("parts", "url"),
    [
        ({"cs_method": "GET", "cs_uri_scheme": "http", "cs_uri_port": "80", "cs_uri_query": "?a=1"}, "http://h.example/p?a=1"),
        ({"cs_method": "GET", "cs_uri_scheme": "https", "cs_uri_port": "8443", "cs_uri_query": "-"}, "https://h.example:8443/p"),
        ({"cs_method": "CONNECT", "cs_uri_scheme": "tcp", "cs_uri_port": "443", "cs_uri_query": "-"}, "h.example:443"),
    ],
)
def test_url_built_from_parts(load_text, parts, url):
    record = {"TenantId": "t", "Type": "Syslog", "c_ip": "10.0.0.1", "cs_host": "h.example", "cs_uri_path": "/p", **parts}
    row = load_text(json.dumps(record) + "\n", name="syslog.jsonl").line(1)

    assert row["Url"] == url
