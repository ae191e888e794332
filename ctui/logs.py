"""Reading run logs as a terminal shows them (`ctui.logtext`: a progress bar in its last
state): the last lines from the end (never the whole file, never more than a few MB of it),
the whole log or a range of it with line offsets, a failed run's bounded and redacted
`log_tail`, and following."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ctui.logtext import CUT_MARK, MAX_LINE_CHARS, LineAssembler, LogIndex, plain, render_line

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
    """The last `n` lines of the file as a terminal shows them (`render_line`: a progress
    bar in its last state), read backwards in 64 KiB blocks.

    `end` reads as if the file ended at that byte offset (to continue with `follow` from
    there without missing or repeating a line). At most `max_bytes` are read: a first line
    that starts before them is only its end. A missing file has no lines.
    """
    return [line for _, line in tail_lines(path, n, end=end, max_bytes=max_bytes)]


def tail_lines(
    path: str | os.PathLike[str],
    n: int = 20,
    *,
    end: int | None = None,
    max_bytes: int = TAIL_MAX_BYTES,
) -> list[tuple[int, str]]:
    """`tail`, each line with the byte offset where it starts (for `LogIndex.at`)."""
    raw, cut = _tail(path, n, end=end, max_bytes=max_bytes)
    out = []
    for i, (offset, line) in enumerate(raw):
        if i == 0 and cut and len(line) > MAX_LINE_CHARS:
            # only the end of a line that began before the bytes read: show its end
            trimmed = line[-(MAX_LINE_CHARS - 1) :].lstrip(_CONTINUATION)
            offset += len(line) - len(trimmed)
            out.append((offset, CUT_MARK + render_line(_decode(trimmed))[: MAX_LINE_CHARS - 1]))
        else:
            out.append((offset, render_line(_decode(line))))
    return out


def raw_tail(path: str | os.PathLike[str], n: int, *, end: int | None = None) -> list[bytes]:
    """The last `n` lines' bytes as written: for JSONL files, never rendered or cut."""
    return [line for _, line in _tail(path, n, end=end, max_bytes=TAIL_MAX_BYTES)[0]]


#: UTF-8 continuation bytes: a window cut inside a character starts with some
_CONTINUATION = bytes(range(0x80, 0xC0))


def _tail(
    path: str | os.PathLike[str], n: int, *, end: int | None, max_bytes: int
) -> tuple[list[tuple[int, bytes]], bool]:
    """The raw last lines with their offsets, and whether the first is cut (it starts
    before the bytes read)."""
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
    kept = lines[-n:]
    offset = pos + sum(len(x) + 1 for x in lines[: len(lines) - len(kept)])
    out = []
    for line in kept:
        out.append((offset, line))
        offset += len(line) + 1
    return out, cut


