"""JSON Lines output: one object per finding, written whole or not at all."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from proxyhunt.report.jsonl import finding_to_json, write_jsonl


def test_finding_time_ends_in_z() -> None:
    record = json.loads(finding_to_json({"TimeGenerated": datetime(2026, 11, 3, 1, 58, 13)}))

    assert record["TimeGenerated"] == "2026-11-03T01:58:13Z"
    assert record["Verdict"] == "alert"
    assert record["RuleType"] == "detection"
    assert record["Suppressions"] == []


def test_interrupted_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "findings.jsonl"
    target.write_text("earlier run\n")

    def findings() -> Iterator[dict[str, Any]]:
        yield {"SrcIpAddr": "10.0.0.1"}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(findings(), target)

    assert target.read_text() == "earlier run\n"
    assert [path.name for path in tmp_path.iterdir()] == ["findings.jsonl"]


def test_write_creates_file_with_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "findings.jsonl"
    previous = os.umask(0o022)
    try:
        count = write_jsonl([{"SrcIpAddr": "10.0.0.1"}, {"SrcIpAddr": "10.0.0.2"}], target)
    finally:
        os.umask(previous)

    assert count == 2
    assert len(target.read_text().splitlines()) == 2
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_follows_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("earlier run\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)

    write_jsonl([{"SrcIpAddr": "10.0.0.1"}], link)

    assert link.is_symlink()
    assert json.loads(real.read_text())["SrcIpAddr"] == "10.0.0.1"


def test_write_into_fifo_keeps_fifo(tmp_path: Path) -> None:
    # A rename over a named pipe (or /dev/stdout, /dev/null) would replace the node itself.
    fifo = tmp_path / "findings.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()

    write_jsonl([{"SrcIpAddr": "10.0.0.1"}], fifo)
    reader.join(timeout=30)

    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert json.loads(received[0])["SrcIpAddr"] == "10.0.0.1"
