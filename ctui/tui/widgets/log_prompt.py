"""The log pane's one-line prompts: a search (with regex, case and filter toggles) and a time.

A small modal at the bottom of the screen, so the pane brings its own input wherever it is
used (the live view, the run detail's log tab).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from ctui.tui.screens.modal import NavModal
from ctui.tui.widgets.log_search import LogQuery


class LogPrompt(NavModal[str | None]):
    """Asks for one line; answers it (None on escape). The input has the focus: `?`, `q` and
    `Q` are typed into it (a search may look for them); `escape` goes back."""

    HELP_SECTION = "Log prompt"

    DEFAULT_CSS = """
    LogPrompt {
        align: left bottom;
        background: $background 0%;
    }
    LogPrompt > Vertical {
        height: auto;
        background: $panel;
        padding: 0 1;
    }
    LogPrompt Input, LogPrompt Input:focus {
        border: none;
        height: 1;
        padding: 0;
        background: $panel;
    }
    LogPrompt .log-prompt--hint {
        color: $text-muted;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="log_prompt.cancel"),
    ]

    def __init__(self, placeholder: str, value: str = "", hint: str = "") -> None:
        super().__init__()
        self.placeholder = placeholder
        self.value = value
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(self.value, placeholder=self.placeholder, id="log-prompt-input")
            yield Static(self.hint_text(), classes="log-prompt--hint", id="log-prompt-hint")

    def hint_text(self) -> Text:
        return Text(self.hint)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SearchPrompt(LogPrompt):
    """`/`: a term, and the toggles: ctrl+r regex, ctrl+t exact case, ctrl+f only matches."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "flip('regex')", "Regex", id="log_prompt.regex"),
        Binding("ctrl+t", "flip('match_case')", "Case", id="log_prompt.case"),
        Binding("ctrl+f", "flip('filter')", "Only matches", id="log_prompt.filter"),
    ]

    def __init__(self, query: LogQuery | None, filter: bool) -> None:
        super().__init__("search the log (lower case: any case)", query.term if query else "")
        self.regex = query.regex if query else False
        self.match_case = query.match_case if query else False
        self.filter = filter

    def hint_text(self) -> Text:
        def flag(key: str, name: str, on: bool) -> Text:
            state = ("on", "bold") if on else ("off", "dim")
            return Text.assemble((key, "bold"), f" {name} ", state)

        return Text("  ").join(
            [
                flag("ctrl+r", "regex", self.regex),
                flag("ctrl+t", "exact case", self.match_case),
                flag("ctrl+f", "only matching lines", self.filter),
            ]
        )

    def action_flip(self, name: str) -> None:
        setattr(self, name, not getattr(self, name))
        self.query_one("#log-prompt-hint", Static).update(self.hint_text())


class TimePrompt(LogPrompt):
    """`T`: a time of day to jump to."""

    def __init__(self) -> None:
        super().__init__("jump to a time: HH:MM or HH:MM:SS", hint="the first line at or after it")
