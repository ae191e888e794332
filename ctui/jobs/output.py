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
    from ctui.output_metrics import OutputParser

IDX_FILE = "output.idx"
#: a new record at most this often while one stream keeps writing
IDX_EVERY_S = 0.5
#: what one read of a pipe takes at most
READ_SIZE = 64 << 10
#: the pipes' kernel buffer (a job printing fast keeps writing while the relay catches up)
PIPE_SIZE = 1 << 20
#: after the job's exit, how long its pipes may stay open (a process it started holds them)
DRAIN_S = 2.0


class OutputWriter:
    """Appends to `output.log` (O_APPEND) and records each span in `output.idx`; feeds the
    job's streams to the metrics parser. Thread-safe."""

    def __init__(self, log_path: str | os.PathLike[str], parser: OutputParser | None = None):
        self.log_path = str(log_path)
        self.parser = parser
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
            if self.parser is not None and stream != "c":
                try:
                    self.parser.feed(data, stream, when)
                except Exception:
                    self.parser = None  # the log goes on without metrics
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
        if self.parser is not None:
            with self._lock, contextlib.suppress(Exception):
                self.parser.lines([], time.time())

    def close(self) -> None:
        with self._lock:
            parser, self.parser = self.parser, None
            if parser is not None:
                try:
                    parser.close()
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
                for key, _ in sel.select(0.25):
                    fd = int(key.fd)
                    try:
                        data = os.read(fd, READ_SIZE)
                    except OSError:
                        data = b""
                    if data:
                        self.writer.write(data, key.data)
                    else:  # EOF: every writer of this pipe has closed it
                        sel.unregister(fd)
                        with contextlib.suppress(OSError):
                            os.close(fd)
                self.writer.tick()
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
