"""Zeek http.log readers (TSV and JSON lines), on hand-written lines loaded through the real loader."""

from __future__ import annotations

from datetime import datetime

from proxyhunt.formats import all_formats

FIELDS = [
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "trans_depth", "method", "host", "uri",
    "referrer", "version", "user_agent", "request_body_len", "response_body_len", "status_code", "username",
]
TYPES = [
    "time", "string", "addr", "port", "addr", "port", "count", "string", "string", "string",
    "string", "string", "string", "count", "count", "count", "string",
]
HEADER = [
    r"#separator \x09",
    "#set_separator\t,",
    "#empty_field\t(empty)",
    "#unset_field\t-",
    "#path\thttp",
    "#fields\t" + "\t".join(FIELDS),
    "#types\t" + "\t".join(TYPES),
]
RECORDS = [
    # 8: an upload with every field set.
    [
        "1700000000.250000", "C1", "192.0.2.10", "50000", "203.0.113.5", "80", "1", "PUT", "files.example.com",
        "/up/data.tar.gz?part=1", "http://ref.example/", "1.1", "rclone/v1.65.0", "10485760", "0", "200", "alice",
    ],
    # 9: blank, counted as a skipped line.
    None,
    # 10: IPv6, the empty and unset placeholders and escaped bytes.
    [
        "1700000001.000000", "C2", "2001:db8::1", "50001", "2001:db8::2", "8080", "1", "GET", "(empty)",
        r"/a\x20b\\x41.txt", r"\x28empty)", "-", r"Mozilla/5.0 (X11; Linux x86_64) caf\xc3\xa9", "0", "-", "-", "-",
    ],
    # 11: too few fields.
    ["too", "few"],
    # 12: a CONNECT to a proxy port, without a host header.
    [
        "1700000002.000000", "C3", "192.0.2.11", "50002", "192.0.2.1", "3128", "1", "CONNECT", "-",
        "drive.google.com:443", "-", "1.1", "Go-http-client/1.1", "0", "0", "200", "-",
    ],
]
LINES = HEADER + ["" if record is None else "\t".join(record) for record in RECORDS] + ["#close\t2023-11-14-22-00-00"]
TEXT = "\n".join(LINES) + "\n"


def test_zeek_tsv_columns(load_text):
    loaded = load_text(TEXT)
    row = loaded.line(8)

    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20, 250000)
    assert row["SrcIpAddr"] == "192.0.2.10"
    assert row["SrcPortNumber"] == 50000
    assert row["DstIpAddr"] == "203.0.113.5"
    assert row["DstPortNumber"] == 80
    assert row["HttpRequestMethod"] == "PUT"
    assert row["DstHostname"] == "files.example.com"
    assert row["Url"] == "/up/data.tar.gz?part=1"
    assert row["HttpReferrer"] == "http://ref.example/"
    assert row["HttpVersion"] == "1.1"
    assert row["HttpUserAgent"] == "rclone/v1.65.0"
    assert row["SrcBytes"] == 10485760
    assert row["DstBytes"] == 0
    assert row["HttpStatusCode"] == 200
    assert row["SrcUsername"] == "alice"
    assert row["EventProduct"] == "Zeek"
    assert row["EventVendor"] == "Zeek"
    assert row["SourceFile"] == loaded.path


def test_zeek_tsv_derived_url_columns(load_text):
    row = load_text(TEXT).line(8)

    assert row["UrlPath"] == "/up/data.tar.gz"
    assert row["UrlQuery"] == "part=1"
    assert row["UrlExtension"] == "gz"


def test_zeek_tsv_ipv6(load_text):
    row = load_text(TEXT).line(10)

    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["DstIpAddr"] == "2001:db8::2"
    assert row["DstPortNumber"] == 8080


def test_zeek_tsv_placeholders(load_text):
    row = load_text(TEXT).line(10)

    # "-" is unset (NULL), "(empty)" is an empty string and \x28empty) is the literal text.
    assert row["HttpVersion"] is None
    assert row["HttpStatusCode"] is None
    assert row["DstBytes"] is None
    assert row["SrcUsername"] is None
    assert row["DstHostname"] == ""
    assert row["HttpReferrer"] == "(empty)"


def test_zeek_tsv_placeholders_not_invalid(load_text):
    loaded = load_text(TEXT)

    assert loaded.report.invalid_values == {}


def test_zeek_tsv_hex_escapes(load_text):
    row = load_text(TEXT).line(10)

    assert row["HttpUserAgent"] == "Mozilla/5.0 (X11; Linux x86_64) café"


def test_zeek_tsv_escaped_backslash(load_text):
    # Regression: Zeek writes a backslash as \\, so \\x41 is a backslash and the text "x41".
    row = load_text(TEXT).line(10)

    assert row["Url"] == "/a b\\x41.txt"
    assert row["UrlExtension"] == "txt"


