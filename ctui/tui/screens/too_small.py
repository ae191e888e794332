"""The overlay shown while the terminal is smaller than the screens are laid out for."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Static


class TooSmallScreen(ModalScreen[None]):
    """ "ctui needs at least 80×24 (now 60×20)"; the app removes it once the terminal grows.

    `Q` and ctrl+c still quit; nothing below it is reachable meanwhile.
    """

    # a modal screen does not see the app's bindings: its own Q
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("Q", "app.quit", "Quit", id="small.quit"),
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

    def show_size(self, width: int, height: int) -> None:
        w, h = self.minimum
        text = Text(f"ctui needs at least {w}×{h} (now {width}×{height})", style="bold")
        text.append("\nmake the terminal bigger, or press Q to quit", style="")
        self.query_one("#too-small", Static).update(text)
