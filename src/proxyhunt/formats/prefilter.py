"""Select the lines of a block of raw bytes that may match the rules, before any parsing.

A ``LinePrefilter`` keeps a line when its lowercased bytes contain one of the
rules' literals (see ``proxyhunt.engines.prefilter``), and also, because the
reader may still need them or the literal may be hidden from a byte search:

- every line where a literal may be written with escape sequences that the
  reader decodes, such as ``rclone%2Fv`` or ``\\x52clone/v``, which means an
  escaped character of a literal next to the literal's neighbouring character;
- every line that contains, raw or escaped, a non-ASCII character that
  DuckDB's ``lower()`` turns into an ASCII letter of a literal (see
  ``FOLDED_INTO_ASCII``), because ``bytes.lower`` folds only ASCII;
- every line that starts with one of the format's header prefixes, such as
  Zeek's ``#fields``;
- every line up to ``keep_through_line``, so that the columns a file fills
  and its CONNECT share are still known from a sample.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache, cached_property

import numpy as np

from proxyhunt.formats.literal_scan import LiteralScanner, LineMatches, literal_scanner

# The byte buffers that a block can be in. A reader's reusable blocks are anonymous maps.
Buffer = bytes | bytearray | mmap.mmap

# Above this share of kept lines, splitting every line is cheaper than picking lines one by one.
MAX_KEPT_SHARE = 0.25
# A Hyperscan scan of a block stops after MATCHES_PER_LINE matches per line
# of the block, plus FREE_MATCHES, and the block is parsed whole. Logs that
# are not built to repeat literals have far fewer matches than lines.
MATCHES_PER_LINE = 2
FREE_MATCHES = 4096

# Setting this bit maps each ASCII capital letter to its lowercase letter.
CASE_BIT = 0x20
NEWLINE = ord("\n")
# A block is searched by jumping from one occurrence of a pattern's first byte
# to the next, as long as the occurrences that fail to match are at least this
# many bytes apart on average. The first FREE_MISSES of them are not counted.
# After that, re.search takes over. The value is a rough estimate, measured
# with CPython 3.11 on the benchmark's Squid logs, where ``%`` starts most escapes.
MIN_BYTES_PER_MISS = 256
FREE_MISSES = 64
# A regular expression search holds the GIL for as long as it runs, and the
# reader's worker thread needs the GIL between its NumPy steps on the next
# block. So a block is searched in windows of this many bytes: one search of
# a whole block of 32 MiB, at about 3 GB/s, kept the worker waiting for about 10 ms.
SEARCH_WINDOW = 1 << 20

# The non-ASCII characters whose lowercase form under DuckDB's ``lower()``, which
# the backend applies to both sides of a case-insensitive match, contains an
# ASCII character: U+0130 (Latin capital I with dot above) and U+212A (Kelvin
# sign). A brute-force test over every code point checks this against the
# installed DuckDB (2.0.1 here, where U+017F, the long s, stays as it is).
FOLDED_INTO_ASCII = {"\u0130": "i", "\u212a": "k"}


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

    def suffixes(self, character: str, folded: bool = False) -> list[bytes]:
        """Return the regular expressions for what follows ``prefix`` in the forms that decode to ``character``.

        Both cases of a letter count, and the expressions are for lowercased
        bytes, or with ``folded`` for bytes folded as ``LinePrefilter.index``
        folds them.
        """
        return list(_escape_suffixes(self, character, folded))

    def pattern(
        self, literals: Iterable[str], escapes: Iterable[Escape], folded: bool = False
    ) -> re.Pattern[bytes] | None:
        """Return a regular expression that finds a literal written with this escape for one of its characters.

        A literal hidden behind escapes has an escaped character, and either a
        next character (plain or escaped by any of ``escapes``) or, for its last
        character, a previous one. The expression requires both, so an escape
        of a literal's character elsewhere in the line, such as the ``%2F`` of
        ``?next=%2Fhome``, does not keep the line. ``literals`` are lowercase.
        None means that this escape cannot hide any of them.
        """
        escapes = list(escapes)
        prefix = _regex_bytes(self.prefix.lower(), folded)
        alternatives = []
        for literal in literals:
            for position, character in enumerate(literal):
                for suffix in self.suffixes(character, folded):
                    if position + 1 < len(literal):
                        alternatives.append(suffix + _any_form(literal[position + 1], escapes, folded))
                    else:
                        # The prefix has been read, so the bytes before it are the previous character and the prefix.
                        previous = _regex_bytes(literal[position - 1].encode("ascii"), folded)
                        alternatives.append(b"(?<=" + previous + prefix + b")" + suffix)
        if not alternatives:
            return None
        return re.compile(prefix + b"(?:" + b"|".join(sorted(set(alternatives))) + b")", re.DOTALL)


@cache
def _escape_suffixes(escape: Escape, character: str, folded: bool) -> tuple[bytes, ...]:
    variants = sorted({character, character.upper()})
    if escape.hex_byte:
        return tuple(_regex_bytes(f"{ord(variant):02x}".encode("ascii"), folded) for variant in variants)
    if any(variant in escape.produces for variant in variants):
        return (b".",)
    return ()


def _any_form(character: str, escapes: list[Escape], folded: bool) -> bytes:
    """Return a regular expression for ``character`` written plainly, in either case, or with any of ``escapes``."""
    return _cached_any_form(character, tuple(escapes), folded)


# A rule with thousands of values needs the forms of the same few characters hundreds of thousands of times.
@cache
def _cached_any_form(character: str, escapes: tuple[Escape, ...], folded: bool) -> bytes:
    forms = [_regex_bytes(character.lower().encode("ascii"), folded)]
    for escape in escapes:
        prefix = _regex_bytes(escape.prefix.lower(), folded)
        forms += [prefix + suffix for suffix in escape.suffixes(character, folded)]
    return b"(?:" + b"|".join(forms) + b")"


def _first_token(pattern: bytes) -> bytes:
    """Return the leading byte of a regular expression that starts with a literal byte, with its backslash if escaped."""
    return pattern[:2] if pattern[:1] == b"\\" else pattern[:1]


def _merged_by_first_byte(patterns: list[re.Pattern[bytes]], flags: int = 0) -> tuple[re.Pattern[bytes], ...]:
    """Merge the expressions that start with the same literal byte into one, so a block is scanned once per byte.

    Each merged expression matches where one of its parts matches, and it
    still starts with that byte, as ``_match_positions`` needs.
    """
    groups: dict[bytes, list[bytes]] = {}
    for pattern in patterns:
        first = _first_token(pattern.pattern)
        groups.setdefault(first, []).append(pattern.pattern[len(first) :])
    return tuple(
        re.compile(first + b"(?:" + b"|".join(sorted(set(rests))) + b")", re.DOTALL | flags)
        for first, rests in sorted(groups.items())
    )


def _folding_patterns(literals: list[str], escapes: list[Escape], folded: bool) -> list[re.Pattern[bytes]]:
    """Return regular expressions that find the characters of ``FOLDED_INTO_ASCII`` that fold into a letter of ``literals``.

    Each UTF-8 byte of such a character may be raw or written with a hex-byte
    escape, because the reader decodes the bytes before the rules see them.
    Each expression starts with a plain byte, which ``_match_positions``
    needs, so there is one expression per form of the first byte.
    """
    letters = set("".join(literals))
    hex_prefixes = [escape.prefix.lower() for escape in escapes if escape.hex_byte]
    patterns = []
    for character, letter in sorted(FOLDED_INTO_ASCII.items()):
        if letter not in letters:
            continue
        forms = [
            [_regex_bytes(bytes([byte]), folded)]
            + [_regex_bytes(prefix + f"{byte:02x}".encode("ascii"), folded) for prefix in hex_prefixes]
            for byte in character.encode("utf-8")
        ]
        rest = b"".join(b"(?:" + b"|".join(byte_forms) + b")" for byte_forms in forms[1:])
        patterns += [re.compile(first + rest, re.DOTALL) for first in forms[0]]
    return patterns


def _regex_bytes(data: bytes, folded: bool) -> bytes:
    """Return the regular expression that matches ``data``, folded first when ``folded`` is true."""
    return re.escape(_fold(data) if folded else data)


@dataclass(frozen=True)
class Selection:
    """The lines a prefilter kept from a block: (line number, start, end) of each, and the block's line count."""

    kept: list[tuple[int, int, int]]
    lines: int


