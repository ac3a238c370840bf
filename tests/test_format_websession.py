"""JSON Lines and CSV readers with WebSession or Sigma proxy field names, on hand-written records."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyhunt.formats import all_formats, source

JSON_LINES = [
    # 1: WebSession column names, numbers written as strings and provenance keys that must be ignored.
    '{"TimeGenerated":"2023-11-14T23:13:20+01:00","SrcIpAddr":"192.0.2.10","SrcPortNumber":"50000",'
    '"SrcUsername":"alice","DstIpAddr":"203.0.113.5","Url":"https://files.example.com:8443/a/b.7z?x=1",'
    '"HttpUserAgent":"rclone/v1.65.0","SrcBytes":1048576,"DstBytes":"2.0","HttpStatusCode":200,'
    '"HttpRequestMethod":"PUT","DvcAction":"Allow","UrlCategory":"Storage","SourceLine":99,"RawEvent":"other"}',
    # 2: Sigma proxy field names, an IPv6 client, a CONNECT target and an escaped quote.
    '{"@timestamp":"2023-11-14T22:13:21Z","c-ip":"2001:db8::1","c-useragent":"say \\"hi\\" (v2)",'
    '"c-uri":"drive.google.com:443","cs-method":"CONNECT","sc-status":"abc","cs-bytes":4096,"sc-bytes":512,'
    '"cs-referrer":"","cs-cookie":"a=b","cs-version":"1.1","s-action":"Deny","rs(content-type)":"text/html",'
    '"unknown":"ignored"}',
    # 3: blank, counted as a skipped line.
    "",
    # 4: epoch time, the other referrer spelling and an origin-form URL.
    '{"timestamp":1700000002.5,"src_ip":"192.0.2.11","c-uri":"/path/file.exe?q=1","cs-Referrer":"http://r.example/",'
    '"cs-host":"www.example.com"}',
    # 5: not JSON.
    "not json",
]
JSON_TEXT = "\n".join(JSON_LINES) + "\n"


def test_jsonl_websession_names(load_text):
    loaded = load_text(JSON_TEXT)
    row = loaded.line(1)

    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20)
    assert row["SrcIpAddr"] == "192.0.2.10"
    assert row["SrcPortNumber"] == 50000
    assert row["SrcUsername"] == "alice"
    assert row["DstIpAddr"] == "203.0.113.5"
    assert row["Url"] == "https://files.example.com:8443/a/b.7z?x=1"
    assert row["HttpUserAgent"] == "rclone/v1.65.0"
    assert row["SrcBytes"] == 1048576
    assert row["DstBytes"] == 2
    assert row["HttpStatusCode"] == 200
    assert row["HttpRequestMethod"] == "PUT"
    assert row["DvcAction"] == "Allow"
    assert row["UrlCategory"] == "Storage"
    assert row["SourceFile"] == loaded.path


def test_jsonl_provenance_keys_ignored(load_text):
    row = load_text(JSON_TEXT).line(1)

    assert row["SourceLine"] == 1
    assert row["RawEvent"] == JSON_LINES[0]


def test_jsonl_derived_url_columns(load_text):
    row = load_text(JSON_TEXT).line(1)

    assert row["DstHostname"] == "files.example.com"
    assert row["DstPortNumber"] == 8443
    assert row["UrlPath"] == "/a/b.7z"
    assert row["UrlQuery"] == "x=1"
    assert row["UrlExtension"] == "7z"


def test_jsonl_sigma_names(load_text):
    row = load_text(JSON_TEXT).line(2)

    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 21)
    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["HttpUserAgent"] == 'say "hi" (v2)'
    assert row["Url"] == "drive.google.com:443"
    assert row["HttpRequestMethod"] == "CONNECT"
    assert row["SrcBytes"] == 4096
    assert row["DstBytes"] == 512
    assert row["HttpReferrer"] == ""
    assert row["HttpCookie"] == "a=b"
    assert row["HttpVersion"] == "1.1"
    assert row["DvcAction"] == "Deny"
    assert row["HttpContentType"] == "text/html"


def test_jsonl_connect_target(load_text):
    row = load_text(JSON_TEXT).line(2)

    assert row["DstHostname"] == "drive.google.com"
    assert row["DstPortNumber"] == 443
    assert row["UrlPath"] is None
    assert row["UrlQuery"] is None


def test_jsonl_invalid_value_counted(load_text):
    loaded = load_text(JSON_TEXT)

    assert loaded.line(2)["HttpStatusCode"] is None
    assert loaded.report.invalid_values == {"HttpStatusCode": 1}


def test_jsonl_epoch_and_spellings(load_text):
    row = load_text(JSON_TEXT).line(4)

    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 22, 500000)
    assert row["SrcIpAddr"] == "192.0.2.11"
    assert row["HttpReferrer"] == "http://r.example/"
    assert row["DstHostname"] == "www.example.com"
    assert row["UrlPath"] == "/path/file.exe"
    assert row["UrlQuery"] == "q=1"
    assert row["UrlExtension"] == "exe"


def test_jsonl_missing_keys_null(load_text):
    row = load_text(JSON_TEXT).line(4)

    assert row["HttpUserAgent"] is None
    assert row["HttpStatusCode"] is None
    assert row["EventProduct"] is None


def test_jsonl_dash_is_null(load_text):
    # Regression: "-" was kept as text, and counted as an invalid number in numeric columns.
    line = '{"c-ip":"192.0.2.50","c-useragent":"-","cs-referrer":"-","cs-bytes":"-","sc-status":"-","c-uri":"/d"}'
    loaded = load_text(line + "\n", name="dash.jsonl")
    row = loaded.line(1)

    assert row["HttpUserAgent"] is None
    assert row["HttpReferrer"] is None
    assert row["SrcBytes"] is None
    assert row["HttpStatusCode"] is None
    assert loaded.report.invalid_values == {}


def test_jsonl_line_numbers(load_text):
    loaded = load_text(JSON_TEXT)

    assert loaded.line_numbers == [1, 2, 4]
    assert loaded.report.parsed == 3
    assert loaded.report.rejected == 1
    assert loaded.report.skipped == 1


def test_jsonl_raw_event_is_line(load_text):
    loaded = load_text(JSON_TEXT)

    for row in loaded.rows:
        assert row["RawEvent"] == JSON_LINES[row["SourceLine"] - 1]


def test_jsonl_malformed_rejected(load_text):
    loaded = load_text(JSON_TEXT)

    assert loaded.rejects == [(5, "invalid JSON", "not json")]


def test_jsonl_detection(load_text):
    scores = {fmt.name: fmt.detect(JSON_LINES) for fmt in all_formats()}
    jsonl_score = scores.pop("jsonl")

    assert jsonl_score > 0.5
    for name, score in scores.items():
        assert score < jsonl_score, name
    assert load_text(JSON_TEXT).report.format == "jsonl"


CSV_LINES = [
    # 1: header row. "Extra" maps to no column.
    "TimeGenerated [UTC],SrcIpAddr,c-useragent,Url,HttpStatusCode,SrcBytes,DstHostname,Extra",
    # 2: Sentinel's export time format, and a quoted field with a delimiter and doubled quotes.
    '"11/14/2023, 10:13:20.123 PM",192.0.2.10,"Mozilla/5.0 (Windows NT 10.0; Win64; x64), ""quoted""",'
    "http://example.com/a.zip?x=1,200,1024,,x",
    # 3: blank, counted as a skipped line.
    "",
    # 4 and 5: one record whose quoted user agent spans two lines. Its SrcBytes value is invalid.
    '2023-11-14T22:13:21Z,2001:db8::1,"multi',
    'line",drive.google.com:443,,many,,',
    # 6: too few fields.
    "too,few",
    # 7: an unquoted field with quotes inside it, as non-RFC 4180 writers produce.
    '2023-11-14 22:13:23,192.0.2.12,say "hi" there,/p,302,5,h.example,',
]
CSV_TEXT = "\n".join(CSV_LINES) + "\n"


