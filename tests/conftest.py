"""Shared fixtures: load hand-written log text through the real loader into an in-memory DuckDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from proxyhunt.formats import literal_scan
from proxyhunt.formats.loader import FileReport, Loader


@dataclass
class LoadedFile:
    """One file after Loader.load: its report, its websession rows and its rejected lines."""

    path: str
    report: FileReport
    rows: list[dict[str, Any]]
    rejects: list[tuple[int, str, str]]

    def line(self, number: int) -> dict[str, Any]:
        """Return the websession row read from line ``number``; fail the test if there is none."""
        matches = [row for row in self.rows if row["SourceLine"] == number]
        assert len(matches) == 1, f"expected one row from line {number}, found {len(matches)}"
        return matches[0]

    @property
    def line_numbers(self) -> list[int]:
        """SourceLine of every row, in order."""
        return [row["SourceLine"] for row in self.rows]


LoadText = Callable[..., LoadedFile]


@pytest.fixture
def load_text(tmp_path: Path) -> Iterator[LoadText]:
    """Write text to a file under tmp_path, load it with Loader and return a LoadedFile.

    The text is written as UTF-8 bytes without newline translation. All calls in
    one test share one DuckDB connection, as files of one hunt do.
    """
    connection = duckdb.connect()
    loader = Loader(connection)

    def load(text: str, format_name: str | None = None, name: str = "access.log") -> LoadedFile:
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8"))
        report = loader.load(str(path), format_name)
        cursor = connection.execute("SELECT * FROM websession WHERE SourceFile = ? ORDER BY SourceLine", [str(path)])
        columns = [description[0] for description in cursor.description]
        rows = [dict(zip(columns, values)) for values in cursor.fetchall()]
        rejects = connection.execute(
            "SELECT SourceLine, Reason, RawEvent FROM rejects WHERE SourceFile = ? ORDER BY SourceLine", [str(path)]
        ).fetchall()
        return LoadedFile(str(path), report, rows, rejects)

    yield load
    loader.close()
    connection.close()



@pytest.fixture(scope="module", params=["hyperscan", "re"])
def literal_search(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests once with the Hyperscan literal search and once with the re search it falls back to."""
    if request.param == "hyperscan" and literal_scan.hyperscan is None:
        pytest.skip("hyperscan is not installed on this platform")
    enabled = literal_scan.ENABLED
    literal_scan.ENABLED = request.param == "hyperscan"
    yield request.param
    literal_scan.ENABLED = enabled
