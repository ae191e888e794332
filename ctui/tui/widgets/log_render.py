"""How the log pane draws a line: read (bounded) from the file, drawn like a terminal
(`log_lines`), the matches highlighted, stderr dimmed, the time column in front. A mixin of
`LogView`; rendered lines are kept in an LRU keyed by line, so scrolling repaints nothing new."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from ctui.logtext import LogIndex
from ctui.tui.widgets.line_index import LineIndex
from ctui.tui.widgets.log_lines import read_raw, render_raw, time_cell
from ctui.tui.widgets.log_search import ViewSpec

if TYPE_CHECKING:
    from textual.cache import LRUCache
    from textual.scroll_view import ScrollView

    _Base = ScrollView
else:
    _Base = object

_STDERR = Style(dim=True)


class LogRendering(_Base):
    if TYPE_CHECKING:  # what the view holds (see LogView.__init__)
        show_times: bool
        times: LogIndex | None
        times_lock: threading.Lock
        _index: LineIndex
        _fd: int | None
        _fd_lock: threading.Lock
        _spec: ViewSpec
        _match_line: int | None
        _base_style: Style | None
        _max_width: int
        _width_pending: bool
        _cache: LRUCache[int, tuple[tuple[int, int], Strip, Strip]]

        @property
        def row_count(self) -> int: ...
        def row_line(self, row: int) -> int: ...
        def _update_virtual_size(self) -> None: ...

    def _raw(self, line: int) -> tuple[bytes, int]:
        start, end = self._index.span(line)
        with self._fd_lock:
            return read_raw(self._fd, start, end)

    def _read_line(self, line: int) -> Text:
        raw, cut = self._raw(line)
        shown, ansi = render_raw(raw)
        text = Text.from_ansi(shown, no_wrap=True) if ansi else Text(shown, no_wrap=True)
        if ansi:
            text.expand_tabs()
        if cut:
            text.append(f" … (+{cut:,} bytes)", style="dim")
        return text

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base_style = None
        self._cache.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        base = self._base_style
        if base is None:  # computing it walks the DOM: once, not once per line
            base = self._base_style = self.rich_style
        if row >= self.row_count:
            return Strip.blank(width, base)
        line = self.row_line(row)
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
        when, stream = None, None
        times = self.times
        if times is not None and len(times):
            with self.times_lock:
                when, stream = times.at(self._index.span(line)[0])
        query = self._spec.query
        raw, cut = self._raw(line)
        shown, ansi = render_raw(raw)
        if not (ansi or cut or query or line == self._match_line):
            segments = [Segment(shown)]  # the common case, without rich's Text machinery
        else:
            text = self._read_line(line)
            if query is not None:
                match_style = self.get_component_rich_style("log-view--match", partial=True)
                text.highlight_regex(query.text_pattern(), match_style)
            if line == self._match_line:
                text.stylize(self.get_component_rich_style("log-view--match-line", partial=True))
            segments = [s for s in text.render(self.app.console) if s.text != "\n"]
        if stream == "e":  # stderr: dimmed
            segments = list(Segment.apply_style(segments, post_style=_STDERR))
        if self.show_times:
            style = self.get_component_rich_style("log-view--time", partial=True)
            segments.insert(0, Segment(time_cell(when), style))
        strip = Strip(segments)
        self._note_width(strip.cell_length)
        return strip

    def _note_width(self, width: int) -> None:
        if width > self._max_width:
            self._max_width = width
            if not self._width_pending:
                self._width_pending = True
                self.call_after_refresh(self._widen)

    def _widen(self) -> None:
        self._width_pending = False
        self._update_virtual_size()
