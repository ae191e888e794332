"""A log pane for files of any size: shows the last page at once, scrolls anywhere, follows.

How it stays fast (toolong's approach):
- a reader thread reads the tail from the end first (the last page paints before anything
  is indexed), then indexes the byte offset of every line (`LineIndex`), then polls the
  file size and indexes only the appended bytes;
- `render_line` reads only the visible lines (`os.pread`), keeping rendered lines in an LRU;
- the thread hands each batch of new lines to the UI with `call_from_thread`, which waits
  until the UI took it: one pending batch at most, never a message per line.

Log text is never parsed as markup; ANSI colours are rendered (or dropped) by
`Text.from_ansi`, a line at a time.
"""

from __future__ import annotations

import os
import re
import threading
import time
from array import array
from pathlib import Path

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from ctui.tui.widgets.line_index import CHUNK, LineIndex, read_tail_index, scan

#: control characters dropped from plain lines (tab is expanded before)
_CONTROL = {c: None for c in [*range(0, 32), 127]}
#: at most this much of one line is read and shown
MAX_LINE_BYTES = 16 * 1024
#: how often a followed file is polled for new bytes
POLL_S = 0.1
#: new bytes indexed per batch while following
APPEND_CHUNK = 8 * 1024 * 1024
#: how often a search reads while scanning backwards
SEARCH_WINDOW = 4 * 1024 * 1024


