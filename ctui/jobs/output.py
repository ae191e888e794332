"""A job's output on its way into `output.log`: the bytes unchanged, `output.idx` beside them
(when each span arrived, from which stream), and the metrics read from it on the way.

`output.idx` is text, one record a line, in increasing offset order: `<offset> <time>
<stream>` — the byte offset in output.log where a span begins, the unix time (3 decimals) it
arrived, and its stream (`o` stdout, `e` stderr, `c` ctui's own notes). A record holds up to
the next one's offset. A record is added when the stream changes, and at most every
`IDX_EVERY_S` while one stream keeps writing (about 2 records a second of steady output).

One `OutputWriter` per log in a process (`open_writer` / `writer_for`): the supervisor's notes
and every stream of its job go through it, so records are in order. A local job's stdout and
stderr are two pipes that a `Relay` thread reads (`selectors`, up to 64 KiB at a time from
whichever is ready); a Docker job's demultiplexed log stream is written by its own thread.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctui.logtext import LineAssembler
    from ctui.output_parser import OutputParser

IDX_FILE = "output.idx"
#: a new record at most this often while one stream keeps writing
IDX_EVERY_S = 0.5
#: what one read of a pipe takes at most
READ_SIZE = 64 << 10
#: the pipes' kernel buffer (a job printing fast keeps writing while the relay catches up)
PIPE_SIZE = 1 << 20
#: the relay waits this long between reads unless it is behind: a job writing line by line
#: costs it a few hundred wake-ups a second, not one per line
COALESCE_S = 0.005
#: after the job's exit, how long its pipes may stay open (a process it started holds them)
DRAIN_S = 2.0
#: in a flood, lines of one shape are read at most `PER_SHAPE` a period (the latest always),
#: and at most `PER_PERIOD` lines in all
PERIOD_S = 0.2
PER_SHAPE = 8
PER_PERIOD = 200


class LineFeed:
    """A job's streams, as lines (`ctui.logtext.LineAssembler`, one per stream), to the
    metrics parser, a period (`PERIOD_S`) at a time.

    Every line is read at ordinary rates (up to `PER_SHAPE` lines of one shape a period: 40
    a second). In a flood (a job printing thousands of lines a second) the lines of one
    shape — the same text but for its digits, `step 12 loss=0.5` — are read up to `PER_SHAPE`
    a period: the first ones and always the latest, so the histories are thinned but each
    ends on its exact last value, a rare line (its own shape) is still read, and the
    supervisor's CPU stays bounded. Past `PER_PERIOD` lines in a period, only the shapes
    already seen in it are kept (a flood of lines all different). Lines are read in the order
    they came (the step of a line holds for the lines after it).
    """

    def __init__(self, parser: OutputParser):
        self.parser = parser
        self._asm: dict[str, LineAssembler] = {}
        self._start: float | None = None  # when the current period began
        self._kept: dict[bytes, list[tuple[int, float, str]]] = {}
        self._count = 0
        self._seq = 0

    def feed(self, data: bytes, stream: str, when: float) -> None:
        """Bytes of one stream (`o`, `e`) as they arrived at `when`."""
        from ctui.logtext import LineAssembler
        from ctui.output_parser import HINT

        asm = self._asm.get(stream)
        if asm is None:
            asm = self._asm[stream] = LineAssembler()
        if self.parser.builtin and not HINT.search(data):
            # no shape in this chunk: only its first line (the end of one begun before) and
            # its last, unterminated one need the assembler
            first, last = data.find(b"\n"), data.rfind(b"\n")
            if first >= 0:
                lines = asm.feed(data[: first + 1])
                asm = self._asm[stream] = LineAssembler()
                self._take(lines + asm.feed(data[last + 1 :]), when)
                return
        self._take(asm.feed(data), when)

    def _take(self, lines: list[str], when: float) -> None:
        if self._start is None:
            self._start = when
        elif when - self._start >= PERIOD_S:
            self._read()
            self._start = when
        if not lines:
            return
        # the shapes of the lines: their bytes but for the digits (two C calls for them all)
        keys = "\n".join(lines).encode("utf-8", "replace").translate(None, b"0123456789")
        shapes = keys.split(b"\n")
        base = self._seq
        self._seq += len(lines)
        last = dict(zip(shapes, range(len(shapes)), strict=True))  # each shape's last line
        kept_of = self._kept
        if all(self._full(kept_of.get(shape)) for shape in last):
            # a flood: each shape here keeps only its latest line
            for shape, i in last.items():
                kept = kept_of.get(shape)
                if kept is not None:
                    kept[-1] = (base + i, when, lines[i])
            return
        for i, (line, shape) in enumerate(zip(lines, shapes, strict=True)):
            kept = kept_of.get(shape)
            if kept is None:
                if self._count < PER_PERIOD:
                    kept_of[shape] = [(base + i, when, line)]
                    self._count += 1
            elif len(kept) < PER_SHAPE:
                kept.append((base + i, when, line))
                self._count += 1
            else:
                kept[-1] = (base + i, when, line)

    def _full(self, kept: list[tuple[int, float, str]] | None) -> bool:
        """Whether a shape keeps no more lines this period (only its latest replaced)."""
        return len(kept) >= PER_SHAPE if kept is not None else self._count >= PER_PERIOD

    def _read(self) -> None:
        """The lines kept in this period to the parser, in the order they came."""
        kept = sorted(x for lines in self._kept.values() for x in lines)
        self._kept, self._count = {}, 0
        i = 0
        while i < len(kept):  # one block per arrival time
            j = i + 1
            while j < len(kept) and kept[j][1] == kept[i][1]:
                j += 1
            self.parser.text("\n".join(x[2] for x in kept[i:j]), kept[i][1])
            i = j

    def tick(self, now: float) -> None:
        if self._start is not None and now - self._start >= PERIOD_S:
            self._read()
            self._start = None
        self.parser.tick()

    def close(self) -> None:
        """The end of the output: unterminated last lines count too."""
        now = time.time()
        for asm in self._asm.values():
            self._take(asm.flush(), now)
        self._asm = {}
        self._read()
        self.parser.close()


class OutputWriter:
    """Appends to `output.log` (O_APPEND) and records each span in `output.idx`; feeds the
    job's streams to the metrics parser. Thread-safe."""

    def __init__(self, log_path: str | os.PathLike[str], parser: OutputParser | None = None):
        self.log_path = str(log_path)
        self.feed = None if parser is None else LineFeed(parser)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._fd: int | None = os.open(self.log_path, flags, 0o644)
        self._idx: int | None = None
        try:
            self._idx = os.open(Path(self.log_path).parent / IDX_FILE, flags, 0o644)
        except OSError:
            pass  # no times and streams for this log; the log itself still goes on
        self._lock = threading.Lock()
        self._stream: str | None = None
        self._said = 0.0  # when the last record was written
        self.lost = 0  # bytes that could not be written (a full disk)

    def write(self, data: bytes, stream: str, when: float | None = None) -> None:
        """`data` from `stream` (`o`, `e`, `c`), as it arrived at `when`."""
        if not data:
            return
        when = time.time() if when is None else when
        with self._lock:
            fd = self._fd
            if fd is None:
                return
            done = 0
            try:
                while done < len(data):
                    done += os.write(fd, data[done:] if done else data)
            except OSError:
                self.lost += len(data) - done
            if done:
                self._record(fd, done, stream, when)
            if self.feed is not None and stream != "c":
                try:
                    self.feed.feed(data, stream, when)
                except Exception:
                    self.feed = None  # the log goes on without metrics
                    from ctui.jobs.finish import _print_exc

                    _print_exc()

    def _record(self, fd: int, size: int, stream: str, when: float) -> None:
        if self._idx is None:
            return
        if stream == self._stream and when - self._said < IDX_EVERY_S:
            return
        try:
            start = os.lseek(fd, 0, os.SEEK_CUR) - size  # O_APPEND: where this write landed
            os.write(self._idx, f"{start} {when:.3f} {stream}\n".encode())
        except OSError:
            return  # a full disk: the next write tries again
        self._stream, self._said = stream, when

    def note(self, text: str) -> None:
        """A line from ctui itself (stream `c`), on a line of its own."""
        self.write(f"[ctui] {text}\n".encode(), "c")

    def tick(self) -> None:
        """Time passes: the metrics read so far are written when due."""
        if self.feed is not None:
            with self._lock, contextlib.suppress(Exception):
                self.feed.tick(time.time())

    def close(self) -> None:
        with self._lock:
            feed, self.feed = self.feed, None
            if feed is not None:
                try:
                    feed.close()
                except Exception:
                    from ctui.jobs.finish import _print_exc

                    _print_exc()
            for fd in (self._fd, self._idx):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._fd = self._idx = None


