"""One chart at a time out of several (a run's metrics, its DVC plots; or one metric across
runs): a header line naming the chart and its place in the list, the chart under it.

The screens own the keys (`[`/`]` or j/k pick the chart, `s` smoothing, `L` log scale) and call
`pick`, `cycle_smoothing` and `toggle_log` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ctui.tui.widgets.metric_plot import MetricPlot, Series, describe


@dataclass(frozen=True)
class Chart:
    """What one chart shows: its series (one per run when runs are overlaid), what x is, and
    a dim note for the header (the last value, the file of a plot …)."""

    name: str
    series: Sequence[Series]
    x_label: str = "step"
    note: str = ""


def history_chart(name: str, steps: Sequence[float], values: Sequence[float]) -> Chart:
    return Chart(name, [Series(name, tuple(steps), tuple(values))], note=describe(values))


class ChartBrowser(Vertical):
    DEFAULT_CSS = """
    ChartBrowser {
        height: 1fr;
    }
    ChartBrowser > .chart-head {
        height: 1;
        padding: 0 1;
    }
    """

    def __init__(self, *, empty: Text | str = "nothing to chart", **kw: Any) -> None:
        super().__init__(**kw)
        self.charts: list[Chart] = []
        self.index = 0
        self.empty = empty

    def compose(self) -> ComposeResult:
        yield Static(classes="chart-head", id=f"{self.id or 'chart'}-head")
        yield MetricPlot(id=f"{self.id or 'chart'}-plot")

    @property
    def plot(self) -> MetricPlot:
        return self.query_one(MetricPlot)

    @property
    def head(self) -> Static:
        return self.query_one(".chart-head", Static)

    @property
    def current(self) -> Chart | None:
        return self.charts[self.index] if self.charts else None

    def set_charts(self, charts: Sequence[Chart], *, keep: str | None = None) -> None:
        """Show `charts`, staying on the one named `keep` (else the current name) if present."""
        name = keep if keep is not None else (self.current.name if self.current else None)
        self.charts = list(charts)
        names = [c.name for c in self.charts]
        self.index = names.index(name) if name in names else 0
        self._show()

    def pick(self, delta: int) -> None:
        if self.charts:
            self.index = (self.index + delta) % len(self.charts)
            self._show()

    def cycle_smoothing(self) -> float:
        weight = self.plot.cycle_smoothing()
        self._show_head()
        return weight

    def toggle_log(self) -> bool:
        on = self.plot.toggle_log()
        self._show_head()
        return on

    def _show(self) -> None:
        chart = self.current
        plot = self.plot
        plot.display = chart is not None
        if chart is None:
            plot.show([])
        else:
            plot.show(chart.series, x_label=chart.x_label)
        self._show_head()

    def _show_head(self) -> None:
        chart = self.current
        if chart is None:
            empty = self.empty
            self.head.update(Text(empty, style="dim") if isinstance(empty, str) else empty)
            self.head.styles.height = "auto"
            return
        self.head.styles.height = 1
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"‹{self.index + 1}/{len(self.charts)}› ", style="dim")
        head.append(chart.name, style="bold")
        if chart.note:
            head.append(f"  {chart.note}", style="dim")
        plot = self.plot
        if plot.smoothing:
            head.append(f"  smoothed {plot.smoothing:g}", style="yellow")
        if plot.log_active:
            head.append("  log", style="yellow")
        elif plot.log_refused:
            head.append(f"  {plot.log_refused}", style="red")
        self.head.update(head)
