"""A DataTable with the navigation model's keys (j/k, g/G, ctrl+d/ctrl+u half a page), so a
screen that shows a table needs no keys of its own to move in it."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable


class NavTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="nav_table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="nav_table.up"),
        Binding("g", "scroll_top", "Top", show=False, id="nav_table.top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="nav_table.bottom"),
        Binding("ctrl+d", "half_page(1)", "Half page down", show=False, id="nav_table.half_down"),
        Binding("ctrl+u", "half_page(-1)", "Half page up", show=False, id="nav_table.half_up"),
    ]

    def action_half_page(self, direction: int) -> None:
        step = max(1, self.scrollable_content_region.height // 2)
        self.move_cursor(row=max(0, self.cursor_row + direction * step))
