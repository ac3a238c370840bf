"""A directory with both a normalized dataset and logs: every event is hunted, and none twice."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from proxyhunt.formats.dataset_paths import logs_held_by_datasets, split_datasets
from proxyhunt.hunt import hunt
from proxyhunt.normalize import normalize

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
RCLONE_RULE = str(REPO / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")


def _logs_and_lake(tmp_path: Path) -> Path:
    """Return a directory with a combined log, a dataset normalized from it, and a Zeek log that came later."""
    directory = tmp_path / "logs"
    directory.mkdir()
    shutil.copy(SAMPLES / "squid-combined.log", directory / "access.log")
    normalize([str(directory)], to=str(directory / "lake"))
    shutil.copy(SAMPLES / "zeek-http.log", directory / "http.log")
    return directory


def _hunt(*paths: Path):
    return hunt([str(path) for path in paths], [RCLONE_RULE], include_bundled=False)


def _expected() -> int:
    """Return the number of findings of the two sample logs hunted directly, once each."""
    return len(_hunt(SAMPLES / "squid-combined.log", SAMPLES / "zeek-http.log").findings)


def test_split_and_overlap_of_logs_beside_dataset(tmp_path):
    directory = _logs_and_lake(tmp_path)

    datasets, others = split_datasets([str(directory)])
    overlap = logs_held_by_datasets(others, datasets)

    assert datasets == [str(directory / "lake")]
    assert others == [str(directory / "access.log"), str(directory / "http.log")]
    # The combined log is in the dataset unchanged, so it is read from there only.
    assert overlap.read_as_logs == [str(directory / "http.log")]
    assert overlap.read_from_datasets == {str(directory / "access.log"): str(directory / "lake")}


def test_hunt_counts_every_event_once(tmp_path):
    directory = _logs_and_lake(tmp_path)

    result = _hunt(directory)

    assert len(result.findings) == _expected() > 2
    assert [report.held_by for report in result.files if report.path.endswith("access.log")] == [str(directory / "lake")]


def test_named_files_and_dataset_count_once(tmp_path):
    # As the shell expands "hunt logs/*.log logs/lake": each path is its own argument.
    directory = _logs_and_lake(tmp_path)

    result = _hunt(directory / "access.log", directory / "http.log", directory / "lake")

    assert len(result.findings) == _expected()


def test_rotated_and_touched_logs_count_once(tmp_path):
    directory = _logs_and_lake(tmp_path)
    # logrotate renames a log and keeps its time; touch changes the time and keeps the content.
    os.rename(directory / "access.log", directory / "access.log.1")
    os.utime(directory / "access.log.1", (1_800_000_000, 1_800_000_000))

    result = _hunt(directory)

    assert len(result.findings) == _expected()


def test_changed_log_warning_shown_with_quiet(tmp_path):
    directory = _logs_and_lake(tmp_path)
    text = (directory / "access.log").read_text(encoding="utf-8")
    (directory / "access.log").write_text(text.replace("10.", "11.", 1), encoding="utf-8")

    completed = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(directory), "--no-default-rules", "--rules", RCLONE_RULE, "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )

    # -q keeps warnings, and this one reports that events may count twice.
    assert "warning:" in completed.stderr + completed.stdout
    assert "changed since it was normalized" in completed.stderr + completed.stdout
    assert "access.log" in completed.stderr + completed.stdout


def test_link_loops_and_linked_datasets_count_once(tmp_path):
    directory = _logs_and_lake(tmp_path)
    os.symlink(".", directory / "loop")
    os.symlink("lake", directory / "lake-current")

    datasets, others = split_datasets([str(directory)])
    result = _hunt(directory)

    assert datasets == [str(directory / "lake")]
    assert others == [str(directory / "access.log"), str(directory / "http.log")]
    assert len(result.findings) == _expected()


def test_underscore_log_beside_dataset_is_hunted(tmp_path):
    directory = _logs_and_lake(tmp_path)
    os.rename(directory / "http.log", directory / "_new.log")

    datasets, others = split_datasets([str(directory)])

    assert datasets == [str(directory / "lake")]
    assert str(directory / "_new.log") in others


def test_manifests_never_read_as_logs(tmp_path):
    # A file that is not Parquet inside the dataset makes it mixed, yet its _inputs stay metadata.
    directory = _logs_and_lake(tmp_path)
    (directory / "lake" / "README.txt").write_text("made by proxyhunt normalize\n", encoding="utf-8")

    _, others = split_datasets([str(directory)])

    assert not any("_inputs" in path for path in others)


def test_damaged_log_held_by_dataset_keeps_its_warning(tmp_path):
    directory = tmp_path / "logs"
    directory.mkdir()
    data = gzip.compress((SAMPLES / "squid-combined.log").read_bytes())
    (directory / "access.log.gz").write_bytes(data[: len(data) - 40])
    normalize([str(directory)], to=str(directory / "lake"))

    result = _hunt(directory)

    warnings = [warning for report in result.files for warning in report.warnings]
    assert [report.held_by for report in result.files if report.path.endswith(".gz")] == [str(directory / "lake")]
    assert any("whose normalize run reported" in warning for warning in warnings)


def test_foreign_parquet_beside_log(tmp_path):
    # A Parquet file from another tool is a dataset of its own, and the log beside it is still read.
    directory = tmp_path / "mixed"
    directory.mkdir()
    shutil.copy(SAMPLES / "zeek-http.log", directory / "http.log")
    duckdb.sql(f"COPY (SELECT 1 AS other) TO '{directory / 'other.parquet'}' (FORMAT parquet)")

    datasets, others = split_datasets([str(directory)])
    result = _hunt(directory)

    assert datasets == [str(directory / "other.parquet")]
    assert others == [str(directory / "http.log")]
    assert any(report.error and "other.parquet" in report.path for report in result.files)
    assert any(report.path.endswith("http.log") and report.parsed > 0 for report in result.files)


def test_dataset_alone_stays_one_path(tmp_path):
    lake = tmp_path / "lake"
    normalize([str(SAMPLES / "squid-combined.log")], to=str(lake))
    (lake / ".notes.txt").write_text("hidden files are not data\n", encoding="utf-8")
    (lake / "_SUCCESS").write_text("", encoding="utf-8")

    assert split_datasets([str(lake)]) == ([str(lake)], [])


def test_grown_log_hunted_in_full_once(tmp_path):
    # A live log that grew since normalize: its new lines are found, and its old ones count once.
    directory = _logs_and_lake(tmp_path)
    added = '10.9.9.9 - - [03/Nov/2026:23:00:00 +0000] "PUT http://s3.example.test/x HTTP/1.1" 200 5 "-" "rclone/v1.68.0"\n'
    with (directory / "access.log").open("a", encoding="utf-8") as log_file:
        log_file.write(added)

    result = _hunt(directory)
    reports = {os.path.basename(report.path): report for report in result.files}

    assert len(result.findings) == _expected() + 1
    assert reports["access.log"].grown_from == str(directory / "lake")
    assert reports["access.log"].warnings == []


def test_rewritten_log_warns_of_double_count(tmp_path):
    # A log rewritten in place, not only grown, may differ from the dataset's copy anywhere, so both are hunted.
    directory = _logs_and_lake(tmp_path)
    text = (directory / "access.log").read_text(encoding="utf-8")
    (directory / "access.log").write_text(text.replace("10.", "11.", 1) + "\n", encoding="utf-8")

    result = _hunt(directory)
    reports = {os.path.basename(report.path): report for report in result.files}

    assert reports["access.log"].grown_from is None
    assert any("may count twice" in warning for warning in reports["access.log"].warnings)
