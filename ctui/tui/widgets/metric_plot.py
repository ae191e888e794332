"""Line charts of metric histories (textual-plotext): steps on x, the metric on y, several
series in distinct colours with a legend, TensorBoard-style smoothing and a log scale.

The y range is honest: it never zooms in below a tenth of the values' magnitude, so a change
of 0.0008 on an accuracy of 0.9 stays a ripple instead of filling the chart with noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from textual_plotext import PlotextPlot

from ctui.format import number
from ctui.tui.run_files import read_jsonl

#: smoothing weights the `s` key cycles through (TensorBoard's slider, three stops)
SMOOTHING_STEPS = (0.0, 0.6, 0.9)
#: distinct colours readable on dark and light backgrounds, in 256-colour terminals too
COLOURS = ("cyan+", "orange+", "green+", "magenta+", "red+", "blue+", "yellow+", "gray+")
#: the chart never zooms in below this fraction of the values' magnitude
MIN_SPAN_FRACTION = 0.1
#: half blocks: in every terminal font (braille is not), two points per cell each way
MARKER = "hd"
#: at most this many points per series reach the plotter (it draws a few per column anyway)
MAX_POINTS = 1200


@dataclass(frozen=True)
class Series:
    """One line of a chart: `values[i]` was recorded at `steps[i]`."""

    label: str
    steps: tuple[float, ...]
    values: tuple[float, ...]


def metric_points(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """`metrics.jsonl` (or `output_metrics.jsonl`) → name → (steps, values) in step order.

    A record without a step takes its position in the file, as ctui.track writes it."""
    series: dict[str, list[tuple[float, int, float]]] = {}
    for i, rec in enumerate(read_jsonl(path)):
        name, value = rec.get("name"), rec.get("value")
        if not isinstance(name, str) or not _is_number(value):
            continue
        step = rec.get("step")
        x = float(step) if _is_number(step) else float(i)
        series.setdefault(name, []).append((x, i, float(value)))
    out: dict[str, tuple[list[float], list[float]]] = {}
    for name, points in sorted(series.items()):
        points.sort()
        out[name] = ([p[0] for p in points], [p[2] for p in points])
    return out


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start so the
    first points are not pulled towards zero. weight 0 returns the values."""
    if weight <= 0:
        return list(values)
    out, last = [], 0.0
    for n, v in enumerate(values, 1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n))
    return out


def y_range(values: Sequence[float], *, log: bool = False) -> tuple[float, float]:
    """The y limits for `values`: their range padded by 5%, and at least MIN_SPAN_FRACTION
    of their magnitude tall (a metric that varies by 0.1% is drawn as nearly flat).
    Limits never cross zero where the values do not. Log scale: a decade at least."""
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if log:
        lo_l, hi_l = math.log10(lo), math.log10(hi)
        mid, half = (lo_l + hi_l) / 2, max((hi_l - lo_l) * 0.55, 0.5)
        return 10 ** (mid - half), 10 ** (mid + half)
    magnitude = max(abs(lo), abs(hi)) or 1.0
    pad = (hi - lo) * 0.05
    span = max(hi - lo + 2 * pad, magnitude * MIN_SPAN_FRACTION)
    mid = (lo + hi) / 2
    bottom, top = mid - span / 2, mid + span / 2
    if lo >= 0 > bottom:
        bottom, top = 0.0, max(top - bottom, hi + pad)
    elif hi <= 0 < top:
        bottom, top = min(bottom - top, lo - pad), 0.0
    return bottom, top


def thin(steps: Sequence[float], values: Sequence[float], n: int) -> tuple[list[float], ...]:
    """At most `n` evenly picked points (the last one always kept)."""
    if len(values) <= n:
        return list(steps), list(values)
    idx = sorted({int(i * (len(values) - 1) / (n - 1)) for i in range(n)})
    return [steps[i] for i in idx], [values[i] for i in idx]


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) between lo and hi for the y axis."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(1, most - 1)
    power = 10 ** math.floor(math.log10(raw))
    gap = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    first = math.ceil(lo / gap)
    ticks = []
    k = first
    while k * gap <= hi + gap * 1e-9:
        ticks.append(float(f"{k * gap:.12g}"))
        k += 1
    return ticks