def test_csv_columns(load_text):
    loaded = load_text(CSV_TEXT, name="export.csv")
    row = loaded.line(2)

    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20, 123000)
    assert row["SrcIpAddr"] == "192.0.2.10"
    assert row["HttpUserAgent"] == 'Mozilla/5.0 (Windows NT 10.0; Win64; x64), "quoted"'
    assert row["Url"] == "http://example.com/a.zip?x=1"
    assert row["HttpStatusCode"] == 200
    assert row["SrcBytes"] == 1024
    assert row["SourceFile"] == loaded.path


def test_csv_derived_url_columns(load_text):
    row = load_text(CSV_TEXT, name="export.csv").line(2)

    # The empty DstHostname field is NULL, so the host comes from the URL.
    assert row["DstHostname"] == "example.com"
    assert row["UrlPath"] == "/a.zip"
    assert row["UrlQuery"] == "x=1"
    assert row["UrlExtension"] == "zip"


def test_csv_multiline_record(load_text):
    loaded = load_text(CSV_TEXT, name="export.csv")
    row = loaded.line(4)

    assert row["HttpUserAgent"] == "multi\nline"
    assert row["RawEvent"] == CSV_LINES[3] + "\n" + CSV_LINES[4]
    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 21)


def test_csv_ipv6_connect_target(load_text):
    row = load_text(CSV_TEXT, name="export.csv").line(4)

    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["DstHostname"] == "drive.google.com"
    assert row["DstPortNumber"] == 443
    assert row["UrlPath"] is None


