"""Edge cases at the start and end of a file: byte-order marks, unclosed CSV quotes, huge or deep lines."""

from __future__ import annotations

from tests.conftest import LoadText


def test_csv_unclosed_quote_at_end_rejected(load_text: LoadText) -> None:
    loaded = load_text('SrcIpAddr,Url\n192.0.2.1,/a\n192.0.2.2,"/b\n192.0.2.3,/c\n', name="open.csv")

    assert loaded.report.error is None
    assert loaded.line_numbers == [2]
    assert [number for number, _, _ in loaded.rejects] == [3, 4]
    assert "never closes its quote" in loaded.rejects[0][1]
    assert loaded.report.parsed + loaded.report.rejected + loaded.report.skipped == loaded.report.lines_read


def test_csv_with_byte_order_mark(load_text: LoadText) -> None:
    text = "\ufeffTimeGenerated [UTC],SrcIpAddr,HttpUserAgent\n2024-01-01T00:00:00Z,192.0.2.1,rclone/v1.0\n"

    loaded = load_text(text, name="bom.csv")

    row = loaded.line(2)
    assert str(row["TimeGenerated"]) == "2024-01-01 00:00:00"
    assert row["SrcIpAddr"] == "192.0.2.1"
    assert row["HttpUserAgent"] == "rclone/v1.0"


def test_combined_with_byte_order_mark(load_text: LoadText) -> None:
    line = '192.0.2.10 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"\n'

    loaded = load_text("\ufeff" + line)

    assert loaded.report.format == "combined"
    assert loaded.line(1)["SrcIpAddr"] == "192.0.2.10"


def test_csv_header_longer_than_csv_field_limit(load_text: LoadText) -> None:
    long_url = "/" + "a" * 200_000
    text = f"SrcIpAddr,Url\n192.0.2.1,{long_url}\n"

    loaded = load_text(text, name="long.csv")

    assert loaded.report.error is None
    assert loaded.line(2)["Url"] == long_url


def test_deeply_nested_json_line_rejected(load_text: LoadText) -> None:
    good = '{"HttpUserAgent": "rclone/v1.0", "SrcIpAddr": "192.0.2.1", "Url": "/x"}\n'
    text = good * 3 + "[" * 100_000 + "\n"

    loaded = load_text(text, name="deep.jsonl")

    assert loaded.report.format == "jsonl"
    assert loaded.line(1)["HttpUserAgent"] == "rclone/v1.0"
    assert [number for number, _, _ in loaded.rejects] == [4]
