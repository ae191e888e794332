"""The log pane's actions: scrolling (which pauses following), search steps, the filter,
times, ranks. A mixin of `LogView` (kept apart so neither file grows past a screenful of
concerns); it works on the view's state and asks its reader thread for scans."""

from __future__ import annotations

import re
import threading
from array import array
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any

from textual.scroll_view import ScrollView

from ctui.logtext import LogIndex
from ctui.tui.widgets.line_index import LineIndex
from ctui.tui.widgets.log_lines import clock_time, parse_clock
from ctui.tui.widgets.log_prompt import SearchPrompt, TimePrompt
from ctui.tui.widgets.log_search import LogQuery, ViewSpec, rows_for

if TYPE_CHECKING:
    from textual.cache import LRUCache
    from textual.message import Message
    from textual.strip import Strip

    _Base = ScrollView
else:
    _Base = object


class LogNavigation(_Base):
    if TYPE_CHECKING:  # what the view holds (see LogView.__init__)
        follow: bool
        show_times: bool
        times: LogIndex | None
        times_lock: threading.Lock
        wake: threading.Event
        _index: LineIndex
        _lines: int
        _spec: ViewSpec
        _scan_gen: int
        _view_gen: int
        _matches: array
        _ranks: dict[int, array]
        _rows: array | None
        _match_line: int | None
        _pending: tuple[str, int] | None
        _cache: LRUCache[int, tuple[tuple[int, int], Strip, Strip]]

        def search(self, query: LogQuery | None, *, filter: bool | None = None) -> None: ...
        def _update_subtitle(self) -> None: ...
        def _update_virtual_size(self) -> None: ...
        def SearchResult(self, view: Any, term: str, line: int | None) -> Message: ...

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

    def action_half_page(self, direction: int) -> None:
        if direction < 0:
            self.follow = False
        step = max(1, self.scrollable_content_region.height // 2)
        self.scroll_to(y=self.scroll_y + direction * step, animate=False, immediate=True)

    def _on_mouse_scroll_up(self, event: Any) -> None:
        self.follow = False
        super()._on_mouse_scroll_up(event)

    def on_resize(self) -> None:
        if self.follow:  # the size changed under a followed log: keep its end in view
            self.call_after_refresh(self._to_end)

    def _to_end(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def _top_line(self) -> int:
        """The file line at the top of the view."""
        row = int(self.scroll_y)
        if self._rows is None:
            return row
        return int(self._rows[row]) if row < len(self._rows) else self._lines

    def _scroll_to_line(self, line: int, *, third: bool = False) -> None:
        rows = self._rows
        row = bisect_left(rows, line) if rows is not None else line
        if third:
            row -= self.scrollable_content_region.height // 3
        self.scroll_to(y=max(0, row), animate=False, immediate=True, force=True)

    # -- what is asked of the reader -------------------------------------------------------
    def _set_spec(self, spec: ViewSpec) -> None:
        old = self._spec
        top = self._top_line()
        self._spec = spec
        if (spec.query, spec.ranks) != (old.query, old.ranks) or not spec.scans:
            self._scan_gen += 1  # the file is scanned again, in the reader thread
            self._view_gen = -1 if spec.scans else self._view_gen
            self.wake.set()
            if not spec.scans:
                self._matches, self._ranks, self._rows = self._matches[:0], {}, None
                self._view_gen = self._scan_gen
                self._view_changed(top)
        elif self._view_gen == self._scan_gen:  # the same scan, shown another way
            self._rows = rows_for(spec, self._matches, self._ranks)
            self._view_changed(top)
        self._cache.clear()
        self._update_subtitle()

    def _view_changed(self, top: int) -> None:
        """The rows shown changed: keep the top line (or the end) in view."""
        self._cache.clear()
        self._update_virtual_size()
        if self.follow:
            self._to_end()
        else:
            self._scroll_to_line(top)
        self.refresh()
        self._update_subtitle()

    # -- search ----------------------------------------------------------------------------
    def action_search(self) -> None:
        def answered(value: str | None) -> None:
            if value is None:
                return
            prompt_query = LogQuery(value.strip(), prompt.regex, prompt.match_case)
            if not prompt_query.term:
                self.search(None)
                return
            if prompt_query.regex:
                try:
                    prompt_query.pattern()
                except re.error as exc:
                    self.notify(f"not a valid regex: {exc}", severity="error", timeout=3)
                    return
            self.search(prompt_query, filter=prompt.filter)
            self._step(1)

        prompt = SearchPrompt(self._spec.query, self._spec.filter)
        self.app.push_screen(prompt, answered)

    def action_find(self, backwards: bool) -> None:
        if self._spec.query is None:
            self.notify("no search yet: / to search", timeout=2)
            return
        self._step(-1 if backwards else 1)

    def _step(self, direction: int) -> None:
        if self._view_gen != self._scan_gen:  # still scanning: go there once it is done
            self._pending = ("find", direction)
            return
        self._find_step(direction)

    def _find_step(self, direction: int) -> None:
        query = self._spec.query
        if query is None:
            return
        matches = self._matches
        current = self._match_line if self._match_line is not None else self._top_line()
        i = bisect_left(matches, current) - 1 if direction < 0 else bisect_right(matches, current)
        if not 0 <= i < len(matches):
            self.post_message(self.SearchResult(self, query.term, None))
            self.notify(f"no more matches for {query.describe()}", timeout=2)
            return
        line = int(matches[i])
        self.follow = False
        self._match_line = line
        self._cache.clear()
        self._scroll_to_line(line, third=True)
        self.refresh()
        self._update_subtitle()
        self.post_message(self.SearchResult(self, query.term, line))

    def action_toggle_filter(self) -> None:
        if self._spec.query is None:
            self.notify("no search yet: / to search, then & shows only its matches", timeout=2)
            return
        spec = self._spec
        self._set_spec(ViewSpec(spec.query, not spec.filter, spec.rank, spec.ranks))

    # -- times -----------------------------------------------------------------------------
    def _has_times(self) -> bool:
        if self.times is None or not len(self.times):
            self.notify("this log has no times (no output.idx beside it)", timeout=3)
            return False
        return True

    def action_toggle_times(self) -> None:
        if self.show_times or self._has_times():
            self.show_times = not self.show_times

    def action_jump_to_time(self) -> None:
        if not self._has_times():
            return

        def answered(value: str | None) -> None:
            if value is None or not value.strip():
                return
            clock = parse_clock(value)
            if clock is None:
                self.notify(f"not a time: {value!r} (HH:MM or HH:MM:SS)", severity="error")
                return
            times = self.times
            assert times is not None
            with self.times_lock:
                when = clock_time(clock, times.times[0], times.times[-1])
                offset = times.offset_at(when)
            if offset is None:
                self.notify(f"nothing at or after {value.strip()}", timeout=3)
                return
            self.follow = False
            self._scroll_to_line(self._index.line_at(offset))
            self.refresh()

        self.app.push_screen(TimePrompt(), answered)

    # -- ranks -----------------------------------------------------------------------------
    def action_rank(self, direction: int) -> None:
        spec = self._spec
        if not spec.ranks or self._view_gen != self._scan_gen:
            self._pending = ("rank", direction)
            if not spec.ranks:
                self._set_spec(ViewSpec(spec.query, spec.filter, spec.rank, True))
            return
        self._rank_step(direction)

    def _rank_step(self, direction: int) -> None:
        ranks = sorted(self._ranks)
        if not ranks:
            self.notify("no rank prefixes in this log ([rank0]:, [1,0]<stdout>:, 0: )", timeout=3)
            return
        current = self._spec.rank
        if current is None:
            rank = ranks[0] if direction > 0 else ranks[-1]
        else:
            i = ranks.index(current) if current in ranks else 0
            rank = ranks[(i + direction) % len(ranks)]
        spec = self._spec
        self._set_spec(ViewSpec(spec.query, spec.filter, rank, True))

    def action_all_ranks(self) -> None:
        spec = self._spec
        if spec.rank is not None:
            self._set_spec(ViewSpec(spec.query, spec.filter, None, spec.ranks))