def test_csv_empty_field_null(load_text):
    row = load_text(CSV_TEXT, name="export.csv").line(4)

    assert row["HttpStatusCode"] is None
    assert row["SrcBytes"] is None


def test_csv_dash_is_null(load_text):
    # Regression: "-" was kept as text, and counted as an invalid number in numeric columns.
    text = "SrcIpAddr,c-useragent,cs-bytes,Url\n192.0.2.51,-,-,/d\n"
    loaded = load_text(text, name="dash.csv")
    row = loaded.line(2)

    assert row["HttpUserAgent"] is None
    assert row["SrcBytes"] is None
    assert row["Url"] == "/d"
    assert loaded.report.invalid_values == {}


def test_csv_invalid_value_counted(load_text):
    loaded = load_text(CSV_TEXT, name="export.csv")

    assert loaded.report.invalid_values == {"SrcBytes": 1}


def test_csv_quotes_inside_unquoted_field(load_text):
    # Regression: the field was cut at its first quote, leaving "say ".
    row = load_text(CSV_TEXT, name="export.csv").line(7)

    assert row["HttpUserAgent"] == 'say "hi" there'
    assert row["Url"] == "/p"
    assert row["HttpStatusCode"] == 302
    assert row["DstHostname"] == "h.example"


def test_csv_line_numbers(load_text):
    loaded = load_text(CSV_TEXT, name="export.csv")

    assert loaded.line_numbers == [2, 4, 7]
    assert loaded.report.lines_read == 7
    assert loaded.report.parsed == 3
    assert loaded.report.rejected == 1
    # The header row, the blank line and line 5, which continues the record of line 4.
    assert loaded.report.skipped == 3
    assert loaded.report.error is None


def test_csv_raw_event_is_record(load_text):
    loaded = load_text(CSV_TEXT, name="export.csv")

    assert loaded.line(2)["RawEvent"] == CSV_LINES[1]
    assert loaded.line(7)["RawEvent"] == CSV_LINES[6]


def test_csv_field_count_rejected(load_text):
    loaded = load_text(CSV_TEXT, name="export.csv")

    assert loaded.rejects == [(6, "has 2 CSV fields but the header row names 8", "too,few")]


def test_csv_semicolon_delimiter(load_text):
    text = 'SrcIpAddr;HttpUserAgent;Url\n192.0.2.30;"a;b";/x\n'
    row = load_text(text, name="semicolon.csv").line(2)

    assert row["SrcIpAddr"] == "192.0.2.30"
    assert row["HttpUserAgent"] == "a;b"
    assert row["Url"] == "/x"


def test_csv_detection(load_text):
    scores = {fmt.name: fmt.detect(CSV_LINES) for fmt in all_formats()}
    csv_score = scores.pop("csv")

    assert csv_score > 0.5
    for name, score in scores.items():
        assert score < csv_score, name
    assert load_text(CSV_TEXT, name="export.csv").report.format == "csv"


