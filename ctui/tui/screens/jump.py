"""The `:` jump prompt (k9s style): type a screen's name, `enter` goes there, `escape` cancels.

The prompt dismisses with the canonical name (`runs`, `triggers`, `help`, `quit`); the app
(`CtuiApp.jump_to`) does the going. An unknown name says so under the input and stays open.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from ctui.tui.screens.modal import NavModal

#: what a user may type → the screen it names
JUMP_TARGETS = {
    "runs": "runs",
    "home": "runs",
    "triggers": "triggers",
    "help": "help",
    "q": "quit",
    "quit": "quit",
}
#: offered by the completion, in this order
NAMES = ("runs", "triggers", "help", "quit")


def resolve(name: str) -> str | None:
    """The target a typed name means: exact, else the one name it is a prefix of."""
    name = name.strip().lstrip(":").lower()
    if not name:
        return None
    if name in JUMP_TARGETS:
        return JUMP_TARGETS[name]
    matches = {JUMP_TARGETS[n] for n in NAMES if n.startswith(name)}
    return matches.pop() if len(matches) == 1 else None


class NameInput(Input):
    """The prompt's input: `?` is in no screen's name, so it is left to the `?` binding."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character != "?" and super().check_consume_key(key, character)


class JumpScreen(NavModal[str | None]):
    """One line at the bottom: `:` then the name; `tab` (or `→`) takes the completion.

    The input keeps the focus, so `q` and `Q` are letters of a name; `?` is in no name, so
    it shows this prompt's keys."""

    HELP_SECTION = "Jump"
    AUTO_FOCUS = "#jump-input"
    DEFAULT_CSS = """
    JumpScreen {
        align: left bottom;
        background: $background 0%;
    }
    #jump-box {
        height: auto;
        width: 100%;
        background: $panel;
    }
    #jump-input {
        border: none;
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    #jump-error {
        height: auto;
        padding: 0 1;
        background: $error 30%;
    }
    #jump-hint {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Cancel", id="jump.cancel"),
        Binding("tab", "complete", "Complete", priority=True, id="jump.complete"),
        Binding("question_mark", "app.help", "Help", show=False, priority=True, id="jump.help"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="jump-box"):
            yield Static("", id="jump-error")
            yield Static(
                Text("jump to: " + "  ".join(NAMES) + "    tab completes · esc cancels"),
                id="jump-hint",
            )
            yield NameInput(
                placeholder="runs, triggers, help, q",
                suggester=SuggestFromList(NAMES, case_sensitive=False),
                id="jump-input",
            )

    def on_mount(self) -> None:
        self.query_one("#jump-error").display = False
        self.focus_input()

    def focus_input(self) -> None:
        self.set_focus(self.query_one(Input))

    def action_complete(self) -> None:
        box = self.query_one(Input)
        if box._suggestion:  # the suggester's completion of what is typed
            box.value = box._suggestion
            box.cursor_position = len(box.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = event.value.strip()
        target = resolve(typed)
        if target is None:
            error = self.query_one("#jump-error", Static)
            error.display = True
            error.update(Text(f"no screen named {typed!r}: try " + ", ".join(NAMES)))
            return
        self.dismiss(target)
