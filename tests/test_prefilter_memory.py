"""A hunt that parses every line keeps DuckDB within --memory-limit by spilling to a temporary directory."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from proxyhunt.cli import cli
from proxyhunt.hunt import DEFAULT_MEMORY_LIMIT, MIN_MEMORY_LIMIT_BYTES, hunt, open_database
from proxyhunt.memory_limit import MemoryLimitError, check_memory_limit

LINE = '10.0.0.{n} - - [04/Dec/2026:10:00:00 +0000] "PUT http://s3.example.test/{n} HTTP/1.1" 200 10 "-" "{agent}"\n'


def test_open_database_spills_and_cleans_up():
    connection = open_database("64MB")
    spill = connection.execute("SELECT current_setting('temp_directory')").fetchone()[0]

    # About 200 MB of rows, three times the limit, so DuckDB must spill them.
    connection.execute("CREATE TABLE t AS SELECT range AS n, repeat('x', 90) || range::VARCHAR AS s FROM range(2000000)")
    spilled = os.listdir(spill)
    count = connection.execute("SELECT count(*) FROM t WHERE s LIKE '%1234567'").fetchone()[0]
    connection.close()

    assert spilled
    assert count == 1
    assert not os.path.exists(spill)


@pytest.mark.parametrize("size", ["1MB", "-1GB", "lots"])
def test_open_database_rejects_bad_limit(size):
    with pytest.raises(MemoryLimitError, match="--memory-limit"):
        open_database(size)


def test_default_limit_passes_the_check():
    # open_database trusts the default without probing it, so the default must pass the probe.
    limit = check_memory_limit(DEFAULT_MEMORY_LIMIT, MIN_MEMORY_LIMIT_BYTES, "is too small")

    connection = open_database()
    configured = connection.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    connection.close()

    assert limit >= MIN_MEMORY_LIMIT_BYTES
    assert configured.endswith("MiB")


def test_cli_memory_limit_usage_error(tmp_path):
    log = tmp_path / "combined.log"
    log.write_text(LINE.format(n=1, agent="rclone/v1.66.0"), encoding="utf-8")

    result = CliRunner().invoke(cli, ["hunt", str(log), "--memory-limit", "lots"])

    assert result.exit_code == 2
    assert "invalid --memory-limit lots" in result.output
    assert "Traceback" not in result.output


def test_small_limit_same_findings(tmp_path):
    log = tmp_path / "combined.log"
    agents = ["curl/8.5.0", "rclone/v1.66.0", "Mozilla/5.0", "Go-http-client/1.1"]
    log.write_text("".join(LINE.format(n=n % 250, agent=agents[n % 4]) for n in range(4000)), encoding="utf-8")

    small = hunt([str(log)], format_name="combined", prefilter=False, memory_limit="64MB")
    default = hunt([str(log)], format_name="combined", prefilter=False)

    assert len(default.findings) >= 1000
    assert sorted((f["SourceLine"], f["RuleId"]) for f in small.findings) == sorted(
        (f["SourceLine"], f["RuleId"]) for f in default.findings
    )
