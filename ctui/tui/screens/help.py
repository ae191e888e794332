"""The help screen (`?`): ctui/tui/help.md, then the keys bound on the screen below."""

from __future__ import annotations

from importlib.resources import files
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown


def help_markdown() -> str:
    return (files("ctui.tui") / "help.md").read_text(encoding="utf-8")


class HelpScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
        Binding("down,j", "scroll(1)", "Down", show=False, id="help.down"),
        Binding("up,k", "scroll(-1)", "Up", show=False, id="help.up"),
    ]

    def __init__(self, keys: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.keys = keys or []

    def compose(self) -> ComposeResult:
        text = help_markdown()
        if self.keys:
            # the keys really bound now, so a user keymap shows up here too
            rows = "\n".join(f"- `{k}` — {d}" for k, d in self.keys)
            text += f"\n## Keys on the screen you came from\n\n{rows}\n"
        with VerticalScroll(id="help-scroll"):
            yield Markdown(text, id="help-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_scroll(self, lines: int) -> None:
        self.query_one("#help-scroll", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss()
