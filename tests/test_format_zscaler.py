"""Zscaler NSS web log feeds in each output type, read through the real loader into DuckDB."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from proxyhunt.formats import all_formats
from proxyhunt.formats.detect import best_format
from proxyhunt.formats.zscaler import DEFAULT_TEMPLATE

# The sample web log of Zscaler's feed output format page, with our own values.
HEADERLESS = (
    '"Mon Jun 20 15:29:11 2022","alice@example.com","HTTPS","s3.amazonaws.com/bucket/key","Allowed","Amazon S3",'
    '"Sharing","1048576","512","0","0","Business Use","Internet Communication","File Host","None","None","0",'
    '"None","None","HQ","Finance","10.1.1.5","52.216.1.1","PUT","200","rclone/v1.68.2","None","FwFilter",'
    '"Firewall_1","application/octet-stream","None","NA","NA","N/A"'
)
KEY_VALUE = (
    "Jun 20 15:29:11\treason=Allowed\tevent_id=7\tprotocol=HTTPS\taction=Blocked\tresponsesize=800\t"
    "requestsize=100\turlcategory=Web Search\tserverip=142.250.1.1\trequestmethod=GET\trefererURL=None\t"
    "useragent=Mozilla/5.0 (X11; Linux x86_64) a=b\tClientIP=10.1.1.1\tstatus=403\tuser=bob@example.com\t"
    "url=www.google.com/search?q=a%20b\tvendor=Zscaler\thostname=www.google.com"
)
JSON_EVENT = {
    "sourcetype": "zscalernss-web",
    "event": {
        "datetime": "Mon Jun 20 15:29:11 2022",
        "action": "Allowed",
        "requestsize": "100",
        "responsesize": "2000",
        "urlcategory": "Web Search",
        "serverip": "1.2.3.4",
        "requestmethod": "PUT",
        "useragent": "rclone/v1.68.2",
        "ClientIP": "2001:db8::1",
        "status": "200",
        "user": "carol@example.com",
        "url": "s3.amazonaws.com/bucket/x",
        "hostname": "s3.amazonaws.com",
    },
}
HEADER_TSV = (
    "time\tlogin\teurl\tcip\tsip\treqmethod\trespcode\tua\treqsize\trespsize\taction\turlcat\n"
    "Mon Jun 20 15:29:11 2022\tdave@example.com\texample.com/a\t10.0.0.1\t1.1.1.1\tGET\t200\tcurl/8.0\t50\t500\tAllowed\tNews\n"
)


def test_headerless_csv_default_template(load_text):
    loaded = load_text(HEADERLESS + "\n", name="nss.csv")
    row = loaded.line(1)

    assert loaded.report.format == "zscaler"
    assert len(DEFAULT_TEMPLATE) == 34
    assert row["TimeGenerated"] == datetime(2022, 6, 20, 15, 29, 11)
    assert row["SrcUsername"] == "alice@example.com"
    assert row["Url"] == "s3.amazonaws.com/bucket/key"
    assert row["DstHostname"] == "s3.amazonaws.com"
    assert row["DvcAction"] == "Allow"
    assert row["SrcBytes"] == 1048576
    assert row["DstBytes"] == 512
    assert row["UrlCategory"] == "File Host"
    assert row["SrcIpAddr"] == "10.1.1.5"
    assert row["DstIpAddr"] == "52.216.1.1"
    assert row["HttpRequestMethod"] == "PUT"
    assert row["HttpStatusCode"] == 200
    assert row["HttpUserAgent"] == "rclone/v1.68.2"
    assert row["HttpReferrer"] is None
    assert row["HttpContentType"] == "application/octet-stream"
    assert row["EventVendor"] == "Zscaler"


def test_headerless_quoted_comma_and_quote(load_text):
    line = HEADERLESS.replace('"rclone/v1.68.2"', '"Mozilla/5.0 (X, ""quoted"")"')
    row = load_text(line + "\n", name="nss.csv").line(1)

    assert row["HttpUserAgent"] == 'Mozilla/5.0 (X, "quoted")'


def test_headerless_wrong_field_count_rejected(load_text):
    loaded = load_text(HEADERLESS + "\n" + '"Mon Jun 20 15:29:11 2022","short"\n', "zscaler", name="nss.csv")

    assert loaded.line_numbers == [1]
    assert [number for number, _, _ in loaded.rejects] == [2]
    assert "default NSS web log template" in loaded.rejects[0][1]


def test_headerless_tab_separated(load_text):
    line = "\t".join(field.strip('"') for field in HEADERLESS.split('","'))
    row = load_text(line + "\n", name="nss.tsv").line(1)

    assert row["HttpUserAgent"] == "rclone/v1.68.2"
    assert row["SrcBytes"] == 1048576


def test_key_value_feed(load_text):
    loaded = load_text(KEY_VALUE + "\n", name="nss.log")
    row = loaded.line(1)

    assert loaded.report.format == "zscaler"
    assert row["HttpUserAgent"] == "Mozilla/5.0 (X11; Linux x86_64) a=b"
    assert row["SrcIpAddr"] == "10.1.1.1"
    assert row["DstIpAddr"] == "142.250.1.1"
    assert row["HttpStatusCode"] == 403
    assert row["DvcAction"] == "Deny"
    assert row["SrcUsername"] == "bob@example.com"
    assert row["DstHostname"] == "www.google.com"
    assert row["SrcBytes"] == 100
    assert row["DstBytes"] == 800
    assert row["HttpReferrer"] is None
    assert row["UrlCategory"] == "Web Search"


def test_json_feed_with_event_object(load_text):
    loaded = load_text(json.dumps(JSON_EVENT) + "\n", name="nss.json")
    row = loaded.line(1)

    assert loaded.report.format == "zscaler"
    assert row["TimeGenerated"] == datetime(2022, 6, 20, 15, 29, 11)
    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["HttpUserAgent"] == "rclone/v1.68.2"
    assert row["HttpRequestMethod"] == "PUT"


def test_json_feed_flat_and_missing_keys(load_text):
    flat = dict(JSON_EVENT["event"])
    del flat["useragent"]
    row = load_text(json.dumps(flat) + "\n", name="nss.json").line(1)

    assert row["HttpUserAgent"] is None
    assert row["SrcUsername"] == "carol@example.com"


def test_json_feed_invalid_line_rejected(load_text):
    text = json.dumps(JSON_EVENT) + "\n" + '{"event": {"url": "x"\n'
    loaded = load_text(text, "zscaler", name="nss.json")

    assert loaded.line_numbers == [1]
    assert [number for number, _, _ in loaded.rejects] == [2]


def test_header_row_tab_separated(load_text):
    loaded = load_text(HEADER_TSV, name="nss.tsv")
    row = loaded.line(2)

    assert loaded.report.skipped == 1
    assert row["SrcUsername"] == "dave@example.com"
    assert row["HttpUserAgent"] == "curl/8.0"
    assert row["UrlCategory"] == "News"


def test_empty_file_forced(load_text):
    loaded = load_text("", format_name="zscaler", name="nss.csv")

    assert loaded.report.error is None
    assert loaded.rows == []


def test_one_megabyte_url(load_text):
    url = "example.com/" + "a" * (1024 * 1024)
    line = HEADERLESS.replace("s3.amazonaws.com/bucket/key", url)
    row = load_text(line + "\n", name="nss.csv").line(1)

    assert row["Url"] == url


SAMPLES = {
    "headerless": [HEADERLESS, HEADERLESS],
    "key-value": [KEY_VALUE, KEY_VALUE],
    "json": [json.dumps(JSON_EVENT)],
    "header": HEADER_TSV.splitlines(),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_detected_as_zscaler(kind):
    fmt, _ = best_format(SAMPLES[kind], all_formats())

    assert fmt is not None
    assert fmt.name == "zscaler"


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_other_formats_score_below_zscaler(kind):
    zscaler = [fmt for fmt in all_formats() if fmt.name == "zscaler"][0].detect(SAMPLES[kind])
    for fmt in all_formats():
        if fmt.name != "zscaler":
            assert fmt.detect(SAMPLES[kind]) < zscaler, fmt.name


def test_headerless_assumption_logged(load_text, caplog):
    with caplog.at_level("WARNING", logger="proxyhunt.formats.loader"):
        loaded = load_text(HEADERLESS + "\n", name="nss.csv")

    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith(loaded.path + ": ") and "default web log template" in message for message in messages)


def test_invalid_utf8_kept(tmp_path):
    import duckdb

    from proxyhunt.formats.loader import Loader

    path = tmp_path / "nss.log"
    path.write_bytes(KEY_VALUE.replace("bob@example.com", "b\udce9b@example.com").encode("utf-8", "surrogateescape") + b"\n")
    loader = Loader(duckdb.connect())
    report = loader.load(str(path))
    [(user,)] = loader.connection.execute("SELECT SrcUsername FROM websession").fetchall()

    assert report.format == "zscaler"
    assert report.invalid_utf8_lines == 1
    assert user == "b\ufffdb@example.com"
