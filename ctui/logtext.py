"""Log text as a terminal shows it: `\\r` rewrites the line (a progress bar keeps only its
latest state), `\\b` steps back, erase sequences erase, cursor movement and other non-colour
escapes are dropped, SGR colours are kept. Also: the rank prefix a launcher puts on a line,
and `output.idx` (when each span of the log arrived, and from which stream).

Pure text functions; the only I/O is `LogIndex` reading `output.idx`.
"""

from __future__ import annotations

import codecs
import os
import re
from bisect import bisect_left, bisect_right
from pathlib import Path

#: a rendered line is at most this many characters (its start kept, the cut marked `…`)
MAX_LINE_CHARS = 16384
#: a `LineAssembler`'s unterminated line never holds more than this many characters
MAX_PENDING_CHARS = 64 * 1024
#: marks where a line too long to keep was cut
CUT_MARK = "…"

# one escape sequence: CSI (params, intermediates, final), OSC (ended by BEL or ST), a
# two-character escape, or a lone ESC (dropped)
_ESCAPE = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x1b"
)
_TOKEN = re.compile(rf"({_ESCAPE})|(\r)|(\x08)|([^\r\x08\x1b]+)")
#: an escape sequence cut by the end of the data seen so far
_OPEN_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[ -/]*)?\Z")
_SPECIAL = ("\r", "\x08", "\x1b")


def render_line(raw: str) -> str:
    """What a terminal shows for one line (the text between two newlines)."""
    if "\x1b" not in raw and "\x08" not in raw:
        if "\r" not in raw:
            return _cap(raw)
        return _cap(_overlay(raw))
    return _render_cells(raw)


def _cap(text: str) -> str:
    if len(text) <= MAX_LINE_CHARS:
        return text
    return text[: MAX_LINE_CHARS - 1] + CUT_MARK


def _overlay(raw: str) -> str:
    """Plain text with carriage returns: each segment overwrites the start of the last."""
    segments = raw.split("\r")
    last = segments[-1] or next((seg for seg in reversed(segments) if seg), "")
    if len(last) >= max(map(len, segments)):  # the usual bar: the last state covers the rest
        return last
    cur = ""
    for seg in segments:
        if len(seg) >= len(cur):
            cur = seg
        elif seg:
            cur = seg + cur[len(seg) :]
    return cur


def _render_cells(raw: str) -> str:
    """The general case: a row of cells, each a character with the SGR codes before it."""
    cells: list[str] = []
    col = 0
    sgr = ""  # colour codes waiting for the next character written
    cut = False
    limit = MAX_LINE_CHARS
    for m in _TOKEN.finditer(raw):
        esc, cr, bs, text = m.groups()
        if text is not None:
            if col >= limit:
                cut = True
                continue
            chars = list(text[: limit - col])
            if len(chars) < len(text):
                cut = True
            if sgr:
                chars[0] = sgr + chars[0]
                sgr = ""
            if col > len(cells):
                cells.extend(" " * (col - len(cells)))
            cells[col : col + len(chars)] = chars
            col += len(chars)
        elif cr is not None:
            col = 0
        elif bs is not None:
            col = max(0, col - 1)
        elif esc.startswith("\x1b[") and len(esc) > 2:
            final = esc[-1]
            params = esc[2:-1]
            if final == "m":
                sgr += esc
            elif final == "K" and params in ("", "0"):
                del cells[col:]
            elif final == "K" and params == "1":
                for i in range(min(col + 1, len(cells))):
                    cells[i] = " "
            elif final == "K" and params == "2":
                cells = []  # blank; later text is padded to its column
            elif final == "G" and (params.isdigit() or not params):
                col = min(max(int(params or 1) - 1, 0), limit)
            elif final == "C" and (params.isdigit() or not params):
                col = min(col + int(params or 1), limit)
            elif final == "D" and (params.isdigit() or not params):
                col = max(0, col - int(params or 1))
            # anything else (cursor up/down, modes, …) is dropped
    out = "".join(cells) + sgr
    if cut:
        out += CUT_MARK
    return out


