"""The x axis under a plot's chart on the run detail's metrics tab."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from ctui.format import number
from ctui.tui.widgets.metric_chart import AXIS_WIDTH


class PlotXAxis(Widget):
    """The x axis under a plot's chart: the lowest x, the x field's name, the highest x,
    lined up with the chart body (right of MetricChart's y axis)."""

    DEFAULT_CSS = """
    PlotXAxis {
        height: 1;
        color: $text-muted;
        margin-bottom: 1;
    }
    """

    def __init__(self, lo: float, hi: float, label: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.lo, self.hi, self.label = lo, hi, label

    def render(self) -> Text:
        width = max(0, self.size.width - AXIS_WIDTH)
        lo, hi = number(self.lo), number(self.hi)
        gap = max(1, width - len(lo) - len(hi))
        middle = f"{self.label} →"[:gap].center(gap)
        return Text(" " * (AXIS_WIDTH - 1) + "└" + lo + middle + hi, no_wrap=True, overflow="crop")