SQUID_1 = (
    "1700000000.123    150 192.0.2.10 TCP_MISS/200 5120 GET http://example.com/a.txt - "
    "HIER_DIRECT/203.0.113.5 text/plain"
)
SQUID_4 = "1700000002.000      5 2001:db8::1 TCP_TUNNEL/200 3000 CONNECT drive.google.com:443 bob HIER_DIRECT/2001:db8::2 -"
RAW_DATA_LINES = [
    # 1: header row of a Sentinel custom log table export.
    "TenantId,TimeGenerated [UTC],RawData,Computer,Type",
    # 2: a Squid line.
    f't1,"11/14/2023, 10:13:20.000 PM","{SQUID_1}",proxy1,SquidProxy_CL',
    # 3: a RawData value in no known format.
    't1,"11/14/2023, 10:13:21.000 PM",garbage,proxy1,SquidProxy_CL',
    # 4: a Squid line from an IPv6 client.
    f't1,"11/14/2023, 10:13:22.000 PM","{SQUID_4}",proxy1,SquidProxy_CL',
    # 5: a record with too few fields.
    "t1,x",
    # 6 and 7: RawData with the line terminator that custom-log agents keep.
    f't1,"11/14/2023, 10:13:23.000 PM","{SQUID_1}',
    '",proxy1,SquidProxy_CL',
    # 8: a record with too many fields.
    f't1,"11/14/2023, 10:13:24.000 PM","{SQUID_1}",proxy1,SquidProxy_CL,extra',
]
RAW_DATA_TEXT = "\n".join(RAW_DATA_LINES) + "\n"


def test_raw_data_squid_lines(load_text):
    loaded = load_text(RAW_DATA_TEXT, name="SquidProxy_CL.csv")
    row = loaded.line(2)

    assert loaded.report.format == "csv+squid"
    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20, 123000)
    assert row["SrcIpAddr"] == "192.0.2.10"
    assert row["Url"] == "http://example.com/a.txt"
    assert row["DstBytes"] == 5120
    assert row["EventProduct"] == "Squid"
    assert row["RawEvent"] == SQUID_1


def test_raw_data_ipv6_connect(load_text):
    row = load_text(RAW_DATA_TEXT, name="SquidProxy_CL.csv").line(4)

    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["SrcUsername"] == "bob"
    assert row["DstHostname"] == "drive.google.com"
    assert row["DstPortNumber"] == 443


def test_raw_data_line_terminator_removed(load_text):
    # Regression: RawEvent kept the trailing newline of the RawData value.
    row = load_text(RAW_DATA_TEXT, name="SquidProxy_CL.csv").line(6)

    assert row["RawEvent"] == SQUID_1
    assert row["HttpContentType"] == "text/plain"


def test_raw_data_line_numbers(load_text):
    loaded = load_text(RAW_DATA_TEXT, name="SquidProxy_CL.csv")

    assert loaded.line_numbers == [2, 4, 6]
    assert loaded.report.lines_read == 8
    assert loaded.report.parsed == 3
    assert loaded.report.rejected == 3
    # The header row and line 7, which continues the record of line 6.
    assert loaded.report.skipped == 2
    assert loaded.report.error is None


def test_raw_data_inner_line_rejected(load_text):
    loaded = load_text(RAW_DATA_TEXT, name="SquidProxy_CL.csv")
    line, reason, raw_event = loaded.rejects[0]

    assert line == 3
    assert reason.startswith("the original log line is in no known format")
    assert "squid: not a Squid native access.log line" in reason
    assert raw_event == "garbage"


def test_raw_data_field_count_rejected(load_text):
    # Regression: a short record was skipped as blank and a long one was parsed.
    loaded = load_text(RAW_DATA_TEXT, name="SquidProxy_CL.csv")

    assert loaded.rejects[1] == (5, "has 2 CSV fields but the header row names 5", "t1,x")
    assert loaded.rejects[2] == (8, "has 6 CSV fields but the header row names 5", RAW_DATA_LINES[7])


