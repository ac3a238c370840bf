"""Tell the Parquet datasets among command-line paths from the logs, also inside a directory that has both.

``proxyhunt normalize --to`` may write a dataset into the directory of the
logs it reads, and new logs keep arriving there. Such a directory is split:
each directory below it that holds Parquet files and no other data is a
dataset, a Parquet file beside logs is a dataset of its own, and the logs are
hunted as logs. A log that a dataset found there already contains, unchanged
since it was normalized (its ``_inputs`` manifest records the path, size and
modification time), is read from the dataset only, so its events are not
counted twice.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from proxyhunt.formats.parquet import PARQUET_SUFFIX, is_parquet_dataset

log = logging.getLogger(__name__)

# The directory of a dataset that normalize writes one manifest per input into; readers skip names that start with "_".
MANIFEST_DIRECTORY = "_inputs"


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
            others += _not_normalized(logs, found)
    return datasets, others


def _visible(name: str) -> bool:
    """True for a name that dataset readers take as data: not hidden, and not a ``_`` entry such as ``_inputs``."""
    return not name.startswith((".", "_"))


def _has_other_data(directory: str) -> bool:
    """True when a visible file below ``directory`` is not a Parquet file."""
    for _, subdirectories, files in os.walk(directory, followlinks=True):
        subdirectories[:] = [name for name in subdirectories if _visible(name)]
        if any(_visible(name) and not name.lower().endswith(PARQUET_SUFFIX) for name in files):
            return True
    return False


def _split_directory(directory: str) -> tuple[list[str], list[str]]:
    """Return the datasets and the log files below a directory that has both, in the order a walk finds them."""
    datasets: list[str] = []
    logs: list[str] = []
    for root, subdirectories, files in os.walk(directory, followlinks=True):
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            (datasets if name.lower().endswith(PARQUET_SUFFIX) else logs).append(path)

        kept = []
        for name in sorted(subdirectories):
            path = os.path.join(root, name)
            if name.startswith("."):
                continue
            if is_parquet_dataset(path) and not _has_other_data(path):
                datasets.append(path)
            else:
                kept.append(name)
        subdirectories[:] = kept
    return datasets, logs


def _not_normalized(logs: list[str], datasets: list[str]) -> list[str]:
    """Return the logs that none of ``datasets`` contains as they are now, and log why the others are left out."""
    recorded = {}
    for dataset in datasets:
        for manifest in sorted(Path(dataset).glob(f"{MANIFEST_DIRECTORY}/*.json")):
            entry = _read_manifest(manifest)
            if entry is not None:
                recorded[entry["resolved_path"]] = (dataset, entry)

    kept = []
    for path in logs:
        dataset, entry = recorded.get(os.path.realpath(path), (None, None))
        if entry is None:
            kept.append(path)
        elif _unchanged(path, entry):
            log.info("%s: read from the dataset %s, which contains it as normalized at %s", path, dataset, entry.get("normalized_at"))
        else:
            log.warning(
                "%s: changed since it was normalized into %s, so both are hunted and its older events may count twice; "
                "run proxyhunt normalize on it again to replace them",
                path,
                dataset,
            )
            kept.append(path)
    return kept


def _read_manifest(path: Path) -> dict | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.debug("%s: manifest not read (%s)", path, error)
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("resolved_path"), str) else None


def _unchanged(path: str, entry: dict) -> bool:
    """True when the file at ``path`` has the size and modification time that a manifest recorded."""
    try:
        status = os.stat(path)
    except OSError:
        return False
    modified = datetime.fromtimestamp(status.st_mtime, timezone.utc).isoformat()
    return entry.get("size") == status.st_size and entry.get("modified") == modified
