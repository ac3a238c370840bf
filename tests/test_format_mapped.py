"""CSV, TSV and JSON Lines files read through a --map YAML mapping file, and the mapping file's validation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from proxyhunt.formats.loader import FileReport, Loader, custom_formats
from proxyhunt.formats.mapped import MappingError, load_mapping

CSV_MAPPING = """\
name: example gateway
format: csv
delimiter: ";"
fields:
  TimeGenerated: when
  SrcIpAddr: client
  c-useragent: ua
  SrcBytes: up
  Url: url
timestamp:
  format: "%d.%m.%Y %H:%M:%S"
  timezone: Europe/Berlin
missing: ["-", "", "n/a"]
product: ExampleGateway
vendor: Example
"""
CSV_TEXT = (
    "when;client;ua;up;url;extra\n"
    # 2: a quoted user agent with the delimiter and doubled quotes inside.
    '01.07.2024 12:00:00;192.0.2.1;"rclone/v1.66.0; ""quoted""";1024;http://s3.example/b;x\n'
    # 3: placeholders and a user agent that spans two lines, an IPv6 client.
    '01.07.2024 12:00:01;2001:db8::1;"multi\nline";n/a;-;y\n'
    # 5: too few fields.
    "bad;row\n"
    # 6: a time that does not fit the pattern.
    "2024-07-01;192.0.2.2;curl/8;1;http://a.example/;z\n"
)


@pytest.fixture
def load_mapped(tmp_path: Path):
    """Write a mapping file and a data file, load the data with the mapping and return report, rows and rejects."""

    def load(mapping: str, data: str, name: str = "export.csv") -> tuple[FileReport, dict[int, dict[str, Any]], list]:
        mapping_path = tmp_path / "mapping.yaml"
        mapping_path.write_text(mapping, encoding="utf-8")
        data_path = tmp_path / name
        data_path.write_bytes(data.encode("utf-8"))
        connection = duckdb.connect()
        report = Loader(connection, custom_formats(map_path=str(mapping_path))).load(str(data_path))
        cursor = connection.execute("SELECT * FROM websession ORDER BY SourceLine")
        names = [column[0] for column in cursor.description]
        rows = {values[names.index("SourceLine")]: dict(zip(names, values)) for values in cursor.fetchall()}
        rejects = connection.execute("SELECT SourceLine, Reason FROM rejects ORDER BY SourceLine").fetchall()
        return report, rows, rejects

    return load


def test_csv_columns(load_mapped):
    report, rows, _ = load_mapped(CSV_MAPPING, CSV_TEXT)
    row = rows[2]

    assert report.format == "mapped"
    assert report.format_title == "CSV described by example gateway"
    # 12:00 in Berlin in summer is 10:00 UTC.
    assert row["TimeGenerated"] == datetime(2024, 7, 1, 10, 0, 0)
    assert row["SrcIpAddr"] == "192.0.2.1"
    assert row["HttpUserAgent"] == 'rclone/v1.66.0; "quoted"'
    assert row["SrcBytes"] == 1024
    assert row["DstHostname"] == "s3.example"
    assert row["EventProduct"] == "ExampleGateway"
    assert row["EventVendor"] == "Example"


def test_csv_missing_values_and_multiline(load_mapped):
    _, rows, _ = load_mapped(CSV_MAPPING, CSV_TEXT)
    row = rows[3]

    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["HttpUserAgent"] == "multi\nline"
    assert row["SrcBytes"] is None
    assert row["Url"] is None


def test_csv_accounting(load_mapped):
    report, rows, rejects = load_mapped(CSV_MAPPING, CSV_TEXT)

    assert report.lines_read == 6
    assert report.parsed == 3
    assert report.rejected == 1
    # The header row and the second line of the multi-line record.
    assert report.skipped == 2
    assert rejects == [(5, "has 2 CSV fields but the header row names 6")]
    assert report.invalid_values == {"TimeGenerated": 1}
    assert rows[6]["TimeGenerated"] is None