def test_zeek_tsv_connect_target(load_text):
    row = load_text(TEXT).line(12)

    assert row["HttpRequestMethod"] == "CONNECT"
    assert row["DstHostname"] == "drive.google.com"
    assert row["DstPortNumber"] == 3128
    assert row["UrlPath"] is None


def test_zeek_tsv_line_numbers(load_text):
    loaded = load_text(TEXT)

    assert loaded.line_numbers == [8, 10, 12]
    assert loaded.report.lines_read == 13
    assert loaded.report.parsed == 3
    assert loaded.report.rejected == 1
    # Seven header lines, the blank line and #close.
    assert loaded.report.skipped == 9


def test_zeek_tsv_raw_event_is_line(load_text):
    loaded = load_text(TEXT)

    for row in loaded.rows:
        assert row["RawEvent"] == LINES[row["SourceLine"] - 1]


def test_zeek_tsv_malformed_line_rejected(load_text):
    loaded = load_text(TEXT)

    assert loaded.rejects == [(11, "has 2 fields (split at the #separator) but the #fields header names 17", "too\tfew")]
    assert loaded.report.error is None


def test_zeek_tsv_header_change(load_text):
    # Concatenated logs: the second file has its own header, other field order and another unset marker.
    second_header = ["#unset_field\tNONE", "#fields\turi\tts\tid.orig_h\tuser_agent\tmethod\tstatus_code"]
    second_record = "/second\t1700000100.5\t192.0.2.20\tNONE\tGET\t204"
    lines = HEADER + ["\t".join(RECORDS[0])] + second_header + [second_record]
    loaded = load_text("\n".join(lines) + "\n")
    row = loaded.line(11)

    assert loaded.line_numbers == [8, 11]
    assert row["Url"] == "/second"
    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 15, 0, 500000)
    assert row["SrcIpAddr"] == "192.0.2.20"
    assert row["HttpUserAgent"] is None
    assert row["HttpStatusCode"] == 204


def test_zeek_tsv_data_before_header_rejected(load_text):
    lines = ["\t".join(RECORDS[0])] + HEADER + ["\t".join(RECORDS[0])]
    loaded = load_text("\n".join(lines) + "\n", format_name="zeek-tsv")

    assert loaded.line_numbers == [9]
    assert [line for line, _, _ in loaded.rejects] == [1]
    assert "before any #fields header" in loaded.rejects[0][1]


def test_zeek_tsv_detection(load_text):
    scores = {fmt.name: fmt.detect(LINES) for fmt in all_formats()}

    assert scores.pop("zeek-tsv") == 1.0
    assert max(scores.values()) < 0.5
    assert load_text(TEXT).report.format == "zeek-tsv"


JSON_LINES = [
    # 1: epoch ts and the dotted connection fields of Zeek's JSON writer.
    '{"ts":1700000000.5,"uid":"C1","id.orig_h":"192.0.2.10","id.orig_p":50000,"id.resp_h":"203.0.113.5",'
    '"id.resp_p":443,"trans_depth":1,"method":"CONNECT","host":"drive.google.com","uri":"drive.google.com:443",'
    '"version":"1.1","user_agent":"Go-http-client/1.1","request_body_len":0,"response_body_len":0,'
    '"status_code":200}',
    # 2: ISO 8601 ts (JSON::TS_ISO8601), a nested id record, an escaped quote and an empty referrer.
    '{"ts":"2023-11-14T23:13:21.123456+01:00","uid":"C2","id":{"orig_h":"2001:db8::1","orig_p":50001,'
    '"resp_h":"2001:db8::2","resp_p":80},"method":"GET","host":"example.com","uri":"/x/y.zip?a=b",'
    '"user_agent":"say \\"hi\\" (v2)","referrer":"","username":"bob","status_code":404}',
    # 3: blank, counted as a skipped line.
    "",
    # 4: flattened field names, as some exports write them, and unset fields left out.
    '{"ts":1700000002,"uid":"C3","id_orig_h":"192.0.2.11","id_orig_p":1,"id_resp_h":"192.0.2.12",'
    '"id_resp_p":80,"method":"POST","uri":"/p"}',
    # 5: broken JSON.
    '{"ts":1700000003,"uid":',
    # 6: valid JSON that is not an object.
    "[1, 2]",
]
JSON_TEXT = "\n".join(JSON_LINES) + "\n"


