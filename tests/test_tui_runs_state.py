# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""The runs screen remembers sort, columns and filter in `.ctui/ui.json`; a damaged file is
ignored with a notice; relative times stay right without waiting 30 seconds."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_tui_fixtures import FROZEN_NOW, make_app, tui_project, wait_for  # noqa: F401

from ctui.project import Project
from ctui.tui.app import CtuiApp
from ctui.tui.screens.runs import RunsScreen
from ctui.tui.widgets.runs_table import RunsTable
from ctui.ui_state import RunsState, load_runs_state, save_runs_state, ui_file

pytestmark = pytest.mark.timeout(90)


def runs_screen(app: CtuiApp) -> RunsScreen:
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    return screen


def notices(app: CtuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_sort_columns_and_filter_are_restored_on_the_next_start(
    tui_project: Project,
) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = runs_screen(app)
        await pilot.press("greater_than_sign", "r")  # sort by acc, smallest first
        await pilot.press("slash", *"job=train", "enter")
        await pilot.press("c", "space", "enter")  # untick the first column: metric.acc
        await pilot.pause()
        chosen = list(screen.extra_keys or [])
        assert "metric.acc" not in chosen
        sort = (screen.sort_key, screen.sort_desc)
    doc = orjson.loads(ui_file(tui_project.store_file).read_bytes())
    assert doc["runs"]["filter"] == "job=train" and doc["runs"]["columns"] == chosen

    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = runs_screen(app)
        assert (screen.sort_key, screen.sort_desc) == sort
        assert screen.filter_text == "job=train"
        assert {r["job"] for r in app.screen.query_one(RunsTable).rows} == {"train"}
        assert screen.extra_keys == chosen
        assert "metric.acc" not in [c.key for c in app.screen.query_one(RunsTable).columns]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'{"runs": {"sort": 3, "columns": "acc", "filter": null}}'],
    ids=["torn", "not-an-object", "wrong-types"],
)
async def test_a_damaged_state_file_is_ignored_with_a_notice(
    tui_project: Project, content: bytes
) -> None:
    path = ui_file(tui_project.store_file)
    path.write_bytes(content)
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = runs_screen(app)
        assert screen.sort_key == "started" and screen.filter_text == ""
        assert any("ui.json" in n and "using defaults" in n for n in notices(app))
        await pilot.press("r")  # the next change writes a good file over it
    assert orjson.loads(path.read_bytes())["runs"]["descending"] is False


async def test_a_remembered_sort_or_filter_that_no_longer_applies_is_dropped(
    tui_project: Project,
) -> None:
    path = ui_file(tui_project.store_file)
    save_runs_state(path, RunsState(sort="metric.nothing", filter="metric.acc>abc"))
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = runs_screen(app)
        assert screen.sort_key == "started"  # an unknown sort key cannot be restored either
        assert screen.filter_text == ""
        assert len(app.screen.query_one(RunsTable).rows) == 10
        assert any("no longer applies" in n for n in notices(app))


def test_state_file_round_trip_and_bad_fields(tmp_path: Path) -> None:
    path = tmp_path / ".ctui" / "ui.json"
    assert load_runs_state(path) == RunsState()  # no file: defaults, no notice
    assert load_runs_state(path).notice is None
    state = RunsState("metric.acc", False, ["metric.acc", "param.lr"], "job=train")
    assert save_runs_state(path, state) is None
    assert load_runs_state(path) == state
    path.write_bytes(b'{"other": 1, "runs": {"sort": "", "descending": "yes"}}')
    loaded = load_runs_state(path)
    assert loaded.sort is None and loaded.descending is None
    assert loaded.notice == "ui.json: ignored a bad sort, descending"
    save_runs_state(path, state)
    assert orjson.loads(path.read_bytes())["other"] == 1  # other sections are kept
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert "cannot save" in (save_runs_state(blocked / "ui.json", state) or "")


async def test_relative_times_move_on_within_seconds(tui_project: Project) -> None:
    now = [FROZEN_NOW]
    app = make_app(tui_project, clock=lambda: now[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        assert "3m ago" in table.render_line(1).text  # the running run started 3 minutes ago
        now[0] += 60
        await wait_for(pilot, lambda: "4m ago" in table.render_line(1).text, timeout=10)


async def test_a_big_store_shows_its_newest_runs_first_then_all_of_them(
    tui_project: Project, monkeypatch
) -> None:
    from ctui.store import Store

    total = len(Store(tui_project.store_file).runs())
    monkeypatch.setattr(RunsScreen, "FIRST_PAGE", 3)
    newest = [r["id"] for r in Store(tui_project.store_file).runs()][-3:]
    seen_first: list[list[str]] = []
    real = RunsScreen._poll_store

    def first_frame_then_poll(self: RunsScreen) -> None:  # what the first frame holds
        seen_first.append(sorted(r["id"] for r in self.all_runs))
        real(self)

    monkeypatch.setattr(RunsScreen, "_poll_store", first_frame_then_poll)
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = runs_screen(app)
        await wait_for(pilot, lambda: len(screen.all_runs) == total)
        assert seen_first[0] == sorted(newest)  # the newest three, read first
        assert len(screen.query_one(RunsTable).rows) == total
        assert "reading" not in str(screen.query_one("#runs-bar").render())
