"""One log line as the pane shows it: read from the file (bounded), drawn like a terminal.

No Textual here. `\\r` rewrites the line (a progress bar shows its last state), backspaces
and cursor moves are handled by `ctui.logtext.render_line`; ANSI colours are kept for the
widget to draw with `Text.from_ansi`. A line is never read whole when it is long: its head
is read (and the cut said), or, for a line redrawn with `\\r` (a bar updating for an epoch),
its tail from a `\\r` on, which is what a terminal would show.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta

from ctui.logtext import render_line

#: at most this much of one line is read and shown
MAX_LINE_BYTES = 16 * 1024
#: control characters dropped from plain lines (tab is expanded before)
_CONTROL = {c: None for c in [*range(0, 32), 127]}
#: the width of the time column (`HH:MM:SS `)
TIME_WIDTH = 9
_CLOCK = re.compile(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*\Z")


def read_raw(fd: int | None, start: int, end: int) -> tuple[bytes, int]:
    """The bytes of line [start, end) worth showing, and how many were left out."""
    n = end - start
    if fd is None or n <= 0:
        return b"", 0
    if n <= MAX_LINE_BYTES:
        return os.pread(fd, n, start), 0
    tail = os.pread(fd, MAX_LINE_BYTES, end - MAX_LINE_BYTES).rstrip(b"\r")
    cr = tail.find(b"\r")
    if cr >= 0:  # redrawn in place: its last state is at the end
        return tail[cr:], 0
    return os.pread(fd, MAX_LINE_BYTES, start), n - MAX_LINE_BYTES


def render_raw(raw: bytes) -> tuple[str, bool]:
    """(what a terminal shows of the line, whether it still holds ANSI colour codes)."""
    text = raw.decode("utf-8", "replace")
    if "\r" in text or "\b" in text or "\x1b" in text:
        text = render_line(text)
    if "\x1b" in text:
        return text, True
    # tabs expanded; other control characters (a bell) never reach the terminal
    return text.expandtabs().translate(_CONTROL), False


def time_cell(when: float | None) -> str:
    """`HH:MM:SS ` in local time, or blanks for a line with no time."""
    if when is None:
        return " " * TIME_WIDTH
    return time.strftime("%H:%M:%S ", time.localtime(when))


def parse_clock(text: str) -> tuple[int, int, int] | None:
    """`HH:MM` or `HH:MM:SS` → (h, m, s); None when it is not a time of day."""
    m = _CLOCK.match(text)
    if m is None:
        return None
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    if h > 23 or mi > 59 or s > 59:
        return None
    return h, mi, s


def clock_time(clock: tuple[int, int, int], first: float, last: float) -> float:
    """The moment of the log at that time of day: on its first day, or the day after when
    that is earlier than the log's start and the log ran past midnight."""
    day = datetime.fromtimestamp(first)
    when = day.replace(hour=clock[0], minute=clock[1], second=clock[2], microsecond=0)
    if when.timestamp() < first:
        later = when + timedelta(days=1)
        if later.timestamp() <= last:
            when = later
    return when.timestamp()
