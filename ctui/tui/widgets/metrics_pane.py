"""Live metrics: the latest value of each metric (and its step) with a sparkline of its history,
from the run's `metrics.jsonl` (`{"name", "value", "step", "time"}` per line)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ctui.format import number
from ctui.tui.widgets.sparkline_text import spark

HISTORY = 200


class MetricsPane(Static):
    DEFAULT_CSS = """
    MetricsPane {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Text("no metrics yet", style="dim"), id=id, classes=classes)
        self.history: dict[str, deque[float]] = {}
        self.latest: dict[str, tuple[Any, Any]] = {}  # name → (value, step)

    def add_points(self, records: Iterable[dict[str, Any]]) -> None:
        changed = False
        for rec in records:
            name, value = rec.get("name"), rec.get("value")
            if not isinstance(name, str):
                continue
            changed = True
            self.latest[name] = (value, rec.get("step"))
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.history.setdefault(name, deque(maxlen=HISTORY)).append(float(value))
        if changed:
            self.update(self.render_pane())

    def render_pane(self) -> Table | Text:
        if not self.latest:
            return Text("no metrics yet", style="dim")
        width = max(30, (self.size.width or 40) - 2)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, max_width=max(8, width // 3))
        grid.add_column(no_wrap=True, justify="right")
        grid.add_column(no_wrap=True)
        spark_w = max(6, width - width // 3 - 14)
        for name in sorted(self.latest):
            value, step = self.latest[name]
            shown = number(value) if not isinstance(value, str) else value
            grid.add_row(
                Text(name, style="bold"),
                Text(shown + (f" @{step}" if step is not None else "")),
                Text(spark(self.history.get(name, ()), spark_w), style="magenta"),
            )
        return grid

    def on_resize(self) -> None:
        if self.latest:
            self.update(self.render_pane())