def test_tsv_without_header(load_mapped):
    mapping = "format: tsv\nheader: false\ncolumns: [ts, ip, agent]\nfields:\n  TimeGenerated: ts\n  SrcIpAddr: ip\n  HttpUserAgent: agent\ntimestamp:\n  format: epoch\n"
    data = "1700000000.5\t192.0.2.1\trclone/v1.66.0\n1700000001\t192.0.2.2\t-\n"

    report, rows, _ = load_mapped(mapping, data, name="export.tsv")

    assert report.parsed == 2
    assert report.skipped == 0
    assert rows[1]["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20, 500000)
    assert rows[1]["HttpUserAgent"] == "rclone/v1.66.0"
    assert rows[2]["HttpUserAgent"] is None


def test_jsonl_nested_keys(load_mapped):
    mapping = "format: jsonl\nfields:\n  TimeGenerated: ts\n  SrcIpAddr: client.ip\n  HttpUserAgent: http.ua\n  DstBytes: bytes\ntimestamp:\n  format: epoch_ms\n"
    data = (
        '{"ts": 1700000000123, "client": {"ip": "2001:db8::1"}, "http": {"ua": "rclone/v1.66.0"}, "bytes": "77"}\n'
        '{"ts": 1700000001000, "client": {"ip": "192.0.2.1"}, "http": {}}\n'
        "not json\n"
    )

    report, rows, rejects = load_mapped(mapping, data, name="export.jsonl")

    assert report.format == "mapped"
    assert rows[1]["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20, 123000)
    assert rows[1]["SrcIpAddr"] == "2001:db8::1"
    assert rows[1]["HttpUserAgent"] == "rclone/v1.66.0"
    assert rows[1]["DstBytes"] == 77
    assert rows[2]["HttpUserAgent"] is None
    assert rejects == [(3, "invalid JSON")]


def test_iso_times_with_and_without_offset(load_mapped):
    mapping = "format: jsonl\nfields:\n  TimeGenerated: t\n  SrcIpAddr: ip\ntimestamp:\n  timezone: America/New_York\n"
    data = '{"t": "2024-01-15T10:00:00", "ip": "a"}\n{"t": "2024-01-15T10:00:00+02:00", "ip": "b"}\n{"t": "2024-01-15T10:00:00Z", "ip": "c"}\n'

    _, rows, _ = load_mapped(mapping, data, name="export.jsonl")

    assert rows[1]["TimeGenerated"] == datetime(2024, 1, 15, 15, 0, 0)
    assert rows[2]["TimeGenerated"] == datetime(2024, 1, 15, 8, 0, 0)
    assert rows[3]["TimeGenerated"] == datetime(2024, 1, 15, 10, 0, 0)


def test_header_without_mapped_column(load_mapped):
    report, rows, _ = load_mapped(CSV_MAPPING, "when;client;agent;up;url;extra\n01.07.2024 12:00:00;192.0.2.1;x;1;-;-\n")

    assert report.error is not None
    assert "'ua'" in report.error
    assert "mapping.yaml" in report.error
    assert rows[2]["SrcIpAddr"] == "192.0.2.1"


def test_mapped_csv_detected_before_csv(load_mapped):
    mapping = "format: csv\nfields:\n  SrcIpAddr: SrcIpAddr\n  HttpUserAgent: agent\n"

    report, _, _ = load_mapped(mapping, "SrcIpAddr,HttpUserAgent,agent\n192.0.2.1,a,b\n")

    assert report.format == "mapped"
    assert [name for name, _ in report.candidates][:2] == ["mapped", "csv"]


# Validation of the mapping file


def write_mapping(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("format: csv\nfields:\n  SrcIpAddr: ip\n  HttpUserAgnt: ua\n", 4, "unknown WebSession column 'HttpUserAgnt'; did you mean HttpUserAgent?"),
        ("format: csv\nfields:\n  SrcIpAddr: [ip\n", 4, "invalid YAML"),
        ("format: csv\nfields:\n  SrcIpAddr: ip\ncolour: blue\n", 4, "unknown key 'colour'"),
        ("format: xml\nfields:\n  SrcIpAddr: ip\n", 1, "set it to one of: csv, tsv, jsonl"),
        ("fields:\n  SrcIpAddr: ip\n", None, "'format' is missing"),
        ("format: csv\n", None, "'fields' is missing; 'fields' must map"),
        ("format: csv\nheader: false\nfields:\n  SrcIpAddr: ip\n", 2, "needs 'columns'"),
        ("format: csv\nheader: false\ncolumns: [a]\nfields:\n  SrcIpAddr: ip\n", 5, "'ip', which is not in 'columns'"),
        ("format: csv\nfields:\n  SrcIpAddr: ip\ntimestamp:\n  timezone: Mars/Olympus\n", 5, "unknown time zone"),
        ("format: csv\nfields:\n  SrcIpAddr: ip\ntimestamp:\n  format: dd.mm.yyyy\n", 5, "neither a strptime pattern"),
        ("format: csv\nfields:\n  SourceLine: n\n", 3, "unknown WebSession column 'SourceLine'"),
        ("format: jsonl\nheader: true\nfields:\n  SrcIpAddr: ip\n", 2, "csv and tsv only"),
        ("format: tsv\ndelimiter: ';'\nfields:\n  SrcIpAddr: ip\n", 2, "only with format csv"),
        ("- a\n- b\n", 1, "is a YAML mapping"),
    ],
)
def test_invalid_mapping(tmp_path, text, line, message):
    path = write_mapping(tmp_path, text)

    with pytest.raises(MappingError) as caught:
        load_mapping(path)

    location = f"{path}:{line}: " if line else f"{path}: "
    assert str(caught.value).startswith(location)
    assert message in str(caught.value)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(MappingError, match="mapping file not found; check the path given to --map"):
        load_mapping(str(tmp_path / "absent.yaml"))


def test_valid_mapping_defaults(tmp_path):
    mapping = load_mapping(write_mapping(tmp_path, "format: tsv\nfields:\n  cs-host: host\n"))

    assert mapping.delimiter == "\t"
    assert mapping.header is True
    assert mapping.fields == {"DstHostname": "host"}
    assert mapping.missing == ["-", ""]
    assert mapping.time_format == "iso8601"


def test_one_megabyte_field(load_mapped):
    agent = "rclone/v1.66.0 " + "x" * 1_000_000
    data = f'when;client;ua;up;url;extra\n01.07.2024 12:00:00;192.0.2.1;"{agent}";1;-;-\n01.07.2024 12:00:01;192.0.2.2;a;2;-;-\n'

    report, rows, _ = load_mapped(CSV_MAPPING, data)

    assert report.parsed == 2
    assert rows[2]["HttpUserAgent"] == agent
    assert rows[3]["SrcIpAddr"] == "192.0.2.2"


def test_empty_file(load_mapped):
    report, rows, _ = load_mapped(CSV_MAPPING, "")

    assert report.error is None
    assert report.lines_read == 0
    assert rows == {}
