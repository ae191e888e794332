"""Reading run logs: the last lines from the end (never the whole file, never more than a few
MB of it), a failed run's bounded and redacted `log_tail`, and following."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_BLOCK = 64 * 1024
#: `tail` reads at most this much from the end: a log without newlines is never read whole
TAIL_MAX_BYTES = 4 << 20
#: a failed run's `log_tail` (stored in the run document, shown, exported): its bounds
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 8 * 1024
LOG_TAIL_LINE_CHARS = 500
#: how much of the log's end `log_tail` looks at
_LOG_TAIL_WINDOW = 256 * 1024


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def tail(
    path: str | os.PathLike[str],
    n: int = 20,
    *,
    end: int | None = None,
    max_bytes: int = TAIL_MAX_BYTES,
) -> list[str]:
    """The last `n` lines of the file (without newlines), read backwards in 64 KiB blocks.

    `end` reads as if the file ended at that byte offset (to continue with `follow` from
    there without missing or repeating a line). At most `max_bytes` are read: a first line
    that starts before them is only its end. A missing file has no lines.
    """
    return _tail(path, n, end=end, max_bytes=max_bytes)[0]


def _tail(
    path: str | os.PathLike[str], n: int, *, end: int | None, max_bytes: int
) -> tuple[list[str], bool]:
    """`tail`, and whether its first line is cut (it starts before the bytes read)."""
    if n <= 0:
        return [], False
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return [], False
    with fh:
        size = os.fstat(fh.fileno()).st_size if end is None else end
        pos = size
        chunks: list[bytes] = []
        newlines = 0
        # a trailing newline ends the last line; it does not start a new (empty) one
        need = n + 1
        while pos > 0 and newlines < need and size - pos < max_bytes:
            step = min(_BLOCK, pos, max_bytes - (size - pos))
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
        data = b"".join(reversed(chunks))
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data and pos == 0:
        return [], False
    lines = data.split(b"\n")
    cut = pos > 0 and len(lines) <= n  # the first line kept began before what was read
    return [_decode(x).rstrip("\r") for x in lines[-n:]], cut


def log_tail(
    path: str | os.PathLike[str],
    lines: int = LOG_TAIL_LINES,
    *,
    max_bytes: int = LOG_TAIL_BYTES,
    line_chars: int = LOG_TAIL_LINE_CHARS,
) -> list[str]:
    """The last lines of a job's log, fit to keep in the run document: at most `lines`
    lines and `max_bytes` (UTF-8) in all, a `\\r`-progress line reduced to what a terminal
    shows (its last segment), each line cut to about `line_chars`, credentials redacted.

    Only the last 256 KiB of the log are read. A line that began before them is kept by its
    end only, so no half of a secret cut at the window's start can slip through redaction.
    """
    from ctui.manifest.redact import redact_text

    raw, cut = _tail(path, lines, end=None, max_bytes=_LOG_TAIL_WINDOW)
    out: list[str] = []
    for i, line in enumerate(raw):
        segments = [s for s in line.split("\r") if s] or [""]
        partial = cut and i == 0 and len(segments) == 1
        text = redact_text(segments[-1])  # before cutting: a cut secret would not match
        out.append(_shorten(text, line_chars, end_only=partial))
    kept: list[str] = []
    total = 0
    for text in reversed(out):  # the last lines matter most
        total += len(text.encode()) + 1
        if total > max_bytes:
            break
        kept.append(text)
    return kept[::-1]


def _shorten(text: str, limit: int, *, end_only: bool = False) -> str:
    """`text` cut to about `limit` characters: its start and end around an ellipsis (or only
    its end)."""
    if len(text) <= limit and not end_only:
        return text
    if end_only:
        return "…" + text[-(limit - 1) :]
    head = (limit * 3) // 5
    return f"{text[:head]} … {text[-(limit - head - 3) :]}"


def follow(
    path: str | os.PathLike[str],
    until: Callable[[], bool],
    *,
    offset: int = 0,
    poll: float = 0.1,
) -> Iterator[str]:
    """Yield lines appended to the file from byte `offset` on, until `until()` is true and
    everything written by then has been yielded. A last line without a newline is yielded at
    the end. Waits for the file to appear."""
    path = Path(path)
    pending = b""
    fh = None
    try:
        while True:
            if fh is None:
                try:
                    fh = open(path, "rb")  # noqa: SIM115 - closed below
                    fh.seek(offset)
                except FileNotFoundError:
                    if until():
                        return
                    time.sleep(poll)
                    continue
            finished = until()  # read after checking, so nothing written before the end is missed
            chunk = fh.read(1 << 20)
            while chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield _decode(line).rstrip("\r")
                chunk = fh.read(1 << 20)
            if finished:
                if pending:
                    yield _decode(pending).rstrip("\r")
                return
            time.sleep(poll)
    finally:
        if fh is not None:
            fh.close()
