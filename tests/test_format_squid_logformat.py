"""Squid custom logformat reader: parsing the logformat line and reading lines written with it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from proxyhunt.formats.loader import FileReport, Loader, custom_formats
from proxyhunt.hunt import hunt
from proxyhunt.formats.squid_logformat import (
    PREDEFINED,
    FormatCode,
    Literal,
    LogformatError,
    SquidLogformat,
    parse_logformat,
)

MINE = 'logformat mine %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt "%{User-Agent}>h"'
MINE_LINES = [
    # 1: an upload with every field set.
    '1700000000.123    150 192.0.2.10 TCP_MISS/200 5120 PUT http://files.example/a.tar alice '
    'HIER_DIRECT/203.0.113.5 application/x-tar "rclone/v1.66.0"',
    # 2: IPv6, a Windows user name, a user agent with escaped spaces and one sent percent-encoded.
    '1700000001.005      5 2001:db8::1 TCP_TUNNEL/200 3000 CONNECT drive.google.com:443 CORP%5cbob '
    'HIER_DIRECT/2001:db8::2 - "Mozilla/5.0%20(X11)%2520x"',
    # 3: not written with this logformat.
    "this line is not in the logformat",
    # 4: denied by the proxy, no reply status, placeholders.
    '1700000002.500      0 192.0.2.11 TCP_DENIED/000 300 GET http://blocked.example/ - HIER_NONE/- - "-"',
    # 5: blank, counted as a header line.
    "",
    # 6: a cache peer logged by name, not by address.
    '1700000003.000     12 192.0.2.12 TCP_MISS/200 100 GET http://cdn.example/x - FIRSTUP_PARENT/cache1 text/plain "curl/8"',
]


@pytest.fixture
def load_with(tmp_path: Path):
    """Load text with the formats described by the keyword arguments of custom_formats."""

    def load(text: str, format_name: str | None = None, **description: str) -> tuple[FileReport, list[dict[str, Any]], list]:
        path = tmp_path / "access.log"
        path.write_bytes(text.encode("utf-8"))
        connection = duckdb.connect()
        report = Loader(connection, custom_formats(**description)).load(str(path), format_name=format_name)
        cursor = connection.execute("SELECT * FROM websession ORDER BY SourceLine")
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, values)) for values in cursor.fetchall()]
        rejects = connection.execute("SELECT SourceLine, Reason FROM rejects ORDER BY SourceLine").fetchall()
        return report, rows, rejects

    return load


def by_line(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {row["SourceLine"]: row for row in rows}


# Parsing the logformat line


def test_logformat_prefix_optional():
    with_prefix = parse_logformat(MINE)
    without = parse_logformat(MINE.split(" ", 2)[2])

    assert with_prefix.name == "mine"
    assert without.name == "custom"
    assert with_prefix.tokens == without.tokens


def test_predefined_names_expand():
    for name, definition in PREDEFINED.items():
        logformat = parse_logformat(name)
        assert logformat.name == name
        assert logformat.definition == definition


def test_modifiers_parsed():
    tokens = parse_logformat('%"-020.5{User-Agent}>h %#ru %>h{Referer} %%').tokens
    codes = [token for token in tokens if isinstance(token, FormatCode)]

    assert codes[0] == FormatCode(">h", '"', True, True, 20, 5, "User-Agent")
    assert codes[1].code == "ru"
    assert codes[1].quoting == "#"
    assert codes[2].argument == "Referer"
    assert tokens[-1] == Literal(" %")


def test_longest_code_wins():
    codes = [token.code for token in parse_logformat("%>Hs %<st %>st %st %>rd %rm").tokens if isinstance(token, FormatCode)]

    assert codes == [">Hs", "<st", ">st", "st", ">rd", "rm"]


def test_unknown_code_noted():
    logformat = parse_logformat("%>a %ssl::>cert_subject %ru")

    unknown = [token for token in logformat.tokens if isinstance(token, FormatCode) and not token.known]
    assert [token.code for token in unknown] == ["ssl::>cert_subject"]
    assert len(logformat.notes) == 1
    assert "ssl::>cert_subject" in logformat.notes[0]


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("logformat onlyname", "no format specification"),
        ("just text", "has no format code"),
        ("%>a % %ru", "not followed by a format code"),
        ("%>a %{User-Agent >h", "never closed"),
        ("%tr %Sh", "no format code that fills"),
    ],
)
def test_invalid_logformat(definition, message):
    with pytest.raises(LogformatError, match=message):
        SquidLogformat(definition)


# Reading lines


def test_custom_logformat_columns(load_with):
    report, rows, _ = load_with("\n".join(MINE_LINES) + "\n", squid_logformat=MINE)
    row = by_line(rows)[1]

    assert report.format == "squid-logformat"
    assert report.format_title == "Squid logformat mine"
    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20, 123000)
    assert row["SrcIpAddr"] == "192.0.2.10"
    assert row["HttpStatusCode"] == 200
    assert row["DstBytes"] == 5120
    assert row["HttpRequestMethod"] == "PUT"
    assert row["Url"] == "http://files.example/a.tar"
    assert row["DstHostname"] == "files.example"
    assert row["SrcUsername"] == "alice"
    assert row["DstIpAddr"] == "203.0.113.5"
    assert row["HttpContentType"] == "application/x-tar"
    assert row["HttpUserAgent"] == "rclone/v1.66.0"
    assert row["DvcAction"] == "Allow"
    assert row["EventProduct"] == "Squid"


def test_user_agent_decoded_once(load_with):
    _, rows, _ = load_with("\n".join(MINE_LINES) + "\n", squid_logformat=MINE)
    row = by_line(rows)[2]

    assert row["SrcIpAddr"] == "2001:db8::1"
    assert row["DstIpAddr"] == "2001:db8::2"
    assert row["SrcUsername"] == "CORP\\bob"
    assert row["HttpUserAgent"] == "Mozilla/5.0 (X11)%20x"
    assert row["RawEvent"] == MINE_LINES[1]
    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 21, 5000)


def test_placeholders_and_denied(load_with):
    _, rows, _ = load_with("\n".join(MINE_LINES) + "\n", squid_logformat=MINE)
    row = by_line(rows)[4]

    assert row["HttpStatusCode"] is None
    assert row["SrcUsername"] is None
    assert row["DstIpAddr"] is None
    assert row["HttpContentType"] is None
    assert row["HttpUserAgent"] is None
    assert row["DvcAction"] == "Deny"


def test_peer_name_is_not_an_address(load_with):
    _, rows, _ = load_with("\n".join(MINE_LINES) + "\n", squid_logformat=MINE)

    assert by_line(rows)[6]["DstIpAddr"] is None


def test_accounting_and_reject_reason(load_with):
    report, rows, rejects = load_with("\n".join(MINE_LINES) + "\n", squid_logformat=MINE)

    assert report.lines_read == 6
    assert report.parsed == 4
    assert report.rejected == 1
    assert report.skipped == 1
    assert report.invalid_values == {}
    assert rejects[0][0] == 3
    assert "does not match the logformat mine" in rejects[0][1]


def test_predefined_combined(load_with):
    line = (
        '2001:db8::9 - bob [14/Nov/2023:23:13:20 +0100] "GET http://a.example/x HTTP/1.1" 200 512 '
        '"http://ref.example/" "rclone/v1.66.0%20linux" TCP_MISS:HIER_DIRECT'
    )

    report, rows, _ = load_with(line + "\n", format_name="squid-logformat", squid_logformat="combined")
    row = rows[0]

    assert report.parsed == 1
    assert row["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20)
    assert row["SrcIpAddr"] == "2001:db8::9"
    assert row["SrcUsername"] == "bob"
    assert row["HttpVersion"] == "1.1"
    assert row["HttpReferrer"] == "http://ref.example/"
    assert row["HttpUserAgent"] == "rclone/v1.66.0 linux"
    assert row["DvcAction"] == "Allow"


def test_quoted_modifier_unescaped(load_with):
    line = '192.0.2.1 "say \\"hi\\" \\\\ tab\\there" http://a.example/'

    _, rows, _ = load_with(line + "\n", squid_logformat='%>a "%"{User-Agent}>h" %ru')

    assert rows[0]["HttpUserAgent"] == 'say "hi" \\ tab\there'


def test_custom_gmt_time(load_with):
    line = "2023-11-14 22:13:20 192.0.2.1 http://a.example/"

    _, rows, _ = load_with(line + "\n", squid_logformat="%{%Y-%m-%d %H:%M:%S}tg %>a %ru")

    assert rows[0]["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 20)


def test_unknown_code_value_ignored(load_with):
    line = "192.0.2.1 CN=example http://a.example/"

    report, rows, _ = load_with(line + "\n", squid_logformat="%>a %ssl::>cert_subject %ru")

    assert report.parsed == 1
    assert rows[0]["Url"] == "http://a.example/"
    assert "CN=example" not in [value for key, value in rows[0].items() if key != "RawEvent"]


def test_custom_format_outranks_native(load_with):
    report, _, _ = load_with("\n".join(MINE_LINES) + "\n", squid_logformat=MINE)

    names = [name for name, _ in report.candidates]
    assert names[0] == "squid-logformat"
    assert "squid" in names


def test_forcing_without_description_reported(load_with):
    report, _, _ = load_with(MINE_LINES[0] + "\n", format_name="squid-logformat")

    assert report.error is not None
    assert "--squid-logformat" in report.error


def test_one_megabyte_url(load_with):
    long_url = "http://files.example/" + "x" * 1_000_000
    lines = [MINE_LINES[0], MINE_LINES[0].replace("http://files.example/a.tar", long_url), MINE_LINES[3]]

    report, rows, _ = load_with("\n".join(lines) + "\n", squid_logformat=MINE)

    assert report.parsed == 3
    assert by_line(rows)[2]["Url"] == long_url
    assert by_line(rows)[3]["DvcAction"] == "Deny"


def test_empty_file(load_with):
    report, rows, _ = load_with("", squid_logformat=MINE)

    assert report.error is None
    assert report.lines_read == 0
    assert rows == []


def test_invalid_utf8_kept(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(MINE_LINES[0].replace("rclone/v1.66.0", "caf\xc3").encode("latin-1") + b"\n")

    connection = duckdb.connect()
    report = Loader(connection, custom_formats(squid_logformat=MINE)).load(str(path))
    agent = connection.execute("SELECT HttpUserAgent FROM websession").fetchone()[0]

    assert report.invalid_utf8_lines == 1
    assert report.parsed == 1
    assert agent == "caf\ufffd"


def test_width_padding_removed(load_with):
    line = "192.0.2.1      |    12|http://a.example/"

    _, rows, _ = load_with(line + "\n", squid_logformat="%-15>a|%6tr|%ru")

    assert rows[0]["SrcIpAddr"] == "192.0.2.1"
    assert rows[0]["Url"] == "http://a.example/"


def test_described_format_wins_when_it_fits(tmp_path):
    # One line that the logformat cannot read must not hand the file to Squid's native format.
    logformat = 'logformat ua %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt "%{User-Agent}>h"'
    lines = [
        '1700000000.000    150 192.0.2.10 TCP_MISS/200 5120 PUT http://s3.example.test/a - HIER_DIRECT/203.0.113.5 '
        'text/html "rclone/v1.66.0"',
        '1700000001.000    150 192.0.2.11 TCP_MISS/200 5120 GET http://www.example.test/ - HIER_DIRECT/203.0.113.5 '
        'text/html "Mozilla/5.0"',
        '1700000002.000    150 192.0.2.12 TCP_MISS/200 5120 GET http://www.example.test/ - HIER_DIRECT/203.0.113.5 '
        'text/html "odd \\"quoted\\" agent"',
    ]
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = hunt([str(log)], squid_logformat=logformat)

    assert result.files[0].format == "squid-logformat"
    assert [finding["HttpUserAgent"] for finding in result.findings] == ["rclone/v1.66.0"]
