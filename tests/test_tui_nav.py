# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""The navigation model on every screen: where `esc`, `q`, `Q`, `?`, `:` and j/k land.

Each test presses the keys a user would and asserts on the screen stack (and the cursor),
not only that nothing crashed.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_tui_diff import diff_project  # noqa: F401
from test_tui_fixtures import FROZEN_NOW, make_app, tui_project, wait_for  # noqa: F401

from ctui.project import Project
from ctui.tui.app import CtuiApp
from ctui.tui.screens.diff import DiffScreen
from ctui.tui.screens.help import HelpScreen
from ctui.tui.screens.jump import JumpScreen
from ctui.tui.screens.launch import LaunchScreen
from ctui.tui.screens.live_run import LiveRunScreen
from ctui.tui.screens.run_detail import RunDetailScreen
from ctui.tui.screens.runs import RunsScreen
from ctui.tui.screens.triggers import TriggersScreen
from ctui.tui.widgets.key_footer import KeyFooter, footer_text

pytestmark = pytest.mark.timeout(90)


def stack(app: CtuiApp) -> list[str]:
    return [type(s).__name__ for s in app.screen_stack]


async def open_screen(pilot: Any, name: str) -> None:
    """From the runs list, open one screen the way a user does."""
    keys = {
        "detail": ["enter"],
        "diff": ["space", "down", "space", "d"],
        "triggers": ["t"],
        "launch": ["n"],
        "help": ["question_mark"],
        "jump": ["colon"],
        "live": ["l"],
    }[name]
    await pilot.press(*keys)
    await pilot.pause()


SCREENS = {
    "detail": RunDetailScreen,
    "diff": DiffScreen,
    "triggers": TriggersScreen,
    "launch": LaunchScreen,
    "help": HelpScreen,
    "jump": JumpScreen,
    "live": LiveRunScreen,
}


async def test_space_space_d_q_goes_back_to_runs(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("space", "space", "d")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen))
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert app.is_running and app.return_code is None
        await pilot.press("q")  # home: q quits
        await wait_for(pilot, lambda: not app.is_running)


@pytest.mark.parametrize("name", list(SCREENS))
@pytest.mark.parametrize("key", ["escape", "q"])
async def test_back_key_pops_one_screen(tui_project: Project, name: str, key: str) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await open_screen(pilot, name)
        await wait_for(pilot, lambda: isinstance(app.screen, SCREENS[name]))
        if name == "jump" and key == "q":
            # a focused input keeps its keys: q is a letter typed there
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, SCREENS[name])
            return
        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert stack(app) == ["RunsScreen"]
        assert app.is_running


@pytest.mark.parametrize("name", list(SCREENS))
async def test_shift_q_quits_from_anywhere(tui_project: Project, name: str) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await open_screen(pilot, name)
        await wait_for(pilot, lambda: isinstance(app.screen, SCREENS[name]))
        key = "ctrl+c" if name in ("launch", "jump") else "Q"
        await pilot.press(key)
        await wait_for(pilot, lambda: not app.is_running)


@pytest.mark.parametrize("name", ["runs", "detail", "diff", "triggers", "launch", "live"])
async def test_question_mark_shows_this_screens_keys(tui_project: Project, name: str) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        if name != "runs":
            await open_screen(pilot, name)
            await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))
        under = app.screen
        bound = {
            a.binding.description
            for a in under.active_bindings.values()
            if a.binding.description and a.binding.id and a.binding.id.startswith(name[:4])
        }
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        described = {d for _, d in help_screen.keys}
        assert bound and bound <= described
        text = help_screen.markdown()
        assert f"# Keys: {help_screen.section}" in text
        assert "## Everywhere" in text
        # j/k scroll the help, q goes back to the screen it describes
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is under)


