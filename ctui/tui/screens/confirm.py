"""A yes/no question as a small modal (stop a run, reproduce a run)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Static

from ctui.tui.screens.modal import NavModal


class ConfirmScreen(NavModal[bool]):
    """Dismisses with True on `y`/enter, False on `n` (and `escape`/`q`, the way back)."""

    HELP_SECTION = "Question"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
    ]
    BACK = False

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(Text(self.question, style="bold"), id="confirm-question")
            if self.detail:
                yield Static(Text(self.detail), id="confirm-detail")
            yield Static(Text("y / enter: yes    n / escape / q: no", style="dim"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
