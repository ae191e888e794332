"""The overlay shown while the terminal is smaller than the screens are laid out for."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from ctui.tui.screens.modal import NavModal


class TooSmallScreen(NavModal[None]):
    """ "ctui needs at least 80×24 (now 60×20)"; the app removes it once the terminal grows.

    `Q` and ctrl+c still quit and `?` shows its keys; nothing below it is reachable meanwhile:
    `escape`/`q` stay here (with a bell) and `:` does not jump.
    """

    HELP_SECTION = "Terminal too small"
    JUMP = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back (not until it grows)", show=False, id="small.back"),
    ]
    DEFAULT_CSS = """
    TooSmallScreen {
        align: center middle;
        background: $background 90%;
    }
    #too-small {
        width: auto;
        max-width: 100%;
        height: auto;
        padding: 0 1;
        background: $error 40%;
        color: $text;
    }
    """

    def __init__(self, minimum: tuple[int, int]) -> None:
        super().__init__()
        self.minimum = minimum

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def on_mount(self) -> None:
        self.show_size(*self.app.size)

    def on_screen_resume(self) -> None:
        """Back from the help: the terminal may have grown meanwhile."""
        width, height = self.app.size
        if width >= self.minimum[0] and height >= self.minimum[1]:
            self.dismiss()
        else:
            self.show_size(width, height)

    def action_back(self) -> None:
        self.app.bell()  # nothing to go back to until the terminal is big enough

    def show_size(self, width: int, height: int) -> None:
        w, h = self.minimum
        text = Text(f"ctui needs at least {w}×{h} (now {width}×{height})", style="bold")
        text.append("\nmake the terminal bigger, or press Q to quit", style="")
        self.query_one("#too-small", Static).update(text)