async def test_help_keys_of_the_diff_screen(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await open_screen(pilot, "diff")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        keys = dict((d, k) for k, d in app.screen.keys)  # type: ignore[attr-defined]
        assert keys["Next change"].startswith("]")
        assert "Only changed" in keys
        assert app.screen.section == "Diff"  # type: ignore[attr-defined]


@pytest.mark.parametrize("typed", ["triggers", "tr", "runs", "help"])
async def test_jump_prompt_lands_on_the_named_screen(tui_project: Project, typed: str) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # start from the run detail
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.press("colon", *typed, "enter")
        want = {"triggers": TriggersScreen, "tr": TriggersScreen, "runs": RunsScreen}
        await wait_for(pilot, lambda: isinstance(app.screen, want.get(typed, HelpScreen)))
        if typed == "runs":
            assert stack(app) == ["RunsScreen"]
        else:
            assert stack(app)[:2] == ["RunsScreen", "RunDetailScreen"]


async def test_jump_tab_completes_and_q_quits(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("colon", "t", "r")
        await pilot.pause(0.2)
        await pilot.press("tab")
        assert app.screen.query_one("#jump-input").value == "triggers"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("colon", "x", "y", "z", "enter")
        await pilot.pause()
        assert isinstance(app.screen, JumpScreen)
        error = app.screen.query_one("#jump-error")
        assert error.display and "no screen named 'xyz'" in str(error.render())
        await pilot.press("escape", "colon", "q", "enter")
        await wait_for(pilot, lambda: not app.is_running)


def test_footer_text_keeps_whole_keys_and_ends_in_help() -> None:
    items = [("/", "Filter"), ("space", "Mark"), ("d", "Diff"), ("s", "Stop run"), ("t", "T")]
    for width in range(10, 60):
        text = footer_text(items, width).plain
        assert text.endswith("? help")
        assert len(text) <= width or width < len(" ?  help")
        for key, label in items:  # a key is there whole or not at all
            assert (f" {key} {label}" in text) or (f" {label}" not in text)
    assert footer_text(items, 200).plain.count("  ") >= len(items)


async def test_footer_on_every_screen_ends_in_help(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for name in ["diff", "triggers", "help", "launch", "live"]:
            await open_screen(pilot, name)
            want = SCREENS[name]
            await wait_for(pilot, lambda: isinstance(app.screen, want))  # noqa: B023
            footer = app.screen.query_one(KeyFooter)
            text = footer.render().plain
            assert text.endswith("? help"), (name, text)
            assert len(text) <= 80
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_small_terminal_says_so(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        overlay = app.screen.query_one("#too-small")
        assert "ctui needs at least 80×24 (now 60×20)" in str(overlay.render())
        await pilot.resize_terminal(100, 30)
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.resize_terminal(70, 30)
        overlay_text = lambda: str(app.screen.query_one("#too-small").render())  # noqa: E731
        await wait_for(pilot, lambda: "now 70×30" in overlay_text())
        await pilot.press("Q")
        await wait_for(pilot, lambda: not app.is_running)


async def test_palette_screenshot_saves_an_svg(tui_project: Project) -> None:
    app = make_app(tui_project)
    folder = tui_project.state_dir / "screenshots"
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"screenshot")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: folder.is_dir() and list(folder.glob("*.svg")))
        shot = next(folder.glob("*.svg"))
        assert shot.read_text().startswith("<svg")
        messages = [n.message for n in app._notifications]
        assert f"saved {shot}" in messages
        assert not any("Failed" in m for m in messages)


TRIGGERS = """
[triggers.hourly]
job = "train"
on = "schedule"
every = "1h"

[triggers.nightly]
job = "train"
on = "schedule"
every = "24h"

[triggers.drift]
job = "train"
on = "metric"
file = "drift.txt"
threshold = 0.3
enabled = false
"""


async def test_triggers_list_j_k_and_slash_filter(tui_project: Project) -> None:
    config = tui_project.root / "ctui.toml"
    config.write_text(config.read_text() + TRIGGERS)
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TriggersScreen) and app.screen.rows)
        screen = app.screen
        assert isinstance(screen, TriggersScreen)
        table = screen.query_one("#triggers-table")
        assert table.cursor_row == 0  # type: ignore[attr-defined]
        await pilot.press("j", "j")
        assert table.cursor_row == 2  # type: ignore[attr-defined]
        await pilot.press("k")
        assert table.cursor_row == 1  # type: ignore[attr-defined]
        await pilot.press("g")
        assert table.cursor_row == 0  # type: ignore[attr-defined]
        await pilot.press("G")
        assert table.cursor_row == 2  # type: ignore[attr-defined]
        # `/` filters the list; esc in the box cancels and keeps the applied filter
        await pilot.press("slash", *"ly", "enter")
        await pilot.pause()
        assert [r["name"] for r in screen.rows] == ["hourly", "nightly"]
        await pilot.press("slash", *"xx", "escape")
        await pilot.pause()
        assert [r["name"] for r in screen.rows] == ["hourly", "nightly"]
        assert isinstance(app.screen, TriggersScreen)  # esc closed the box, not the screen
        await pilot.press("slash", *"zzz", "enter")
        await pilot.pause()
        assert screen.rows == []
        assert "no trigger matches 'zzz'" in str(screen.query_one("#triggers-detail").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_diff_rows_j_k_and_slash_search(diff_project: Project) -> None:
    from ctui.tui.widgets.diff_view import DiffView

    # the diff of two runs whose code differs: a patch, longer than the screen
    app = make_app(diff_project, open_diff=["0aaaaaaaaaaa", "0ddddddddddd"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen) and app.screen.result)
        view = app.screen.query_one(DiffView)
        assert app.focused is view  # j/k work at once, no tab first
        assert view.max_scroll_y > 3
        await pilot.press("j", "j")
        assert view.scroll_y == 2
        await pilot.press("k")
        assert view.scroll_y == 1
        await pilot.press("G")
        assert view.scroll_y == view.max_scroll_y
        await pilot.press("g")
        assert view.scroll_y == 0
        await pilot.press("slash", *"train.py", "enter")
        await pilot.pause()
        assert view.current_row is not None and "train.py" in view.current_row.text
        first = view.cursor
        await pilot.press("n")  # the next match, not the next change, while searching
        assert view.cursor > first and "train.py" in view.rows[view.cursor].text
        assert app.focused is view
        # a search that finds nothing leaves the cursor where it was
        here = view.cursor
        await pilot.press("slash", "ctrl+u", *"nosuchkey", "enter")
        await pilot.pause()
        assert view.cursor == here
        await pilot.press("slash", "escape")  # esc cancels the box, not the screen
        assert isinstance(app.screen, DiffScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_compare_table_j_k_and_slash_filter(tui_project: Project) -> None:
    from textual.widgets import DataTable

    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("down", "space", "down", "down", "space", "down", "down", "space", "d")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen) and app.screen.result)
        table = app.screen.query_one(DataTable)
        total = table.row_count
        assert total > 2
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("slash", *"metric", "enter")
        await pilot.pause()
        assert 0 < table.row_count < total
        kinds = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert set(kinds) == {"metric"}
        title = str(app.screen.query_one("#diff-title").render())
        assert title.startswith("compare 3 runs:")


