"""A directory with both a normalized dataset and logs: every event is hunted, and none twice."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import duckdb

from proxyhunt.formats.dataset_paths import split_datasets
from proxyhunt.hunt import hunt
from proxyhunt.normalize import normalize

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
RCLONE_RULE = str(Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")


def _events(result) -> list[tuple[str, int]]:
    return sorted((os.path.basename(finding["SourceFile"]), finding["SourceLine"]) for finding in result.findings)


def _logs_and_lake(tmp_path: Path) -> Path:
    """Return a directory with a combined log, a dataset normalized from it, and a Zeek log that came later."""
    directory = tmp_path / "logs"
    directory.mkdir()
    shutil.copy(SAMPLES / "squid-combined.log", directory / "access.log")
    normalize([str(directory)], to=str(directory / "lake"))
    shutil.copy(SAMPLES / "zeek-http.log", directory / "http.log")
    return directory


def test_split_reads_logs_beside_dataset(tmp_path):
    directory = _logs_and_lake(tmp_path)

    datasets, others = split_datasets([str(directory)])

    assert datasets == [str(directory / "lake")]
    # The combined log is in the dataset unchanged, so it is read from there only.
    assert others == [str(directory / "http.log")]


def test_hunt_counts_every_event_once(tmp_path):
    directory = _logs_and_lake(tmp_path)

    mixed = hunt([str(directory)], [RCLONE_RULE], include_bundled=False)
    direct = hunt([str(directory / "access.log"), str(directory / "http.log")], [RCLONE_RULE], include_bundled=False)

    assert len(direct.findings) >= 2
    assert sorted(line for _, line in _events(mixed)) == sorted(line for _, line in _events(direct))
    assert sum(report.parsed for report in mixed.files) == sum(report.parsed for report in direct.files)


def test_changed_log_is_hunted_again(tmp_path, caplog):
    directory = _logs_and_lake(tmp_path)
    with (directory / "access.log").open("a", encoding="utf-8") as log_file:
        log_file.write(
            '10.9.9.9 - - [03/Nov/2026:23:00:00 +0000] "PUT http://s3.example.test/x HTTP/1.1" 200 5 "-" "rclone/v1.68.0"\n'
        )

    with caplog.at_level(logging.WARNING):
        datasets, others = split_datasets([str(directory)])

    assert datasets == [str(directory / "lake")]
    assert others == [str(directory / "access.log"), str(directory / "http.log")]
    assert "changed since it was normalized" in caplog.text
    assert "access.log" in caplog.text


def test_foreign_parquet_beside_log(tmp_path):
    # A Parquet file from another tool is a dataset of its own, and the log beside it is still read.
    directory = tmp_path / "mixed"
    directory.mkdir()
    shutil.copy(SAMPLES / "zeek-http.log", directory / "http.log")
    duckdb.sql(f"COPY (SELECT 1 AS other) TO '{directory / 'other.parquet'}' (FORMAT parquet)")

    datasets, others = split_datasets([str(directory)])
    result = hunt([str(directory)], [RCLONE_RULE], include_bundled=False)

    assert datasets == [str(directory / "other.parquet")]
    assert others == [str(directory / "http.log")]
    assert any(report.error and "other.parquet" in report.path for report in result.files)
    assert any(report.path.endswith("http.log") and report.parsed > 0 for report in result.files)


def test_dataset_alone_stays_one_path(tmp_path):
    lake = tmp_path / "lake"
    normalize([str(SAMPLES / "squid-combined.log")], to=str(lake))
    (lake / ".notes.txt").write_text("hidden files are not data\n", encoding="utf-8")

    assert split_datasets([str(lake)]) == ([str(lake)], [])
