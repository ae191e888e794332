"""A runs table that renders only the rows on screen (Textual's line API), fitted to its width.

The run's handle (`#42 k3x9q2`) is frozen on the left; the other columns come in priority
order and the first that fit are shown. `left`/`right` slide the window of columns and the
sorted column is always inside it. A click on a header sorts by it, on a row selects it.

Textual's DataTable builds every row up front (3.2 s for 10,000 runs); this one keeps the
rows as a plain Python list and renders a line when it is painted, so the cost follows the
screen height, not the number of runs. Which columns fit is `runs_columns`; the lines, kept
in a small LRU, are `runs_rows`; this module is the widget: keys, cursor, mouse, messages.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ctui.tui.data import Clock, Column, Run, fmt_ago
from ctui.tui.widgets.runs_columns import NO_FIT, Fit, fit_columns
from ctui.tui.widgets.runs_rows import RowPainter, RowState


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

    #: no repaint of its own: watch_cursor repaints the two lines that changed
    cursor: reactive[int] = reactive(0, always_update=True, layout=False, repaint=False)

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
        self._painter = RowPainter(cache_size)
        #: the columns drawn (the handle, then those from an offset that fit the width)
        self._fit: Fit = NO_FIT
        self._ages: tuple[str, ...] = ()

    # -- data ----------------------------------------------------------------------------
    def set_columns(self, columns: list[Column]) -> None:
        """Every column, the handle first, the rest in priority order."""
        self.columns = list(columns)
        self._layout()

    @property
    def handle(self) -> Column | None:
        return self.columns[0] if self.columns else None

    def _layout(self, offset: int | None = None) -> None:
        """Choose the columns that fit the width: from the offset they had, keeping the sorted
        one in view, or from `offset` (the user slid them)."""
        width = self.scrollable_content_region.width or self.size.width or 80
        self._fit = fit_columns(
            self.columns,
            width,
            self._fit.offset if offset is None else offset,
            show_gate=self.show_gate,
            sort_key=self.sort_key if offset is None else None,
        )
        self._invalidate()

    @property
    def shown_columns(self) -> list[Column]:
        """The columns shown after the handle."""
        return list(self._fit.shown)

    @property
    def _line_width(self) -> int:
        return self._fit.line_width

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
        self._painter.clear()
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
        offset = max(0, min(self._fit.offset + delta, last))
        if offset != self._fit.offset:
            self._layout(offset)

    def column_at(self, x: int) -> Column | None:
        """The column drawn at content column `x` (the handle included)."""
        return self._fit.column_at(x)

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
            strip = self._painter.header(
                self._fit,
                self.sort_key,
                self.sort_desc,
                self.get_component_rich_style("runs-table--header"),
                self.get_component_rich_style("runs-table--sort"),
            )
        else:
            index = scroll_y + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, self._style)
            strip = self.row_strip(index)
        return strip.crop_extend(0, width, self._style)

    def row_strip(self, index: int) -> Strip:
        """The line of the run at `index` in `rows`, as drawn (before it is cut to width)."""
        run = self.rows[index]
        state = RowState(index == self.cursor, run.get("id") in self.marked, self.has_focus)
        return self._painter.row(
            run,
            self._fit,
            state,
            base=self._style,
            component=self.get_component_rich_style,
            champions=self.champions if self.show_gate else None,
            now=self.clock,
        )

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self._layout()
        self._scroll_cursor_into_view()