@dataclass(frozen=True)
class BlockIndex:
    """The facts about a block that ``LinePrefilter.select`` needs, computed by ``LinePrefilter.index``.

    ``folded`` is the block with bit 0x20 set in every byte, or None when
    Hyperscan searches the raw block. ``newlines`` marks each newline byte,
    and ``newline_count`` counts them. ``header_starts`` are the offsets of
    the lines that start with the first byte of a header prefix.
    """

    folded: Buffer | None
    newlines: np.ndarray
    header_starts: np.ndarray
    newline_count: int


@dataclass(frozen=True)
class LinePrefilter:
    """The byte patterns that make a line worth parsing.

    ``patterns`` are searched in a lowercased line: one per literal, and one
    per escape that could hide a literal (see ``Escape.pattern``). ``folded_patterns`` are
    the same patterns for a block folded as ``BlockIndex.folded`` is. Two
    bytes that ``bytes.lower`` maps to the same byte also fold to the same
    byte, so every line that a pattern matches once lowercased contains a
    match of the folded pattern. The reverse does not hold (``@`` folds to a
    backtick), so such a line is only a candidate until its lowercased bytes
    are searched.

    ``required`` contains, for each rule, the sets of literals that the rule's
    events contain one of (see ``proxyhunt.engines.prefilter.rule_clauses``).
    When it is set, a candidate line is kept only if it contains a literal of
    every set of some rule. ``pattern_rules`` names, for each of
    ``folded_patterns``, the rules whose lines it can find, or None for all.

    Where Hyperscan is installed, a block is not folded. It is searched for
    ``literals`` in one pass that ignores ASCII case, and for ``raw_others``,
    the escape and folding patterns merged by first byte, with ``re``
    ignoring ASCII case. Both find exactly what ``patterns`` find in the
    lowercased block. Elsewhere the folded block is searched with
    ``folded_patterns``.
    """

    patterns: tuple[re.Pattern[bytes], ...]
    folded_patterns: tuple[re.Pattern[bytes], ...] = ()
    header_prefixes: tuple[bytes, ...] = ()
    keep_through_line: int = 0
    required: tuple[tuple[RequiredSet, ...], ...] = ()
    pattern_rules: tuple[tuple[int, ...] | None, ...] = ()
    literals: tuple[bytes, ...] = ()
    raw_others: tuple[re.Pattern[bytes], ...] = ()

    @cached_property
    def any_pattern(self) -> re.Pattern[bytes] | None:
        """One expression that matches where any of ``patterns`` matches, so a candidate line is searched once."""
        if not self.patterns:
            return None
        return re.compile(b"|".join(b"(?:" + pattern.pattern + b")" for pattern in self.patterns), re.DOTALL)

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
        escapes = list(escapes)
        encoded = [literal.encode("ascii") for literal in lowered]
        others = [escape.pattern(lowered, escapes) for escape in escapes]
        others += _folding_patterns(lowered, escapes, folded=False)
        others = [pattern for pattern in others if pattern is not None]
        patterns = [re.compile(_regex_bytes(literal, folded=False)) for literal in encoded] + others

        folded = [re.compile(_regex_bytes(literal, folded=True)) for literal in encoded]
        folded += [escape.pattern(lowered, escapes, folded=True) for escape in escapes]
        folded += _folding_patterns(lowered, escapes, folded=True)
        return cls(
            tuple(patterns),
            _merged_by_first_byte([pattern for pattern in folded if pattern is not None]),
            tuple(header_prefixes),
            keep_through_line,
            literals=tuple(encoded),
            # Matching a lowercase pattern while ignoring ASCII case is matching it in the lowercased bytes.
            raw_others=_merged_by_first_byte(others, re.IGNORECASE),
        )

    @classmethod
    def from_clauses(
        cls,
        rules: Iterable[Sequence[Iterable[str]]],
        escapes: Iterable[Escape] = (),
        header_prefixes: Iterable[bytes] = (),
        keep_through_line: int = 0,
    ) -> LinePrefilter:
        """Build a prefilter from each rule's sets of literals, the most selective set first.

        The block search looks for the first set of every rule, and a line it
        finds is kept when it contains a literal of every set of some rule.
        """
        rules = [[frozenset(literal.lower() for literal in clause) for clause in clauses] for clauses in rules]
        escapes = list(escapes)
        searched = without_longer({literal for clauses in rules for literal in clauses[0]})
        prefilter = cls.build(searched, escapes, header_prefixes, keep_through_line)
        # A rule with one set needs no second look: the search already found a literal of it.
        if all(len(clauses) == 1 for clauses in rules):
            return prefilter

        required = tuple(tuple(RequiredSet.build(clause, escapes) for clause in clauses) for clauses in rules)
        # A line found by a pattern that starts with a literal's byte can meet only the rules whose first
        # set has that literal or one that contains it. Escape and folding patterns may find any rule's,
        # and each starts with an escape prefix or with the first UTF-8 byte of a folding character.
        any_rule = {_fold(escape.prefix.lower())[:1] for escape in escapes}
        any_rule |= {_fold(character.encode("utf-8")[:1]) for character in FOLDED_INTO_ASCII}
        rules_by_byte: dict[bytes, set[int]] = {}
        for number, clauses in enumerate(rules):
            for literal in clauses[0]:
                for found in (other for other in searched if other in literal):
                    rules_by_byte.setdefault(_fold(found.encode("ascii"))[:1], set()).add(number)
        pattern_rules = tuple(
            None if first in any_rule else tuple(sorted(rules_by_byte.get(first, ())))
            for first in (_first_token(pattern.pattern)[-1:] for pattern in prefilter.folded_patterns)
        )
        return replace(prefilter, required=required, pattern_rules=pattern_rules)

    def index(
        self,
        data: Buffer,
        end: int,
        folded_out: Buffer | None = None,
        newlines_out: np.ndarray | None = None,
        scratch: np.ndarray | None = None,
    ) -> BlockIndex:
        """Index ``data[:end]`` for ``select``, writing into the reusable buffers when they are given.

        ``folded_out`` is a writable buffer, ``newlines_out`` and ``scratch`` boolean
        arrays, each of at least ``end`` items. Every step runs in NumPy, which
        releases the GIL, so a reader can index the next block on another thread
        while ``select`` searches this one. Reusing the buffers saves faulting
        in fresh pages for every block, which costs more than the work itself.
        """
        source = np.frombuffer(data, dtype=np.uint8, count=end)
        folded = None
        if self._scanner is None:
            folded = bytearray(end) if folded_out is None else folded_out
            np.bitwise_or(source, CASE_BIT, out=np.frombuffer(folded, dtype=np.uint8, count=end))
        newlines = np.equal(source, NEWLINE, out=None if newlines_out is None else newlines_out[:end])

        header_starts = np.empty(0, dtype=np.int64)
        first_bytes = sorted({prefix[0] for prefix in self.header_prefixes})
        # Hyperscan finds the header lines itself, in the same pass as the literals.
        if first_bytes and end and self._scanner is None:
            # The bytes that start header lines are rare in other lines, so their
            # offsets are found first and kept where a newline precedes them.
            # That takes two passes over the block instead of four.
            is_first_byte = np.empty(end, dtype=np.bool_) if scratch is None else scratch[:end]
            np.equal(source, first_bytes[0], out=is_first_byte)
            for byte in first_bytes[1:]:
                is_first_byte |= source == byte
            candidates = np.flatnonzero(is_first_byte)
            after_newline = source[np.maximum(candidates - 1, 0)] == NEWLINE
            header_starts = candidates[(candidates == 0) | after_newline]
        # Counted here, on the reader's worker thread, and not in select, which runs on the main thread.
        return BlockIndex(folded, newlines, header_starts, int(np.count_nonzero(newlines)))

    def select(
        self, data: Buffer, first_line: int, end: int | None = None, index: BlockIndex | None = None
    ) -> Selection | None:
        """Return the kept lines of ``data[:end]`` in order, or None when so many are kept that all should be.

        ``data[:end]`` contains whole lines, the first numbered ``first_line``.
        The last line may lack its newline, and a line's ``end`` excludes the
        newline. ``index`` is ``self.index(data, end)``, computed here unless
        it is passed in.
        """
        end = len(data) if end is None else end
        index = self.index(data, end) if index is None else index

        lines = index.newline_count + (0 if end == 0 or data[end - 1] == NEWLINE else 1)
        scan = None
        if self._scanner is not None:
            # Past either limit the block is parsed whole, which is always exact. Without required
            # sets every line with a literal is kept, so twice as many as could be picked is enough.
            # A line that repeats a literal may hold millions of matches, each a call into Python.
            max_lines = None
            if not self.required:
                max_lines = int(2 * MAX_KEPT_SHARE * lines) + max(0, self.keep_through_line - first_line + 1)
            max_matches = MATCHES_PER_LINE * lines + FREE_MATCHES
            scan = self._scanner.scan_lines(data, end, max_lines=max_lines, max_matches=max_matches)
            if scan.too_many:
                return None
        starts = self._literal_line_starts(data, end, index.folded, scan)
        starts |= self._header_line_starts(data, end, index, scan)

        # The share of kept lines is judged without the sample, which is kept whatever it holds.
        sample: set[int] = set()
        position = 0
        for _ in range(max(0, min(self.keep_through_line - first_line + 1, lines))):
            sample.add(position)
            position = data.find(b"\n", position, end) + 1
        if len(starts - sample) > MAX_KEPT_SHARE * (lines - len(sample)):
            return None
        starts |= sample

        selected = []
        number = first_line
        previous = 0
        for start in sorted(starts):
            number += int(np.count_nonzero(index.newlines[previous:start]))
            previous = start
            stop = data.find(b"\n", start, end)
            selected.append((number, start, end if stop < 0 else stop))
        return Selection(selected, lines)

    def _header_line_starts(self, data: Buffer, end: int, index: BlockIndex, scan: LineMatches | None) -> set[int]:
        """Return the start offset of every line that starts with one of ``header_prefixes``."""
        if scan is not None:
            return set(scan.headers)

        starts = set()
        for start in index.header_starts.tolist():
            for prefix in self.header_prefixes:
                if start + len(prefix) <= end and data[start : start + len(prefix)] == prefix:
                    starts.add(start)
        return starts

    def _literal_line_starts(self, data: Buffer, end: int, folded: Buffer | None, scan: LineMatches | None) -> set[int]:
        """Return the start offset of every line whose lowercased bytes match one of ``patterns``.

        The folded patterns nominate candidate lines, and each candidate is
        lowercased and searched with the exact patterns. So the result is the
        same as searching a lowercased copy of the whole block.
        """
        starts: set[int] = set()
        # A line that one pattern's rules do not keep may still meet the rules of another
        # pattern, so with required sets a line is checked once per first byte.
        checked: set[tuple[bytes, int]] = set()
        for first, position in self._candidates(data, end, folded, scan):
            start = data.rfind(b"\n", 0, position) + 1
            key = (first if self.required else b"", start)
            if key in checked or start in starts:
                continue
            checked.add(key)

            stop = data.find(b"\n", position, end)
            line = bytes(data[start : end if stop < 0 else stop]).lower()
            if self._keeps(line, self._rules_by_first_byte.get(first)):
                starts.add(start)
        return starts

    def _candidates(
        self, data: Buffer, end: int, folded: Buffer | None, scan: LineMatches | None
    ) -> Iterator[tuple[bytes, int]]:
        """Yield (folded first byte, offset) for matches, at least one for each line and pattern that match.

        ``scan`` is what Hyperscan found in the raw block, or None when the
        folded block is searched with ``re``.
        """
        if scan is None:
            for pattern in self.folded_patterns:
                first = _first_token(pattern.pattern)[-1:]
                for position in _match_positions(pattern, folded, data, end):
                    yield first, position
            return

        first_bytes = self._literal_first_bytes
        for number, position in scan.literals:
            yield first_bytes[number], position
        for pattern in self.raw_others:
            first = _fold(_first_token(pattern.pattern)[-1:])
            for position in _match_positions(pattern, data, data, end):
                yield first, position

    @cached_property
    def _scanner(self) -> LiteralScanner | None:
        """The Hyperscan search for ``literals`` and the header lines, or None to search the folded block with ``re``."""
        # A line is tested once for the rules of each first byte, so the literals are grouped by it.
        groups = [first[0] for first in self._literal_first_bytes]
        return literal_scanner(self.literals, caseless=True, line_prefixes=self.header_prefixes, groups=groups)

    @cached_property
    def _literal_first_bytes(self) -> tuple[bytes, ...]:
        """The folded first byte of each of ``literals``, which names its rules in ``_rules_by_first_byte``."""
        return tuple(_fold(literal[:1]) for literal in self.literals)

    @cached_property
    def _rules_by_first_byte(self) -> dict[bytes, tuple[int, ...] | None]:
        """The rules that a match starting with each byte can find, as ``pattern_rules`` gives them per pattern."""
        return {
            _first_token(pattern.pattern)[-1:]: rules for pattern, rules in zip(self.folded_patterns, self.pattern_rules)
        }

    def _keeps(self, line: bytes, rules: tuple[int, ...] | None) -> bool:
        """Return whether the lowercased ``line`` is worth parsing, testing only the ``required`` sets of ``rules`` (None for all)."""
        if not self.required:
            return self.any_pattern.search(line) is not None
        candidates = range(len(self.required)) if rules is None else rules
        return any(all(required.found_in(line) for required in self.required[rule]) for rule in candidates)


