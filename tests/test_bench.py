"""The benchmark script: deterministic input, and a small run whose rclone counts must agree."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from bench.__main__ import _check_agreement
from bench.generate import RCLONE_SHARE, generate
from bench.steps import Result, count_events

REPO = Path(__file__).resolve().parents[1]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generate_is_deterministic(tmp_path):
    first, second, other_seed = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "c.log"

    generate("combined", 300_000, first, seed=7)
    generate("combined", 300_000, second, seed=7)
    generate("combined", 300_000, other_seed, seed=8)

    assert _digest(first) == _digest(second)
    assert _digest(first) != _digest(other_seed)


def test_generate_rclone_share(tmp_path):
    log = tmp_path / "zeek.log"

    events = generate("zeek", 5_000_000, log, seed=1)
    rclone = sum(1 for line in log.read_text(encoding="utf-8").splitlines() if "\trclone/v" in line.lower())

    assert count_events("zeek", log) == events
    assert 0.2 * RCLONE_SHARE < rclone / events < 5 * RCLONE_SHARE


def test_bench_smoke_run_agrees(tmp_path):
    # The 10 MB run that keeps the script working; it checks what the steps found, never their times.
    output = tmp_path / "BENCHMARKS.md"
    completed = subprocess.run(
        [
            sys.executable, "-m", "bench", "--size", "10M", "--formats", "combined,zeek,squid",
            "--steps", "grep,python-re,zircolite,hunt", "--check", "--workdir", str(tmp_path), "--write", str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )

    assert completed.returncode == 0, completed.stderr
    assert "(d) proxyhunt hunt, seed rclone rule alone" in completed.stdout
    assert "## combined: 10 MB" in output.read_text(encoding="utf-8")
    assert "cores" in output.read_text(encoding="utf-8")


def test_duckdb_floors_read_every_line(tmp_path):
    # The floors of steps (e) and (f) must read the same rows that normalize writes, or they bound nothing.
    log = tmp_path / "zeek.log"
    events = generate("zeek", 200_000, log, seed=3)
    dataset = tmp_path / "dataset"
    subprocess.run(
        [sys.executable, "-m", "proxyhunt", "normalize", str(log), "--to", str(dataset), "--quiet"], cwd=REPO, check=True
    )

    copied = _baseline("duckdb-copy", log)
    split = _baseline("duckdb-fields", log)
    scanned = _baseline("duckdb-scan", dataset)

    # Zeek's header lines are lines to the copy but not events.
    assert copied == log.read_bytes().count(b"\n")
    assert copied > events
    assert split == events
    assert scanned == events
    assert not Path(f"{log}.lines.parquet").exists()
    assert not Path(f"{log}.fields.parquet").exists()


def test_fields_floor_splits_every_combined_line(tmp_path):
    log = tmp_path / "access.log"
    events = generate("combined", 200_000, log, seed=3)

    assert _baseline("duckdb-fields", log, "combined") == events


def _baseline(name: str, path: Path, fmt: str = "zeek") -> int:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.baselines", name, fmt, str(path)], cwd=REPO, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    return int(completed.stdout)


def test_check_flags_floor_that_drops_rows(capsys):
    base = {"fmt": "zeek", "input_bytes": 1000, "events": 46}
    complete = Result(step="duckdb-fields", seconds=1.0, rows_read=46, **base)
    short = Result(step="duckdb-fields", seconds=1.0, rows_read=45, **base)

    assert _check_agreement([complete]) == 0
    assert _check_agreement([short]) == 1
    assert "read 45 rows of 46 events" in capsys.readouterr().err