class LineAssembler:
    """Bytes in, rendered lines out, for a log read chunk by chunk.

    `feed` returns the complete lines in a chunk; `partial` shows the line still being
    written (a progress bar mid-update). The unterminated line is collapsed at each `\\r`
    to what a terminal would show and never holds more than `MAX_PENDING_CHARS` characters
    (the rest of it is dropped), so a log without newlines needs bounded memory.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._dropped = False  # part of the pending line was dropped

    def feed(self, data: bytes) -> list[str]:
        text = self._decoder.decode(data)
        return self._feed_text(text)

    def flush(self) -> list[str]:
        """The last line, unterminated, as a complete line (at the end of the log)."""
        text = self._decoder.decode(b"", final=True)
        lines = self._feed_text(text)
        if self._pending or self._dropped:
            lines.append(self._render_pending())
        self._pending = ""
        self._dropped = False
        return lines

    def at_line_start(self) -> bool:
        """Nothing of an unterminated line is held (not even half a character)."""
        return not self._pending and not self._dropped and not self._decoder.getstate()[0]

    def partial(self) -> str:
        """The rendered unterminated line ('' when none)."""
        pending = _OPEN_ESCAPE.sub("", self._pending)
        if not pending and not self._dropped:
            return ""
        out = render_line(pending)
        if self._dropped and not out.endswith(CUT_MARK):
            out += CUT_MARK
        return out

    def _feed_text(self, text: str) -> list[str]:
        if not text:
            return []
        if "\n" not in text:
            self._pending += text
            self._bound()
            return []
        pieces = text.split("\n")
        first = self._pending + pieces[0]
        self._pending = first
        lines = [self._render_pending()]
        self._dropped = False
        lines.extend(render_line(piece) for piece in pieces[1:-1])
        self._pending = pieces[-1]
        self._bound()
        return lines

    def _render_pending(self) -> str:
        out = render_line(self._pending)
        if self._dropped and not out.endswith(CUT_MARK):
            out += CUT_MARK
        return out

    def _bound(self) -> None:
        """Collapse the pending line before its last `\\r`; cut what is still too long."""
        pending = self._pending
        if len(pending) <= 4096:
            return
        cr = pending.rfind("\r")
        if cr > 0:
            head = render_line(pending[:cr])
            pending = head + pending[cr:]
        if len(pending) > MAX_PENDING_CHARS:
            pending = pending[:MAX_PENDING_CHARS]
            self._dropped = True
        self._pending = pending


_SGR = re.compile(r"\x1b\[[0-?]*[ -/]*m")


def plain(rendered: str) -> str:
    """A rendered line without its colour codes (to store, search or measure it)."""
    return _SGR.sub("", rendered) if "\x1b" in rendered else rendered


# -- ranks ----------------------------------------------------------------------------------

_SGR_LEAD = r"(?:\x1b\[[0-9;]*m)*"
_RANK = re.compile(
    rf"{_SGR_LEAD}(?:"
    r"\[(?P<mpi_job>\d+),(?P<mpi>\d+)\]<(?:stdout|stderr|stddiag)>:"  # Open MPI --tag-output
    r"|\[[A-Za-z_]*(?P<torch>\d+)\]:"  # torchrun --tee / --role: [default0]: [rank1]: [1]:
    r"|\s*(?P<srun>\d+): "  # srun -l / mpirun -l
    r")"
)


def rank_of(line: str) -> int | None:
    """The rank a launcher's prefix names on this line, or None when it has none."""
    m = _RANK.match(line)
    if m is None:
        return None
    value = m.group("mpi") or m.group("torch") or m.group("srun")
    return int(value)


# -- output.idx -----------------------------------------------------------------------------

IDX_NAME = "output.idx"


class LogIndex:
    """When each span of `output.log` arrived and from which stream (`o`, `e`, `c`), read
    from `output.idx`: one `<offset> <time> <stream>` record per line, offsets increasing.
    A record holds from its offset to the next one's. A missing file is an empty index."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: list[int] = []
        self.times: list[float] = []
        self.kinds: list[str] = []
        self.streams: set[str] = set()
        self._read_to = 0  # bytes of output.idx parsed (complete records only)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> LogIndex:
        index = cls(Path(run_dir) / IDX_NAME)
        index.refresh()
        return index

    def __len__(self) -> int:
        return len(self.offsets)

    def refresh(self) -> int:
        """Read the records appended since the last read; returns how many were added."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._read_to)
                data = fh.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        self._read_to += end + 1
        added = 0
        for raw in data[:end].split(b"\n"):
            parts = raw.split()
            if len(parts) != 3:
                continue
            try:
                offset, when, kind = int(parts[0]), float(parts[1]), parts[2].decode()
            except (ValueError, UnicodeDecodeError):
                continue
            if self.offsets and offset < self.offsets[-1]:
                continue  # out of order: not from the writer
            self.offsets.append(offset)
            self.times.append(when)
            self.kinds.append(kind)
            self.streams.add(kind)
            added += 1
        return added

    def at(self, offset: int) -> tuple[float | None, str | None]:
        """Time and stream of the byte at `offset` (None, None before the first record)."""
        i = bisect_right(self.offsets, offset) - 1
        if i < 0:
            return None, None
        return self.times[i], self.kinds[i]

    def offset_at(self, when: float) -> int | None:
        """The first offset written at or after `when` (None when nothing is that late)."""
        i = bisect_left(self.times, when)
        if i >= len(self.times):
            return None
        return self.offsets[i]


__all__ = [
    "CUT_MARK",
    "MAX_LINE_CHARS",
    "MAX_PENDING_CHARS",
    "LineAssembler",
    "LogIndex",
    "plain",
    "rank_of",
    "render_line",
]
