"""A log pane for files of any size: shows the last page at once, scrolls anywhere, follows.

How it stays fast (toolong's approach):
- a reader thread (`log_reader`) reads the tail first (the last page paints before anything
  is indexed), then indexes every line's offset, then follows the file; searches and rank
  filters are scanned there too (`log_search`), never on the UI thread;
- `render_line` reads only the visible lines (`os.pread`), keeping rendered lines in an LRU;
- each line is drawn like a terminal would (`log_lines`): `\\r` rewrites it, so a progress
  bar shows its last state, and the unterminated last line (a bar mid-update) is redrawn as
  bytes arrive.

Keys: `/` search (`n` `N` next/previous, `&` only matching lines), `t` times, `T` jump to a
time, `[` `]` ranks, `*` all ranks. Log text is never parsed as markup.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from pathlib import Path
from typing import Any

from rich.style import Style
from textual import work
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from ctui.logtext import IDX_NAME, LogIndex
from ctui.tui.widgets.line_index import LineIndex
from ctui.tui.widgets.log_lines import MAX_LINE_BYTES
from ctui.tui.widgets.log_nav import LogNavigation
from ctui.tui.widgets.log_reader import run_reader
from ctui.tui.widgets.log_render import LogRendering
from ctui.tui.widgets.log_search import LogQuery, ViewDelta, ViewSpec, drop_from, rows_for

__all__ = ["MAX_LINE_BYTES", "LogQuery", "LogView"]


class LogView(LogNavigation, LogRendering, ScrollView, can_focus=True):
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
    LogView > .log-view--time {
        color: $text-muted;
    }
    """
    COMPONENT_CLASSES = {"log-view--match", "log-view--match-line", "log-view--time"}

    BINDINGS = [
        Binding("up,k", "scroll_up", "Up", show=False, id="log.up"),
        Binding("down,j", "scroll_down", "Down", show=False, id="log.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="log.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="log.page_down"),
        Binding("ctrl+u", "half_page(-1)", "Half page up", show=False, id="log.half_up"),
        Binding("ctrl+d", "half_page(1)", "Half page down", show=False, id="log.half_down"),
        Binding("home,g", "scroll_home", "Top", show=False, id="log.top"),
        Binding("end,G", "scroll_end", "Bottom", show=False, id="log.bottom"),
        Binding("left", "scroll_left", "Left", show=False, id="log.left"),
        Binding("right", "scroll_right", "Right", show=False, id="log.right"),
        Binding("slash", "search", "Search", id="log.search"),
        Binding("n", "find(False)", "Next match", show=False, id="log.next_match"),
        Binding("N", "find(True)", "Prev match", show=False, id="log.previous_match"),
        Binding("ampersand", "toggle_filter", "Only matches", show=False, id="log.filter"),
        Binding("t", "toggle_times", "Times", id="log.times"),
        Binding("T", "jump_to_time", "Go to time", show=False, id="log.jump_time"),
        Binding("right_square_bracket", "rank(1)", "Next rank", show=False, id="log.next_rank"),
        Binding("left_square_bracket", "rank(-1)", "Prev rank", show=False, id="log.prev_rank"),
        Binding("asterisk", "all_ranks", "All ranks", show=False, id="log.all_ranks"),
    ]

    #: keep the last line in view as the file grows
    follow: reactive[bool] = reactive(True)
    #: the run behind the log has ended: the pane says so instead of "following"
    ended: reactive[bool] = reactive(False)
    #: the time column (from output.idx)
    show_times: reactive[bool] = reactive(False)

    class Indexed(Message):
        """The full line index is ready (`line_count` lines)."""

        def __init__(self, log_view: LogView, line_count: int) -> None:
            super().__init__()
            self.log_view = log_view
            self.line_count = line_count

    class SearchResult(Message):
        """A search step ended: `line` is the matching line, or None when nothing matched."""

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
        self._lines = 0
        self._fd: int | None = None
        self._fd_lock = threading.Lock()
        self._cache: LRUCache[int, tuple[tuple[int, int], Strip, Strip]] = LRUCache(2048)
        self._base_style: Style | None = None
        self._max_width = 0
        self._width_pending = False
        self._progress: tuple[str, float] | None = None
        #: the reader sleeps on it between polls; set it to have a new spec seen at once
        self.wake = threading.Event()
        self.times: LogIndex | None = None
        self.times_lock = threading.Lock()
        # what is asked of the reader, and what it answered
        self._spec = ViewSpec()
        self._scan_gen = 0  # moves when the scan must be done again (search, ranks)
        self._view_gen = -1  # the scan the arrays below come from
        self._matches = array("Q")
        self._ranks: dict[int, array] = {}
        self._rows: array | None = None
        self._match_line: int | None = None
        self._pending: tuple[str, int] | None = None  # ("find", ±1) / ("rank", ±1) when ready
        self.set_reactive(LogView.follow, follow)

    # -- public ----------------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        """Lines in the file (all of them, whatever a filter shows)."""
        return self._lines

    @property
    def row_count(self) -> int:
        """Lines the pane shows (the filtered ones when a filter is on)."""
        return len(self._rows) if self._rows is not None else self._lines

    @property
    def indexed(self) -> bool:
        """True once every line of the file has an offset (not just the tail)."""
        return self._index.complete

    @property
    def bytes_indexed(self) -> int:
        return self._index.size

    @property
    def search_query(self) -> LogQuery | None:
        return self._spec.query

    @property
    def spec(self) -> ViewSpec:
        return self._spec

    @property
    def match_count(self) -> int | None:
        """Lines holding a match of the search (None: no search, or not scanned yet)."""
        ready = self._spec.query is not None and self._view_gen == self._scan_gen
        return len(self._matches) if ready else None

    @property
    def match_position(self) -> int | None:
        """1 for the first match, … (None: the view is on no match)."""
        line, matches = self._match_line, self._matches
        if line is None:
            return None
        at = bisect_left(matches, line)
        return at + 1 if at < len(matches) and matches[at] == line else None

    @property
    def ranks(self) -> list[int]:
        return sorted(self._ranks)

    def line_text(self, line: int) -> str:
        """The text of one line as shown (drawn like a terminal, ANSI codes removed)."""
        return self._read_line(line).plain

    def row_line(self, row: int) -> int:
        return int(self._rows[row]) if self._rows is not None else row

    def visible_lines(self) -> list[str]:
        """The text of the lines on screen now (for tests and copying)."""
        top = int(self.scroll_y)
        end = min(self.row_count, top + self.scrollable_content_region.height)
        return [self.line_text(self.row_line(i)) for i in range(top, end)]

    def open(self, path: Path | str) -> None:
        """Show another file (closing the current one)."""
        self.path = Path(path)
        self._reset()
        self._reader()

    def find(self, term: str, *, backwards: bool = False) -> None:
        """Go to the next (previous) line matching `term` from the top visible line (or the
        current match); answers SearchResult. The file is scanned in the reader thread."""
        if not term:
            return
        query = self._spec.query
        if query is None or query.term != term:
            regex, case = (query.regex, query.match_case) if query else (False, False)
            self.search(LogQuery(term, regex, case))
        self._step(-1 if backwards else 1)

    def search(self, query: LogQuery | None, *, filter: bool | None = None) -> None:
        """Ask for a search (None: none), optionally only its matching lines shown."""
        keep = self._spec.filter if filter is None else filter
        self._match_line = None
        spec = self._spec
        self._set_spec(ViewSpec(query, keep and query is not None, spec.rank, spec.ranks))

    def find_at(self, query: LogQuery, line: int) -> None:
        """Search `query` and go to its match on (0-based) `line`."""
        self.search(query)
        self._match_line = line - 1  # the next match from just before it: the line itself
        self._step(1)

    def clear_search(self) -> None:
        self.search(None)

    # -- lifecycle -------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.path is not None:
            self._reader()
        self._update_subtitle()

    def _reset(self) -> None:
        self.workers.cancel_group(self, "log-reader")
        self._index = LineIndex()
        self._lines = 0
        self._cache.clear()
        self._max_width = 0
        self._match_line = None
        self._view_gen = -1
        self._scan_gen += 1
        self._matches, self._ranks, self._rows = array("Q"), {}, None
        self.virtual_size = Size(0, 0)
        self.refresh()

    # -- the reader thread (see log_reader) ------------------------------------------------
    @work(thread=True, exclusive=True, group="log-reader")
    def _reader(self) -> None:
        path = self.path
        assert path is not None
        self.times = LogIndex(path.with_name(IDX_NAME)) if path.name == "output.log" else None
        run_reader(self, path, self._hand_over, get_current_worker())

    def _hand_over(self, fn: Any, *args: Any) -> None:
        # Blocks until the UI ran `fn`: at most one batch is ever waiting (backpressure).
        self.app.call_from_thread(fn, *args)

    def scan_request(self) -> tuple[int, ViewSpec]:
        return self._scan_gen, self._spec

    def set_fd(self, fd: int | None) -> None:
        with self._fd_lock:
            self._fd = fd

    # -- applied on the UI thread ----------------------------------------------------------
    def install(self, index: LineIndex, painted: threading.Event | None = None) -> None:
        old = self._index
        shift = 0
        if index.complete and not old.complete and old.size == index.size:
            shift = index.line_count - old.line_count
        self._index = index
        self._lines = index.line_count
        self._cache.clear()
        self._progress = None if index.complete else ("indexing", 0.0)
        if self._match_line is not None:
            self._match_line += shift
        if self._spec.scans:  # line numbers moved: the reader scans again
            self._view_gen = -1
            self._matches, self._ranks = array("Q"), {}
            self._rows = array("Q") if self._spec.filtered else None
        self._update_virtual_size()
        if self.follow:
            self._to_end()
        elif shift:
            self.scroll_to(y=self.scroll_y + shift, animate=False, immediate=True, force=True)
        self._update_subtitle()
        if painted is not None:
            self.call_after_refresh(painted.set)
        if index.complete:
            self.post_message(self.Indexed(self, index.line_count))

    def append(self, line_count: int, delta: ViewDelta | None, gen: int) -> None:
        last = self._lines - 1
        self._lines = line_count
        if last >= 0:  # a partial last line may have grown (a progress bar mid-update)
            self._cache.discard(last)
        if delta is not None and gen == self._view_gen:
            self._apply_delta(delta)
        self._update_virtual_size()
        if self.follow:
            self._to_end()
        self.refresh()
        self._update_subtitle()

    def _apply_delta(self, delta: ViewDelta) -> None:
        drop_from(self._matches, delta.start)
        self._matches.extend(delta.matches)
        for lines in self._ranks.values():
            drop_from(lines, delta.start)
        for rank, lines in delta.ranks.items():
            self._ranks.setdefault(rank, array("Q")).extend(lines)
        if self._rows is not None:
            drop_from(self._rows, delta.start)
            self._rows.extend(rows_for(self._spec, delta.matches, delta.ranks) or ())

    def install_view(self, gen: int, spec: ViewSpec, delta: ViewDelta | None) -> None:
        if gen != self._scan_gen:
            return  # asked for another meanwhile
        top = self._top_line()
        self._view_gen = gen
        self._progress = None
        self._matches = delta.matches if delta is not None else array("Q")
        self._ranks = delta.ranks if delta is not None else {}
        if delta is not None and spec == self._spec:
            self._rows = delta.rows
        else:
            self._rows = rows_for(self._spec, self._matches, self._ranks)
        self._view_changed(top)
        pending, self._pending = self._pending, None
        if pending is not None:
            getattr(self, f"_{pending[0]}_step")(pending[1])

    def note_progress(self, what: str, fraction: float | None) -> None:
        self._progress = (what, fraction) if fraction is not None else None
        self._update_subtitle()

    def _update_virtual_size(self) -> None:
        size = Size(max(self._max_width, 1), self.row_count)
        if size == self.virtual_size:
            return
        if size.width != self.virtual_size.width:  # a horizontal scrollbar may come or go
            self.virtual_size = size
            return
        # More lines only: the scrollbar and a repaint, not a layout of the whole screen
        # (the virtual_size reactive asks for one: a full frame at each batch of a flood).
        self.set_reactive(LogView.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    def _update_subtitle(self) -> None:
        spec = self._spec
        parts = [f"{self._lines:,} lines" if self.indexed else "last lines"]
        if spec.rank is not None:
            parts.append(f"rank {spec.rank}")
        if spec.query is not None:
            count, here = self.match_count, self.match_position
            shown = f"{here or '–'}/{count:,}" if count is not None else "…"
            only = " only matches" if spec.filter else ""
            parts.append(f"{spec.query.describe()} {shown}{only}")
        if self._progress is not None:
            parts.append(f"{self._progress[0]} {self._progress[1]:.0%}")
        if self.ended:
            parts.append("run ended")
        else:
            parts.append("following" if self.follow else "paused")
        self.border_subtitle = " · ".join(parts)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._to_end()
        self._update_subtitle()

    def watch_ended(self) -> None:
        self._update_subtitle()

    def watch_show_times(self) -> None:
        self._cache.clear()
        self._max_width = 0
        self.refresh()
