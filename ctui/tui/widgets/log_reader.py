"""The log pane's reader thread: index the file, follow it, scan it for the pane's view.

No Textual here: the thread talks to its pane through `LogSink` (the pane's methods, run on
the UI thread by `hand`, which blocks until the UI took the batch: one batch waits at most,
never a message per line).

1. the tail is read from the end and shown at once; then every line's offset is indexed;
2. the file is polled for appended bytes (and for truncation or replacement: read again);
   the index is extended here, in this thread;
3. when the pane asks for a search or a rank filter (`scan_gen` moved), the whole file is
   scanned here (with progress), then each appended batch is scanned before it is handed
   over, so the UI thread never reads the file for a filter.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ctui.logtext import LogIndex
from ctui.tui.widgets.line_index import CHUNK, LineIndex, read_tail_index, scan
from ctui.tui.widgets.log_search import ViewDelta, ViewSpec, scan_view

#: how often a followed file is polled for new bytes
POLL_S = 0.1
#: new bytes indexed per batch while following
APPEND_CHUNK = 8 * 1024 * 1024
#: how often progress is told while indexing or scanning
NOTE_S = 0.25
#: a log that keeps growing is handed to the pane at most this often (a frame each time):
#: a burst after a quiet spell shows within POLL_S, a flood repaints 4 times a second
MIN_APPEND_S = 0.25


class LogSink(Protocol):
    """What the reader asks of its pane (each call runs on the UI thread)."""

    wake: threading.Event
    times: LogIndex | None
    times_lock: threading.Lock

    def scan_request(self) -> tuple[int, ViewSpec]: ...
    def set_fd(self, fd: int | None) -> None: ...
    def install(self, index: LineIndex, painted: threading.Event | None = None) -> None: ...
    def append(self, line_count: int, delta: ViewDelta | None, gen: int) -> None: ...
    def install_view(self, gen: int, spec: ViewSpec, delta: ViewDelta | None) -> None: ...
    def note_progress(self, what: str, fraction: float | None) -> None: ...


class Reader:
    """One file followed for one pane (`run` is the thread's body)."""

    def __init__(
        self, sink: LogSink, path: Path, hand: Callable[..., None], cancelled: Callable[[], bool]
    ) -> None:
        self.sink = sink
        self.path = path
        self.hand = hand
        self.cancelled = cancelled
        self.index = LineIndex()
        self.scan_gen = -1  # the scan the view holds (-1: none yet)
        self.scanned = 0  # lines scanned for it (complete lines only: a partial one again)
        self.rank_names: dict[bytes, int | None] = {}
        self.fd = -1
        self._last_append = 0.0
        self._last_note = 0.0

    def run(self) -> None:
        fd = None
        while fd is None:  # a job that has just been launched may not have its log yet
            if self.cancelled():
                return
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                time.sleep(POLL_S * 2)
        self.fd = fd
        self.sink.set_fd(fd)
        try:
            self._loop(fd)
        finally:
            self.sink.set_fd(None)
            os.close(self.fd)

    def _refresh_times(self) -> None:
        times = self.sink.times
        if times is not None:
            with self.sink.times_lock:
                times.refresh()

    def _note(self, what: str, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last_note > NOTE_S:
            self._last_note = now
            self.hand(self.sink.note_progress, what, fraction)

    def _loop(self, fd: int) -> None:
        self._refresh_times()
        size = os.fstat(fd).st_size
        tail = read_tail_index(fd, size)
        painted = threading.Event()
        self.index = tail
        self.hand(self.sink.install, tail, painted)
        # Let the last page reach the screen before the full scan competes for the CPU.
        painted.wait(0.5)
        if not tail.complete:
            full = LineIndex()
            pos = 0
            while pos < size:
                if self.cancelled():
                    return
                end = min(size, pos + CHUNK)
                full.extend(scan(fd, pos, end), end)
                pos = end
                time.sleep(0.001)  # a breath for the UI thread between chunks
                self._note("indexing", pos / size)
            self.index = full
            self.hand(self.sink.install, full)
        while not self.cancelled():
            self._sync_view(self.fd)
            if self._poll(self.fd):
                continue  # more waiting: no sleep
            self.sink.wake.wait(POLL_S)
            self.sink.wake.clear()

    def _poll(self, fd: int) -> bool:
        """Read what was appended; True when more is waiting already."""
        index = self.index
        try:
            st = os.stat(self.path)
            size = st.st_size
            replaced = st.st_ino != os.fstat(fd).st_ino  # rotated: a new file at the path
        except FileNotFoundError:
            size, replaced = index.size, False
        if size < index.size or replaced:  # truncated or replaced: start again
            old, fd = fd, os.open(self.path, os.O_RDONLY)
            self.sink.set_fd(fd)  # the pane reads the new file before the old one closes
            os.close(old)
            self.fd = fd
            fresh = LineIndex()
            fresh.extend(scan(fd, 0, size), size)
            self.index = fresh
            self.scan_gen = -1
            self.hand(self.sink.install, fresh)
            return False
        if size <= index.size:
            return False
        if time.monotonic() - self._last_append < MIN_APPEND_S:
            return False  # a flood: the next batch waits for its turn
        end = min(size, index.size + APPEND_CHUNK)
        index.extend(scan(fd, index.size, end), end)
        self._refresh_times()
        gen, spec = self.sink.scan_request()
        delta = None
        if gen == self.scan_gen and spec.scans:
            delta = scan_view(
                fd, index, spec, self.scanned, index.line_count, rank_names=self.rank_names
            )
            self.scanned = len(index.starts) - 1
        self.hand(self.sink.append, index.line_count, delta, self.scan_gen)
        more = end < size  # a backlog is read on at once
        self._last_append = 0.0 if more else time.monotonic()
        return more

    def _sync_view(self, fd: int) -> None:
        """Scan the whole file again when the pane asked for another search or rank view."""
        gen, spec = self.sink.scan_request()
        if gen == self.scan_gen:
            return
        index = self.index
        delta = None
        if spec.scans:
            what = "searching" if spec.query is not None else "finding ranks"
            delta = scan_view(
                fd,
                index,
                spec,
                0,
                index.line_count,
                rank_names=self.rank_names,
                progress=lambda f: self._note(what, f),
                cancelled=lambda: self.cancelled() or self.sink.scan_request()[0] != gen,
            )
            if delta is None:
                return  # asked for something else meanwhile: the next turn starts over
        self.scan_gen = gen
        self.scanned = len(index.starts) - 1
        self.hand(self.sink.install_view, gen, spec, delta)


def run_reader(sink: Any, path: Path, hand: Callable[..., None], worker: Any) -> None:
    """The thread's body: `Reader(...).run()`, quiet when the app closes under it."""
    try:
        Reader(sink, path, hand, lambda: worker.is_cancelled).run()
    except RuntimeError:  # the app is closing: call_from_thread has nobody to call
        return
    except OSError:
        return
