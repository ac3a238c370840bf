"""Split a JSON array that spans many lines, as Log Analytics exports it, into one record per element.

An element keeps the number of the line it starts on as its ``SourceLine``
and its own text as ``RawEvent``. Its other lines, and the lines that contain only
``[``, ``]`` or ``,``, are counted as skipped. An element that is not valid
JSON is rejected line by line, and reading goes on at the next line that
starts an object. An array cut off in the middle rejects the lines of its
incomplete last element.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field

import pyarrow as pa

_WHITESPACE = re.compile(r"\s*")
_OBJECT_START = re.compile(r"\s*[\[{]")
_DECODER = json.JSONDecoder()


@dataclass
class SplitResult:
    """Records found in one batch, and the lines rejected while looking for them."""

    records: list[tuple[int, str]] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)

    def records_table(self) -> pa.Table:
        """Return the records as a ``lines`` table of SourceLine and RawEvent."""
        return pa.table(
            {
                "SourceLine": pa.array([number for number, _ in self.records], type=pa.int64()),
                "RawEvent": pa.array([text for _, text in self.records], type=pa.string()),
            }
        )

    def rejected_table(self) -> pa.Table:
        """Return the rejected lines as a table of SourceLine, RawEvent and _reject."""
        return pa.table(
            {
                "SourceLine": pa.array([number for number, _, _ in self.rejected], type=pa.int64()),
                "RawEvent": pa.array([text for _, text, _ in self.rejected], type=pa.string()),
                "_reject": pa.array([reason for _, _, reason in self.rejected], type=pa.string()),
            }
        )


class JsonArraySplitter:
    """Reads the elements of top-level JSON arrays from consecutive batches of lines.

    ``skipped_lines`` counts the lines that hold no record start. When several
    elements start on one line, as in a compact one-line array, each is a
    record with that line's number. ``skipped_lines`` is then lowered by one
    for each record beyond the first, so that parsed + rejected + skipped
    stays the number of lines read.
    """

    def __init__(self) -> None:
        self.text = ""
        # Offsets in ``text`` where lines start, and the number of the line at offset 0.
        self.line_starts: list[int] = [0]
        self.first_line = 1
        self.lines: list[str] = []
        self.position = 0
        self.in_array = False
        # The first line not yet counted as a record, a skipped line or a rejected line.
        self.next_uncounted: int | None = None
        self.skipped_lines = 0
        self.last_line = 0

    def feed(self, numbers: list[int], texts: list[str]) -> SplitResult:
        """Add a batch of consecutive lines and return the records completed by it."""
        if not numbers:
            return SplitResult()
        if self.next_uncounted is None:
            self.next_uncounted = numbers[0]
        self._append(numbers, texts)
        return self._scan()

    def finish(self) -> SplitResult:
        """Return what is left at the end of the file: an incomplete element is rejected."""
        result = self._scan()
        if self.next_uncounted is not None:
            last_line = self.last_line
            if self.position < len(self.text.rstrip()):
                start = self._line_of(self.position)
                self._count_skipped(start)
                reason = f"JSON array cut off: the element that starts on line {start} is incomplete"
                self._reject_lines(result, start, last_line, reason)
            else:
                self._count_skipped(last_line + 1)
        return result

    def _append(self, numbers: list[int], texts: list[str]) -> None:
        if not self.text:
            self.first_line = numbers[0]
            self.line_starts = []
            self.lines = []
        offset = len(self.text)
        pieces = []
        for text in texts:
            self.line_starts.append(offset)
            pieces.append(text)
            pieces.append("\n")
            offset += len(text) + 1
        self.lines.extend(texts)
        self.last_line = numbers[-1]
        self.text += "".join(pieces)

    def _line_of(self, position: int) -> int:
        return self.first_line + bisect.bisect_right(self.line_starts, position) - 1

    def _line_text(self, number: int) -> str:
        return self.lines[number - self.first_line]

    def _count_skipped(self, before_line: int) -> None:
        """Count the uncounted lines before ``before_line`` as skipped."""
        assert self.next_uncounted is not None
        if before_line > self.next_uncounted:
            self.skipped_lines += before_line - self.next_uncounted
            self.next_uncounted = before_line

    def _reject_lines(self, result: SplitResult, first: int, last: int, reason: str) -> None:
        assert self.next_uncounted is not None
        for number in range(max(first, self.next_uncounted), last + 1):
            result.rejected.append((number, self._line_text(number), reason))
        self.next_uncounted = max(self.next_uncounted, last + 1)

    def _scan(self) -> SplitResult:
        result = SplitResult()
        text = self.text
        end = len(text)
        position = self.position
        while True:
            position = _WHITESPACE.match(text, position).end()
            if position >= end:
                break
            character = text[position]
            if not self.in_array:
                if character == "[":
                    self.in_array = True
                    position += 1
                    continue
                # Text outside any array: reject its line and go on at the next line.
                line = self._line_of(position)
                self._count_skipped(line)
                self._reject_lines(result, line, line, "text outside the JSON array")
                position = self._next_line_start(line)
                continue
            if character == ",":
                position += 1
                continue
            if character == "]":
                self.in_array = False
                position += 1
                continue
            try:
                _, element_end = _DECODER.raw_decode(text, position)
            except json.JSONDecodeError as error:
                if error.pos >= len(text.rstrip()):
                    # The element continues in the next batch, or, at the end, finish() rejects it.
                    break
                position = self._reject_invalid(result, position, error)
                continue
            except RecursionError:
                position = self._reject_invalid(result, position, None)
                continue
            line = self._line_of(position)
            self._count_record(line)
            result.records.append((line, text[position:element_end]))
            position = element_end
        self._trim(position)
        return result

    def _count_record(self, line: int) -> None:
        assert self.next_uncounted is not None
        if line < self.next_uncounted:
            # A second element on a line that already started one.
            self.skipped_lines -= 1
            return
        self._count_skipped(line)
        self.next_uncounted = line + 1

    def _reject_invalid(self, result: SplitResult, position: int, error: json.JSONDecodeError | None) -> int:
        """Reject the lines of an invalid element and return where reading goes on: the next line that starts an object."""
        first = self._line_of(position)
        last = self._line_of(error.pos) if error is not None else first
        detail = f"{error.msg} on line {self._line_of(error.pos)}" if error is not None else "nested too deeply"
        self._count_skipped(first)
        reason = f"invalid JSON array element ({detail})"
        number = last + 1
        while number <= self.last_line and not _OBJECT_START.match(self._line_text(number)):
            number += 1
        self._reject_lines(result, first, number - 1, reason)
        return self._next_line_start(number - 1)

    def _next_line_start(self, line: int) -> int:
        index = line + 1 - self.first_line
        return self.line_starts[index] if index < len(self.line_starts) else len(self.text)

    def _trim(self, position: int) -> None:
        """Drop the text before the line that contains ``position``."""
        self.position = position
        if position >= len(self.text):
            self.text = ""
            self.line_starts = [0]
            self.lines = []
            self.position = 0
            return
        index = bisect.bisect_right(self.line_starts, position) - 1
        if index <= 0:
            return
        cut = self.line_starts[index]
        self.text = self.text[cut:]
        self.line_starts = [start - cut for start in self.line_starts[index:]]
        self.lines = self.lines[index:]
        self.first_line += index
        self.position = position - cut