def log_tail(
    path: str | os.PathLike[str],
    lines: int = LOG_TAIL_LINES,
    *,
    max_bytes: int = LOG_TAIL_BYTES,
    line_chars: int = LOG_TAIL_LINE_CHARS,
) -> list[str]:
    """The last lines of a job's log, fit to keep in the run document: at most `lines`
    lines and `max_bytes` (UTF-8) in all, each line as a terminal shows it without colours
    (a `\\r`-progress line in its last state), cut to about `line_chars`, credentials
    redacted.

    Only the last 256 KiB of the log are read. A line that began before them is kept by its
    end only, so no half of a secret cut at the window's start can slip through redaction.
    """
    from ctui.manifest.redact import redact_text

    raw, cut = _tail(path, lines, end=None, max_bytes=_LOG_TAIL_WINDOW)
    out: list[str] = []
    for i, (_, data) in enumerate(raw):
        line = _decode(data)
        end_only = False
        if cut and i == 0:
            first_cr = line.find("\r")
            if first_cr >= 0:  # what came before it began outside the window: dropped
                line = line[first_cr + 1 :]
            else:
                end_only = True
        # redacted before rendering and cutting: a cut or overwritten secret would not match
        text = redact_text(line)
        if end_only:
            text = text[-MAX_LINE_CHARS // 2 :]
        text = redact_text(plain(render_line(text)))
        out.append(_shorten(text, line_chars, end_only=end_only))
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


def read_lines(
    path: str | os.PathLike[str], start: int = 0, end: int | None = None
) -> Iterator[tuple[int, str]]:
    """Every line from byte `start` to `end` (the file's end by default), rendered, with the
    byte offset where it starts. The last line without a newline comes last. Memory stays
    bounded whatever the lines' length."""
    reader = LineReader(start)
    for chunk in _chunks(path, start, end):
        yield from reader.feed(chunk)
    yield from reader.flush()


def stream_lines(
    path: str | os.PathLike[str], index: LogIndex, kind: str, end: int | None = None
) -> Iterator[tuple[int, str]]:
    """The lines of one stream alone (`index`: the run's output.idx; `kind`: `o` or `e`),
    with the offset where each starts: that stream's spans joined, so a line the other
    stream broke into mid-line comes out whole and holds none of the other's bytes."""
    reader = LineReader(0)
    offsets = index.offsets
    size = os.path.getsize(path) if end is None else end
    for i, start in enumerate(offsets):
        if index.kinds[i] != kind or start >= size:
            continue
        reader.jump(start)
        stop = min(offsets[i + 1] if i + 1 < len(offsets) else size, size)
        for chunk in _chunks(path, start, stop):
            yield from reader.feed(chunk)
    yield from reader.flush()


def rendered_lines(
    path: str | os.PathLike[str], start: int = 0, end: int | None = None
) -> Iterator[str]:
    """`read_lines` without the offsets (cheaper, for searching)."""
    asm = LineAssembler()
    for chunk in _chunks(path, start, end):
        yield from asm.feed(chunk)
    yield from asm.flush()


def render_text(
    path: str | os.PathLike[str], start: int = 0, end: int | None = None
) -> Iterator[str]:
    """The log from `start` to `end` as a terminal shows it, in blocks of whole lines (each
    ending in a newline). Blocks without `\\r`, `\\b`, escapes or long lines are passed
    through decoded, without being split into lines."""
    asm = LineAssembler()
    for chunk in _chunks(path, start, end):
        last = chunk.rfind(b"\n")
        if last >= 0 and asm.at_line_start() and _clean(chunk, last):
            yield _decode(chunk[: last + 1])
            asm.feed(chunk[last + 1 :])
            continue
        lines = asm.feed(chunk)
        if lines:
            yield "\n".join(lines) + "\n"
    lines = asm.flush()
    if lines:
        yield "\n".join(lines) + "\n"


def _clean(chunk: bytes, last: int) -> bool:
    """The lines of `chunk[:last]` need no rendering (the common case: passed through)."""
    body = chunk[:last]
    if b"\r" in body or b"\x1b" in body or b"\x08" in body:
        return False
    return len(body) <= MAX_LINE_CHARS or max(map(len, body.split(b"\n"))) <= MAX_LINE_CHARS


def _chunks(path: str | os.PathLike[str], start: int, end: int | None) -> Iterator[bytes]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with fh:
        fh.seek(start)
        left = (end - start) if end is not None else None
        while left is None or left > 0:
            chunk = fh.read(_READ if left is None else min(_READ, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk


_READ = 1 << 20


class LineReader:
    """A `LineAssembler` that also says where each line starts in the file."""

    def __init__(self, offset: int = 0) -> None:
        self._asm = LineAssembler()
        self._line_start = offset
        self._pos = offset

    def feed(self, chunk: bytes) -> list[tuple[int, str]]:
        lines = self._asm.feed(chunk)
        out = []
        if lines:
            starts = [self._line_start]
            i = chunk.find(b"\n")
            while i >= 0:
                starts.append(self._pos + i + 1)
                i = chunk.find(b"\n", i + 1)
            self._line_start = starts.pop()
            out = list(zip(starts, lines, strict=True))
        self._pos += len(chunk)
        return out

    def jump(self, offset: int) -> None:
        """The next chunk is from `offset` on (one stream's spans, read apart)."""
        if self._asm.at_line_start():
            self._line_start = offset
        self._pos = offset

    def partial(self) -> tuple[int, str]:
        """The line being written (rendered) and where it starts; '' when none."""
        return self._line_start, self._asm.partial()

    def flush(self) -> list[tuple[int, str]]:
        return [(self._line_start, line) for line in self._asm.flush()]


def follow(
    path: str | os.PathLike[str],
    until: Callable[[], bool],
    *,
    offset: int = 0,
    poll: float = 0.1,
) -> Iterator[str]:
    """Yield lines appended to the file from byte `offset` on, rendered as a terminal shows
    them, until `until()` is true and everything written by then has been yielded. A last
    line without a newline is yielded at the end. Waits for the file to appear."""
    for _, line, complete in follow_lines(path, until, offset=offset, poll=poll):
        if complete:
            yield line


def follow_lines(
    path: str | os.PathLike[str],
    until: Callable[[], bool],
    *,
    offset: int = 0,
    poll: float = 0.1,
) -> Iterator[tuple[int, str, bool]]:
    """`follow` with each line's start offset, and the line still being written too:
    `(offset, text, complete)`. An incomplete line (a progress bar mid-update) comes after
    each read that changed it; its complete form comes when its newline arrives. The
    pending line is bounded (`LineAssembler`): a log without newlines needs little memory."""
    path = Path(path)
    reader = LineReader(offset)
    fh = None
    shown = ""
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
            chunk = fh.read(_READ)
            read_any = bool(chunk)
            while chunk:
                for start, line in reader.feed(chunk):
                    shown = ""
                    yield start, line, True
                chunk = fh.read(_READ)
            if finished:
                for start, line in reader.flush():
                    yield start, line, True
                return
            if read_any:
                start, partial = reader.partial()
                if partial != shown:
                    shown = partial
                    yield start, partial, False
            time.sleep(poll)
    finally:
        if fh is not None:
            fh.close()
