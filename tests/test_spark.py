"""The Spark engine in local mode: on the corpus it gives exactly the DuckDB engine's findings.

One Spark session (``local[2]``) serves the whole module, because starting
the JVM costs far more than the hunts themselves. The rules below are written
to fire on the public corpus samples, with a correlation rule and a Sigma
filter, and to cover the places where Spark SQL is spelled differently from
DuckDB: regular expressions, LIKE escapes, numbers, keywords and CIDR ranges.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxyhunt.engines.spark import INSTALL_HINT
from proxyhunt.hunt import hunt
from proxyhunt.normalize import normalize

from corpus import CORPUS

CORPUS_FOLDERS = ("apache-combined", "zeek-http-tsv", "zeek-http-json", "squid-native")

RULES = {
    "images.yml": """
title: Image downloads by browsers
id: 5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a01
status: test
level: low
logsource: {category: proxy}
detection:
    selection:
        c-uri|re: '\\.(png|jpe?g|gif)$'
        c-useragent|contains: 'Mozilla'
    condition: selection
""",
    "errors.yml": """
title: Client and server errors
id: 5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a02
status: test
level: medium
logsource: {category: proxy}
detection:
    selection:
        sc-status|gte: 400
    condition: selection
""",
    "odd.yml": """
title: Odd requests
id: 5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a03
status: test
level: high
logsource: {category: proxy}
detection:
    methods:
        cs-method: [POST, PUT, OPTIONS, CONNECT]
    private:
        c-ip|cidr: [10.0.0.0/8, 192.168.0.0/16, 172.16.0.0/12]
    literal:
        c-uri|contains: ['%', '_', '\\\\', "'"]
    keywords:
        - 'wget'
        - 'python-requests'
    condition: methods or private or literal or keywords
""",
    "burst.yml": """
title: Bursts of errors from one client
id: 5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a04
status: test
level: high
correlation:
    type: event_count
    rules: [5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a02]
    group-by: [SrcIpAddr]
    timespan: 1h
    condition: {gte: 3}
    generate: true
""",
    "spread.yml": """
title: Many image paths from one client
id: 5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a05
status: test
level: medium
correlation:
    type: value_count
    rules: [5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a01]
    group-by: [SrcIpAddr]
    timespan: 10m
    condition: {field: UrlPath, gte: 5}
    generate: true
""",
    "filter.yml": """
title: Known monitoring client
id: 5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a06
status: test
logsource: {category: proxy}
filter:
    rules: [5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a01, 5f1a3c2e-0d4b-4c47-9a51-1b7c2f0e6a02]
    selection:
        c-ip|startswith: '83.149.'
    condition: not selection
""",
}


def java_missing() -> bool:
    return shutil.which("java") is None and not os.environ.get("JAVA_HOME")


@pytest.fixture(scope="module")
def spark():
    """Start the module's one local Spark session, and stop it after the module's tests."""
    pytest.importorskip("pyspark", reason="pyspark is not installed; pip install -e '.[test]' installs it")
    if java_missing():
        pytest.skip("Java is not installed; Spark needs Java 17 (apt-get install openjdk-17-jre-headless)")
    from proxyhunt.engines.spark import start_session

    session, created = start_session("local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    if created:
        session.stop()


@pytest.fixture(scope="module")
def corpus_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], str, list[str]]:
    """Normalize the corpus's proxy logs once; return the log paths, the dataset directory and the rule files."""
    if not CORPUS.is_dir():
        pytest.skip(f"the shared log corpus is not present at {CORPUS}")
    logs = [str(path) for folder in CORPUS_FOLDERS for path in sorted((CORPUS / folder).iterdir()) if path.is_file()]
    base = tmp_path_factory.mktemp("spark")
    rules = []
    for name, text in RULES.items():
        (base / name).write_text(text)
        rules.append(str(base / name))
    result = normalize(logs, str(base / "lake"))
    assert not result.failed_files
    return logs, str(base / "lake"), rules


def summary(findings: list[dict]) -> list[tuple]:
    return [(finding["RuleTitle"], finding["Verdict"], finding["SourceFile"], finding["SourceLine"]) for finding in findings]


def test_spark_matches_duckdb_on_corpus(spark, corpus_lake) -> None:
    logs, lake, rules = corpus_lake

    from_logs = hunt(logs, rule_paths=rules)
    from_dataset = hunt([lake], rule_paths=rules)
    on_spark = hunt([lake], rule_paths=rules, engine="spark")

    assert not on_spark.rule_problems
    titles = {finding["RuleTitle"] for finding in from_logs.findings}
    # Every rule fires, the filter suppresses some findings and both correlations fire.
    assert {"Image downloads by browsers", "Client and server errors", "Odd requests"} <= titles
    assert {"Bursts of errors from one client", "Many image paths from one client"} <= titles
    assert {finding["Verdict"] for finding in from_logs.findings} == {"alert", "suppressed"}
    assert summary(on_spark.findings) == summary(from_logs.findings)
    assert on_spark.findings == from_logs.findings
    assert on_spark.hits_per_rule == from_logs.hits_per_rule
    assert on_spark.findings_per_correlation == from_logs.findings_per_correlation
    assert on_spark.findings == from_dataset.findings
    assert on_spark.files[0].parsed == from_dataset.files[0].parsed
    assert on_spark.files[0].columns == from_dataset.files[0].columns
    assert on_spark.notes == from_dataset.notes


