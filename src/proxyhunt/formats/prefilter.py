"""Select the lines of a block of raw bytes that may match the rules, before any parsing.

A ``LinePrefilter`` keeps a line when its lowercased bytes contain one of the
rules' literals (see ``proxyhunt.engines.prefilter``), and also, because the
reader may still need them or the literal may be hidden from a byte search:

- every line that contains an escape sequence which the reader decodes into
  a character of a literal, such as ``\\x2f`` or ``%2F`` for the ``/`` of
  ``rclone/v``;
- every line that starts with one of the format's header prefixes, such as
  Zeek's ``#fields``;
- every line up to ``keep_through_line``, so that the columns a file fills
  and its CONNECT share are still known from a sample.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Above this share of kept lines, splitting every line is cheaper than picking lines one by one.
MAX_KEPT_SHARE = 0.25


@dataclass(frozen=True)
class Escape:
    """An escape sequence that a format's reader decodes.

    With ``hex_byte``, ``prefix`` followed by two hex digits stands for any
    byte, as in ``%2F`` or ``\\x2f``. Otherwise ``prefix`` followed by one
    character decodes to one of ``produces``, as ``\\"`` decodes to ``"``.
    """

    prefix: bytes
    hex_byte: bool = False
    produces: str = ""

    def needles(self, literals: Iterable[str]) -> set[bytes]:
        """Return the lowercased byte strings that mark a line where this escape may hide a literal's character."""
        characters = {character for literal in literals for character in literal}
        if not self.hex_byte:
            return {self.prefix.lower()} if characters & set(self.produces) else set()
        needles = set()
        for character in characters:
            for variant in {character, character.upper()}:
                needles.add(self.prefix.lower() + f"{ord(variant):02x}".encode("ascii"))
        return needles

    def pattern(self, literals: Iterable[str]) -> re.Pattern[bytes] | None:
        """Return one regular expression for all of ``needles``, or None when there are none.

        One scan for the shared prefix followed by alternatives is several
        times faster than a ``bytes.find`` per needle.
        """
        needles = self.needles(literals)
        if not needles:
            return None
        prefix = self.prefix.lower()
        suffixes = sorted(needle[len(prefix) :] for needle in needles)
        if suffixes == [b""]:
            return re.compile(re.escape(prefix))
        return re.compile(re.escape(prefix) + b"(?:" + b"|".join(map(re.escape, suffixes)) + b")")


@dataclass(frozen=True)
class Selection:
    """The lines a prefilter kept from a block: (line number, start, end) of each, and the block's line count."""

    kept: list[tuple[int, int, int]]
    lines: int


@dataclass(frozen=True)
class LinePrefilter:
    """The byte patterns that make a line worth parsing.

    ``patterns`` are searched in the lowercased block: one per literal, and
    one per escape that could hide a literal's character. A regular
    expression for a plain literal is as fast as ``bytes.find`` here.
    """

    patterns: tuple[re.Pattern[bytes], ...]
    header_prefixes: tuple[bytes, ...] = ()
    keep_through_line: int = 0

    @classmethod
    def build(
        cls,
        literals: Iterable[str],
        escapes: Iterable[Escape] = (),
        header_prefixes: Iterable[bytes] = (),
        keep_through_line: int = 0,
    ) -> LinePrefilter:
        """Build a prefilter from ASCII literals, matched without regard to case, and the format's escapes."""
        lowered = sorted({literal.lower() for literal in literals})
        patterns = [re.compile(re.escape(literal.encode("ascii"))) for literal in lowered]
        patterns += [escape.pattern(lowered) for escape in escapes]
        return cls(
            tuple(pattern for pattern in patterns if pattern is not None),
            tuple(header_prefixes),
            keep_through_line,
        )

    def select(self, data: bytes, first_line: int) -> Selection | None:
        """Return the kept lines of ``data`` in order, or None when so many are kept that all should be.

        ``data`` contains whole lines, the first numbered ``first_line``. The
        last line may lack its newline, and ``end`` excludes the newline.
        """
        starts: set[int] = set()
        lowered = data.lower()
        for pattern in self.patterns:
            _add_line_starts(lowered, pattern, starts)
        for prefix in self.header_prefixes:
            if data.startswith(prefix):
                starts.add(0)
            # The match starts at the newline before the header line.
            _add_line_starts(data, re.compile(re.escape(b"\n" + prefix)), starts, offset=1)

        # The share of kept lines is judged without the sample, which is kept whatever it holds.
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        sample: set[int] = set()
        if first_line <= self.keep_through_line:
            position = 0
            for _ in range(self.keep_through_line - first_line + 1):
                sample.add(position)
                position = data.find(b"\n", position) + 1
                if position == 0 or position >= len(data):
                    break
        if len(starts - sample) > MAX_KEPT_SHARE * (lines - len(sample)):
            return None
        starts |= sample

        selected = []
        number = first_line
        previous = 0
        for start in sorted(starts):
            number += data.count(b"\n", previous, start)
            previous = start
            end = data.find(b"\n", start)
            selected.append((number, start, len(data) if end < 0 else end))
        return Selection(selected, lines)


def _add_line_starts(haystack: bytes, pattern: re.Pattern[bytes], starts: set[int], offset: int = 0) -> None:
    """Add the start offset of every line of ``haystack`` in which ``pattern`` matches ``offset`` bytes before it."""
    match = pattern.search(haystack)
    while match:
        position = match.start() + offset
        starts.add(haystack.rfind(b"\n", 0, position) + 1)
        # The rest of this line cannot add another start.
        end = haystack.find(b"\n", position)
        if end < 0:
            return
        match = pattern.search(haystack, end + 1 - offset)
