"""A line chart of one series drawn with braille dots (2×4 dots per cell), y-axis labelled.

Braille gives four times the vertical resolution of block characters, so a curve reads well
even in the 6–8 rows an 80×24 terminal can spare, and it needs only 256 colours.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ctui.format import number

# bit of each dot in a braille cell, indexed [row][column]
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
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


def braille_lines(values: Sequence[float], width: int, height: int) -> list[str]:
    """The chart body: `height` strings of `width` braille cells."""
    if width <= 0 or height <= 0:
        return []
    dots_w, dots_h = width * 2, height * 4
    points = resample(values, dots_w)
    grid = [[0] * width for _ in range(height)]
    if not points:
        return ["".join(chr(0x2800) for _ in range(width))] * height
    lo, hi = min(points), max(points)
    span = (hi - lo) or 1.0

    def y_of(v: float) -> int:
        return dots_h - 1 - round((v - lo) / span * (dots_h - 1))

    prev: int | None = None
    for x, v in enumerate(points):
        y = y_of(v)
        # join to the previous point with a vertical run so the line has no gaps
        y0, y1 = (y, y) if prev is None else (min(prev, y), max(prev, y))
        for yy in range(y0, y1 + 1):
            grid[yy // 4][x // 2] |= _DOTS[yy % 4][x % 2]
        prev = y
    return ["".join(chr(0x2800 + bits) for bits in row) for row in grid]


class MetricChart(Widget):
    """One metric's history. Set `values` (and `title`); the chart fills the widget."""

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
        lines = braille_lines(values, width, height)
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
