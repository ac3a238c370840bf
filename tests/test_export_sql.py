"""DuckDB SQL and Spark SQL export: the exported queries find exactly the hits of ``proxyhunt hunt``.

The corpus logs (Squid, combined, Zeek TSV and JSON) and a made-up combined
log with rclone user agents are hunted with the bundled rule and every
SigmaHQ proxy rule of the corpus. Those two tests are skipped without the
corpus. Made-up logs check Sigma filters and correlation rules the same way. The WebSession table that the hunt built
is then queried with each exported query: in DuckDB directly, and in a local
Spark session (``local[2]``, one for the module) from a Parquet copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyhunt.export import convert
from proxyhunt.formats.loader import TABLE
from proxyhunt.hunt import hunt

from corpus import CORPUS

SIGMA_PROXY = CORPUS / "sigma-rules" / "proxy"
# The seed rclone rule alone of the bundled rules: the rclone pack's correlations give windows, not lines.
RCLONE_RULE = Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml"
LOG_FOLDERS = ("squid-native", "apache-combined", "zeek-http-tsv", "zeek-http-json")

requires_corpus = pytest.mark.skipif(not SIGMA_PROXY.is_dir(), reason=f"the shared corpus is not present at {CORPUS}")

RCLONE_LOG = (
    '10.0.0.5 - alice [04/Dec/2026:10:00:00 +0000] "PUT http://s3.example.com/bucket/a.zip HTTP/1.1" 200 512 "-" "rclone/v1.68.2"\n'
    '10.0.0.6 - - [04/Dec/2026:10:00:01 +0000] "GET http://example.org/index.html HTTP/1.1" 200 1024 "-" "Mozilla/5.0"\n'
    '10.0.0.7 - - [04/Dec/2026:10:00:02 +0000] "POST http://example.org/C:\\\\dir\\\\ HTTP/1.1" 200 10 "-" "RClone/V1.0"\n'
    '10.0.0.8 - - [04/Dec/2026:10:00:03 +0000] "GET http://example.org/x.exe HTTP/1.1" 200 10 "-" "xrclone/v1.0"\n'
)


@pytest.fixture(scope="module")
def hunted(tmp_path_factory: pytest.TempPathFactory):
    """Hunt the logs once; return the DuckDB connection, the expected hits and the rule paths."""
    import duckdb

    folder = tmp_path_factory.mktemp("logs")
    made_up = folder / "rclone-access.log"
    made_up.write_text(RCLONE_LOG, encoding="utf-8")
    paths = [str(made_up)] + [str(path) for name in LOG_FOLDERS for path in sorted((CORPUS / name).glob("*")) if path.is_file()]

    connection = duckdb.connect()
    result = hunt(paths, rule_paths=[str(RCLONE_RULE), str(SIGMA_PROXY)], include_bundled=False, connection=connection)
    expected = {
        (finding["RuleId"], finding["SourceFile"], finding["SourceLine"])
        for finding in result.findings
        if finding.get("RuleType", "detection") == "detection"
    }
    assert any(rule_id == "2c03648b-e081-41a5-b9fb-7d854a915091" for rule_id, _, _ in expected)
    return connection, expected


def exported_queries(target: str) -> list[tuple[str, str]]:
    conversions, _ = convert([str(RCLONE_RULE), str(SIGMA_PROXY)], target, include_bundled=False)
    return [(conversion.rule_id, conversion.query) for conversion in conversions if conversion.ok]


@requires_corpus
def test_duckdb_sql_hits_equal_hunt(hunted) -> None:
    connection, expected = hunted
    found = set()
    queries = exported_queries("duckdbsql")
    assert len(queries) > 50
    for rule_id, query in queries:
        for source_file, source_line in connection.execute(f"SELECT SourceFile, SourceLine FROM ({query})").fetchall():
            found.add((rule_id, source_file, source_line))
    assert found == expected


@pytest.fixture(scope="module")
def spark():
    pyspark_sql = pytest.importorskip("pyspark.sql")
    session = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("proxyhunt-export-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


@requires_corpus
def test_spark_sql_hits_equal_hunt(hunted, spark, tmp_path: Path) -> None:
    connection, expected = hunted
    parquet = tmp_path / "websession.parquet"
    connection.execute(f"COPY {TABLE} TO '{parquet}' (FORMAT parquet)")
    spark.read.parquet(str(parquet)).createOrReplaceTempView("websession")

    queries = exported_queries("sparksql")
    assert len(queries) > 50
    found = set()
    for rule_id, query in queries:
        for row in spark.sql(f"SELECT SourceFile, SourceLine FROM ({query})").collect():
            found.add((rule_id, row["SourceFile"], row["SourceLine"]))

    # Rules that Spark SQL cannot express are left out of the comparison, and named.
    converted = {rule_id for rule_id, _ in queries}
    assert found == {hit for hit in expected if hit[0] in converted}


CORRELATIONS = """\
title: Many rclone requests
id: 7f0a2c1e-1b8e-4a31-9f7d-1c2b3a4d5e60
correlation:
    type: event_count
    rules:
        - 2c03648b-e081-41a5-b9fb-7d854a915091
    group-by:
        - c-ip
    timespan: 10m
    condition:
        gte: 3