def test_raw_data_combined_escapes(load_text):
    inner = r'192.0.2.40 - - [17/May/2015:08:05:27 +0000] "GET /y HTTP/1.1" 200 1 "-" "say \"hi\""'
    text = "TimeGenerated [UTC],RawData,Type\n" + '"5/17/2015, 8:05:27.000 AM","' + inner.replace('"', '""') + '",NGINX_CL\n'
    loaded = load_text(text, name="NGINX_CL.csv")
    row = loaded.line(2)

    assert loaded.report.format == "csv+combined"
    assert row["HttpUserAgent"] == 'say "hi"'
    assert row["RawEvent"] == inner


def test_csv_multiline_record_accounted(load_text):
    # Regression: the continuation line was counted nowhere, so the loader
    # reported that the csv parser neither parsed, rejected nor skipped it.
    loaded = load_text('SrcIpAddr,HttpUserAgent\n10.0.0.1,"rclone/v1.68.2\nsecond line"\n', name="multi.csv")
    row = loaded.line(2)

    assert row["HttpUserAgent"] == "rclone/v1.68.2\nsecond line"
    assert row["SrcIpAddr"] == "10.0.0.1"
    assert loaded.report.lines_read == 3
    assert loaded.report.parsed == 1
    assert loaded.report.rejected == 0
    # The header row and the continuation line.
    assert loaded.report.skipped == 2
    assert loaded.report.error is None


def test_csv_multiline_record_crlf(load_text):
    loaded = load_text('SrcIpAddr,HttpUserAgent\r\n10.0.0.1,"rclone/v1.68.2\r\nsecond line"\r\n', name="crlf.csv")
    row = loaded.line(2)

    assert row["HttpUserAgent"] == "rclone/v1.68.2\nsecond line"
    assert row["RawEvent"] == '10.0.0.1,"rclone/v1.68.2\nsecond line"'
    assert loaded.report.skipped == 2
    assert loaded.report.error is None


def test_csv_blank_lines_inside_quoted_field(load_text):
    # Regression: blank lines inside a quoted field were dropped from its value.
    text = 'SrcIpAddr,HttpUserAgent\n\n10.0.0.1,"first\n\n   \nlast"\n\n10.0.0.2,b\n'
    loaded = load_text(text, name="blank.csv")

    assert loaded.line_numbers == [3, 8]
    assert loaded.line(3)["HttpUserAgent"] == "first\n\n   \nlast"
    assert loaded.line(8)["HttpUserAgent"] == "b"
    assert loaded.report.lines_read == 8
    assert loaded.report.parsed == 2
    # The header row, the blank lines 2 and 7, and the continuation lines 4 to 6.
    assert loaded.report.skipped == 6
    assert loaded.report.error is None


def test_csv_text_after_closing_quote(load_text):
    # Regression: the text after the closing quote was lost, giving "rclone".
    text = 'SrcIpAddr,HttpUserAgent,HttpReferrer\n10.0.0.1,"rclone"x,"a"b"c\n10.0.0.2,"x""y" z,"""q"""\n'
    loaded = load_text(text, name="stray.csv")

    assert loaded.line(2)["HttpUserAgent"] == "rclonex"
    assert loaded.line(2)["HttpReferrer"] == 'ab"c'
    assert loaded.line(3)["HttpUserAgent"] == 'x"y z'
    assert loaded.line(3)["HttpReferrer"] == '"q"'


def test_csv_odd_quotes_in_unquoted_field(load_text):
    # Regression: an odd number of quotes inside an unquoted field opened a
    # multi-line record, as if the field were quoted.
    text = 'SrcIpAddr,HttpUserAgent\n10.0.0.1,TV 55" screen\n10.0.0.2,b\n10.0.0.3, "c,d\n'
    loaded = load_text(text, name="odd.csv")

    assert loaded.line_numbers == [2, 3]
    assert loaded.line(2)["HttpUserAgent"] == 'TV 55" screen'
    assert loaded.line(3)["HttpUserAgent"] == "b"
    # A quote after a space starts no quoted field, so line 4 has three fields.
    assert loaded.rejects == [(4, "has 3 CSV fields but the header row names 2", '10.0.0.3, "c,d')]


