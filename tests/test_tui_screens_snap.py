# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""Every screen at 80×24 and 160×48, each with its footer ending in `? help`.

The project lives at a fixed path (a diff names the repository it looked in) and the clock is
frozen, so run ids, times and durations are the same on every machine. Snapshots live in
snapshots/test_tui_screens_snap/; refresh with `--snapshot-update`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_tui_fixtures import make_app, make_tui_project, run_docs

from ctui.project import Project
from ctui.tui.widgets.key_footer import KeyFooter

pytestmark = pytest.mark.timeout(120)

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def fixed_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Project]:
    root = Path(tempfile.gettempdir()) / "ctui-screens-snap" / "demo"
    shutil.rmtree(root.parent, ignore_errors=True)
    monkeypatch.setenv("CTUI_KEYMAP", str(tmp_path / "no-keymap.toml"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield make_tui_project(root)
    monkeypatch.undo()
    time.tzset()
    shutil.rmtree(root.parent, ignore_errors=True)


async def until(pilot: Any, condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the screen did not settle"
        await pilot.pause(0.05)
    await pilot.pause()


def _footer_ends_in_help(app: Any) -> bool:
    footers = app.screen.query(KeyFooter)
    return bool(footers) and footers.first().render().plain.endswith("? help")


def newest_ids(n: int) -> list[str]:
    docs = sorted(run_docs(), key=lambda d: d["started"], reverse=True)
    return [d["id"] for d in docs if d["status"] == "succeeded"][:n]


async def open_diff(pilot: Any) -> None:
    from ctui.tui.screens.diff import DiffScreen

    app = pilot.app
    app.push_screen(DiffScreen(app.project, newest_ids(2)))
    await until(pilot, lambda: isinstance(app.screen, DiffScreen) and app.screen.result)


async def open_compare(pilot: Any) -> None:
    from ctui.tui.screens.diff import DiffScreen

    app = pilot.app
    app.push_screen(DiffScreen(app.project, newest_ids(3)))
    await until(pilot, lambda: isinstance(app.screen, DiffScreen) and app.screen.result)


async def open_triggers(pilot: Any) -> None:
    from ctui.tui.screens.triggers import TriggersScreen

    await pilot.press("t")
    await until(
        pilot, lambda: isinstance(pilot.app.screen, TriggersScreen) and pilot.app.screen.loads
    )


async def open_launch(pilot: Any) -> None:
    from ctui.tui.screens.launch import LaunchScreen

    app = pilot.app
    app.push_screen(LaunchScreen(app.project, gpus=([], "no NVIDIA driver")))
    await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.config)


async def open_help_of_diff(pilot: Any) -> None:
    from ctui.tui.screens.help import HelpScreen

    await open_diff(pilot)
    await pilot.press("question_mark")
    await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))


async def open_jump(pilot: Any) -> None:
    from ctui.tui.screens.jump import JumpScreen

    await open_triggers(pilot)  # a screen of its own below, not the runs list
    await pilot.press("colon", "t")
    await until(pilot, lambda: isinstance(pilot.app.screen, JumpScreen))
    await pilot.pause(0.2)  # the completion is computed in a worker


async def open_live(pilot: Any) -> None:
    from ctui.tui.screens.live_run import LiveRunScreen
    from ctui.tui.widgets.log_view import LogView

    app = pilot.app
    app.push_screen(LiveRunScreen(app.project, newest_ids(1)[0], clock=app.clock))
    await until(pilot, lambda: isinstance(app.screen, LiveRunScreen) and app.screen.finished)
    await until(pilot, lambda: app.screen.query_one(LogView).line_count > 0)
    await pilot.pause(0.2)


async def open_runs(pilot: Any) -> None:
    from ctui.tui.screens.runs import RunsScreen
    from ctui.tui.widgets.runs_table import RunsTable

    app = pilot.app
    await until(
        pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.query_one(RunsTable).rows
    )


async def open_detail(pilot: Any) -> None:
    from textual.widgets import Tree

    from ctui.tui.screens.run_detail import RunDetailScreen

    await open_runs(pilot)
    await pilot.press("down", "enter")  # the newest finished run
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
    await until(pilot, lambda: len(app.screen.query_one("#manifest-tree", Tree).root.children) == 5)
    await pilot.pause(0.2)


SCREENS = {
    "runs": open_runs,
    "detail": open_detail,
    "live": open_live,
    "diff": open_diff,
    "compare": open_compare,
    "triggers": open_triggers,
    "launch": open_launch,
    "help": open_help_of_diff,
    "jump": open_jump,
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(SCREENS))
def test_screen(
    snap_compare: Any, fixed_project: Project, name: str, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        await SCREENS[name](pilot)
        if name != "jump":  # the jump prompt covers the footer of the screen below
            assert _footer_ends_in_help(pilot.app)

    assert snap_compare(make_app(fixed_project), terminal_size=size, run_before=run_before)
