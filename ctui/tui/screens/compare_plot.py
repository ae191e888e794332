"""Marked runs overlaid: one metric's history per run, in distinct colours, a legend naming
the runs (`#seq`, else the end of the id). `[`/`]` (or j/k) pick the metric; a metric only
some runs have is drawn for those, and the header says how many.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from ctui.errors import CtuiError
from ctui.output_metrics import metrics_file
from ctui.store import Store
from ctui.tui.screens import PlainNotify
from ctui.tui.widgets.chart_browser import Chart, ChartBrowser
from ctui.tui.widgets.key_footer import KeyFooter
from ctui.tui.widgets.metric_plot import Series, metric_points

if TYPE_CHECKING:
    from ctui.project import Project

Points = dict[str, tuple[list[float], list[float]]]


def run_label(run: dict[str, Any]) -> str:
    """How a legend names a run: `#42` when it has a sequence number, else its id's end
    (time-sortable ids share their start)."""
    seq = run.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        return f"#{seq}"
    return str(run.get("id", "?"))[-6:]


def overlay_charts(runs: Sequence[dict[str, Any]], points: Sequence[Points]) -> list[Chart]:
    """A chart per metric any of `runs` recorded, a series per run that has it."""
    names = sorted({name for p in points for name in p})
    charts = []
    for name in names:
        series = [
            Series(run_label(run), tuple(p[name][0]), tuple(p[name][1]))
            for run, p in zip(runs, points, strict=True)
            if name in p and p[name][1]
        ]
        note = f"{len(series)} of {len(runs)} runs"
        charts.append(Chart(name, series, note=note))
    return charts


class ComparePlotScreen(PlainNotify, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="plot.back"),
        Binding("right_square_bracket,j,down", "pick(1)", "Next metric", id="plot.next"),
        Binding("left_square_bracket,k,up", "pick(-1)", "Prev metric", id="plot.prev"),
        Binding("s", "smoothing", "Smoothing", id="plot.smoothing"),
        Binding("L", "log_scale", "Log scale", id="plot.log_scale"),
        Binding("ctrl+r", "reload", "Reload", id="plot.reload"),
    ]
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = (
        "plot.back",
        "plot.next",
        "plot.smoothing",
        "plot.log_scale",
        "plot.prev",
        "plot.reload",
    )

    def __init__(self, project: Project, run_ids: Sequence[str], metric: str | None = None):
        super().__init__()
        self.project = project
        self.run_ids = list(run_ids)
        self.metric = metric
        self.runs: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Static(id="plot-bar")
        yield ChartBrowser(id="compare-charts", empty=Text("loading …", style="dim"))
        yield KeyFooter()

    def on_mount(self) -> None:
        self._show_bar()
        self.load()

    @property
    def browser(self) -> ChartBrowser:
        return self.query_one("#compare-charts", ChartBrowser)

    @work(thread=True, exclusive=True, group="compare-plot", exit_on_error=False)
    def load(self) -> None:
        runs: list[dict[str, Any]] = []
        errors = []
        store = Store(self.project.store_file)
        for run_id in self.run_ids:  # a run deleted meanwhile leaves the others on the chart
            try:
                runs.append(store.get_run(run_id))
            except CtuiError as exc:
                errors.append(str(exc))
        error = "; ".join(errors)
        points = [metric_points(metrics_file(self.project.run_dir(r["id"]))) for r in runs]
        self.app.call_from_thread(self._show, runs, points, error)

    def _show(self, runs: list[dict[str, Any]], points: list[Points], error: str) -> None:
        if error:
            self.notify(error, severity="error")
        self.runs = runs
        self._show_bar()
        browser = self.browser
        browser.empty = Text("none of these runs recorded a metric history", style="dim")
        browser.set_charts(overlay_charts(runs, points), keep=self.metric)

    def _show_bar(self) -> None:
        bar = Text(no_wrap=True, overflow="ellipsis")
        bar.append(" compare ", style="bold reverse")
        labels = [run_label(r) for r in self.runs] or [i[-6:] for i in self.run_ids]
        bar.append(f" {len(labels)} runs: ", style="bold")
        bar.append(" ".join(labels))
        self.query_one("#plot-bar", Static).update(bar)

    def action_back(self) -> None:
        self.dismiss()

    def action_pick(self, delta: int) -> None:
        self.browser.pick(delta)
        self.metric = self.browser.current.name if self.browser.current else None

    def action_smoothing(self) -> None:
        self.browser.cycle_smoothing()

    def action_log_scale(self) -> None:
        self.browser.toggle_log()

    def action_reload(self) -> None:
        self.load()