def without_longer(literals: Iterable[str]) -> frozenset[str]:
    """Return the literals that contain no other one of them, since a line with a longer one also has the shorter."""
    literals = set(literals)
    lengths = sorted({len(literal) for literal in literals})

    # Each literal's substrings of the lengths that occur are looked up in the set, which
    # takes a few thousand lookups for thousands of domain names, not one test per pair.
    def contains_other(literal: str) -> bool:
        return any(
            literal[start : start + length] in literals
            for length in lengths
            if length < len(literal)
            for start in range(len(literal) - length + 1)
        )

    return frozenset(literal for literal in literals if not contains_other(literal))


@dataclass(frozen=True)
class RequiredSet:
    """A set of literals of which a line must contain one, plainly or in a form that the reader decodes.

    ``literals`` are lowercase ASCII bytes. ``hidden`` is the expression
    for their escaped forms and for the non-ASCII characters that fold into
    their letters, each of which starts with one of ``markers``, so a line
    without a marker is not searched with it.
    """

    literals: frozenset[bytes]
    hidden: bytes | None
    markers: tuple[bytes, ...]

    @classmethod
    def build(cls, literals: Iterable[str], escapes: list[Escape]) -> RequiredSet:
        """Build the set for lowercase ASCII ``literals`` and the format's ``escapes``."""
        literals = sorted(literals)
        parts = [pattern.pattern for pattern in (escape.pattern(literals, escapes) for escape in escapes) if pattern is not None]
        parts += [pattern.pattern for pattern in _folding_patterns(literals, escapes, folded=False)]
        letters = set("".join(literals))
        markers = {escape.prefix.lower() for escape in escapes}
        markers |= {character.encode("utf-8")[:1] for character, letter in FOLDED_INTO_ASCII.items() if letter in letters}
        hidden = b"|".join(b"(?:" + part + b")" for part in parts) if parts else None
        return cls(frozenset(literal.encode("ascii") for literal in literals), hidden, tuple(sorted(markers)))

    @cached_property
    def hidden_pattern(self) -> re.Pattern[bytes] | None:
        """``hidden`` compiled on first use, since most lines have no marker and a hunt need never compile it."""
        return None if self.hidden is None else re.compile(self.hidden, re.DOTALL)

    def found_in(self, line: bytes) -> bool:
        """Return whether the lowercased ``line`` contains one of the literals in any form."""
        if any(literal in line for literal in self.literals):
            return True
        if self.hidden is None or not any(marker in line for marker in self.markers):
            return False
        return self.hidden_pattern.search(line) is not None


