"""What a hunt with the bundled rule pack reports about itself: coverage of correlation fields, rules that only feed correlations."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from proxyhunt.hunt import hunt
from proxyhunt.report import terminal

PACK = Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "rclone"
CLOUD_VOLUME_RULE = PACK / "proxy_rclone_cloud_upload_volume.yml"
CLOUD_VOLUME_TITLE = "Large Upload to Cloud Storage From One Source"

# The combined format logs no request size, so no uploaded bytes can be summed from it.
COMBINED_LINE = (
    '10.20.3.7 - - [03/Nov/2026:01:58:13 +0000] "PUT http://bucket.s3.amazonaws.com/a HTTP/1.1" '
    '200 355 "-" "aws-cli/2.15.0"\n'
)


def write_combined(tmp_path: Path) -> Path:
    log = tmp_path / "access.log"
    log.write_text(COMBINED_LINE * 3, encoding="utf-8")
    return log


def test_volume_rule_without_bytes_is_reported(tmp_path):
    result = hunt([str(write_combined(tmp_path))], rule_paths=[str(CLOUD_VOLUME_RULE)], include_bundled=False)

    gaps = [gap for gap in result.coverage if gap.rule_title == CLOUD_VOLUME_TITLE]
    assert len(gaps) == 1
    assert gaps[0].missing == ("SrcBytes",)
    assert gaps[0].blind
    assert "could not match: the file carries no SrcBytes" in str(gaps[0])


def test_correlation_gap_not_blind(tmp_path):
    # The base rule can still match the host, so the hunt is not blind: only the sum cannot be formed.
    result = hunt([str(write_combined(tmp_path))], rule_paths=[str(CLOUD_VOLUME_RULE)], include_bundled=False)

    assert not result.blind


def test_rules_table_names_correlation(tmp_path):
    result = hunt([str(write_combined(tmp_path))], rule_paths=[str(CLOUD_VOLUME_RULE)], include_bundled=False)
    output = io.StringIO()

    terminal.render_rules(Console(file=output, width=160, no_color=True), result)
    text = output.getvalue()

    assert f"events counted by {CLOUD_VOLUME_TITLE}" in text
    base_row = next(line for line in text.splitlines() if line.startswith(" Request to a Cloud Storage Host"))
    assert base_row.rstrip().endswith("-")


# A rule that only feeds a correlation (generate false) stays hidden when the correlation cannot run.
# Otherwise a bad threshold would turn it into a detection that flags every request to cloud storage.

W3C_HEADER = (
    "#Software: SGOS 7.3.16.1\n#Version: 1.0\n"
    "#Fields: date time c-ip cs-bytes cs-method cs-host cs-uri-path cs(User-Agent)\n"
)


def write_cloud_uploads(tmp_path: Path) -> Path:
    log = tmp_path / "proxysg.log"
    rows = [f"2026-12-05 03:0{minute}:00 10.20.1.70 104857600 PUT bucket.s3.amazonaws.com /part-{minute} curl/8.5.0\n" for minute in range(3)]
    log.write_text(W3C_HEADER + "".join(rows), encoding="utf-8")
    return log


@pytest.mark.parametrize("value", ["-5", "1GB", "1.5", "[1, 2]"])
def test_bad_threshold_hides_helper(tmp_path, value):
    lists = tmp_path / "lists.yml"
    lists.write_text(f"rclone_cloud_upload_bytes: {value}\n", encoding="utf-8")

    result = hunt(
        [str(write_cloud_uploads(tmp_path))], rule_paths=[str(CLOUD_VOLUME_RULE)], include_bundled=False, lists_path=str(lists)
    )

    assert result.findings == []
    assert any(problem.title == CLOUD_VOLUME_TITLE for problem in result.rule_problems)


def test_unrunnable_correlation_hides_helper(tmp_path):
    rules = tmp_path / "sum_of_agent.yml"
    rules.write_text(
        "title: Uploads\nid: 44444444-4444-4444-4444-444444444444\nname: uploads\n"
        "logsource: {category: proxy}\ndetection:\n  sel: {cs-method: PUT}\n  condition: sel\nlevel: low\n"
        "---\n"
        "title: Sum of user agents\nid: 55555555-5555-5555-5555-555555555555\n"
        "correlation:\n  type: value_sum\n  rules: [uploads]\n  group-by: [c-ip]\n  timespan: 1h\n"
        "  condition: {field: c-useragent, gte: 10}\nlevel: high\n",
        encoding="utf-8",
    )

    result = hunt([str(write_cloud_uploads(tmp_path))], rule_paths=[str(rules)], include_bundled=False)

    assert result.findings == []
    assert any(problem.title == "Sum of user agents" for problem in result.rule_problems)


# A prefiltered file's fields are judged from its parsed lines, so a field missing there is no proof.

SEED_RULE = PACK.parent / "proxy_ua_rclone.yml"


def write_late_agents(tmp_path: Path) -> Path:
    """Return a combined log whose user agents are all '-' for its first 1,200 lines."""
    line = '10.20.3.7 - - [03/Nov/2026:01:58:13 +0000] "GET http://www.example.com/{n} HTTP/1.1" 200 355 "-" "{agent}"\n'
    log = tmp_path / "late-agents.log"
    log.write_text(
        "".join(line.format(n=n, agent="-") for n in range(1200))
        + "".join(line.format(n=n, agent="Mozilla/5.0") for n in range(300)),
        encoding="utf-8",
    )
    return log


@pytest.mark.parametrize("prefilter", [True, False])
def test_late_user_agents_not_called_blind(tmp_path, prefilter):
    result = hunt([str(write_late_agents(tmp_path))], rule_paths=[str(SEED_RULE)], include_bundled=False, prefilter=prefilter)

    assert not result.blind
    if prefilter:
        assert [gap.sampled for gap in result.coverage] == [True]
        assert "its parsed lines (the first 1,000 and those that hold a rule's literal) carry no HttpUserAgent" in str(
            result.coverage[0]
        )
    else:
        assert result.coverage == []


def test_html_accounts_for_unparsed_lines(tmp_path):
    from proxyhunt.report.html import render_html

    line = '10.20.3.7 - - [03/Nov/2026:01:58:13 +0000] "GET http://www.example.com/{n} HTTP/1.1" 200 355 "-" "{agent}"\n'
    log = tmp_path / "access.log"
    log.write_text("".join(line.format(n=n, agent="curl/8.5.0") for n in range(1500)) + line.format(n=0, agent="rclone/v1.68.2"))

    result = hunt([str(log)], rule_paths=[str(SEED_RULE)], include_bundled=False)
    page = render_html(result)

    # The same accounting as the terminal's closing line: every line, and how many were left unparsed.
    assert "1 finding in 1501 lines (500 without the rules&#39; literals left unparsed)" in page
    inputs = page.split('id="inputs-table"')[1].split("</table>")[0]
    assert ">Unparsed</th>" in inputs
    assert '<td class="number">500</td>' in inputs
