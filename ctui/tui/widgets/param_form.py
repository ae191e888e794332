"""Form fields for a job's params: one Input per param, checked as you type.

Each value is checked by the same function the CLI uses for `-p name=value`
(`ctui.jobs.command.coerce_param`: the type of the declared default — int, float, bool, str),
and a bad value shows its error under the field.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static

from ctui.errors import CtuiError


def _type_name(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


class ParamField(Vertical):
    """Label, Input and an inline error for one param."""

    DEFAULT_CSS = """
    ParamField { height: auto; margin-bottom: 1; }
    ParamField > Horizontal { height: 1; }
    ParamField Label { width: 22; color: $text-muted; }
    ParamField Input { width: 1fr; }
    ParamField > .param-error { color: $text-error; height: auto; display: none; }
    ParamField.-invalid > .param-error { display: block; }
    ParamField.-invalid Input { background: $error 30%; }
    """

    class Changed(Message):
        def __init__(self, field: ParamField) -> None:
            super().__init__()
            self.field = field

    def __init__(self, job: Any, name: str, index: int) -> None:
        super().__init__(id=f"param-field-{index}")
        self.job = job
        self.param = name
        self.default = job.params[name]
        self.error: str | None = None
        self.value: Any = self.default

    def compose(self) -> ComposeResult:
        value = str(self.default).lower() if isinstance(self.default, bool) else str(self.default)
        with Horizontal():
            yield Label(Text(f"{self.param} ({_type_name(self.default)})"))
            yield Input(value=value, id=f"{self.id}-input", classes="param-input", compact=True)
        yield Static("", classes="param-error")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.check(event.value)
        self.post_message(self.Changed(self))

    def check(self, raw: str) -> bool:
        from ctui.jobs.command import coerce_param

        try:
            self.value = coerce_param(self.job, self.param, raw)
            self.error = None
        except CtuiError as exc:
            self.error = exc.message
        self.set_class(self.error is not None, "-invalid")
        self.query_one(".param-error", Static).update(Text(f"✗ {self.error}" if self.error else ""))
        return self.error is None
