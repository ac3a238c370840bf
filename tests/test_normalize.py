"""``proxyhunt normalize``: the partitioned Parquet layout, idempotent re-runs, bounded memory, and hunting the dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from proxyhunt.formats.loader import Loader
from proxyhunt.formats.parquet import NULL_PARTITION, PARTITION_COLUMN, TimeRange, dataset_files
from proxyhunt.hunt import hunt
from proxyhunt.normalize import MANIFEST_DIRECTORY, NormalizeError, input_identity, normalize
from proxyhunt.schema import COLUMN_NAMES

REPOSITORY = Path(__file__).parents[1]
SAMPLES = REPOSITORY / "samples"
PROXY_SAMPLES = [SAMPLES / "squid-access.log", SAMPLES / "squid-combined.log", SAMPLES / "zeek-http.log"]


def combined_line(day: int, hour: int, user_agent: str, line_number: int = 0) -> str:
    return (
        f'10.0.0.{line_number % 250} - alice [{day:02d}/Nov/2026:{hour:02d}:10:44 +0000] '
        f'"PUT http://bucket.example/upload/{line_number} HTTP/1.1" 200 1234 "-" "{user_agent}"\n'
    )


def read_dataset(directory: Path) -> list[dict]:
    """Return every row of a dataset, read back by DuckDB, ordered by source file and line."""
    files, _ = dataset_files(str(directory), TimeRange())
    cursor = duckdb.connect().execute(
        "SELECT * FROM read_parquet(?, hive_partitioning = false) ORDER BY SourceFile, SourceLine", [files]
    )
    names = [description[0] for description in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def load_rows(paths: list[Path]) -> list[dict]:
    """Return the WebSession rows that the loader reads from log files, ordered as read_dataset orders them."""
    connection = duckdb.connect()
    loader = Loader(connection)
    for path in paths:
        loader.load(str(path))
    cursor = connection.execute("SELECT * FROM websession ORDER BY SourceFile, SourceLine")
    names = [description[0] for description in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def parquet_files(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*.parquet"))


def test_normalize_round_trip_keeps_every_row(tmp_path: Path) -> None:
    result = normalize([str(path) for path in PROXY_SAMPLES], str(tmp_path / "lake"))

    assert not result.failed_files
    assert result.rows == sum(report.parsed for report in result.files)
    written = read_dataset(tmp_path / "lake")
    assert written == load_rows(PROXY_SAMPLES)
    assert list(written[0]) == list(COLUMN_NAMES)


def test_normalize_partitions_by_event_date(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(
        '{"TimeGenerated": "2026-11-03T23:59:59.999999Z", "HttpUserAgent": "rclone/v1.66.0", "SrcIpAddr": "10.0.0.1"}\n'
        '{"TimeGenerated": "2026-11-04T01:00:00+02:00", "HttpUserAgent": "rclone/v1.66.0", "SrcIpAddr": "10.0.0.1"}\n'
        '{"TimeGenerated": "2026-11-04T00:00:00Z", "HttpUserAgent": "curl/8.5.0", "SrcIpAddr": "10.0.0.1"}\n'
        '{"HttpUserAgent": "no time", "SrcIpAddr": "10.0.0.1"}\n'
    )
    normalize([str(log)], str(tmp_path / "lake"), format_name="jsonl")

    identity = input_identity(str(log))
    assert parquet_files(tmp_path / "lake") == [
        f"{PARTITION_COLUMN}=2026-11-03/part-{identity}-0.parquet",
        f"{PARTITION_COLUMN}=2026-11-04/part-{identity}-0.parquet",
        f"{PARTITION_COLUMN}={NULL_PARTITION}/part-{identity}-0.parquet",
    ]
    # The UTC date decides the partition: 01:00 at +02:00 is 23:00 UTC on the day before.
    lines_per_partition = {
        path.parent.name: sorted(row[0] for row in duckdb.sql(f"SELECT SourceLine FROM '{path}'").fetchall())
        for path in (tmp_path / "lake").rglob("*.parquet")
    }
    assert lines_per_partition == {
        f"{PARTITION_COLUMN}=2026-11-03": [1, 2],
        f"{PARTITION_COLUMN}=2026-11-04": [3],
        f"{PARTITION_COLUMN}={NULL_PARTITION}": [4],
    }


def test_normalize_rerun_replaces_rows(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    other = tmp_path / "other.log"
    log.write_text("".join(combined_line(3, hour, "rclone/v1.66.0", hour) for hour in range(4)))
    other.write_text(combined_line(5, 1, "curl/8.5.0"))
    lake = tmp_path / "lake"
    normalize([str(log), str(other)], str(lake))
    first = read_dataset(lake)

    second = normalize([str(log), str(other)], str(lake))

    assert read_dataset(lake) == first
    assert [output.replaced for output in second.outputs] == [1, 1]


def test_normalize_rerun_drops_stale_partitions(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined_line(3, 1, "rclone/v1.66.0") + combined_line(4, 1, "rclone/v1.66.0", 1))
    lake = tmp_path / "lake"
    normalize([str(log)], str(lake))

    # The file was rewritten: now only 5 November.
    log.write_text(combined_line(5, 1, "curl/8.5.0"))
    normalize([str(log)], str(lake))

    rows = read_dataset(lake)
    assert [row["HttpUserAgent"] for row in rows] == ["curl/8.5.0"]
    assert parquet_files(lake) == [f"{PARTITION_COLUMN}=2026-11-05/part-{input_identity(str(log))}-0.parquet"]


def test_normalize_writes_manifest(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined_line(3, 1, "rclone/v1.66.0"))
    normalize([str(log)], str(tmp_path / "lake"))

    manifest = json.loads((tmp_path / "lake" / MANIFEST_DIRECTORY / f"{input_identity(str(log))}.json").read_text())
    assert manifest["source"] == str(log)
    assert manifest["rows"] == 1
    assert manifest["format"] == "combined"
    assert manifest["files"] == [f"{PARTITION_COLUMN}=2026-11-03/part-{input_identity(str(log))}-0.parquet"]


def test_normalize_unreadable_input_keeps_output(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined_line(3, 1, "rclone/v1.66.0"))
    lake = tmp_path / "lake"
    normalize([str(log)], str(lake))
    log.unlink()

    result = normalize([str(log)], str(lake))

    assert result.failed_files
    assert len(read_dataset(lake)) == 1


def test_normalize_rejects_stdin_and_file_target(tmp_path: Path) -> None:
    with pytest.raises(NormalizeError, match="standard input"):
        normalize(["-"], str(tmp_path / "lake"))
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(NormalizeError, match="is a file"):
        normalize([str(SAMPLES / "squid-combined.log")], str(target))
    with pytest.raises(NormalizeError, match="invalid --memory-limit"):
        normalize([str(SAMPLES / "squid-combined.log")], str(tmp_path / "lake"), memory_limit="lots")


def test_normalize_bounded_memory(tmp_path: Path) -> None:
    """A file over twice DuckDB's memory limit converts; DuckDB raises OutOfMemory when it must hold it all."""
    log = tmp_path / "big.log"
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
    lines = 0
    with log.open("w") as handle:
        while handle.tell() < 72 * 1024 * 1024:
            handle.write("".join(combined_line(1 + lines // 100_000, 12, agent, lines + i) for i in range(5000)))
            lines += 5000

    result = normalize([str(log)], str(tmp_path / "lake"), memory_limit="32MB")

    assert not result.failed_files
    assert result.rows == lines
    assert len(parquet_files(tmp_path / "lake")) == len({1 + line // 100_000 for line in range(lines)})


def test_hunt_dataset_matches_raw_logs(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    normalized = normalize([str(path) for path in PROXY_SAMPLES], str(lake))

    from_logs = hunt([str(path) for path in PROXY_SAMPLES])
    from_dataset = hunt([str(lake)])

    assert from_dataset.findings
    assert from_dataset.findings == from_logs.findings
    assert from_dataset.files[0].format == "parquet"
    assert from_dataset.files[0].parsed == normalized.rows


def test_hunt_dataset_reads_files_in_place(tmp_path: Path) -> None:
    # Copying a dataset into memory would cost RSS in proportion to it; a view streams each rule's scan.
    lake = tmp_path / "lake"
    normalize([str(path) for path in PROXY_SAMPLES], str(lake))
    connection = duckdb.connect()

    result = hunt([str(lake)], connection=connection)

    kinds = connection.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'websession'").fetchall()
    assert kinds == [("VIEW",)]
    assert result.findings
    assert result.files[0].parsed == connection.execute("SELECT count(*) FROM websession").fetchall()[0][0]


def test_hunt_since_until_prunes_partitions(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(combined_line(day, 12, "rclone/v1.66.0", day) for day in (1, 2, 3, 4)))
    lake = tmp_path / "lake"
    normalize([str(log)], str(lake))
    # A partition outside the range is never opened, so damaging it changes nothing.
    (lake / f"{PARTITION_COLUMN}=2026-11-01" / f"part-{input_identity(str(log))}-0.parquet").write_bytes(b"not parquet")

    result = hunt([str(lake)], since="2026-11-02", until="2026-11-03")

    assert not result.failed_files
    assert sorted(finding["TimeGenerated"].day for finding in result.findings) == [2, 3]


def test_hunt_since_until_on_raw_logs(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(combined_line(day, 12, "rclone/v1.66.0", day) for day in (1, 2, 3, 4)))

    result = hunt([str(log)], since="2026-11-02T12:10:44Z", until="2026-11-04T00:00:00+00:00")

    assert sorted(finding["TimeGenerated"].day for finding in result.findings) == [2, 3]


def test_time_range_parse() -> None:
    day = TimeRange.parse("2026-11-03", "2026-11-03")
    assert str(day) == "from 2026-11-03T00:00:00Z until before 2026-11-04T00:00:00Z"
    offset = TimeRange.parse("2026-11-03T10:00:00+02:00", None)
    assert offset.since.hour == 8
    with pytest.raises(ValueError, match="is not before"):
        TimeRange.parse("2026-11-04", "2026-11-03")
    with pytest.raises(ValueError, match="not a date or time"):
        TimeRange.parse("yesterday", None)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "Traceback" not in result.stderr
    return result


def test_cli_normalize_then_hunt(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    converted = run_cli("normalize", *map(str, PROXY_SAMPLES), "--to", str(lake))
    assert converted.returncode == 0, converted.stderr
    assert "events from 3 inputs written to" in converted.stdout

    hunted = run_cli("hunt", str(lake), "--since", "2026-11-01", "--output", str(tmp_path / "findings.jsonl"))
    assert hunted.returncode == 1, hunted.stderr
    assert (tmp_path / "findings.jsonl").read_text().count("\n") == len(hunt([str(lake)]).findings)


def test_cli_normalize_errors(tmp_path: Path) -> None:
    stdin = run_cli("normalize", "-", "--to", str(tmp_path / "lake"))
    assert stdin.returncode == 2
    assert "standard input" in stdin.stderr

    bad_time = run_cli("hunt", str(SAMPLES / "squid-combined.log"), "--since", "last week")
    assert bad_time.returncode == 2
    assert "not a date or time" in bad_time.stderr

    missing = run_cli("normalize", str(tmp_path / "missing.log"), "--to", str(tmp_path / "lake"))
    assert missing.returncode == 2
    assert "missing.log" in missing.stderr


def test_cli_normalize_warns_of_damaged_lines(tmp_path: Path) -> None:
    # normalize keeps such lines, as hunt does, and must warn of them as hunt does.
    log = tmp_path / "access.log"
    damaged = combined_line(2, 1, "curl/BAD8").encode().replace(b"BAD", b"\xff")
    log.write_bytes(combined_line(1, 1, "curl/8.5.0").encode() + damaged)

    converted = run_cli("normalize", str(log), "--to", str(tmp_path / "lake"), "--format", "combined")
    quiet = run_cli("normalize", str(log), "--to", str(tmp_path / "lake"), "--format", "combined", "--quiet")

    assert converted.returncode == 0, converted.stderr
    assert "2 events written" in converted.stdout
    assert "warning: " in converted.stderr
    assert "1 line not valid UTF-8, decoded with U+FFFD" in converted.stderr
    assert "1 line not valid UTF-8" in quiet.stderr


@pytest.mark.parametrize("limit", ["1KB", "10MB"])
def test_memory_limit_below_batch_size(tmp_path: Path, limit: str) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined_line(1, 1, "curl/8.5.0"), encoding="utf-8")

    with pytest.raises(NormalizeError, match="below 32MB"):
        normalize([str(log)], tmp_path / "lake", memory_limit=limit)


def test_since_after_until_is_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(SAMPLES), "--since", "2026-11-05", "--until", "2026-11-01"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert "is not before --until" in result.stderr
    assert "unexpectedly" not in result.stderr


def test_negative_memory_limit_rejected(tmp_path: Path) -> None:
    # DuckDB reads "-1GB" as no limit at all, which would leave memory unbounded.
    log = tmp_path / "access.log"
    log.write_text(combined_line(1, 1, "curl/8.5.0"), encoding="utf-8")

    with pytest.raises(NormalizeError, match="positive size"):
        normalize([str(log)], tmp_path / "lake", memory_limit="-1GB")


def test_normalize_out_of_memory_file_spares_the_others(tmp_path: Path) -> None:
    # Three 12 MB lines do not fit in 64MB; the small files beside them must still be written.
    line = '10.20.3.7 - - [03/Nov/2026:01:58:13 +0000] "GET http://www.example.com/{} HTTP/1.1" 200 355 "-" "curl/8.5.0"\n'
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.log").write_text(line.format("a"), encoding="utf-8")
    (inputs / "b.log").write_text(line.format("x" * 12_000_000) * 3, encoding="utf-8")
    (inputs / "c.log").write_text(line.format("c"), encoding="utf-8")

    result = normalize([str(inputs)], str(tmp_path / "lake"), format_name="combined", memory_limit="64MB")

    errors = {Path(report.path).name: report.error for report in result.files if report.error}
    assert list(errors) == ["b.log"]
    assert "out of memory" in errors["b.log"]
    assert "raise --memory-limit" in errors["b.log"]
    written = duckdb.sql(f"SELECT count(*) FROM read_parquet('{tmp_path / 'lake'}/**/*.parquet')").fetchall()[0][0]
    assert written == 2


def test_normalize_emptied_input_removes_its_rows(tmp_path: Path) -> None:
    # copytruncate rotation leaves the log empty; its earlier rows must not stay beside the rotated copy's.
    log = tmp_path / "access.log"
    log.write_text(
        '10.20.3.7 - - [03/Nov/2026:01:58:13 +0000] "GET http://www.example.com/ HTTP/1.1" 200 355 "-" "curl/8.5.0"\n',
        encoding="utf-8",
    )
    lake = tmp_path / "lake"
    normalize([str(log)], str(lake))
    log.write_text("", encoding="utf-8")

    result = normalize([str(log)], str(lake))

    assert [output.rows for output in result.outputs] == [0]
    assert list(lake.rglob("*.parquet")) == []


def test_normalize_cli_counts_in_words(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '10.20.3.7 - - [03/Nov/2026:01:58:13 +0000] "GET http://www.example.com/ HTTP/1.1" 200 355 "-" "curl/8.5.0"\n'
        "not a log line\n",
        encoding="utf-8",
    )

    completed = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "normalize", str(log), "--to", str(tmp_path / "lake"), "--format", "combined"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert "combined, 1 event written, 1 line rejected, 0 skipped" in completed.stdout
    assert "1 event from 1 input written to" in completed.stdout


def test_normalize_into_input_directory_skips_its_dataset(tmp_path: Path) -> None:
    inputs = tmp_path / "logs"
    inputs.mkdir()
    (inputs / "access.log").write_text(
        '10.20.3.7 - - [03/Nov/2026:01:58:13 +0000] "GET http://www.example.com/ HTTP/1.1" 200 355 "-" "curl/8.5.0"\n',
        encoding="utf-8",
    )
    lake = inputs / "lake"
    normalize([str(inputs)], str(lake))

    # The second run finds the first run's Parquet and manifest files under logs/ and must not read them as logs.
    result = normalize([str(inputs)], str(lake))

    assert [Path(report.path).name for report in result.files] == ["access.log"]
    assert all(report.error is None for report in result.files)
    assert result.rows == 1
