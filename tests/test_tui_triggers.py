"""The Triggers screen: the same rows and actions as `ctui triggers`, driven with a pilot."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from textual.app import App
from textual.widgets import DataTable

from ctui.store import TRIGGERS, Store
from ctui.tui.screens.triggers import TriggersScreen
from tests.test_triggers_helpers import QUICK, runs, wait_final, write_config

pytestmark = pytest.mark.timeout(120)

FROZEN = 1_800_000_000.0 + 600

CONFIG = f"""
[jobs.train]
command = "{QUICK}"

[triggers.hourly]
job = "train"
on = "schedule"
every = "1h"

[triggers.drift]
job = "train"
on = "metric"
file = "drift.txt"
threshold = 0.3
enabled = false
"""


class TriggersApp(App[None]):
    def __init__(self, project: Any) -> None:
        super().__init__()
        self.project = project

    def on_mount(self) -> None:
        self.push_screen(TriggersScreen(self.project, clock=lambda: FROZEN, poll_interval=60))


async def until(pilot: Any, check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await pilot.pause(0.05)


def screen_of(app: App[None]) -> TriggersScreen:
    screen = app.screen
    assert isinstance(screen, TriggersScreen)
    return screen


async def test_rows_toggle_and_fire(project) -> None:
    write_config(project.root, CONFIG)
    app = TriggersApp(project)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: screen_of(app).loads >= 1)
        screen = screen_of(app)
        table = screen.query_one(DataTable)
        assert table.row_count == 2
        assert [r["name"] for r in screen.rows] == ["hourly", "drift"]
        assert [r["enabled"] for r in screen.rows] == [True, False]
        assert screen.rows[0]["next_check"] == 1_800_000_000.0 + 3600

        # e on the metric trigger (disabled in ctui.toml) enables it: an override in the store
        await pilot.press("down", "e")
        await until(pilot, lambda: screen.last_event is not None)
        assert screen.last_event == {"event": "enabled", "trigger": "drift"}
        await until(pilot, lambda: screen.rows[1]["enabled"] is True)
        assert Store(project.store_file).get_doc(TRIGGERS, "drift")["enabled"] is True

        # f fires the highlighted trigger through the same path as `ctui triggers fire`
        await pilot.press("up", "f")
        await until(pilot, lambda: screen.last_event["event"] == "fired")
        (run,) = runs(project.root)
        assert run["trigger"] == "hourly" and run["cause"].startswith("manual ")
        assert screen.last_event["run_id"] == run["id"]
        await until(pilot, lambda: screen.rows[0]["last_run"] == run["id"])
    await asyncio.to_thread(wait_final, project.root)


async def test_broken_config_is_shown_not_raised(project) -> None:
    write_config(project.root, CONFIG.replace('every = "1h"', 'every = "soon"'))
    app = TriggersApp(project)
    async with app.run_test(size=(100, 20)) as pilot:
        await until(pilot, lambda: screen_of(app).loads >= 1)
        screen = screen_of(app)
        assert screen.rows == [] and screen.error and "triggers.hourly.every" in screen.error


def test_snapshot_triggers_screen(project, snap_compare) -> None:  # type: ignore[no-untyped-def]
    write_config(project.root, CONFIG)
    Store(project.store_file).put_doc(
        TRIGGERS,
        "hourly",
        {
            "name": "hourly",
            "last_fired": FROZEN - 300,
            "last_cause": "every 1h: due",
            "status": "idle",
            "note": "next due soon",
            "last_run": "08h7aaaaaaaa",
        },
    )
    app = TriggersApp(project)

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, lambda: screen_of(app).loads >= 1)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(110, 16), run_before=settle)


async def test_opened_from_the_runs_screen_with_t(project) -> None:
    from ctui.tui.app import CtuiApp

    write_config(project.root, CONFIG)
    app = CtuiApp(project, clock=lambda: FROZEN, poll_interval=60, keymap={})
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, TriggersScreen))
        await until(pilot, lambda: screen_of(app).loads >= 1)
        assert [r["name"] for r in screen_of(app).rows] == ["hourly", "drift"]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, TriggersScreen))
