"""One run in depth: overview, metric charts (histories and the run's DVC plots), the
manifest tree, the log, resource history.

Everything slow (the run folder's JSONL files, the manifest objects) loads in workers, so the
screen opens at once; the log tab reuses the log pane that copes with huge files.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Sparkline, Static, TabbedContent, TabPane, Tree
from textual.widgets.tree import TreeNode

from ctui.errors import CtuiError
from ctui.format import bytes_, duration, number, run_duration
from ctui.output_metrics import metrics_file
from ctui.store import ACTIVE, Store
from ctui.tui.data import Clock, Run, fmt_ago, fmt_time, status_look
from ctui.tui.gate_view import champion_status, champion_text, gate_text
from ctui.tui.run_files import PlotLine, plot_lines, resource_series
from ctui.tui.screens import PlainNotify
from ctui.tui.screens.detail_keys import DetailKeys
from ctui.tui.widgets.chart_browser import Chart, ChartBrowser, history_chart
from ctui.tui.widgets.key_footer import KeyFooter
from ctui.tui.widgets.log_view import LogView
from ctui.tui.widgets.metric_plot import Series, metric_points

if TYPE_CHECKING:
    from ctui.project import Project

TABS = ("overview", "metrics", "manifest", "log", "resources")
#: tree nodes shown per list before "… N more" (a full env has hundreds of packages)
TREE_LIST_LIMIT = 200


class RunDetailScreen(DetailKeys, PlainNotify, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="detail.back"),
        Binding("1", "tab('overview')", "Overview", show=False, id="detail.overview"),
        Binding("2", "tab('metrics')", "Metrics", show=False, id="detail.metrics"),
        Binding("3", "tab('manifest')", "Manifest", show=False, id="detail.manifest"),
        Binding("4", "tab('log')", "Log", show=False, id="detail.log"),
        Binding("5", "tab('resources')", "Resources", show=False, id="detail.resources"),
        Binding("l", "live", "Live view", id="detail.live"),
        Binding("right_square_bracket", "pick(1)", "Next chart", id="detail.next_chart"),
        Binding("left_square_bracket", "pick(-1)", "Prev chart", id="detail.prev_chart"),
        Binding("s", "smoothing", "Smoothing", id="detail.smoothing"),
        Binding("L", "log_scale", "Log scale", id="detail.log_scale"),
        Binding("j,down", "move('down')", "Down", show=False, id="detail.down"),
        Binding("k,up", "move('up')", "Up", show=False, id="detail.up"),
        Binding("g,home", "move('top')", "Top", show=False, id="detail.top"),
        Binding("G,end", "move('bottom')", "Bottom", show=False, id="detail.bottom"),
        Binding(
            "ctrl+d,pagedown",
            "move('half_down')",
            "Half page down",
            show=False,
            id="detail.half_down",
        ),
        Binding(
            "ctrl+u,pageup", "move('half_up')", "Half page up", show=False, id="detail.half_up"
        ),
        Binding("ctrl+r", "reload", "Reload", id="detail.reload"),
    ]

    #: the footer's keys, most wanted first (it shows those that fit)
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = (
        "detail.back",
        "detail.next_chart",
        "detail.smoothing",
        "detail.log_scale",
        "detail.live",
        "detail.prev_chart",
        "detail.reload",
    )

    def __init__(self, project: Project, run_id: str, *, clock: Clock | None = None) -> None:
        super().__init__()
        self.project = project
        self.run_id = run_id
        self.clock = clock
        self.run_doc: Run = {"id": run_id}
        self.run_dir: Path = project.run_dir(run_id)
        #: where the run stands with its job's champion, see champion_status
        self.champion: dict[str, Any] | None = None

    def now(self) -> float:
        import time

        return self.clock() if self.clock else time.time()

    def compose(self) -> ComposeResult:
        yield Static(id="detail-bar")
        with TabbedContent(initial="overview", id="detail-tabs"):
            with (
                TabPane("1 Overview", id="overview"),
                VerticalScroll(classes="detail-scroll"),
            ):
                yield Static(id="overview-body")
            with TabPane("2 Metrics", id="metrics"):
                yield ChartBrowser(id="metrics-charts", empty=Text("loading …", style="dim"))
            with TabPane("3 Manifest", id="manifest"):
                yield Tree(Text("manifest"), id="manifest-tree")
            with TabPane("4 Log", id="log"):
                yield from self._log_widget()
            with TabPane("5 Resources", id="resources"):
                yield VerticalScroll(classes="detail-scroll", id="resources-box")
        yield KeyFooter()

    def _log_widget(self) -> ComposeResult:
        path = self.run_dir / "output.log"
        yield LogView(path, follow=True, id="detail-log")

    def on_mount(self) -> None:
        self.load()

    # -- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        try:
            store = Store(self.project.store_file).snapshot()  # one read for both
            self.run_doc = store.get_run(self.run_id)
            self.champion = champion_status(store, self.run_doc)
        except CtuiError as exc:
            self.notify(str(exc), severity="error")
        self._show_bar()
        self.query_one("#overview-body", Static).update(self._overview())
        self._load_metrics()
        self._load_manifest()
        self._load_resources()

    def _show_bar(self) -> None:
        run = self.run_doc
        symbol, style = status_look(str(run.get("status", "")))
        bar = Text()
        bar.append(" run ", style="bold reverse")
        bar.append(f" {self.run_id} ", style="bold")
        bar.append(str(run.get("job") or ""))
        bar.append("  ")
        bar.append(f"{symbol} {run.get('status', '?')}", style=style)
        if self.champion and self.champion["is_champion"]:
            bar.append("  ★ champion", style="bold yellow")
        self.query_one("#detail-bar", Static).update(bar)

    def _overview(self) -> Group:
        run = self.run_doc
        now = self.now()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()

        def row(label: str, value: Any, style: str = "") -> None:
            if value is None or value == "" or value == []:
                return
            grid.add_row(label, Text(str(value), style=style))

        symbol, style = status_look(str(run.get("status", "")))
        row("status", f"{symbol} {run.get('status', '?')}", style)
        row("job", run.get("job"))
        row("command", shlex.join(run["command"]) if run.get("command") else None)
        row("exit code", run.get("exit_code"))
        row("error", run.get("error"), "red")
        started = run.get("started")
        if started:
            row("started", f"{fmt_time(started)} ({fmt_ago(started, now)})")
        row("ended", fmt_time(run["ended"]) if run.get("ended") else None)
        dur = run_duration(run, now=now)
        row("duration", duration(dur) if dur is not None else None)
        trigger = run.get("trigger") or "manual"
        cause = run.get("cause")
        row("trigger", f"{trigger}: {cause}" if cause else trigger)
        row("backend", run.get("backend"))
        row("host", run.get("host"))
        row("git", run.get("git"))
        row("data", run.get("data_hash"))
        if run.get("reproduces"):
            row("reproduces", f"{run['reproduces']} ({run.get('verdict') or 'pending'})")
        exp = run.get("dvc_exp") or {}
        row("experiment", exp.get("name"))
        row("dvc", run.get("dvc_error"), "yellow")
        mlflow = run.get("mlflow") or {}
        row("mlflow run", mlflow.get("run_id"))
        row("tags", ", ".join(run.get("tags") or ()))
        row("note", run.get("note"))
        peaks = run.get("peaks") or {}
        if peaks:
            bits = []
            if peaks.get("max_rss"):
                bits.append(f"RAM {bytes_(peaks['max_rss'])}")
            if peaks.get("max_cpu") is not None:
                bits.append(f"CPU {number(peaks['max_cpu'])}%")
            if peaks.get("max_gpu_util") is not None:
                bits.append(f"GPU {number(peaks['max_gpu_util'])}%")
            if peaks.get("max_gpu_mem"):
                bits.append(f"GPU mem {bytes_(peaks['max_gpu_mem'])}")
            row("peaks", "  ".join(bits))
        parts: list[Any] = [grid]
        if run.get("gate") is not None or self.champion is not None:
            parts += [Text(""), Text("gate", style="bold underline"), gate_text(run.get("gate"))]
            parts.append(champion_text(self.champion, str(run.get("job") or ""), now))
        for title, values in (("params", run.get("params")), ("final metrics", run.get("metrics"))):
            if values:
                table = Table.grid(padding=(0, 2))
                table.add_column(no_wrap=True)
                table.add_column()
                for k, v in sorted(values.items()):
                    table.add_row(Text(str(k)), Text(number(v) if not isinstance(v, str) else v))
                parts += [Text(""), Text(title, style="bold underline"), table]
        if run.get("log_tail") and run.get("status") not in ACTIVE:
            parts += [Text(""), Text("last lines of the log", style="bold")]
            parts += [Text(str(line), style="dim") for line in run["log_tail"][-10:]]
        return Group(*parts)

    @work(thread=True, exclusive=True, group="detail-metrics", exit_on_error=False)
    def _load_metrics(self) -> None:
        histories = metric_points(metrics_file(self.run_dir))
        plots = plot_lines(self.run_dir)
        self.app.call_from_thread(self._show_metrics, histories, plots)

    def _show_metrics(
        self, histories: dict[str, tuple[list[float], list[float]]], plots: list[PlotLine]
    ) -> None:
        """A chart per metric history, then one per recorded DVC plot; `[`/`]` pick one."""
        charts = [history_chart(name, *points) for name, points in histories.items()]
        for plot in plots:
            n = len(plot.values)
            span = plot.x_hi - plot.x_lo
            xs = tuple(plot.x_lo + span * i / max(1, n - 1) for i in range(n))
            charts.append(
                Chart(
                    f"{plot.name}  {plot.y} vs {plot.x}",
                    [Series(plot.y, xs, tuple(plot.values))],
                    x_label=plot.x,
                    note=f"{plot.file}, {plot.points} points",
                )
            )
        empty = Text(
            "no metric history recorded for this run (metrics.jsonl is empty)", style="dim"
        )
        for k, v in sorted((self.run_doc.get("metrics") or {}).items()):
            empty.append(f"\n{k}: {number(v)}")
        browser = self.query_one("#metrics-charts", ChartBrowser)
        browser.empty = empty
        browser.set_charts(charts)

    @work(thread=True, exclusive=True, group="detail-resources", exit_on_error=False)
    def _load_resources(self) -> None:
        series = resource_series(self.run_dir / "resources.jsonl")
        self.app.call_from_thread(self._show_resources, series)

    def _show_resources(self, series: dict[str, list[float]]) -> None:
        self._show_series(
            "#resources-box",
            series,
            describe=lambda v: (
                f"  last {number(round(v[-1], 1))}  max "
                f"{number(round(max(v), 1))}  ({len(v)} samples)"
            ),
            chart=lambda v: Sparkline(v, summary_function=max),
            empty=Text("no resource samples recorded for this run", style="dim"),
        )

    def _show_series(
        self,
        box_id: str,
        series: dict[str, list[float]],
        *,
        describe: Callable[[list[float]], str],
        chart: Callable[[list[float]], Any],
        empty: Text,
    ) -> None:
        """A label and a chart per series (resource samples)."""
        box = self.query_one(box_id, VerticalScroll)
        box.remove_children()
        widgets: list[Any] = []
        for name, values in series.items():
            label = Text()
            label.append(name, style="bold")
            label.append(describe(values), style="dim")
            widgets.append(Static(label, classes="metric-label"))
            widgets.append(chart(values))
        box.mount_all(widgets or [Static(empty)])

    @work(thread=True, exclusive=True, group="detail-manifest", exit_on_error=False)
    def _load_manifest(self) -> None:
        hashes = self.run_doc.get("manifest") or {}
        sections: dict[str, Any] = {}
        error = None
        if hashes:
            try:
                from ctui.manifest import load
                from ctui.objects import ObjectStore

                sections = load(ObjectStore(self.project.objects_dir), hashes)["sections"]
            except (CtuiError, OSError, ValueError) as exc:
                error = f"manifest could not be read: {exc}"
        self.app.call_from_thread(self._show_manifest, sections, error)

    def _show_manifest(self, sections: dict[str, Any], error: str | None) -> None:
        tree: Tree[Any] = self.query_one("#manifest-tree", Tree)
        tree.clear()
        tree.root.expand()
        if error:
            tree.root.add_leaf(Text(error, style="red"))
        for name in ("data", "code", "env", "compute"):
            section = sections.get(name)
            if section is None:
                tree.root.add_leaf(Text.assemble((name, "bold"), ("  not recorded", "dim")))
                continue
            label = Text.assemble((name, "bold"), (f"  {str(section.get('hash', ''))[:12]}", "dim"))
            if section.get("status") == "absent":
                label.append(f"  absent: {section.get('reason')}", style="yellow")
            node = tree.root.add(label, expand=name in ("data", "code"))
            _fill(node, {k: v for k, v in section.items() if k not in ("hash",)})
        results = {
            k: self.run_doc.get(k)
            for k in ("status", "exit_code", "params", "metrics", "duration", "peaks")
            if self.run_doc.get(k) is not None
        }
        node = tree.root.add(Text("results", style="bold"), expand=False)
        _fill(node, results)

    # -- actions -------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss()

    def action_reload(self) -> None:
        self.load()

    def action_live(self) -> None:
        from ctui.tui.screens.live_run import LiveRunScreen

        self.app.push_screen(LiveRunScreen(self.project, self.run_id, clock=self.clock))


def _fill(node: TreeNode[Any], value: Any) -> None:
    """Add `value` (dicts, lists, scalars) under `node`; labels are Text, never markup."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        node.add_leaf(Text(str(value)))
        return
    for i, (key, child) in enumerate(items):
        if i >= TREE_LIST_LIMIT:
            node.add_leaf(Text(f"… {len(items) - TREE_LIST_LIMIT} more", style="dim"))
            break
        if isinstance(child, dict | list) and child:
            sub = node.add(Text.assemble((str(key), "bold"), (f"  ({len(child)})", "dim")))
            _fill(sub, child)
        else:
            shown = "—" if child is None or child == [] or child == {} else str(child)
            if len(shown) > 200:
                shown = shown[:200] + "…"
            node.add_leaf(Text.assemble((f"{key}: ", "bold"), shown))
