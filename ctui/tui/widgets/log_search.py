"""What the log pane shows of a file, worked out in its reader thread: search matches, ranks.

No Textual here. A `ViewSpec` says what is asked (a search, only matching lines, one rank);
`scan_view` reads a range of lines a window at a time and answers a `ViewDelta`: the lines
holding a match, the lines of each rank, and the rows to show when a filter is on. The
pane's thread runs it over the whole file once when the spec changes (with progress), then
over each appended batch, so the UI thread never scans.

Matching is on the bytes of the file (a 1 GB log is read in 4 MiB windows by `re` in C):
one Python step per matching line, not per line. Rank prefixes are found the same way and
named by `ctui.logtext.rank_of`, once per distinct prefix.
"""

from __future__ import annotations

import os
import re
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from ctui.logtext import rank_of
from ctui.tui.widgets.line_index import LineIndex

#: bytes read at once while scanning
WINDOW = 4 * 1024 * 1024

#: what a launcher's rank prefix can look like at a line start (named by `rank_of` after)
_PREFIX = re.compile(
    rb"^(?:\x1b\[[0-9;]*m)*(?:\[[A-Za-z_]*\d+(?:,\d+)?\](?:<[a-z]+>)?:|[ \t]*\d{1,6}: )",
    re.MULTILINE,
)


@dataclass(frozen=True)
class LogQuery:
    """A search: a literal `term` (or a regex), smart case unless `match_case`.

    Smart case: a term in lower case matches any case; one with a capital matches exactly.
    """

    term: str
    regex: bool = False
    match_case: bool = False

    @property
    def exact(self) -> bool:
        return self.match_case or self.term != self.term.lower()

    def _flags(self) -> int:
        return re.MULTILINE | (0 if self.exact else re.IGNORECASE)

    def pattern(self) -> re.Pattern[bytes]:
        """The pattern over the file's bytes (raises re.error for a bad regex)."""
        raw = self.term.encode("utf-8", "replace")
        return re.compile(raw if self.regex else re.escape(raw), self._flags())

    def text_pattern(self) -> re.Pattern[str]:
        """The same over a rendered line (to highlight the matches)."""
        return re.compile(self.term if self.regex else re.escape(self.term), self._flags())

    def describe(self) -> str:
        flags = [f for f, on in (("regex", self.regex), ("case", self.exact)) if on]
        return f"/{self.term}/" + (f" ({', '.join(flags)})" if flags else "")


@dataclass(frozen=True)
class ViewSpec:
    """What the pane asks its thread for."""

    query: LogQuery | None = None
    #: show only the lines that match `query`
    filter: bool = False
    #: show only the lines of this rank
    rank: int | None = None
    #: find which ranks the log has (asked by the first `[` or `]`)
    ranks: bool = False

    @property
    def scans(self) -> bool:
        return self.query is not None or self.rank is not None or self.ranks

    @property
    def filtered(self) -> bool:
        return self.rank is not None or (self.filter and self.query is not None)


@dataclass
class ViewDelta:
    """What a scan of lines [start, end) found: entries at or past `start` are replaced."""

    start: int
    end: int
    matches: array = field(default_factory=lambda: array("Q"))
    ranks: dict[int, array] = field(default_factory=dict)
    #: the lines to show when the spec filters (None: every line)
    rows: array | None = None


def _window_end(index: LineIndex, first: int, end: int) -> int:
    """The line after the last one that fits in a window from line `first` (at least one)."""
    limit = index.starts[first] + WINDOW
    last = bisect_right(index.starts, limit, first, min(end, len(index.starts))) - 1
    return min(end, max(first + 1, last))


def _line_end(index: LineIndex, line: int) -> int:
    return index.span(line)[1]


