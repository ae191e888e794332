# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""Metric charts: the run detail's metrics tab (one chart at a time, smoothing, log scale, the
navigation keys) and `p` on the runs list overlaying the marked runs.

Snapshots at 80×24 live in snapshots/test_tui_plot/; refresh with `--snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from test_tui_fixtures import FROZEN_NOW, make_app, tui_project, wait_for  # noqa: F401

from ctui.project import Project
from ctui.store import Store
from ctui.tui.app import CtuiApp
from ctui.tui.screens.compare_plot import ComparePlotScreen, run_label
from ctui.tui.screens.run_detail import RunDetailScreen
from ctui.tui.screens.runs import RunsScreen
from ctui.tui.widgets.chart_browser import ChartBrowser
from ctui.tui.widgets.metric_plot import (
    MetricPlot,
    ema,
    integer_ticks,
    metric_points,
    nice_ticks,
    y_range,
)
from ctui.tui.widgets.runs_table import RunsTable

pytestmark = pytest.mark.timeout(120)


def browser(app: CtuiApp, selector: str) -> ChartBrowser:
    return app.screen.query_one(selector, ChartBrowser)


# -- the chart's data --------------------------------------------------------------------------


def test_metric_points_keep_steps_in_step_order(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    recs = [
        {"name": "loss", "value": 3.0, "step": 10},
        {"name": "loss", "value": 5.0, "step": 0},
        {"name": "acc", "value": 0.5},  # no step: its place in the file
        {"name": "acc", "value": True, "step": 4},  # not a number
        {"name": "acc", "value": float("inf"), "step": 5},
    ]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in recs) + b"\n{torn")
    assert metric_points(path) == {"acc": ([2.0], [0.5]), "loss": ([0.0, 10.0], [5.0, 3.0])}
    assert metric_points(tmp_path / "missing.jsonl") == {}


def test_smoothing_is_a_debiased_ema() -> None:
    assert ema([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    smooth = ema([4.0, 4.0, 4.0], 0.9)
    assert smooth == pytest.approx([4.0, 4.0, 4.0])  # a constant stays itself (no pull to 0)
    step = ema([0.0, 0.0, 10.0, 10.0], 0.6)
    assert 0 < step[2] < step[3] < 10


def test_a_tiny_change_is_drawn_small() -> None:
    lo, hi = y_range([0.9, 0.9008])
    assert hi - lo >= 0.09  # 0.0008 is under 1% of the height, not all of it
    assert lo <= 0.9 and hi >= 0.9008
    lo, hi = y_range([2.0, 0.1])  # a real change fills the chart, padded
    assert 0 <= lo < 0.1 and 2.0 < hi < 2.2
    lo, hi = y_range([0.5, 0.6], log=True)
    assert lo < 0.5 and hi > 0.6 and hi / lo >= 10


def test_axis_ticks_are_round_numbers_and_whole_steps() -> None:
    assert nice_ticks(0.479, 0.948) == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert nice_ticks(-0.11, 2.15) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert integer_ticks(1, 8) == [1, 3, 5, 7]
    assert integer_ticks(0, 59) == [0, 12, 24, 36, 48]


# -- the run detail's metrics tab --------------------------------------------------------------


async def test_detail_metrics_tab_charts_steps_smoothing_and_log(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter", "2")
        await wait_for(pilot, lambda: browser(app, "#metrics-charts").charts)
        charts = browser(app, "#metrics-charts")
        plot = charts.query_one(MetricPlot)
        assert [c.name for c in charts.charts] == ["acc", "loss"]
        ((label, steps, values, _),) = plot.drawn
        assert label == "acc" and steps == [float(s) for s in range(60)]
        raw = list(charts.charts[0].series[0].values)
        assert values == raw and plot.smoothing == 0
        await pilot.press("s")
        assert plot.smoothing == 0.6 and plot.drawn[0][2] == pytest.approx(ema(raw, 0.6))
        assert "smoothed 0.6" in str(charts.head.content)
        await pilot.press("L")
        assert plot.log_scale and plot.log_active
        assert "log" in str(charts.head.content)
        await pilot.press("right_square_bracket")  # loss dips below 0: no log scale for it
        assert charts.current is not None and charts.current.name == "loss"
        assert plot.drawn[0][0] == "loss" and plot.log_scale and not plot.log_active
        assert "log scale needs values above 0" in str(charts.head.content)
        await pilot.press("s", "s", "L")
        assert plot.smoothing == 0 and not plot.log_scale
        await pilot.press("k")  # j/k walk the charts on the metrics tab
        assert charts.current is not None and charts.current.name == "acc"


async def test_detail_navigation_keys(tui_project: Project) -> None:
    from textual.widgets import TabbedContent, Tree

    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        tree = detail.query_one("#manifest-tree", Tree)
        await wait_for(pilot, lambda: len(tree.root.children) == 5)
        await pilot.press("s", "L")  # chart keys belong to the metrics tab only
        assert detail.query_one(TabbedContent).active == "overview"
        plot = detail.query_one(MetricPlot)
        assert plot.smoothing == 0 and not plot.log_scale
        await pilot.press("3")  # the tree has focus at once: no Tab needed
        assert detail.query_one(TabbedContent).active == "manifest"
        assert app.focused is tree
        start = tree.cursor_line
        await pilot.press("j", "j")
        assert tree.cursor_line == start + 2
        await pilot.press("k")
        assert tree.cursor_line == start + 1
        await pilot.press("G")
        assert tree.cursor_line == tree.last_line > start + 1
        await pilot.press("g")
        assert tree.cursor_line == 0
        await pilot.press("q")  # back, never out of the app
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
    assert app.return_code is None or app.return_code == 0


# -- overlaying runs ---------------------------------------------------------------------------


async def test_p_overlays_the_marked_runs(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        await pilot.press("down", "space", "down", "space")
        assert len(table.marked) == 2
        first, second = sorted(table.marked)
        # a metric only the second run recorded
        with (tui_project.run_dir(second) / "metrics.jsonl").open("ab") as fh:
            for step in range(5):
                rec = {"name": "lr", "value": 0.1 / (step + 1), "step": step}
                fh.write(orjson.dumps(rec) + b"\n")
        await pilot.press("p")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ComparePlotScreen)
        assert screen.run_ids == [first, second]
        charts = browser(app, "#compare-charts")
        await wait_for(pilot, lambda: charts.charts)
        store = Store(tui_project.store_file)
        labels = [run_label(store.get_run(i)) for i in [first, second]]
        assert [c.name for c in charts.charts] == ["acc", "loss", "lr"]
        plot = charts.query_one(MetricPlot)
        assert [d[0] for d in plot.drawn] == labels
        assert len({d[3] for d in plot.drawn}) == 2  # distinct colours
        assert all(d[1] == [float(s) for s in range(60)] for d in plot.drawn)
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert charts.current is not None and charts.current.name == "lr"
        assert [d[0] for d in plot.drawn] == [run_label(store.get_run(second))]
        assert "1 of 2 runs" in str(charts.head.content)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


def test_run_label_prefers_the_sequence_number() -> None:
    assert run_label({"id": "08jd4k2mabcdef", "seq": 42}) == "#42"
    assert run_label({"id": "08jd4k2mabcdef"}) == "abcdef"
    assert run_label({"id": "08jd4k2mabcdef", "seq": True}) == "abcdef"


# -- snapshots at 80×24 ------------------------------------------------------------------------


def test_snapshot_detail_metrics_smoothed(snap_compare: Any, tui_project: Project) -> None:
    async def open_metrics(pilot: Any) -> None:
        await pilot.press("down", "down", "down", "enter", "2")
        await wait_for(pilot, lambda: browser(pilot.app, "#metrics-charts").charts)
        await pilot.press("right_square_bracket", "s")
        await pilot.pause()

    assert snap_compare(make_app(tui_project), terminal_size=(80, 24), run_before=open_metrics)


def test_snapshot_overlay(snap_compare: Any, tui_project: Project) -> None:
    async def overlay(pilot: Any) -> None:
        await pilot.press("down", "space", "down", "down", "space", "down", "down", "space", "p")
        await pilot.pause()
        await wait_for(pilot, lambda: browser(pilot.app, "#compare-charts").charts)
        await pilot.press("right_square_bracket")  # loss
        await pilot.pause()

    assert snap_compare(make_app(tui_project), terminal_size=(80, 24), run_before=overlay)


async def test_p_without_marks_plots_the_cursor_run_and_a_missing_run_is_said(
    tui_project: Project,
) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        await pilot.press("down", "p")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ComparePlotScreen)
        assert screen.run_ids == [table.rows[1]["id"]]
        await pilot.press("escape")
        await pilot.pause()
        real = table.rows[1]["id"]
        app.push_screen(ComparePlotScreen(tui_project, [real, "zzzzzzzzzzzz"]))
        await pilot.pause()
        charts = browser(app, "#compare-charts")
        await wait_for(pilot, lambda: charts.charts)
        plot = charts.query_one(MetricPlot)
        assert len(plot.drawn) == 1  # the run that exists is still charted
        messages = [str(n.message) for n in app._notifications]
        assert any("zzzzzzzzzzzz" in m for m in messages)