@cache
def _max_width(pattern: re.Pattern[bytes]) -> int | None:
    """Return the most bytes a match of ``pattern`` can span, or None when that has no bound."""
    # NOTE: re._parser is CPython's own parser; it is private, so any failure means no bound.
    try:
        width = re._parser.parse(pattern.pattern, pattern.flags).getwidth()[1]
    except Exception:  # noqa: BLE001 - any failure of a private API only turns the windows off
        return None
    return width if width < re._constants.MAXREPEAT else None


def _search(pattern: re.Pattern[bytes], haystack: Buffer, position: int, end: int, width: int | None) -> re.Match | None:
    """Return the first match of ``pattern`` in ``haystack[position:end]``, searching SEARCH_WINDOW bytes at a time.

    Consecutive windows overlap by ``width - 1`` bytes, so a match that
    starts in one window and ends in the next is still found whole.
    """
    if width is None:
        return pattern.search(haystack, position, end)
    while True:
        stop = min(end, position + SEARCH_WINDOW + width - 1)
        match = pattern.search(haystack, position, stop)
        if match or stop == end:
            return match
        position += SEARCH_WINDOW


def _match_positions(
    pattern: re.Pattern[bytes], haystack: Buffer, data: Buffer, end: int
) -> Iterator[int]:
    """Yield the start of every match of ``pattern`` in ``haystack[:end]``, at most one per line of ``data``.

    ``haystack`` is ``data``, or ``data`` folded, where a newline no longer
    reads as one.

    While the pattern's first byte is rare, jumping from one occurrence of it
    to the next with ``find`` (a memchr) and matching there is many times
    faster than ``re.search``, which tests every position. Once occurrences
    that do not match come more often than MIN_BYTES_PER_MISS, the rest of
    the haystack is searched with ``re.search``.
    """
    first = _first_token(pattern.pattern)[-1:]
    position = 0
    misses = 0
    # A pattern that ignores case may start with the other case of a letter, which find would skip.
    jumps = not (pattern.flags & re.IGNORECASE and first.isalpha())
    while jumps and (misses < FREE_MISSES or misses * MIN_BYTES_PER_MISS < position):
        position = haystack.find(first, position, end)
        if position < 0:
            return
        if pattern.match(haystack, position, end):
            yield position
            position = _next_line(data, position, end)
        else:
            misses += 1
            position += 1
    width = _max_width(pattern)
    match = _search(pattern, haystack, position, end, width)
    while match:
        yield match.start()
        match = _search(pattern, haystack, _next_line(data, match.start(), end), end, width)


def _next_line(data: Buffer, position: int, end: int) -> int:
    """Return the offset after the next newline at or after ``position``, or ``end`` when there is none."""
    newline = data.find(b"\n", position, end)
    return end if newline < 0 else newline + 1


def _fold(data: bytes) -> bytes:
    """Return ``data`` with bit 0x20 set in every byte, as ``LinePrefilter.index`` folds a block."""
    return bytes(byte | CASE_BIT for byte in data)
