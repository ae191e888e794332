# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""Snapshot tests of the runs screen, the run detail tabs and help at 80×24 and 120×40.

Run ids, times, durations and host names are frozen by the fixed store and the fixed clock.
Snapshots live in snapshots/test_tui_snapshots/; refresh with `--snapshot-update`.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_tui_fixtures import FROZEN_NOW, make_app, tui_project  # noqa: F401

from ctui.project import Project

pytestmark = pytest.mark.timeout(120)

SIZES = [(80, 24), (120, 40)]


async def settle(pilot: Any) -> None:
    """Wait until the detail screen's workers filled its tabs."""
    from textual.widgets import Sparkline, Tree

    from ctui.tui.widgets.chart_browser import ChartBrowser

    screen = pilot.app.screen
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if (
            screen.query_one("#metrics-charts", ChartBrowser).charts
            and screen.query(Sparkline)
            and len(screen.query_one("#manifest-tree", Tree).root.children) == 5
        ):
            break
        await pilot.pause(0.05)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen(snap_compare: Any, tui_project: Project, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(tui_project), terminal_size=size, press=["down", "space"])


def test_runs_screen_sorted_and_filtered(snap_compare: Any, tui_project: Project) -> None:
    keys = ["greater_than_sign", "slash", *"job=train", "enter"]
    assert snap_compare(make_app(tui_project), terminal_size=(120, 40), press=keys)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "tab", ["1", "2", "3", "5"], ids=["overview", "metrics", "manifest", "resources"]
)
def test_detail_tabs(
    snap_compare: Any, tui_project: Project, size: tuple[int, int], tab: str
) -> None:
    async def open_detail(pilot: Any) -> None:
        await pilot.press("down", "down", "down", "enter")
        await settle(pilot)
        await pilot.press(tab)
        await pilot.pause()

    assert snap_compare(make_app(tui_project), terminal_size=size, run_before=open_detail)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare: Any, tui_project: Project, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(tui_project), terminal_size=size, press=["question_mark"])
