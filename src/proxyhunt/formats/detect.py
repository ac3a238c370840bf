"""Pick the format of a file from a sample of its lines."""

from __future__ import annotations

from proxyhunt.formats.base import LineFormat

# Below this confidence a file is reported as undetectable instead of guessed.
MIN_CONFIDENCE = 0.5


def score_formats(sample: list[str], candidates: list[LineFormat]) -> list[tuple[LineFormat, float]]:
    """Return every candidate with its confidence for the sample, best first."""
    scored = [(candidate, candidate.detect(sample)) for candidate in candidates]
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return scored


def best_format(sample: list[str], candidates: list[LineFormat]) -> tuple[LineFormat | None, float]:
    """Return the most likely format and its confidence, or (None, confidence) below MIN_CONFIDENCE."""
    scored = score_formats(sample, candidates)
    if not scored:
        return None, 0.0
    best, confidence = scored[0]
    if confidence < MIN_CONFIDENCE:
        return None, confidence
    return best, confidence