---
title: rclone to many hosts
id: 0b7c3f55-2f4e-4c8e-a3f1-5f8e0d2c9b11
correlation:
    type: value_count
    rules:
        - 2c03648b-e081-41a5-b9fb-7d854a915091
    group-by:
        - c-ip
    timespan: 10m
    condition:
        field: cs-host
        gte: 2
"""

# 10.0.0.5 sends three rclone requests to two hosts within ten minutes, then one more an hour later.
BURST_LOG = "".join(
    f'10.0.0.5 - - [04/Dec/2026:{time} +0000] "PUT http://{host}/b/{index} HTTP/1.1" 200 5 "-" "rclone/v1.68.2"\n'
    for index, (time, host) in enumerate(
        [("10:00:00", "s3.example.com"), ("10:04:00", "s3.example.com"), ("10:09:59", "blob.example.net"),
         ("11:30:00", "s3.example.com")]
    )
)


def test_duckdb_sql_correlations_equal_hunt(tmp_path: Path) -> None:
    import duckdb

    log = tmp_path / "burst.log"
    log.write_text(BURST_LOG, encoding="utf-8")
    rules = tmp_path / "correlations.yml"
    rules.write_text(CORRELATIONS, encoding="utf-8")

    connection = duckdb.connect()
    result = hunt([str(log)], rule_paths=[str(rules)], connection=connection)
    expected = {
        (finding["RuleId"], finding["SrcIpAddr"], finding["WindowStart"], float(finding["Value"]))
        for finding in result.findings
        if finding.get("RuleType") == "correlation"
    }
    assert len(expected) == 2

    conversions, _ = convert([str(rules)], "duckdbsql")
    found = set()
    for conversion in conversions:
        if conversion.rule_type != "correlation":
            continue
        assert conversion.ok, conversion.error
        for group, window_start, value in connection.execute(
            f"SELECT g0, WindowStart, Value FROM ({conversion.query})"
        ).fetchall():
            found.add((conversion.rule_id, group, window_start, float(value)))
    assert found == expected


IPV6_ADDRESSES = [
    "fe80::1", "FE80::1%eth0", "fe80:0:0::1", "::1", "::", "2001:db8::1", "::ffff:10.0.0.1", "10.0.0.1",
    "fec0::1", "febf:ffff::1", "1:2:3:4:5:6:7:8", "1::2::3", "garbage", None, "fe80::1.2.3.4",
]


def test_spark_sql_ipv6_cidr_equals_duckdb(spark, tmp_path: Path) -> None:
    import duckdb

    rule = tmp_path / "cidr.yml"
    rule.write_text(
        "title: IPv6 ranges\nlogsource:\n    category: proxy\ndetection:\n    sel:\n        dst_ip|cidr:\n"
        "            - 'fe80::/10'\n            - '::1/128'\n            - '::ffff:10.0.0.0/104'\n    condition: sel\n",
        encoding="utf-8",
    )
    queries = {}
    for target in ("sparksql", "duckdbsql"):
        conversions, _ = convert([str(rule)], target, include_bundled=False)
        assert conversions[0].ok, conversions[0].error
        queries[target] = conversions[0].query.replace("FROM websession", "FROM addresses")

    rows = [(address,) for address in IPV6_ADDRESSES]
    spark.createDataFrame(rows, "DstIpAddr string").createOrReplaceTempView("addresses")
    spark_hits = {row["DstIpAddr"] for row in spark.sql(queries["sparksql"]).collect()}

    connection = duckdb.connect()
    connection.execute("CREATE TABLE addresses (DstIpAddr VARCHAR)")
    connection.executemany("INSERT INTO addresses VALUES (?)", rows)
    duckdb_hits = {row[0] for row in connection.execute(queries["duckdbsql"]).fetchall()}

    assert duckdb_hits == {"fe80::1", "FE80::1%eth0", "fe80:0:0::1", "::1", "::ffff:10.0.0.1", "febf:ffff::1", "fe80::1.2.3.4"}
    assert spark_hits == duckdb_hits


FILTER = """\
title: Known backup host
id: 5b0c7f0e-8f0a-4f4f-a7c1-6f1f1d0d2a11
logsource:
    category: proxy
filter:
    rules:
        - 2c03648b-e081-41a5-b9fb-7d854a915091
    backup_host:
        cs-host|endswith: 'blob.example.net'
    condition: not backup_host
"""


def test_duckdb_sql_filter_equals_hunt_alerts(tmp_path: Path) -> None:
    import duckdb

    log = tmp_path / "burst.log"
    log.write_text(BURST_LOG + RCLONE_LOG, encoding="utf-8")
    rules = tmp_path / "filter.yml"
    rules.write_text(FILTER, encoding="utf-8")

    connection = duckdb.connect()
    result = hunt([str(log)], rule_paths=[str(rules)], connection=connection)
    alerts = {finding["SourceLine"] for finding in result.findings if finding.get("Verdict", "alert") == "alert"}
    suppressed = {finding["SourceLine"] for finding in result.findings if finding.get("Verdict") == "suppressed"}
    assert suppressed == {3}

    conversions, _ = convert([str(rules)], "duckdbsql")
    assert conversions[0].filters == ("Known backup host",)
    found = {row[0] for row in connection.execute(f"SELECT SourceLine FROM ({conversions[0].query})").fetchall()}
    assert found == alerts