async def test_open_on_a_run_then_back_to_the_list(tui_project: Project) -> None:
    from test_tui_fixtures import run_docs

    newest = max(run_docs(), key=lambda d: d["started"])
    app = make_app(tui_project, open_run=newest["id"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert app.screen.run_id == newest["id"]  # type: ignore[attr-defined]
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert app.is_running


async def test_help_scrolls_with_j_k_g_G(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.2)
        scroll = app.screen.query_one("#help-scroll")
        assert scroll.max_scroll_y > 5
        await pilot.press("j", "j", "j")
        assert scroll.scroll_y == 3
        await pilot.press("k")
        assert scroll.scroll_y == 2
        await pilot.press("G")
        assert scroll.scroll_y == scroll.max_scroll_y
        await pilot.press("g")
        assert scroll.scroll_y == 0


async def test_palette_offers_the_jump_targets(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"go to triggers")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TriggersScreen))


@pytest.mark.parametrize("key", ["q", "escape", "n"])
async def test_confirm_q_esc_n_answer_no(tui_project: Project, key: str) -> None:
    from ctui.tui.screens.confirm import ConfirmScreen

    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("s")  # stop the running run (the newest): asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert app.is_running
        assert app.screen.query_one("RunsTable").rows[0]["status"] == "running"  # type: ignore[attr-defined]


async def test_colon_typed_in_an_input_stays_there(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", "a", "colon", "b")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "filter-input"
        assert app.focused.value == "a:b"  # type: ignore[attr-defined]
        assert not isinstance(app.screen, JumpScreen)
