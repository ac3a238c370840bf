"""Tell the Parquet datasets among command-line paths from the logs, and keep a log out of a hunt of its own dataset.

``proxyhunt normalize --to`` may write a dataset into the directory of the
logs it reads, and new logs keep arriving there. Such a directory is split:
each directory below it with Parquet files and no other data is a
dataset, a Parquet file beside logs is a dataset of its own, and the logs are
hunted as logs.

Each dataset that normalize wrote records its inputs in ``_inputs``: path,
size, modification time and hashes of the first and last MiB. A log that
one of the hunted datasets records unchanged is read from the dataset only,
so its events do not count twice. Unchanged means the same size and the same
modification time or end hashes, under any name, so a rotated, moved or
touched log still counts. A log that only grew since is hunted in full as a log, and the
dataset's files of its older copy are left out. A log that changed
otherwise is hunted, with a warning that the dataset's older copy of it is
hunted too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from proxyhunt.formats.parquet import PARQUET_SUFFIX, is_parquet_dataset
from proxyhunt.formats.paths import Problem, unique_paths, walk

log = logging.getLogger(__name__)

# The directory of a dataset that normalize writes one manifest per input into; readers skip names that start with "_".
MANIFEST_DIRECTORY = "_inputs"
# Files that Spark, Hive and Databricks write beside the Parquet files of a dataset; they are not data.
_METADATA_FILES = frozenset({"_SUCCESS", "_metadata", "_common_metadata"})
_METADATA_PREFIXES = ("_committed_", "_started_")
# Bytes hashed at each end of a file, to tell an unchanged or only grown log from one rewritten.
END_BYTES = 1024 * 1024


def end_hashes(path: str, size: int | None = None) -> tuple[str, str] | None:
    """Return SHA-256 hashes of the first and of the last END_BYTES of a file's first ``size`` bytes.

    A log that only grew since it was normalized still starts and, at its
    old size, ends with the bytes these hashes recorded. None when the file
    cannot be read.
    """
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size if size is None else size
            head = hashlib.sha256(handle.read(min(size, END_BYTES))).hexdigest()
            handle.seek(max(0, size - END_BYTES))
            tail = hashlib.sha256(handle.read(min(size, END_BYTES))).hexdigest()
    except OSError:
        return None
    return head, tail


def split_datasets(paths: list[str]) -> tuple[list[str], list[str]]:
    """Split command-line paths into Parquet datasets and everything else (log files, directories, patterns)."""
    datasets: list[str] = []
    others: list[str] = []
    for path in paths:
        if path == "-" or not is_parquet_dataset(path):
            others.append(path)
        elif os.path.isfile(path) or not _has_other_data(path):
            datasets.append(path)
        else:
            found, logs = _split_directory(path)
            datasets += found
            others += logs
    return unique_paths(datasets), others


@dataclass
class DatasetOverlap:
    """The logs of a hunt that its datasets already contain, and the warnings about the others.

    ``read_from_datasets`` maps each log left out to the dataset that contains
    it, and ``warnings`` maps a path to what the hunt must report about it. A log that
    only grew is hunted in full instead, and its dataset files are excluded.
    """

    read_as_logs: list[str] = field(default_factory=list)
    read_from_datasets: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    # Logs that only grew since a dataset took them in, each with that dataset; they are hunted as logs.
    grown: dict[str, str] = field(default_factory=dict)
    # Resolved paths of the dataset files that hold the older copies of the grown logs, left out of the hunt.
    excluded: set[str] = field(default_factory=set)


def logs_held_by_datasets(files: list[str], datasets: list[str]) -> DatasetOverlap:
    """Leave out the log files that one of ``datasets`` records unchanged, and warn about those it records changed."""
    overlap = DatasetOverlap()
    records = _Records()
    for dataset in datasets:
        for entry in _manifest_entries(dataset):
            records.add(dataset, entry)
    if not records.by_size:
        overlap.read_as_logs = list(files)
        return overlap

    for path in files:
        held_by = None if path == "-" else records.holding(path)
        if held_by is None:
            overlap.read_as_logs.append(path)
            continue

        dataset, entry, unchanged = held_by
        if unchanged:
            overlap.read_from_datasets[path] = dataset
            if entry.get("error"):
                overlap.warnings.setdefault(path, []).append(
                    f"read from the dataset {dataset}, whose normalize run reported: {entry['error']}"
                )
            continue
        overlap.read_as_logs.append(path)
        if _only_grew(path, entry):
            overlap.grown[path] = dataset
            overlap.excluded |= {os.path.realpath(os.path.join(dataset, file)) for file in entry.get("files", [])}
            continue
        overlap.warnings.setdefault(path, []).append(
            f"changed since it was normalized into {dataset}, so the dataset's older copy of its events is hunted "
            "too and may count twice; run proxyhunt normalize on it again to replace that copy"
        )
    return overlap


def _only_grew(path: str, entry: dict) -> bool:
    """True when the file is longer than the manifest records and still has the recorded bytes at both old ends."""
    head, tail, size = entry.get("head_sha256"), entry.get("tail_sha256"), entry.get("size")
    if not (head and tail and isinstance(size, int) and isinstance(entry.get("files"), list)):
        return False
    try:
        if os.stat(path).st_size <= size:
            return False
    except OSError:
        return False
    return end_hashes(path, size) == (head, tail)


@dataclass
class _Records:
    """The manifest entries of the hunted datasets, looked up by file size and by resolved path.

    A hunt may name thousands of logs beside datasets of thousands of inputs,
    so each log is compared only with the entries of its size and path.
    """

    by_size: dict[int, list[tuple[str, dict]]] = field(default_factory=dict)
    by_path: dict[str, tuple[str, dict]] = field(default_factory=dict)

    def add(self, dataset: str, entry: dict) -> None:
        if isinstance(entry.get("size"), int) and entry["size"] > 0:
            self.by_size.setdefault(entry["size"], []).append((dataset, entry))
        self.by_path.setdefault(entry["resolved_path"], (dataset, entry))

    def holding(self, path: str) -> tuple[str, dict, bool] | None:
        """Return the dataset whose manifest records this file, its entry, and whether the file is unchanged since."""
        try:
            status = os.stat(path)
        except OSError:
            return None
        modified = datetime.fromtimestamp(status.st_mtime, timezone.utc).isoformat()
        same_size = self.by_size.get(status.st_size, [])

        for dataset, entry in same_size:
            if entry.get("modified") == modified:
                return dataset, entry, True
        # A log whose time changed, as by touch or a copy, is unchanged when both of its ends are.
        ends = end_hashes(path) if same_size else None
        for dataset, entry in same_size:
            if ends is not None and (entry.get("head_sha256"), entry.get("tail_sha256")) == ends:
                return dataset, entry, True

        recorded = self.by_path.get(os.path.realpath(path))
        return None if recorded is None else (*recorded, False)


def _manifest_entries(dataset: str) -> Iterator[dict]:
    """Yield the readable manifests of a dataset directory; a single Parquet file has none."""
    if not os.path.isdir(dataset):
        return
    for manifest in sorted(Path(dataset).glob(f"{MANIFEST_DIRECTORY}/*.json")):
        try:
            entry = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            log.debug("%s: manifest not read (%s)", manifest, error)
            continue
        if isinstance(entry, dict) and isinstance(entry.get("resolved_path"), str):
            yield entry


def _is_metadata(name: str, is_directory: bool) -> bool:
    """True for an entry that dataset readers skip: hidden, a ``_`` directory such as ``_inputs``, or a marker file."""
    if name.startswith("."):
        return True
    if is_directory:
        return name.startswith("_")
    return name in _METADATA_FILES or name.startswith(_METADATA_PREFIXES)


def _has_other_data(directory: str) -> bool:
    """True when a file below ``directory`` that dataset readers would read is not a Parquet file."""
    for _, subdirectories, files in _walk(directory):
        subdirectories[:] = [path for path in subdirectories if not _is_metadata(os.path.basename(path), is_directory=True)]
        for path in files:
            name = os.path.basename(path)
            if not _is_metadata(name, is_directory=False) and not name.lower().endswith(PARQUET_SUFFIX):
                return True
    return False


def _split_directory(directory: str) -> tuple[list[str], list[str]]:
    """Return the datasets and the log files below a directory that has both, in the order a walk finds them."""
    datasets: list[str] = []
    logs: list[str] = []
    for _, subdirectories, files in _walk(directory):
        for path in files:
            name = os.path.basename(path)
            if not _is_metadata(name, is_directory=False):
                (datasets if name.lower().endswith(PARQUET_SUFFIX) else logs).append(path)

        entered = []
        for path in subdirectories:
            if _is_metadata(os.path.basename(path), is_directory=True):
                continue
            if is_parquet_dataset(path) and not _has_other_data(path):
                datasets.append(path)
            else:
                entered.append(path)
        subdirectories[:] = entered
    return unique_paths(datasets), unique_paths(logs)


def _walk(directory: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """Walk the visible directories below ``directory`` once each, as the log finder does, logging what it cannot read."""
    problems: list[Problem] = []
    yield from walk(directory, problems)
    for problem in problems:
        log.debug("%s: %s", problem.path, problem.message)