def test_spark_time_range_matches_duckdb(spark, corpus_lake) -> None:
    _, lake, rules = corpus_lake
    window = {"since": "2015-05-17T10:00:00Z", "until": "2015-05-17"}

    on_duckdb = hunt([lake], rule_paths=rules, **window)
    on_spark = hunt([lake], rule_paths=rules, engine="spark", **window)

    everything = hunt([lake], rule_paths=rules)
    assert 0 < len(on_duckdb.findings) < len(everything.findings)
    assert on_spark.findings == on_duckdb.findings


def test_spark_reads_json_lines(spark, tmp_path: Path) -> None:
    dataset = tmp_path / "events"
    dataset.mkdir()
    records = [
        {"TimeGenerated": "2026-11-03T01:50:44Z", "SrcIpAddr": "10.0.0.5", "HttpUserAgent": "rclone/v1.66.0",
         "SrcBytes": 1234, "SourceFile": "proxy-a.log", "SourceLine": 7},
        {"TimeGenerated": "2026-11-03T02:00:00+01:00", "SrcIpAddr": "10.0.0.6", "HttpUserAgent": "RClone/V1.60"},
        {"TimeGenerated": "2026-11-03T02:00:00Z", "SrcIpAddr": "10.0.0.7", "HttpUserAgent": "Mozilla/5.0 rclone/v1"},
    ]
    (dataset / "part-0.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))

    result = hunt([str(dataset)], engine="spark")

    assert [(finding["SrcIpAddr"], finding["SourceFile"]) for finding in result.findings] == [
        ("10.0.0.6", str(dataset)),
        ("10.0.0.5", "proxy-a.log"),
    ]
    assert result.findings[0]["TimeGenerated"].hour == 1
    assert result.findings[1]["SrcBytes"] == 1234


def test_spark_bad_dataset_reported(spark, tmp_path: Path) -> None:
    raw = tmp_path / "access.log"
    raw.write_text('10.0.0.5 - - [03/Nov/2026:02:50:44 +0100] "GET http://a.example/ HTTP/1.1" 200 1 "-" "rclone/v1"\n')

    result = hunt([str(raw), str(tmp_path / "missing")], engine="spark")

    assert [report.error for report in result.files] == [
        "not a WebSession dataset (Parquet, JSON Lines or Delta); convert raw logs first with "
        "proxyhunt normalize LOGS --to DIR, then hunt DIR",
        "dataset not found; check the path",
    ]
    assert result.findings == []


def test_spark_dataset_beside_logs(spark, tmp_path: Path) -> None:
    # Spark reads a directory as one dataset and fails on a log in it, so the dataset is read alone
    # and the log, which Spark cannot parse, gets an error of its own.
    directory = tmp_path / "logs"
    directory.mkdir()
    old = directory / "old.log"
    old.write_text('10.0.0.5 - - [03/Nov/2026:02:50:44 +0100] "GET http://a.example/ HTTP/1.1" 200 1 "-" "rclone/v1"\n')
    normalize([str(old)], str(directory / "lake"))
    old.unlink()
    (directory / "new.log").write_text(old.name + "\n")

    result = hunt([str(directory)], engine="spark")

    assert [(os.path.basename(report.path), report.error is None) for report in result.files] == [
        ("lake", True),
        ("new.log", False),
    ]
    assert [finding["SourceLine"] for finding in result.findings] == [1]


def test_cli_spark_without_pyspark(tmp_path: Path) -> None:
    """With pyspark not importable, --engine spark prints how to install it, and no traceback."""
    script = (
        "import sys; sys.modules['pyspark'] = None; sys.modules['pyspark.sql'] = None\n"
        "from proxyhunt.cli import main\n"
        f"sys.argv = ['proxyhunt', 'hunt', {str(tmp_path)!r}, '--engine', 'spark']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert INSTALL_HINT in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_spark_rejects_raw_log_options(tmp_path: Path) -> None:
    for option, value in (("--format", "combined"), ("--rejects", str(tmp_path / "rejects.jsonl"))):
        result = subprocess.run(
            [sys.executable, "-m", "proxyhunt", "hunt", str(tmp_path), "--engine", "spark", option, value],
            capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 2
        assert f"{option} applies only to raw logs" in result.stderr
        assert "proxyhunt normalize" in result.stderr

    master = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(tmp_path), "--master", "local[2]"],
        capture_output=True, text=True, timeout=120,
    )
    assert master.returncode == 2
    assert "--master applies only to --engine spark" in master.stderr
