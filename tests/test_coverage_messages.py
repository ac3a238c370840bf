"""Messages that must fit their case: Sentinel's window limit, grouped coverage warnings and a missing rule path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proxyhunt.export.convert import convert
from proxyhunt.export.sentinel import AnalyticRuleError, Schedule, analytic_rule
from proxyhunt.hunt import CoverageGap
from proxyhunt.report.messages import _coverage_messages
from proxyhunt.rules.loader import find_rule_files

CORRELATION = """\
title: Many rclone requests
correlation:
    type: event_count
    rules:
        - 2c03648b-e081-41a5-b9fb-7d854a915091
    group-by:
        - c-ip
    timespan: TIMESPAN
    condition:
        gte: 3
"""


def correlation_conversion(tmp_path: Path, timespan: str):
    path = tmp_path / "correlation.yml"
    path.write_text(CORRELATION.replace("TIMESPAN", timespan), encoding="utf-8")
    conversions, _ = convert([str(path)], "kql")
    return next(conversion for conversion in conversions if conversion.rule_path == str(path))


# Sentinel's 14-day limit


@pytest.mark.parametrize("timespan", ["3w", "14d", "20101m"])
def test_sentinel_window_itself_too_long(tmp_path, timespan):
    correlation = correlation_conversion(tmp_path, timespan)

    with pytest.raises(AnalyticRuleError) as error:
        analytic_rule(correlation, Schedule("5m"))

    message = str(error.value)
    assert "correlation window of" in message
    assert "is over Sentinel's limit" in message
    assert "the window may be at most 335h" in message
    assert "shorten the correlation's timespan" in message
    assert "--query-frequency" not in message


def test_sentinel_longest_window_fits(tmp_path):
    correlation = correlation_conversion(tmp_path, "335h")

    assert analytic_rule(correlation, Schedule("1h"))["queryPeriod"] == "14d"


def test_sentinel_frequency_advice_when_it_helps(tmp_path):
    correlation = correlation_conversion(tmp_path, "13d")

    with pytest.raises(AnalyticRuleError) as error:
        analytic_rule(correlation, Schedule("2d"))

    assert "lower --query-frequency to 1d or less" in str(error.value)


# Coverage warnings


def test_coverage_groups_same_missing_fields():
    gaps = [
        CoverageGap("proxy.log", "Rule A", ("HttpUserAgent",), blind=True),
        CoverageGap("proxy.log", "Rule B", ("HttpUserAgent", "SrcBytes"), blind=True),
        CoverageGap("proxy.log", "Rule C", ("HttpUserAgent",), blind=True),
        CoverageGap("proxy.log", "Rule D", ("SrcBytes", "HttpUserAgent"), blind=True),
    ]

    texts = [message.text for message in _coverage_messages(gaps)]

    assert texts == [
        "proxy.log: rules 'Rule A' and 'Rule C' could not match: the file carries no HttpUserAgent",
        "proxy.log: rules 'Rule B' and 'Rule D' could not match: the file carries no HttpUserAgent, SrcBytes",
    ]


def test_coverage_single_rule_keeps_own_fields():
    gaps = [
        CoverageGap("proxy.log", "Rule A", ("HttpUserAgent",), blind=True),
        CoverageGap("proxy.log", "Rule B", ("SrcBytes",), blind=True),
    ]

    texts = [message.text for message in _coverage_messages(gaps)]

    assert texts == [
        "proxy.log: rule 'Rule A' could not match: the file carries no HttpUserAgent",
        "proxy.log: rule 'Rule B' could not match: the file carries no SrcBytes",
    ]


# A rule path that does not exist


def test_missing_rule_path_names_no_option(tmp_path):
    files, problem = find_rule_files(str(tmp_path / "nosuch.yml"))

    assert files == []
    assert problem is not None
    assert "rule file not found" in problem.message
    assert "--rules" not in problem.message


def test_rules_test_missing_path_message(tmp_path):
    missing = tmp_path / "nosuch.yml"

    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "rules", "test", str(missing), "--no-default-rules"],
        capture_output=True,
        text=True,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(missing) in output
    assert "rule file not found" in output
    assert "--rules" not in output
    assert "Traceback" not in output
