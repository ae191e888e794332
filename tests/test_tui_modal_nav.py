# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""The navigation model on the modal screens: a question, the columns chooser, the log pane's
prompts, the jump prompt and the too-small overlay. Each test opens the modal the way a user
does, presses `?`, `escape`, `q`, `Q`, `:` and asserts on the screen it lands on."""

from __future__ import annotations

from typing import Any

import pytest
from test_tui_fixtures import FROZEN_NOW, make_app, tui_project, wait_for  # noqa: F401
from textual.widgets import Input

from ctui.project import Project
from ctui.tui.app import CtuiApp
from ctui.tui.screens.columns import ColumnsScreen
from ctui.tui.screens.confirm import ConfirmScreen
from ctui.tui.screens.help import HelpScreen, help_sections
from ctui.tui.screens.jump import JumpScreen
from ctui.tui.screens.live_run import LiveRunScreen
from ctui.tui.screens.modal import NavModal
from ctui.tui.screens.runs import RunsScreen
from ctui.tui.screens.too_small import TooSmallScreen
from ctui.tui.screens.triggers import TriggersScreen
from ctui.tui.widgets.log_prompt import LogPrompt, SearchPrompt, TimePrompt

pytestmark = pytest.mark.timeout(90)

#: modal → (the keys that open it from the runs list, its class, the screen under it)
MODALS: dict[str, tuple[list[str], type[NavModal[Any]], type[Any]]] = {
    "confirm": (["s"], ConfirmScreen, RunsScreen),  # stop the running run: asks first
    "columns": (["c"], ColumnsScreen, RunsScreen),
    "search": (["l", "slash"], SearchPrompt, LiveRunScreen),
    "jump": (["colon"], JumpScreen, RunsScreen),
}
#: the modals whose input has the focus: printable keys are typed there (the time prompt,
#: `T`, is a LogPrompt like the search; the demo's live run has no times to jump to)
PROMPTS = {"search", "jump"}


def test_every_modal_screen_has_the_navigation_model() -> None:
    """Each modal of the TUI comes from NavModal (one set of keys, not copies)."""
    for cls in (ConfirmScreen, ColumnsScreen, JumpScreen, TooSmallScreen, LogPrompt, TimePrompt):
        assert issubclass(cls, NavModal)
        keys = cls._merged_bindings.key_to_bindings if cls._merged_bindings else {}
        assert {"question_mark", "escape", "q", "Q"} <= set(keys)
        assert getattr(cls, "HELP_SECTION", None) in help_sections()


def stack(app: CtuiApp) -> list[str]:
    return [type(s).__name__ for s in app.screen_stack]


async def open_modal(pilot: Any, app: CtuiApp, name: str) -> NavModal[Any]:
    keys, cls, under = MODALS[name]
    for key in keys:
        await pilot.press(key)
        if key == "l":
            await wait_for(pilot, lambda: isinstance(app.screen, LiveRunScreen))
    await wait_for(pilot, lambda: isinstance(app.screen, cls))
    await pilot.pause()
    assert isinstance(app.screen_stack[-2], under)
    screen = app.screen
    assert isinstance(screen, NavModal)
    return screen


def running_status(app: CtuiApp) -> str:
    runs = app.screen_stack[0].query_one("RunsTable").rows  # type: ignore[attr-defined]
    return str(runs[0]["status"])


@pytest.mark.parametrize("name", [n for n in MODALS if n not in PROMPTS - {"jump"}])
async def test_question_mark_shows_the_modals_keys_and_q_comes_back(
    tui_project: Project, name: str
) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        modal = await open_modal(pilot, app, name)
        own = {
            a.binding.description
            for a in modal.active_bindings.values()
            if a.binding.description and a.binding.id and not a.binding.id.startswith("modal.")
        }
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        assert help_screen.section == modal.HELP_SECTION
        text = help_screen.markdown()
        assert f"# Keys: {modal.HELP_SECTION}" in text and "## Everywhere" in text
        described = {d for _, d in help_screen.keys}
        assert own <= described
        if name not in PROMPTS:  # in the jump prompt q and Q are letters of a name
            assert {"Back", "Quit"} <= described
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is modal)


@pytest.mark.parametrize("name", ["search"])
async def test_in_a_log_prompt_question_mark_q_and_colon_are_typed(
    tui_project: Project, name: str
) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        modal = await open_modal(pilot, app, name)
        box = modal.query_one(Input)
        await pilot.press("question_mark", "q", "Q", "colon")
        await pilot.pause()
        assert app.screen is modal and box.value.endswith("?qQ:")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveRunScreen))
        assert stack(app) == ["RunsScreen", "LiveRunScreen"]
        await pilot.press(*MODALS[name][0][1:])
        await wait_for(pilot, lambda: isinstance(app.screen, MODALS[name][1]))
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.is_running)


@pytest.mark.parametrize("name", ["confirm", "columns"])
@pytest.mark.parametrize("key", ["escape", "q"])
async def test_escape_and_q_go_back_with_the_modals_no(
    tui_project: Project, name: str, key: str
) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        chosen = list(runs.extra_keys or [])
        await open_modal(pilot, app, name)
        await pilot.press(key)
        await wait_for(pilot, lambda: app.screen is runs)
        assert stack(app) == ["RunsScreen"] and app.is_running
        assert running_status(app) == "running"  # the question was answered no
        assert runs.extra_keys == chosen  # the chooser changed nothing


@pytest.mark.parametrize("name", ["confirm", "columns"])
async def test_shift_q_quits_from_a_modal(tui_project: Project, name: str) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await open_modal(pilot, app, name)
        await pilot.press("Q")
        await wait_for(pilot, lambda: not app.is_running)


@pytest.mark.parametrize("name", ["confirm", "columns"])
async def test_colon_closes_the_modal_and_jumps(tui_project: Project, name: str) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        modal = await open_modal(pilot, app, name)
        await pilot.press("colon")
        await wait_for(pilot, lambda: isinstance(app.screen, JumpScreen))
        await pilot.press(*"triggers", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TriggersScreen))
        assert stack(app) == ["RunsScreen", "TriggersScreen"]  # the modal went first
        assert not modal.is_attached
        assert running_status(app) == "running"  # answered as escape would: no
        # `:help` keeps the modal and shows its keys
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        modal = await open_modal(pilot, app, name)
        await pilot.press("colon", *"help", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert stack(app)[-2] == type(modal).__name__
        assert app.screen.section == modal.HELP_SECTION  # type: ignore[attr-defined]


async def test_columns_list_moves_with_j_k(tui_project: Project) -> None:
    from textual.widgets import SelectionList

    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        modal = await open_modal(pilot, app, "columns")
        options = modal.query_one(SelectionList)
        start = options.highlighted or 0
        await pilot.press("j")
        assert options.highlighted == start + 1
        await pilot.press("k")
        assert options.highlighted == start
        await pilot.press("G")
        assert options.highlighted == options.option_count - 1
        await pilot.press("g")
        assert options.highlighted == 0


async def test_too_small_keys(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        overlay = app.screen
        assert isinstance(overlay, TooSmallScreen)
        # nothing below is reachable: escape and q stay, `:` does not open the prompt
        await pilot.press("escape", "q", "colon")
        await pilot.pause()
        assert app.screen is overlay and app.is_running
        # ? shows its keys; q back to the overlay
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert app.screen.section == "Terminal too small"  # type: ignore[attr-defined]
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is overlay)
        # grown while the help was open: the overlay goes once the help closes
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert stack(app) == ["RunsScreen"]
        await pilot.resize_terminal(70, 30)
        await wait_for(pilot, lambda: isinstance(app.screen, TooSmallScreen))
        await pilot.press("Q")
        await wait_for(pilot, lambda: not app.is_running)
