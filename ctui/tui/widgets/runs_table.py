"""A runs table that renders only the rows on screen (Textual's line API), fitted to its width.

The run's handle (`#42 k3x9q2`) is frozen on the left; the other columns come in priority
order and the first that fit are shown. `left`/`right` slide the window of columns and the
sorted column is always inside it. A click on a header sorts by it, on a row selects it.

Textual's DataTable builds every row up front (3.2 s for 10,000 runs); this one keeps the
rows as a plain Python list and renders a line when it is painted, so the cost follows the
screen height, not the number of runs. Rendered lines are kept in a small LRU keyed by the
run, the cursor/mark state and a generation counter that changes when the data does.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ctui.tui.data import Clock, Column, Run, cell, fmt_ago, handle_parts
from ctui.tui.gate_view import row_mark

SEP = " "
MARK_WIDTH = 2  # "● " in front of marked rows, so marks read without colour
#: one more cell when the project uses a gate: ★ the job's champion, a dim ✗ a rejected run
GATE_WIDTH = 1


class RunsTable(ScrollView, can_focus=True):
    """Rows are run documents; `columns` say what to show. Row 0 of the widget is the header."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "runs-table--header",
        "runs-table--sort",
        "runs-table--cursor",
        "runs-table--marked",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("home,g", "edge(0)", "First", show=False, id="table.first"),
        Binding("end,G", "edge(1)", "Last", show=False, id="table.last"),
        Binding("ctrl+u", "half_page(-1)", "Half page up", show=False, id="table.half_up"),
        Binding("ctrl+d", "half_page(1)", "Half page down", show=False, id="table.half_down"),
        Binding("left", "pan(-1)", "Columns ←", show=False, id="table.left"),
        Binding("right", "pan(1)", "Columns →", show=False, id="table.right"),
        Binding("enter", "select", "Open", id="table.select"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, layout=False)

    class CursorMoved(Message):
        def __init__(self, table: RunsTable, run: Run | None) -> None:
            super().__init__()
            self.table = table
            self.run = run

    class HeaderClicked(Message):
        """A click on a column's header (the screen sorts by it)."""

        def __init__(self, table: RunsTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

    class Selected(Message):
        """Enter on a row."""

        def __init__(self, table: RunsTable, run: Run) -> None:
            super().__init__()
            self.table = table
            self.run = run

    def __init__(self, *, clock: Clock | None = None, cache_size: int = 512, **kw: Any) -> None:
        super().__init__(**kw)
        self.clock: Clock = clock or time.time
        self.columns: list[Column] = []
        self.rows: list[Run] = []
        self.marked: set[str] = set()
        self.champions: frozenset[str] = frozenset()
        self.show_gate = False
        self.sort_key = "started"
        self.sort_desc = True
        self._generation = 0
        self._cache: OrderedDict[tuple[Any, ...], Strip] = OrderedDict()
        self._cache_size = cache_size
        self._line_width = 0
        #: the first non-frozen column shown, and the columns shown (after the handle)
        self._col_offset = 0
        self.shown_columns: list[Column] = []
        self._ages: tuple[str, ...] = ()

    # -- data ----------------------------------------------------------------------------
    def set_columns(self, columns: list[Column]) -> None:
        """Every column, the handle first, the rest in priority order."""
        self.columns = list(columns)
        self._layout()

    @property
    def handle(self) -> Column | None:
        return self.columns[0] if self.columns else None

    def _layout(self) -> None:
        """Choose the columns that fit the width, keeping the sorted one in view."""
        width = self.scrollable_content_region.width or self.size.width or 80
        rest = self.columns[1:]
        fixed = self._prefix_width + (self.columns[0].width + len(SEP) if self.columns else 0)
        keys = [c.key for c in rest]
        self._col_offset = max(0, min(self._col_offset, len(rest) - 1))
        shown = self._window(rest, self._col_offset, width - fixed)
        if self.sort_key in keys and self.sort_key not in [c.key for c in shown]:
            index = keys.index(self.sort_key)
            if index < self._col_offset:
                self._col_offset = index
            else:
                while self._col_offset < index and self.sort_key not in [
                    c.key for c in self._window(rest, self._col_offset, width - fixed)
                ]:
                    self._col_offset += 1
            shown = self._window(rest, self._col_offset, width - fixed)
        self.shown_columns = shown
        self._line_width = fixed + sum(c.width + len(SEP) for c in shown)
        self._invalidate()

    @staticmethod
    def _window(columns: list[Column], start: int, room: int) -> list[Column]:
        shown = []
        for col in columns[start:]:
            if col.width + len(SEP) > room:
                break
            shown.append(col)
            room -= col.width + len(SEP)
        return shown or columns[start : start + 1]

    @property
    def _prefix_width(self) -> int:
        return MARK_WIDTH + (GATE_WIDTH if self.show_gate else 0)

    def set_champions(self, run_ids: set[str] | frozenset[str], *, show: bool) -> None:
        """The champions' run ids (one per job), and whether the gate column is drawn."""
        run_ids = frozenset(run_ids)
        if run_ids == self.champions and show == self.show_gate:
            return
        self.champions, self.show_gate = run_ids, show
        self.set_columns(self.columns)

    def set_rows(self, rows: list[Run], *, keep_cursor: bool = True) -> None:
        """Replace the rows (already filtered and sorted); the cursor stays on its run."""
        current = self.cursor_run if keep_cursor else None
        self.rows = rows
        self._invalidate()
        index = 0
        if current is not None:
            # the same object after a sort or filter (no dict comparisons); by id after a reload
            index = next((i for i, run in enumerate(rows) if run is current), -1)
            if index < 0:
                run_id = current.get("id")
                index = next((i for i, run in enumerate(rows) if run["id"] == run_id), 0)
        self.cursor = min(index, max(len(rows) - 1, 0))
        self._scroll_cursor_into_view()

    def set_sort(self, key: str, descending: bool) -> None:
        changed = key != self.sort_key
        self.sort_key, self.sort_desc = key, descending
        if changed:
            self._layout()  # the sorted column scrolls into view
        else:
            self.refresh()

    def toggle_mark(self) -> None:
        run = self.cursor_run
        if run is None:
            return
        run_id = run["id"]
        if run_id in self.marked:
            self.marked.discard(run_id)
        else:
            self.marked.add(run_id)
        self.refresh_line(self.cursor + 1)

    def clear_marks(self) -> None:
        self.marked.clear()
        self.refresh()

    def retick(self) -> None:
        """Relative times ("3m ago") moved on: re-render the visible lines."""
        self._invalidate()

    def retick_if_stale(self) -> None:
        """Re-render when a shown relative time would now read differently (called often)."""
        top = round(self.scroll_offset.y)
        now = self.clock()
        ages = tuple(
            fmt_ago(r.get("started") or r.get("created"), now)
            for r in self.rows[top : top + self.page_height]
        )
        if ages != self._ages:
            self._ages = ages
            self.retick()

    def _invalidate(self) -> None:
        self._generation += 1
        self._cache.clear()
        self.virtual_size = Size(
            min(self._line_width, self.scrollable_content_region.width or self._line_width),
            len(self.rows) + 1,
        )
        self.refresh()

    @property
    def cursor_run(self) -> Run | None:
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    def marked_runs(self) -> list[Run]:
        """Marked runs in table order."""
        return [r for r in self.rows if r.get("id") in self.marked]

    # -- cursor --------------------------------------------------------------------------
    @property
    def page_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self.post_message(self.CursorMoved(self, self.cursor_run))

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def move_to(self, index: int) -> None:
        self.cursor = index
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        top = round(self.scroll_offset.y)
        height = self.page_height
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        height = self.page_height
        self.cursor = self.cursor + direction * height
        top = round(self.scroll_offset.y) + direction * height
        self.scroll_to(y=max(0, top), animate=False, immediate=True)
        self._scroll_cursor_into_view()

    def action_edge(self, end: int) -> None:
        self.move_to(len(self.rows) - 1 if end else 0)

    def action_half_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.page_height // 2))

    def action_pan(self, delta: int) -> None:
        """Slide the window of columns (the handle stays)."""
        last = max(0, len(self.columns) - 2)
        offset = max(0, min(self._col_offset + delta, last))
        if offset != self._col_offset:
            self._col_offset = offset
            self._relayout_from_offset()

    def _relayout_from_offset(self) -> None:
        width = self.scrollable_content_region.width or self.size.width or 80
        fixed = self._prefix_width + (self.columns[0].width + len(SEP) if self.columns else 0)
        self.shown_columns = self._window(self.columns[1:], self._col_offset, width - fixed)
        self._line_width = fixed + sum(c.width + len(SEP) for c in self.shown_columns)
        self._invalidate()

    def column_at(self, x: int) -> Column | None:
        """The column drawn at content column `x` (the handle included)."""
        pos = self._prefix_width
        for col in self.columns[:1] + self.shown_columns:
            if pos <= x < pos + col.width + len(SEP):
                return col
            pos += col.width + len(SEP)
        return None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            col = self.column_at(offset.x)
            if col is not None:
                self.post_message(self.HeaderClicked(self, col.key))
            return
        index = round(self.scroll_offset.y) + offset.y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain == 2:
                self.action_select()
            self.move_to(index)

    def action_select(self) -> None:
        run = self.cursor_run
        if run is not None:
            self.post_message(self.Selected(self, run))

    # -- rendering -----------------------------------------------------------------------
    _style = Style()

    def render_lines(self, crop: Region) -> list[Strip]:
        self._style = self.rich_style  # once a paint, not once a line (it walks the CSS)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_y = self.scroll_offset.y
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._header()
        else:
            index = scroll_y + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, self._style)
            strip = self._row(index)
        return strip.crop_extend(0, width, self._style)

    def _header(self) -> Strip:
        key = ("header", self._generation, self.sort_key, self.sort_desc, self._col_offset)
        strip = self._cache.get(key)
        if strip is not None:
            return strip
        base = self.get_component_rich_style("runs-table--header")
        sort_style = self.get_component_rich_style("runs-table--sort")
        segments = [Segment(" " * self._prefix_width, base)]
        for col in self.columns[:1] + self.shown_columns:
            label = col.label
            style = base
            if col.key == self.sort_key:
                label = f"{label}{'▼' if self.sort_desc else '▲'}"
                style = base + sort_style
            segments.append(Segment(_fit(label, col.width, col.numeric), style))
            segments.append(Segment(SEP, base))
        strip = Strip(segments, self._line_width)
        self._remember(key, strip)
        return strip

    def _row(self, index: int) -> Strip:
        run = self.rows[index]
        run_id = run.get("id", "")
        is_cursor = index == self.cursor
        is_marked = run_id in self.marked
        key = (run_id, self._generation, is_cursor, is_marked, self.has_focus)
        strip = self._cache.get(key)
        if strip is not None:
            self._cache.move_to_end(key)
            return strip
        base = self._style
        if is_marked:
            base = base + self.get_component_rich_style("runs-table--marked")
        if is_cursor and self.has_focus:
            base = base + self.get_component_rich_style("runs-table--cursor")
        elif is_cursor:
            base = base + Style(reverse=True)
        now = self.clock()
        segments = [Segment("●" if is_marked else " ", base)]
        if self.show_gate:
            symbol, style = row_mark(run, self.champions)
            mark_style = base + Style.parse(style) if style else base
            segments.append(Segment(symbol, mark_style + base if is_cursor else mark_style))
        segments.append(Segment(" ", base))
        handle = self.columns[0] if self.columns else None
        if handle is not None:
            seq, short = handle_parts(run)
            seq_width = max(0, handle.width - len(short) - 1)
            seq_style = base + Style(bold=True)
            short_style = base if is_cursor else base + Style(dim=True)
            if seq_width:
                segments.append(Segment(_fit(seq, seq_width, True) + " ", seq_style))
            segments.append(
                Segment(
                    _fit(short, handle.width - seq_width - (1 if seq_width else 0), False),
                    short_style,
                )
            )
            segments.append(Segment(SEP, base))
        for col in self.shown_columns:
            text, style = cell(run, col.key, now)
            cell_style = base + Style.parse(style) if style else base
            if is_cursor:
                cell_style = cell_style + base  # the cursor colours win over the cell colours
            segments.append(Segment(_fit(text, col.width, col.numeric), cell_style))
            segments.append(Segment(SEP, base))
        strip = Strip(segments, self._line_width)
        self._remember(key, strip)
        return strip

    def _remember(self, key: tuple[Any, ...], strip: Strip) -> None:
        self._cache[key] = strip
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self._layout()
        self._scroll_cursor_into_view()


def _fit(text: str, width: int, right: bool) -> str:
    """Pad or cut `text` to exactly `width` cells (with an ellipsis when cut)."""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - length)
    return pad + text if right else text + pad
