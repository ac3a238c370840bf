"""Read an uncompressed file in large blocks of whole lines, preparing the next block on a second thread.

A prefiltered hunt reads every byte of a file but parses only a few lines,
so its speed is that of reading, case folding and searching the bytes.
``BlockReader`` keeps two buffers and fills one on a worker thread while the
caller searches the other. The worker's steps (``readinto``, NumPy's case
folding and newline search) release the GIL, so they run on the second core
while the caller's regular expression searches hold it. The buffers are
reused, because on the machine in BENCHMARKS.md faulting in fresh pages for
a block took longer than reading the block from the page cache.

The worker needs the GIL back after each of its steps, and while the caller
searches, Python hands it over only after the switch interval, 5 ms by
default. So ``BlockReader`` lowers that interval while it runs.
"""

from __future__ import annotations

import mmap
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from proxyhunt.formats.prefilter import BlockIndex, LinePrefilter

UTF8_BOM = b"\xef\xbb\xbf"

# The switch interval while blocks are read, in seconds. With Python's 5 ms, the
# worker waited for the GIL after each of its steps, so the two threads took
# turns: a seed-rule hunt of a 1 GB log used one CPU second per second. At
# 0.2 ms the hunt took 10 to 20% less time (see BENCHMARKS.md).
SWITCH_INTERVAL = 0.0002

# Reads ``len(view)`` bytes at most into ``view`` and returns the count, 0 at
# the end of the file, or None after a read error.
ReadInto = Callable[[memoryview], "int | None"]


class Block:
    """A reusable buffer: ``data[:end]`` contains whole lines, ``data[end:filled]`` the start of the next line.

    ``index`` is the prefilter's ``BlockIndex`` of ``data[:end]``, written
    into the reusable buffers ``folded``, ``newlines`` and ``scratch``. ``last`` is true
    for the final block, and ``read_failed`` when it ends because a read failed.
    """

    def __init__(self, size: int) -> None:
        self._allocate(size)
        self.end = 0
        self.filled = 0
        self.index: BlockIndex | None = None
        self.last = False
        self.read_failed = False

    def _allocate(self, size: int) -> None:
        # Anonymous maps, unlike bytearray(size), are not zero-filled up front:
        # a page is faulted in only when it is first written, so reading a
        # small file does not fault in whole blocks. Like bytearray, they have
        # find() and rfind() and can be searched with re.
        self.data = mmap.mmap(-1, size)
        self.view = memoryview(self.data)
        self.folded = mmap.mmap(-1, size)
        self.newlines = np.empty(size, dtype=np.bool_)
        self.scratch = np.empty(size, dtype=np.bool_)

    def grow(self) -> None:
        """Double the buffer, keeping its filled bytes, for a line longer than the buffer."""
        filled = bytes(self.data[: self.filled])
        self.view.release()
        self._allocate(2 * len(self.data))
        self.data[: len(filled)] = filled

    @property
    def tail(self) -> memoryview:
        """The incomplete line after ``end``, which the next block starts with."""
        return self.view[self.end : self.filled]


class _SharedSwitchInterval:
    """Python's switch interval, lowered to SWITCH_INTERVAL while any block reader runs.

    Readers may run at the same time in threads of one process, so the first
    to start saves the process's interval and the last to end restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._saved = 0.0

    @contextmanager
    def lowered(self) -> Iterator[None]:
        with self._lock:
            if self._readers == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, SWITCH_INTERVAL))
            self._readers += 1
        try:
            yield
        finally:
            with self._lock:
                self._readers -= 1
                if self._readers == 0:
                    sys.setswitchinterval(self._saved)


_switch_interval = _SharedSwitchInterval()


@dataclass
class BlockReader:
    """Iterate over the blocks of one file, whose first bytes, already read, are ``head``.

    A UTF-8 byte-order mark at the start of the file is dropped. A block
    yielded to the caller stays unchanged until the caller asks for the next
    one, so the caller must copy what it keeps.
    """

    read_into: ReadInto
    block_bytes: int
    line_filter: LinePrefilter
    head: bytes = b""

    def __iter__(self) -> Iterator[Block]:
        blocks = [Block(self.block_bytes), Block(self.block_bytes)]
        with _switch_interval.lowered(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="proxyhunt-read") as worker:
            pending = worker.submit(self._fill, blocks[0], None)
            index = 0
            while pending is not None:
                block = pending.result()
                pending = None
                if not block.last:
                    index = 1 - index
                    pending = worker.submit(self._fill, blocks[index], block)
                if block.end or block.filled:
                    yield block

    def _fill(self, block: Block, previous: Block | None) -> Block:
        """Fill ``block`` with the tail of ``previous`` and the next bytes of the file, then fold and index it."""
        if previous is None:
            start = self.head[len(UTF8_BOM) :] if self.head.startswith(UTF8_BOM) else self.head
            while len(start) > len(block.data):
                block.grow()
            block.data[: len(start)] = start
            block.filled = len(start)
        else:
            tail = previous.tail
            while len(tail) >= len(block.data):
                block.grow()
            block.data[: len(tail)] = tail
            block.filled = len(tail)
        block.last = block.read_failed = False

        cut = -1
        while True:
            count = self.read_into(block.view[block.filled :]) if block.filled < len(block.data) else 0
            if count is None:
                block.last = block.read_failed = True
                break
            block.filled += count
            if block.filled < len(block.data) and count == 0:
                block.last = True
                break
            if block.filled == len(block.data):
                cut = block.data.rfind(b"\n", 0, block.filled)
                if cut >= 0:
                    break
                block.grow()

        if block.last and not block.read_failed:
            block.end = block.filled
        else:
            # After a failed read the last line is incomplete, so the caller sets it aside.
            cut = block.data.rfind(b"\n", 0, block.filled) if cut < 0 else cut
            block.end = cut + 1
        block.index = self.line_filter.index(block.data, block.end, block.folded, block.newlines, block.scratch)
        return block
