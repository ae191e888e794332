"""Choose which metric and param columns the runs table shows (`c`)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import SelectionList, Static

from ctui.tui.screens.modal import NavModal


class ColumnsScreen(NavModal[list[str] | None]):
    """Space toggles a column, enter applies, escape (or `q`) cancels."""

    HELP_SECTION = "Columns"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "apply", "Apply", priority=True, id="columns.apply"),
        Binding("escape", "cancel", "Cancel", id="columns.cancel"),
        Binding("space", "toggle_column", "Toggle", id="columns.toggle"),
        Binding("j", "move('cursor_down')", "Down", show=False, id="columns.down"),
        Binding("k", "move('cursor_up')", "Up", show=False, id="columns.up"),
        Binding("g", "move('first')", "First", show=False, id="columns.first"),
        Binding("G", "move('last')", "Last", show=False, id="columns.last"),
    ]

    def __init__(self, keys: list[str], chosen: list[str]) -> None:
        super().__init__()
        self.keys = keys
        self.chosen = chosen

    def compose(self) -> ComposeResult:
        with Vertical(id="columns-box"):
            yield Static("Columns — space toggles, enter applies, escape cancels")
            yield SelectionList[str](
                *[(key, key, key in self.chosen) for key in self.keys], id="columns-list"
            )

    def action_apply(self) -> None:
        selected = set(self.query_one(SelectionList).selected)
        # keep the order the user already had, then new ones in list order
        order = [k for k in self.chosen if k in selected]
        order += [k for k in self.keys if k in selected and k not in order]
        self.dismiss(order)

    def action_toggle_column(self) -> None:
        self.query_one(SelectionList).action_select()

    def action_move(self, action: str) -> None:
        """j/k/g/G in the list, as ↓/↑/home/end."""
        getattr(self.query_one(SelectionList), f"action_{action}")()

    def action_cancel(self) -> None:
        self.dismiss(None)
