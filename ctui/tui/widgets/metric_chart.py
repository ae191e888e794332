"""An area chart of one series drawn with eighth blocks (8 levels per row), y-axis labelled.

Eighth blocks exist in every terminal font (braille does not in all of them), give a curve
that reads well in the 6–8 rows an 80×24 terminal can spare, and need only 256 colours.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ctui.format import number

# eighth blocks, from empty to full: 8 levels per row of the chart
_BLOCKS = " ▁▂▃▄▅▆▇█"
AXIS_WIDTH = 9


def resample(values: Sequence[float], n: int) -> list[float]:
    """`n` points from `values`: bucket means when shrinking, nearest neighbour when growing."""
    if not values or n <= 0:
        return []
    if len(values) <= n:
        return (
            [values[int(i * len(values) / n)] for i in range(n)]
            if len(values) > 1
            else [values[0]] * n
        )
    out = []
    for i in range(n):
        lo = int(i * len(values) / n)
        hi = max(lo + 1, int((i + 1) * len(values) / n))
        chunk = values[lo:hi]
        out.append(sum(chunk) / len(chunk))
    return out


def block_lines(values: Sequence[float], width: int, height: int) -> list[str]:
    """The chart body: `height` strings of `width` cells, an area filled up to each value."""
    if width <= 0 or height <= 0:
        return []
    points = resample(values, width)
    if not points:
        return [" " * width] * height
    lo, hi = min(points), max(points)
    span = (hi - lo) or 1.0
    levels = height * 8
    # at least one eighth, so the minimum still shows as a line rather than nothing
    filled = [max(1, round((v - lo) / span * levels)) for v in points]
    rows = []
    for row in range(height):  # top row first
        base = (height - 1 - row) * 8
        rows.append("".join(_BLOCKS[min(8, max(0, f - base))] for f in filled))
    return rows


class MetricChart(Widget):
    """One metric's history. Set `values`; the chart fills the widget."""

    DEFAULT_CSS = """
    MetricChart {
        height: 8;
        color: $accent;
    }
    MetricChart > .metric-chart--axis {
        color: $text-muted;
    }
    """
    COMPONENT_CLASSES = {"metric-chart--axis"}

    values: reactive[tuple[float, ...]] = reactive(tuple)

    def __init__(self, values: Sequence[float] = (), **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.set_reactive(MetricChart.values, tuple(values))

    def render(self) -> Text:
        width = max(1, self.size.width - AXIS_WIDTH)
        height = max(1, self.size.height)
        values = self.values
        text = Text(no_wrap=True, overflow="crop")
        if not values:
            text.append("no history recorded", style="dim")
            return text
        axis_style = self.get_component_rich_style("metric-chart--axis")
        lines = block_lines(values, width, height)
        hi, lo = max(values), min(values)
        for i, line in enumerate(lines):
            if i == 0:
                label = number(hi)
            elif i == len(lines) - 1:
                label = number(lo)
            else:
                label = ""
            text.append(f"{label[: AXIS_WIDTH - 2]:>{AXIS_WIDTH - 2}} ┤", style=axis_style)
            text.append(line)
            if i < len(lines) - 1:
                text.append("\n")
        return text
