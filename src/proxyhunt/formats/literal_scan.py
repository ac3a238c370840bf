"""Find the lines of a block that contain any of many byte literals in one pass, with Hyperscan when it is installed.

Python's ``re`` tests a pattern at every position of a block, so a prefilter
with many literals scanned the block once for each first byte: 22 passes for
the bundled rules. Hyperscan compiles all literals into one automaton and
scans the block once, about 25 times faster for those literals (measured in
BENCHMARKS.md). It releases the GIL while it scans.

The ``hyperscan`` package ships wheels for Linux on x86-64 and ARM64, for
Windows on x86-64 and for macOS. Where it is missing, ``literal_scanner``
returns None and the prefilter keeps its ``re`` search, which finds the same
lines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

try:
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None

if TYPE_CHECKING:
    from proxyhunt.formats.prefilter import Buffer

log = logging.getLogger(__name__)

# Tests set this to False to run the ``re`` search on machines that have Hyperscan.
ENABLED = True

# Hyperscan limits the length of an expression, and each byte is written as
# four characters. A line that contains a longer literal contains its first
# MAX_LITERAL_BYTES bytes, so those are searched, and the prefilter's check of
# the line decides.
MAX_LITERAL_BYTES = 200


@dataclass
class LineMatches:
    """The lines of a block in which a scan found something, each named by the offset of its start.

    ``literals`` has (literal number, line start) for the first literal of
    each group found in a line; Hyperscan reports matches in no set order,
    so a line may also appear more than once for a group. ``headers`` lists
    the lines that start with a line prefix. ``too_many`` is set when the
    scan stopped at one of its limits, and then the lists are incomplete.
    """

    literals: list[tuple[int, int]] = field(default_factory=list)
    headers: list[int] = field(default_factory=list)
    too_many: bool = False
    # Lines with a literal match, and matches, counted to stop at the scan's limits.
    lines: int = 0
    matches: int = 0


class LiteralScanner:
    """The literals of a prefilter and its line prefixes, compiled into one Hyperscan database.

    Literals match anywhere, byte for byte, or ignoring ASCII case when
    ``caseless`` is true, as Hyperscan does without its UTF-8 mode. Each
    literal belongs to one of ``groups``, by default its own. Line prefixes
    match byte for byte at the start of a line.
    """

    def __init__(
        self,
        literals: Sequence[bytes],
        caseless: bool = False,
        line_prefixes: Sequence[bytes] = (),
        groups: Sequence[int] | None = None,
    ) -> None:
        searched = [literal[:MAX_LITERAL_BYTES] for literal in literals]
        self.literal_count = len(searched)
        self.groups = tuple(range(len(searched)) if groups is None else groups)
        self.lengths = tuple(len(text) for text in (*searched, *line_prefixes))

        # Each byte is written as \xHH, so no byte reads as regular expression syntax.
        expressions = [_escaped(literal) for literal in searched]
        expressions += [b"^" + _escaped(prefix) for prefix in line_prefixes]
        flags = [hyperscan.HS_FLAG_CASELESS if caseless else 0] * len(searched)
        # With MULTILINE, ^ matches at the start of the scanned data and after every newline.
        flags += [hyperscan.HS_FLAG_MULTILINE] * len(line_prefixes)
        self.database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self.database.compile(
            expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags
        )

    def scan_lines(
        self, haystack: Buffer, end: int, max_lines: int | None = None, max_matches: int | None = None
    ) -> LineMatches:
        """Return the lines of ``haystack[:end]`` that have a match.

        Each match costs a call into Python, and a line that repeats a
        literal may hold millions. So the scan stops, with ``too_many`` set,
        after ``max_matches`` matches, or once more than ``max_lines`` lines
        have a literal.
        """
        found = LineMatches()
        handler = _MatchHandler(self, haystack, end, found, max_lines, max_matches)
        with memoryview(haystack) as view:
            try:
                self.database.scan(view[:end], match_event_handler=handler.on_match)
            except hyperscan.ScanTerminated:
                pass
        return found


@dataclass
class _MatchHandler:
    """The match handler of one scan, which keeps the bounds and groups of the line of the last match."""

    scanner: LiteralScanner
    haystack: Buffer
    end: int
    found: LineMatches
    max_lines: int | None
    max_matches: int | None
    line_start: int = -1
    # Offset of the line's newline, or of the end of the data.
    line_end: int = -1
    line_groups: set[int] = field(default_factory=set)

    def on_match(self, number: int, _start: int, stop: int, _flags: int, _context: object) -> bool:
        """Record a match and return whether the scan stops."""
        found = self.found
        found.matches += 1
        if self.max_matches is not None and found.matches > self.max_matches:
            found.too_many = True
            return True

        scanner = self.scanner
        if number >= scanner.literal_count:
            found.headers.append(stop - scanner.lengths[number])
            return False

        # The line is the one of the match's last byte, which is the same line
        # as its first byte, because a literal that contains a newline cannot
        # be in any line and its matches do not matter.
        last = stop - 1
        if not self.line_start <= last <= self.line_end:
            # Matches mostly come in order, and then only the bytes after the previous
            # line are searched for this line's start, so each byte is searched about once.
            searched_from = max(self.line_end, 0) if last > self.line_end else 0
            self.line_start = self.haystack.rfind(b"\n", searched_from, last) + 1
            line_end = self.haystack.find(b"\n", last, self.end)
            self.line_end = self.end if line_end < 0 else line_end
            self.line_groups = set()
            found.lines += 1
            if self.max_lines is not None and found.lines > self.max_lines:
                found.too_many = True
                return True

        group = scanner.groups[number]
        if group not in self.line_groups:
            self.line_groups.add(group)
            found.literals.append((number, self.line_start))
        return False


def _escaped(text: bytes) -> bytes:
    return b"".join(b"\\x%02x" % byte for byte in text)


def literal_scanner(
    literals: Sequence[bytes],
    caseless: bool = False,
    line_prefixes: Sequence[bytes] = (),
    groups: Sequence[int] | None = None,
) -> LiteralScanner | None:
    """Return a scanner for ``literals`` and ``line_prefixes``, or None when Hyperscan is not installed, is turned off or fails."""
    if not literals:
        return None
    if hyperscan is None or not ENABLED:
        reason = "is not installed" if hyperscan is None else "is turned off"
        log.info("the line prefilter searches %d literals with Python's re, because hyperscan %s", len(literals), reason)
        return None
    try:
        scanner = LiteralScanner(literals, caseless, line_prefixes, groups)
        log.info("the line prefilter searches %d literals in one Hyperscan pass", len(literals))
        return scanner
    except hyperscan.error as error:
        # The re search finds the same lines, only more slowly, so a failure here costs speed alone.
        log.warning("the literal search falls back to Python's re, because Hyperscan failed: %s", error)
        return None