def integer_ticks(lo: float, hi: float, most: int = 6) -> list[int]:
    """Whole steps for the x axis (a step is never 2.8): about `most` of them, evenly apart."""
    first, last = int(lo), int(hi)
    gap = max(1, math.ceil((last - first) / max(1, most - 1)))
    return list(range(first, last + 1, gap))


class MetricPlot(PlotextPlot):
    """A line chart of one or more `Series`. Set them with `show`; `smoothing` and `log_scale`
    change how they are drawn. `drawn` holds what was last handed to the plotter (label,
    steps, y values, colour), for tests and for the legend text of the screens."""

    DEFAULT_CSS = """
    MetricPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.series: list[Series] = []
        self.title = ""
        self.x_label = "step"
        self.smoothing = 0.0
        self.log_scale = False
        #: why the log scale is not in use although asked for ("" when it is, or not asked)
        self.log_refused = ""
        self.drawn: list[tuple[str, list[float], list[float], str]] = []
        self.limits: tuple[float, float] = (0.0, 1.0)

    def show(self, series: Sequence[Series], *, title: str = "", x_label: str = "step") -> None:
        self.series = [s for s in series if s.values]
        self.title, self.x_label = title, x_label
        self.replot()

    def cycle_smoothing(self) -> float:
        i = SMOOTHING_STEPS.index(self.smoothing) if self.smoothing in SMOOTHING_STEPS else -1
        self.smoothing = SMOOTHING_STEPS[(i + 1) % len(SMOOTHING_STEPS)]
        self.replot()
        return self.smoothing

    def toggle_log(self) -> bool:
        self.log_scale = not self.log_scale
        self.replot()
        return self.log_scale

    @property
    def log_active(self) -> bool:
        return self.log_scale and not self.log_refused

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        self.drawn = []
        self.log_refused = ""
        everything = [v for s in self.series for v in s.values]
        if self.log_scale and any(v <= 0 for v in everything):
            self.log_refused = "log scale needs values above 0"
        log = self.log_active
        shown: list[float] = []
        one = len(self.series) == 1
        for i, s in enumerate(self.series):
            colour = COLOURS[i % len(COLOURS)]
            steps, values = thin(s.steps, s.values, MAX_POINTS)
            if one and self.smoothing > 0:  # the raw curve faint behind the smoothed one
                plt.plot(steps, values, marker=MARKER, color="gray", label="raw")
            smooth = ema(values, self.smoothing)
            label = s.label if not one or self.smoothing == 0 else f"{s.label} (smoothed)"
            plt.plot(steps, smooth, marker=MARKER, color=colour, label=label)
            self.drawn.append((s.label, steps, smooth, colour))
            shown += values
        if log:
            plt.yscale("log")
        if shown:
            self.limits = lo, hi = y_range(shown, log=log)
            if log:  # plotext takes a log axis' limits as exponents, its ticks as values
                lo, hi = math.log10(lo), math.log10(hi)
                ticks = [float(f"{10 ** (lo + (hi - lo) * i / 4):.3g}") for i in range(5)]
                plt.yticks(ticks, [number(t) for t in ticks])
            plt.ylim(lo, hi)
            if not log:
                ticks = nice_ticks(lo, hi)
                plt.yticks(ticks, [number(t) for t in ticks])
        steps_all = [x for s in self.series for x in s.steps]
        if steps_all and all(float(x).is_integer() for x in steps_all):
            plt.xticks([float(t) for t in integer_ticks(min(steps_all), max(steps_all))])
        plt.xlabel(self.x_label)
        plt.title(self._title())
        self.refresh()

    def _title(self) -> str:
        return self.title if self.series else "no history recorded"

    def render(self) -> Any:
        if not self.series:
            from rich.text import Text

            return Text(self._title() or "no history recorded", style="dim")
        try:
            return super().render()
        except (ValueError, IndexError, ZeroDivisionError) as exc:  # plotext is fragile
            from rich.text import Text

            return Text(f"the chart could not be drawn: {exc}", style="red")


def describe(values: Sequence[float]) -> str:
    """`last … min … max … (N points)` for a chart's header line."""
    if not values:
        return "no points"
    return (
        f"last {number(values[-1])}  min {number(min(values))}  "
        f"max {number(max(values))}  ({len(values)} points)"
    )
