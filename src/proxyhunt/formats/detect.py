"""Pick the format of a file from a sample of its lines."""

from __future__ import annotations

import logging

from proxyhunt.formats.base import LineFormat

log = logging.getLogger(__name__)

# Below this confidence a file is reported as undetectable instead of guessed.
MIN_CONFIDENCE = 0.5


def score_formats(
    sample: list[str], candidates: list[LineFormat], path: str | None = None
) -> list[tuple[LineFormat, float]]:
    """Return every candidate with its confidence for the sample, best first.

    Candidates with equal confidence keep their order in ``candidates``. A
    candidate whose ``detect`` raises scores 0.0, so that one format's defect
    on odd input never stops the others. The error is logged at debug level
    with ``path``, the file the sample came from: on input that is not in its
    format, a detector that raises only means no match.
    """
    scored = []
    for candidate in candidates:
        try:
            confidence = candidate.detect(sample)
        except Exception as error:  # noqa: BLE001 - any defect in one detector; logged below
            log.debug(
                "%s: format %s failed to score the sample and counts as not matching: %s: %s",
                path or "sample",
                candidate.name,
                type(error).__name__,
                error,
                exc_info=True,
            )
            confidence = 0.0
        scored.append((candidate, confidence))
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return scored


def best_format(
    sample: list[str], candidates: list[LineFormat], path: str | None = None
) -> tuple[LineFormat | None, float]:
    """Return the most likely format and its confidence, or (None, confidence) below MIN_CONFIDENCE."""
    scored = score_formats(sample, candidates, path)
    if not scored:
        return None, 0.0
    best, confidence = scored[0]
    if confidence < MIN_CONFIDENCE:
        return None, confidence
    return best, confidence
