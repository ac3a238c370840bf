"""Find every occurrence of many byte literals in a block in one pass, with Hyperscan when it is installed.

Python's ``re`` tests a pattern at every position of a block, so a prefilter
with many literals scanned the block once for each first byte: 22 passes for
the bundled rules. Hyperscan compiles all literals into one automaton and
scans the block once, about 25 times faster for those literals (measured in
BENCHMARKS.md). It releases the GIL while it scans.

The ``hyperscan`` package ships wheels for Linux and Windows on x86-64 and
for macOS. Where it is missing, ``literal_scanner`` returns None and the
prefilter keeps its ``re`` search, which finds the same lines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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


class LiteralScanner:
    """The literals of a prefilter and its line prefixes, compiled into one Hyperscan database.

    Literals match anywhere, byte for byte, or ignoring ASCII case when
    ``caseless`` is true, as Hyperscan does without its UTF-8 mode. Line
    prefixes match byte for byte at the start of a line. Match numbers count
    the literals first, then the prefixes.
    """

    def __init__(self, literals: Sequence[bytes], caseless: bool = False, line_prefixes: Sequence[bytes] = ()) -> None:
        self.lengths = tuple(len(text) for text in (*literals, *line_prefixes))
        # Each byte is written as \xHH, so no byte reads as regular expression syntax.
        expressions = [_escaped(literal) for literal in literals]
        expressions += [b"^" + _escaped(prefix) for prefix in line_prefixes]
        flags = [hyperscan.HS_FLAG_CASELESS if caseless else 0] * len(literals)
        # With MULTILINE, ^ matches at the start of the block and after every newline.
        flags += [hyperscan.HS_FLAG_MULTILINE] * len(line_prefixes)
        self.database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self.database.compile(
            expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags
        )

    def matches(self, haystack: Buffer, end: int) -> list[tuple[int, int]]:
        """Return (match number, start offset) for every match in ``haystack[:end]``, in any order."""
        found: list[tuple[int, int]] = []

        def on_match(number: int, _start: int, stop: int, _flags: int, _context: object) -> None:
            found.append((number, stop - self.lengths[number]))

        with memoryview(haystack) as view:
            self.database.scan(view[:end], match_event_handler=on_match)
        return found


def _escaped(text: bytes) -> bytes:
    return b"".join(b"\\x%02x" % byte for byte in text)


def literal_scanner(
    literals: Sequence[bytes], caseless: bool = False, line_prefixes: Sequence[bytes] = ()
) -> LiteralScanner | None:
    """Return a scanner for ``literals`` and ``line_prefixes``, or None when Hyperscan is not installed, is turned off or fails."""
    if hyperscan is None or not ENABLED or not literals:
        return None
    try:
        return LiteralScanner(literals, caseless, line_prefixes)
    except hyperscan.error as error:
        # The re search finds the same lines, only more slowly, so a failure here costs speed alone.
        log.warning("the literal search falls back to Python's re, because Hyperscan failed: %s", error)
        return None