def test_zeek_json_columns(load_text):
    loaded = load_text(JSON_TEXT)
    row = loaded.line(1)

    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20, 500000)
    assert row["SrcIpAddr"] == "192.0.2.10"
    assert row["SrcPortNumber"] == 50000
    assert row["DstIpAddr"] == "203.0.113.5"
    assert row["DstPortNumber"] == 443
    assert row["HttpRequestMethod"] == "CONNECT"
    assert row["DstHostname"] == "drive.google.com"
    assert row["Url"] == "drive.google.com:443"
    assert row["HttpVersion"] == "1.1"
    assert row["HttpUserAgent"] == "Go-http-client/1.1"
    assert row["SrcBytes"] == 0
    assert row["DstBytes"] == 0
    assert row["HttpStatusCode"] == 200
    assert row["EventProduct"] == "Zeek"
    assert row["SourceFile"] == loaded.path


def test_zeek_json_connect_no_path(load_text):
    row = load_text(JSON_TEXT).line(1)

    assert row["UrlPath"] is None
    assert row["UrlQuery"] is None
    assert row["UrlExtension"] is None


def test_zeek_json_iso_time_to_utc(load_text):
    row = load_text(JSON_TEXT).line(2)

    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 21, 123456)


def test_zeek_json_nested_id(load_text):
    row = load_text(JSON_TEXT).line(2)

    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["SrcPortNumber"] == 50001
    assert row["DstIpAddr"] == "2001:db8::2"
    assert row["DstPortNumber"] == 80


def test_zeek_json_strings(load_text):
    row = load_text(JSON_TEXT).line(2)

    assert row["HttpUserAgent"] == 'say "hi" (v2)'
    assert row["HttpReferrer"] == ""
    assert row["SrcUsername"] == "bob"
    assert row["UrlPath"] == "/x/y.zip"
    assert row["UrlQuery"] == "a=b"
    assert row["UrlExtension"] == "zip"


def test_zeek_json_flattened_names(load_text):
    row = load_text(JSON_TEXT).line(4)

    assert row["SrcIpAddr"] == "192.0.2.11"
    assert row["SrcPortNumber"] == 1
    assert row["DstIpAddr"] == "192.0.2.12"
    assert row["DstPortNumber"] == 80
    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 22)


def test_zeek_json_missing_fields_null(load_text):
    row = load_text(JSON_TEXT).line(4)

    assert row["HttpUserAgent"] is None
    assert row["HttpStatusCode"] is None
    assert row["DstHostname"] is None
    assert row["HttpReferrer"] is None


def test_zeek_json_line_numbers(load_text):
    loaded = load_text(JSON_TEXT)

    assert loaded.line_numbers == [1, 2, 4]
    assert loaded.report.parsed == 3
    assert loaded.report.rejected == 2
    assert loaded.report.skipped == 1


def test_zeek_json_raw_event_is_line(load_text):
    loaded = load_text(JSON_TEXT)

    for row in loaded.rows:
        assert row["RawEvent"] == JSON_LINES[row["SourceLine"] - 1]


def test_zeek_json_malformed_rejected(load_text):
    loaded = load_text(JSON_TEXT)

    assert loaded.rejects == [
        (5, "invalid JSON", JSON_LINES[4]),
        (6, "not a JSON object", JSON_LINES[5]),
    ]


def test_zeek_json_detection(load_text):
    scores = {fmt.name: fmt.detect(JSON_LINES) for fmt in all_formats()}
    zeek_score = scores.pop("zeek-json")

    assert zeek_score == 0.6
    for name, score in scores.items():
        assert score < zeek_score, name
    assert load_text(JSON_TEXT).report.format == "zeek-json"


def test_zeek_tsv_pipe_separator_detected(load_text) -> None:
    text = (
        "#separator \\x7c\n"
        "#unset_field|-\n"
        "#empty_field|(empty)\n"
        "#path|http\n"
        "#fields|ts|uid|id.orig_h|method|host|uri|user_agent\n"
        "1517336154.078555|C1|10.55.100.109|PUT|bucket.example|/upload|rclone/v1.68.2\n"
    )

    loaded = load_text(text, name="http.log")

    assert loaded.report.format == "zeek-tsv"
    assert loaded.line(6)["HttpUserAgent"] == "rclone/v1.68.2"
    assert loaded.line(6)["DstHostname"] == "bucket.example"


def test_zeek_json_object_user_agent_invalid(load_text) -> None:
    text = (
        '{"ts": 1588206738.09551, "uid": "C1", "id.orig_h": "10.0.1.4", "method": "PUT", "host": "b.example", '
        '"uri": "/u", "user_agent": {"original": "rclone/v1.68.2"}}\n'
    )

    loaded = load_text(text, name="http.json")

    assert loaded.report.format == "zeek-json"
    assert loaded.line(1)["HttpUserAgent"] is None
    assert loaded.report.invalid_values == {"HttpUserAgent": 1}