def test_csv_empty_first_field(load_text):
    # Regression: after the empty first field, the split skipped the next
    # delimiter and lost a field, so the record was rejected.
    loaded = load_text('SrcIpAddr,HttpUserAgent,HttpReferrer\n,rclone/v1.68.2,-\n,"",""\n', name="empty.csv")

    assert loaded.report.rejected == 0
    assert loaded.line(2)["SrcIpAddr"] is None
    assert loaded.line(2)["HttpUserAgent"] == "rclone/v1.68.2"
    assert loaded.line(3)["HttpUserAgent"] is None


def test_csv_multiline_record_across_batches(load_text, monkeypatch):
    monkeypatch.setattr(source, "BATCH_BYTES", 64)
    records = [f'10.0.0.{number},"agent {number}\n\nline {"x" * number}\n"' for number in range(1, 11)]
    text = "SrcIpAddr,HttpUserAgent\n" + "\n".join(records) + "\n"
    loaded = load_text(text, name="batches.csv")

    assert loaded.report.parsed == 10
    assert loaded.line_numbers == list(range(2, 42, 4))
    for number, row in enumerate(loaded.rows, start=1):
        assert row["HttpUserAgent"] == f"agent {number}\n\nline {'x' * number}\n"
    assert loaded.report.skipped == 1 + 3 * 10
    assert loaded.report.error is None


_CSV_COLUMNS = ["SrcIpAddr", "HttpUserAgent", "HttpReferrer"]
_CSV_TEXT = st.text(alphabet='ab ,"\n', max_size=8)


@st.composite
def _csv_fields(draw) -> str:
    """Draw the text of one CSV field: quoted, quoted with text after the quote, or unquoted with stray quotes."""
    kind = draw(st.sampled_from(["quoted", "quoted_tail", "unquoted"]))
    if kind == "unquoted":
        text = draw(st.text(alphabet='ab -"', max_size=6))
        return text if not text.startswith('"') else "a" + text
    quoted = '"' + draw(_CSV_TEXT).replace('"', '""') + '"'
    if kind == "quoted":
        return quoted
    return quoted + draw(st.text(alphabet='ab "', min_size=1, max_size=4).filter(lambda tail: tail[0] != '"'))


# Each example gets its own file, because the files of one test share one database.
_oracle_file_numbers = itertools.count(1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.lists(_csv_fields(), min_size=3, max_size=3), min_size=1, max_size=5))
def test_csv_agrees_with_csv_module(load_text, records):
    text = ",".join(_CSV_COLUMNS) + "\n" + "".join(",".join(fields) + "\n" for fields in records)
    expected = list(csv.reader(io.StringIO(text, newline="")))[1:]
    loaded = load_text(text, name=f"oracle-{next(_oracle_file_numbers)}.csv")

    parsed = [[row[column] for column in _CSV_COLUMNS] for row in loaded.rows]
    assert parsed == [[None if value in ("", "-") else value for value in fields] for fields in expected]
    assert loaded.report.rejected == 0
    assert loaded.report.error is None


def test_jsonl_object_value_counted_invalid(load_text) -> None:
    text = (
        '{"HttpUserAgent": {"original": "rclone/v1.68.2"}, "SrcIpAddr": "10.0.0.1", "Url": "/a"}\n'
        '{"HttpUserAgent": "rclone/v1.0", "SrcIpAddr": "10.0.0.2", "Url": "/b", "SrcBytes": "-"}\n'
        '{"HttpUserAgent": ["a", "b"], "SrcIpAddr": "10.0.0.3", "Url": "/c", "SrcBytes": {"x": 1}}\n'
    )

    loaded = load_text(text, name="events.jsonl")

    assert loaded.line(1)["HttpUserAgent"] is None
    assert loaded.line(2)["HttpUserAgent"] == "rclone/v1.0"
    assert loaded.line(2)["SrcBytes"] is None
    assert loaded.line(3)["HttpUserAgent"] is None
    assert loaded.report.invalid_values == {"HttpUserAgent": 2, "SrcBytes": 1}