_WRITERS: dict[str, OutputWriter] = {}
_REGISTRY = threading.Lock()


def open_writer(log_path: str | os.PathLike[str], parser: OutputParser | None) -> OutputWriter:
    """The writer of this log for the whole process (the supervisor opens it first)."""
    with _REGISTRY:
        writer = _WRITERS.get(str(log_path))
        if writer is None:
            writer = _WRITERS[str(log_path)] = OutputWriter(log_path, parser)
        return writer


def writer_for(log_path: str | os.PathLike[str]) -> OutputWriter:
    """The writer of this log: the one the supervisor opened, else a new one (no metrics)."""
    return open_writer(log_path, None)


def registered(log_path: str | os.PathLike[str]) -> OutputWriter | None:
    with _REGISTRY:
        return _WRITERS.get(str(log_path))


def close_writer(log_path: str | os.PathLike[str]) -> None:
    with _REGISTRY:
        writer = _WRITERS.pop(str(log_path), None)
    if writer is not None:
        writer.close()


class Relay:
    """One thread relaying a job's pipes (`(fd, stream)`) into its log's writer."""

    def __init__(self, writer: OutputWriter, pipes: list[tuple[int, str]]):
        self.writer = writer
        self.pipes = pipes
        for fd, _ in pipes:
            _widen(fd)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="output-relay", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for fd, stream in self.pipes:
            sel.register(fd, selectors.EVENT_READ, stream)
        try:
            while sel.get_map() and not self._stop.is_set():
                behind = False
                for key, _ in sel.select(0.25):
                    fd = int(key.fd)
                    try:
                        data = os.read(fd, READ_SIZE)
                    except OSError:
                        data = b""
                    if data:
                        self.writer.write(data, key.data)
                        behind = behind or len(data) == READ_SIZE
                    else:  # EOF: every writer of this pipe has closed it
                        sel.unregister(fd)
                        with contextlib.suppress(OSError):
                            os.close(fd)
                self.writer.tick()
                if not behind:  # let a job writing line by line fill the pipe a little
                    time.sleep(COALESCE_S)
        finally:
            for key in list(sel.get_map().values()):
                with contextlib.suppress(OSError):
                    os.close(int(key.fd))  # a straggler writing on gets EPIPE
            sel.close()

    def drain(self, timeout: float = DRAIN_S) -> bool:
        """After the job's exit: relay until every pipe is closed, or for `timeout` s at most
        (a process the job started may hold them open); False when it stopped short."""
        self.thread.join(timeout)
        if not self.thread.is_alive():
            return True
        self._stop.set()
        self.thread.join(5.0)
        return False


def _widen(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (OSError, ImportError):
        pass  # the default buffer (64 KiB on Linux)