def scan_view(
    fd: int,
    index: LineIndex,
    spec: ViewSpec,
    start: int,
    end: int,
    *,
    rank_names: dict[bytes, int | None] | None = None,
    progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ViewDelta | None:
    """Scan lines [start, end) for `spec`; None when `cancelled` said stop part-way."""
    delta = ViewDelta(start, end)
    pattern = spec.query.pattern() if spec.query is not None else None
    want_ranks = spec.ranks or spec.rank is not None
    names = rank_names if rank_names is not None else {}
    starts = index.starts
    first = start
    while first < end:
        stop = _window_end(index, first, end)
        base = starts[first]
        length = _line_end(index, stop - 1) - base
        if length <= 2 * WINDOW:
            buf = os.pread(fd, length, base)
        else:  # one huge line: its start and its end (what a redrawn bar shows last)
            buf = os.pread(fd, WINDOW, base) + os.pread(fd, WINDOW, base + length - WINDOW)
        if spec.query is not None and not spec.query.regex:  # a literal: bytes.find, in C
            needle = spec.query.term.encode("utf-8", "replace")
            hay = buf if spec.query.exact else buf.lower()
            _find_literal(
                hay,
                needle if spec.query.exact else needle.lower(),
                base,
                starts,
                first,
                stop,
                delta.matches,
            )
        elif pattern is not None:
            _find_matches(buf, base, pattern, starts, first, stop, delta.matches)
        if want_ranks:
            _find_ranks(buf, base, starts, first, stop, names, delta.ranks)
        first = stop
        if progress is not None and end > start:
            progress((first - start) / (end - start))
        if cancelled is not None and cancelled():
            return None
    delta.rows = rows_for(spec, delta.matches, delta.ranks)
    return delta


def _find_matches(
    buf: bytes,
    base: int,
    pattern: re.Pattern[bytes],
    starts: array,
    first: int,
    stop: int,
    out: array,
) -> None:
    pos, line = 0, first
    n = len(buf)
    while pos <= n:
        m = pattern.search(buf, pos)
        if m is None:
            return
        line = bisect_right(starts, base + m.start(), line, stop) - 1
        out.append(line)
        if line + 1 >= stop:
            return
        pos = starts[line + 1] - base  # one hit a line is enough: go on from the next
        if m.end() == m.start() and pos <= m.start():
            pos = m.start() + 1


def _find_literal(
    hay: bytes, needle: bytes, base: int, starts: array, first: int, stop: int, out: array
) -> None:
    pos, line = 0, first
    while True:
        at = hay.find(needle, pos)
        if at < 0:
            return
        line = bisect_right(starts, base + at, line, stop) - 1
        out.append(line)
        if line + 1 >= stop:
            return
        pos = starts[line + 1] - base  # one hit a line is enough: go on from the next


def _find_ranks(
    buf: bytes,
    base: int,
    starts: array,
    first: int,
    stop: int,
    names: dict[bytes, int | None],
    out: dict[int, array],
) -> None:
    line = first
    for m in _PREFIX.finditer(buf):
        prefix = m.group()
        if prefix not in names:
            names[prefix] = rank_of(prefix.decode("utf-8", "replace"))
        rank = names[prefix]
        if rank is None:
            continue
        line = bisect_right(starts, base + m.start(), line, stop) - 1
        out.setdefault(rank, array("Q")).append(line)


def rows_for(spec: ViewSpec, matches: array, ranks: dict[int, array]) -> array | None:
    """The lines a filtering spec shows, from what a scan found."""
    if spec.rank is not None:
        mine = ranks.get(spec.rank, array("Q"))
        if spec.filter and spec.query is not None:
            hits = set(matches)
            return array("Q", (line for line in mine if line in hits))
        return array("Q", mine)
    if spec.filter and spec.query is not None:
        return array("Q", matches)
    return None


def drop_from(lines: array, start: int) -> None:
    """Remove the trailing entries at or past line `start` (a partial line scanned again)."""
    cut = len(lines)
    while cut and lines[cut - 1] >= start:
        cut -= 1
    del lines[cut:]