class LogView(ScrollView, can_focus=True):
    """Shows a (possibly huge, possibly growing) text file."""

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $foreground;
        scrollbar-gutter: stable;
    }
    LogView > .log-view--match {
        background: $warning 40%;
    }
    LogView > .log-view--match-line {
        background: $accent 25%;
    }
    """
    COMPONENT_CLASSES = {"log-view--match", "log-view--match-line"}

    BINDINGS = [
        Binding("up", "scroll_up", "Up", show=False, id="log.up"),
        Binding("down", "scroll_down", "Down", show=False, id="log.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="log.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="log.page_down"),
        Binding("home,g", "scroll_home", "Top", show=False, id="log.top"),
        Binding("end,G", "scroll_end", "Bottom", show=False, id="log.bottom"),
        Binding("left", "scroll_left", "Left", show=False, id="log.left"),
        Binding("right", "scroll_right", "Right", show=False, id="log.right"),
    ]

    #: keep the last line in view as the file grows
    follow: reactive[bool] = reactive(True)

    class Indexed(Message):
        """The full line index is ready (`line_count` lines)."""

        def __init__(self, log_view: LogView, line_count: int) -> None:
            super().__init__()
            self.log_view = log_view
            self.line_count = line_count

    class SearchResult(Message):
        """A search finished: `line` is the matching line, or None when nothing matched."""

        def __init__(self, log_view: LogView, term: str, line: int | None) -> None:
            super().__init__()
            self.log_view = log_view
            self.term = term
            self.line = line

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        follow: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.path: Path | None = Path(path) if path is not None else None
        self._index = LineIndex()
        self._fd: int | None = None
        self._fd_lock = threading.Lock()
        self._cache: LRUCache[int, tuple[tuple[int, int], Strip, Strip]] = LRUCache(2048)
        self._base_style: Style | None = None
        self._max_width = 0
        self._width_pending = False
        self._progress: float | None = None
        self._term: str | None = None
        self._match_line: int | None = None
        self.set_reactive(LogView.follow, follow)

    # -- public ----------------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        return self._index.line_count

    @property
    def indexed(self) -> bool:
        """True once every line of the file has an offset (not just the tail)."""
        return self._index.complete

    @property
    def bytes_indexed(self) -> int:
        return self._index.size

    def line_text(self, line: int) -> str:
        """The plain text of one line (ANSI codes removed), read from the file."""
        return self._read_line(line)[0].plain

    def visible_lines(self) -> list[str]:
        """The plain text of the lines on screen now (for tests and copying)."""
        top = int(self.scroll_y)
        end = min(self.line_count, top + self.scrollable_content_region.height)
        return [self.line_text(i) for i in range(top, end)]

    def open(self, path: Path | str) -> None:
        """Show another file (closing the current one)."""
        self.path = Path(path)
        self._reset()
        self._reader()

    def find(self, term: str, *, backwards: bool = False) -> None:
        """Search from the line after (or before) the top visible line; answers SearchResult.

        A term in lower case matches any case. Runs in a thread: a 1 GB log is fine.
        """
        if not term:
            return
        if term != self._term:
            self._term = term
            self._cache.clear()
        start_line = self._match_line if self._match_line is not None else int(self.scroll_y)
        self._search(term, start_line, backwards)

    def clear_search(self) -> None:
        self._term = None
        self._match_line = None
        self._cache.clear()
        self.refresh()

    # -- lifecycle -------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.path is not None:
            self._reader()

    def on_unmount(self) -> None:
        self._close_fd()

    def _reset(self) -> None:
        self.workers.cancel_group(self, "log-reader")
        self._close_fd()
        self._index = LineIndex()
        self._cache.clear()
        self._max_width = 0
        self._match_line = None
        self.virtual_size = Size(0, 0)
        self.refresh()

    def _close_fd(self) -> None:
        with self._fd_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # -- the reader thread -----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="log-reader")
    def _reader(self) -> None:
        worker = get_current_worker()
        path = self.path
        assert path is not None
        fd = None
        while fd is None:  # a job that has just been launched may not have its log yet
            if worker.is_cancelled:
                return
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                time.sleep(POLL_S * 2)
        with self._fd_lock:
            self._fd = fd
        try:
            self._read_loop(worker, path, fd)
        except RuntimeError:  # the app is closing: call_from_thread has nobody to call
            return
        except OSError:
            return

    def _read_loop(self, worker, path: Path, fd: int) -> None:  # type: ignore[no-untyped-def]
        size = os.fstat(fd).st_size
        tail = read_tail_index(fd, size)
        painted = threading.Event()
        self._hand_over(worker, self._install, tail, painted)
        # Let the last page reach the screen before the full scan competes for the CPU.
        painted.wait(0.5)
        if tail.complete:
            index_size = tail.size
        else:
            full = LineIndex()
            pos, last_note = 0, 0.0
            while pos < size:
                if worker.is_cancelled:
                    return
                end = min(size, pos + CHUNK)
                full.extend(scan(fd, pos, end), end)
                pos = end
                time.sleep(0.001)  # a breath for the UI thread between chunks
                now = time.monotonic()
                if now - last_note > 0.25:
                    last_note = now
                    self._hand_over(worker, self._note_progress, pos / size)
            self._hand_over(worker, self._install, full)
            index_size = full.size
        while not worker.is_cancelled:
            try:
                st = os.stat(path)
                size = st.st_size
                replaced = st.st_ino != os.fstat(fd).st_ino  # rotated: a new file at the path
            except FileNotFoundError:
                size, replaced = index_size, False
            if size < index_size or replaced:  # truncated or replaced: start again
                with self._fd_lock:
                    os.close(fd)
                    fd = os.open(path, os.O_RDONLY)
                    self._fd = fd
                fresh = LineIndex()
                fresh.extend(scan(fd, 0, size), size)
                self._hand_over(worker, self._install, fresh)
                index_size = size
            elif size > index_size:
                end = min(size, index_size + APPEND_CHUNK)
                starts = scan(fd, index_size, end)
                self._hand_over(worker, self._append, starts, end)
                index_size = end
                if end < size:
                    continue  # more waiting: no sleep
            time.sleep(POLL_S)

    def _hand_over(self, worker, fn, *args) -> None:  # type: ignore[no-untyped-def]
        # Blocks until the UI ran `fn`: at most one batch is ever waiting (backpressure).
        if not worker.is_cancelled:
            self.app.call_from_thread(fn, *args)

    # -- applied on the UI thread ----------------------------------------------------------
    def _install(self, index: LineIndex, painted: threading.Event | None = None) -> None:
        old = self._index
        shift = 0
        if index.complete and not old.complete and old.size == index.size:
            shift = index.line_count - old.line_count
        self._index = index
        self._cache.clear()
        self._progress = None if index.complete else 0.0
        if self._match_line is not None:
            self._match_line += shift
        self._update_virtual_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        elif shift:
            self.scroll_to(y=self.scroll_y + shift, animate=False, immediate=True, force=True)
        self._update_subtitle()
        if painted is not None:
            self.call_after_refresh(painted.set)
        if index.complete:
            self.post_message(self.Indexed(self, index.line_count))

    def _append(self, starts: array, size: int) -> None:
        index = self._index
        last = index.line_count - 1
        index.extend(starts, size)
        if last >= 0:  # a partial last line may have grown
            self._cache.discard(last)
        self._update_virtual_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh()
        self._update_subtitle()

    def _note_progress(self, fraction: float) -> None:
        self._progress = fraction
        self._update_subtitle()

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(max(self._max_width, 1), self._index.line_count)

    def _update_subtitle(self) -> None:
        parts = [f"{self.line_count:,} lines" if self.indexed else "last lines"]
        if self._progress is not None:
            parts.append(f"indexing {self._progress:.0%}")
        parts.append("following" if self.follow else "paused")
        self.border_subtitle = " · ".join(parts)

    def on_resize(self) -> None:
        if self.follow:  # the size changed under a followed log: keep its end in view
            self.call_after_refresh(self._to_end)

    def _to_end(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self._update_subtitle()

    # -- scrolling by hand pauses follow ---------------------------------------------------
    def action_scroll_up(self) -> None:
        self.follow = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.follow = False
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.follow = True
        super().action_scroll_end()

    def _on_mouse_scroll_up(self, event) -> None:  # type: ignore[no-untyped-def]
        self.follow = False
        super()._on_mouse_scroll_up(event)

    # -- search ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="log-search")
    def _search(self, term: str, start_line: int, backwards: bool) -> None:
        index = self._index
        flags = re.IGNORECASE if term == term.lower() else 0
        pattern = re.compile(re.escape(term.encode()), flags)
        found: int | None = None
        with self._fd_lock:
            fd = self._fd
            if fd is not None:
                fd = os.dup(fd)
        if fd is not None and index.line_count:
            try:
                found = self._search_fd(fd, index, pattern, start_line, backwards)
            finally:
                os.close(fd)
        try:
            self.app.call_from_thread(self._show_match, term, found)
        except RuntimeError:
            pass

    @staticmethod
    def _search_fd(
        fd: int, index: LineIndex, pattern: re.Pattern[bytes], start_line: int, backwards: bool
    ) -> int | None:
        size = index.size
        if not backwards:
            pos = index.span(min(start_line + 1, index.line_count - 1))[0]
            if start_line + 1 >= index.line_count:
                return None
            while pos < size:
                end = min(size, pos + SEARCH_WINDOW)
                buf = os.pread(fd, end - pos, pos)
                m = pattern.search(buf)
                if m:
                    return index.line_at(pos + m.start())
                if end >= size:
                    return None
                # overlap windows by a line so a match across the boundary is not missed
                nl = buf.rfind(b"\n")
                pos = pos + nl + 1 if nl > 0 else end
            return None
        if start_line <= 0:
            return None
        end = index.span(start_line)[0]
        origin = index.origin
        while end > origin:
            # windows start on a line start, so no match is cut in two
            pos = index.starts[index.line_at(max(origin, end - SEARCH_WINDOW))]
            buf = os.pread(fd, end - pos, pos)
            last = None
            for m in pattern.finditer(buf):
                last = m
            if last is not None:
                return index.line_at(pos + last.start())
            end = pos
        return None

    def _show_match(self, term: str, line: int | None) -> None:
        if line is not None:
            self.follow = False
            self._match_line = line
            self._cache.clear()
            height = self.scrollable_content_region.height
            self.scroll_to(y=max(0, line - height // 3), animate=False, immediate=True, force=True)
            self.refresh()
        self.post_message(self.SearchResult(self, term, line))

    # -- rendering -------------------------------------------------------------------------
    def _read_line(self, line: int) -> tuple[Text, bool]:
        start, end = self._index.span(line)
        n = min(end - start, MAX_LINE_BYTES)
        with self._fd_lock:
            fd = self._fd
            raw = os.pread(fd, n, start) if fd is not None and n > 0 else b""
        truncated = end - start > MAX_LINE_BYTES
        textline = raw.rstrip(b"\r").decode("utf-8", "replace")
        if "\x1b" in textline:
            text = Text.from_ansi(textline, no_wrap=True)
        else:
            text = Text(textline.replace("\r", ""), no_wrap=True)
        text.expand_tabs()
        if truncated:
            text.append(f" … (+{end - start - n:,} bytes)", style="dim")
        return text, truncated

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base_style = None
        self._cache.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line = scroll_y + y
        width = self.scrollable_content_region.width
        base = self._base_style
        if base is None:  # computing it walks the DOM: once, not once per line
            base = self._base_style = self.rich_style
        if line >= self._index.line_count:
            return Strip.blank(width, base)
        # The cache holds the line as painted (cropped to the view): a repaint that only
        # scrolls creates no new strips.
        key = (scroll_x, width)
        cached = self._cache.get(line)
        if cached is not None and cached[0] == key:
            return cached[1]
        full = cached[2] if cached is not None else self._render_full_line(line)
        painted = full.crop_extend(scroll_x, scroll_x + width, base).apply_style(base)
        self._cache[line] = (key, painted, full)
        return painted

    def _render_full_line(self, line: int) -> Strip:
        plain = None if self._term or line == self._match_line else self._plain_line(line)
        if plain is not None:  # the common case, without rich's Text machinery
            strip = Strip([Segment(plain)], cell_len(plain))
            self._note_width(strip.cell_length)
            return strip
        text, _ = self._read_line(line)
        if self._term:
            match_style = self.get_component_rich_style("log-view--match", partial=True)
            exact = self._term != self._term.lower()
            text.highlight_words([self._term], match_style, case_sensitive=exact)
        if line == self._match_line:
            text.stylize(self.get_component_rich_style("log-view--match-line", partial=True))
        segments = list(text.render(self.app.console))
        segments = [s for s in segments if s.text != "\n"]
        strip = Strip(segments)
        self._note_width(strip.cell_length)
        return strip

    def _plain_line(self, line: int) -> str | None:
        """A line with no ANSI codes and not cut short, as safe plain text; else None."""
        start, end = self._index.span(line)
        if end - start > MAX_LINE_BYTES:
            return None
        with self._fd_lock:
            fd = self._fd
            raw = os.pread(fd, end - start, start) if fd is not None and end > start else b""
        if b"\x1b" in raw:
            return None
        # tabs expanded; other control characters (a bell, a backspace) never reach the terminal
        return raw.decode("utf-8", "replace").expandtabs().translate(_CONTROL)

    def _note_width(self, width: int) -> None:
        if width > self._max_width:
            self._max_width = width
            if not self._width_pending:
                self._width_pending = True
                self.call_after_refresh(self._widen)

    def _widen(self) -> None:
        self._width_pending = False
        self._update_virtual_size()
