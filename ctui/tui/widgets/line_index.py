"""Byte offsets of line starts in a log file, kept compactly, so any line can be read alone.

No Textual here: the log widget and its benchmark both use it. Offsets are `array('Q')`
(8 bytes a line), found a chunk at a time with numpy when it is installed (a 1 GB log
scans in about a second) and with `bytes.find` otherwise.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_right
from typing import Any

_np: Any
try:  # numpy comes with mlflow; the pure-Python path keeps this working without it
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only where numpy is absent
    _np = None

#: how much of a file is read (and scanned) at once
CHUNK = 16 * 1024 * 1024
#: the tail read before the full index exists, enough for several screens
TAIL_BYTES = 256 * 1024


def newline_starts(buf: bytes, base: int) -> array:
    """Offsets (base-relative to the file) of the byte after each b"\\n" in `buf`."""
    out = array("Q")
    if _np is not None:
        hits = _np.flatnonzero(_np.frombuffer(buf, dtype=_np.uint8) == 10)
        if hits.size:
            out.frombytes((hits.astype(_np.uint64) + _np.uint64(base + 1)).tobytes())
        return out
    find = buf.find
    pos = find(b"\n")
    while pos >= 0:
        out.append(base + pos + 1)
        pos = find(b"\n", pos + 1)
    return out


class LineIndex:
    """Line starts from `origin` (a line start) up to `size` bytes of the file.

    `complete` is False for an index that starts part-way (the tail read first); its line
    numbers then count from `origin`, not from the top of the file.
    """

    def __init__(self, origin: int = 0, *, complete: bool = True) -> None:
        self.starts = array("Q", [origin])
        self.size = origin
        self.complete = complete

    @property
    def origin(self) -> int:
        return self.starts[0]

    @property
    def line_count(self) -> int:
        n = len(self.starts)
        # a file that ends with "\n" has no line after it; a trailing partial line counts
        return n - 1 if self.starts[-1] == self.size else n

    def extend(self, starts: array, size: int) -> None:
        """Add the line starts found in the bytes up to `size`."""
        self.starts.extend(starts)
        self.size = size

    def span(self, line: int) -> tuple[int, int]:
        """(start, end) bytes of a line, without its newline."""
        start = self.starts[line]
        if line + 1 < len(self.starts):
            return start, self.starts[line + 1] - 1
        return start, self.size

    def line_at(self, offset: int) -> int:
        """The line holding byte `offset`."""
        return max(0, min(bisect_right(self.starts, offset) - 1, self.line_count - 1))


def read_tail_index(fd: int, size: int, tail_bytes: int = TAIL_BYTES) -> LineIndex:
    """An index of the last lines of a file, read from the end (no full scan)."""
    if size <= tail_bytes:
        index = LineIndex(0)
        index.extend(newline_starts(os.pread(fd, size, 0), 0), size)
        return index
    base = size - tail_bytes
    buf = os.pread(fd, tail_bytes, base)
    first = buf.find(b"\n")
    if first < 0:  # one huge line: show its end
        index = LineIndex(base, complete=False)
        index.size = size
        return index
    origin = base + first + 1
    index = LineIndex(origin, complete=False)
    index.extend(newline_starts(buf[first + 1 :], origin), size)
    return index


def scan(fd: int, start: int, end: int, chunk: int = CHUNK) -> array:
    """Line starts found in bytes [start, end) of a file, read a chunk at a time."""
    out = array("Q")
    pos = start
    while pos < end:
        n = min(chunk, end - pos)
        buf = os.pread(fd, n, pos)
        if not buf:
            break
        out.extend(newline_starts(buf, pos))
        pos += len(buf)
    return out
