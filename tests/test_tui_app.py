# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""Pilot tests of the TUI shell: runs table, filter, sort, marks, detail tabs, help, palette,
keymap and live refresh when another process writes the store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_tui_fixtures import FROZEN_NOW, fixed_id, make_app, run_docs, tui_project, wait_for  # noqa: F401

from ctui.project import Project
from ctui.tui.app import CtuiApp
from ctui.tui.screens.run_detail import RunDetailScreen
from ctui.tui.screens.runs import RunsScreen
from ctui.tui.widgets.runs_table import RunsTable

pytestmark = pytest.mark.timeout(60)


def table(app: CtuiApp) -> RunsTable:
    return app.screen.query_one(RunsTable)


def statuses(app: CtuiApp) -> list[str]:
    return [r["status"] for r in table(app).rows]


async def test_runs_table_lists_runs_newest_first(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        rows = table(app).rows
        assert len(rows) == len(run_docs())
        started = [r["started"] for r in rows]
        assert started == sorted(started, reverse=True)
        assert rows[0]["status"] == "running"
        # the default columns, by priority: the handle, then status, job, age, the key
        # metrics (those the last run logged), duration, params, then the rest
        keys = [c.key for c in table(app).columns]
        assert keys[:7] == [
            "id",
            "status",
            "job",
            "started",
            "metric.acc",
            "metric.loss",
            "duration",
        ]
        assert keys[-5:] == ["trigger", "git", "data_hash", "tags", "note"]
        assert "metric.loss" in keys and "param.lr" in keys


async def test_filter_with_the_query_language(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        assert app.focused is not None and app.focused.id == "filter-input"
        await pilot.press(*"status=failed,lost", "enter")
        await pilot.pause()
        assert sorted(statuses(app)) == ["failed", "lost"]
        assert isinstance(app.focused, RunsTable)

        # a bad filter says why and keeps the rows of the last good one
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert not screen.set_filter("metric.acc>")
        assert sorted(statuses(app)) == ["failed", "lost"]
        await pilot.press("slash", "ctrl+u", *"metric.acc>", "enter")
        await pilot.pause()
        error = app.screen.query_one("#filter-error")
        assert not error.has_class("hidden")
        assert "needs a value" in str(error.render())
        await pilot.press("escape")  # closes the input
        await pilot.press("escape")  # clears the filter
        await pilot.pause()
        assert len(table(app).rows) == len(run_docs())
        # "/" typed inside the filter box is a character, not the filter key again
        await pilot.press("slash", *"note~a/b", "enter")
        assert screen.filter_text == "note~a/b" and table(app).rows == []
        await pilot.press("escape")
        assert screen.set_filter("metric.acc>0.9 job=train")
        assert [r["metrics"]["acc"] for r in table(app).rows] == [0.93, 0.91]


async def test_sort_from_the_keyboard(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await pilot.press("greater_than_sign")  # started → acc, largest first
        assert screen.sort_key == "metric.acc"
        await pilot.press("greater_than_sign", "greater_than_sign")  # → loss → duration
        assert screen.sort_key == "duration"
        durations = [r["duration"] for r in table(app).rows if r["duration"] is not None]
        assert durations == sorted(durations, reverse=True)
        assert table(app).rows[-1]["status"] == "running"  # no duration yet: last
        await pilot.press("r")
        durations = [r["duration"] for r in table(app).rows if r["duration"] is not None]
        assert durations == sorted(durations)
        assert table(app).rows[-1]["status"] == "running"  # still last when reversed
        await pilot.press(*["less_than_sign"] * 5)  # → loss → acc → started → job → status
        assert screen.sort_key == "status"
        assert statuses(app) == sorted(statuses(app))  # text sorts A→Z


async def test_mark_two_runs_and_diff(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        first, second = table(app).rows[1]["id"], table(app).rows[2]["id"]
        await pilot.press("down", "space", "space")
        assert table(app).marked == {first, second}
        assert screen.diff_ids() == sorted([first, second])
        await pilot.press("escape")
        assert table(app).marked == set()
        # nothing marked: the cursor run against the run of the same job before it
        await pilot.press("home")
        newest = table(app).rows[0]
        ids = screen.diff_ids()
        assert ids[1] == newest["id"]
        older = [r for r in run_docs() if r["job"] == newest["job"] and r["id"] < newest["id"]]
        assert ids[0] == older[-1]["id"]
        await pilot.press("space", "space", "d")
        await pilot.pause()
        assert type(app.screen).__name__ == "DiffScreen"


async def test_detail_tabs(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        assert detail.run_id == table_run_id(app, 1)
        from textual.widgets import Sparkline, TabbedContent, Tree

        from ctui.tui.widgets.chart_browser import ChartBrowser

        await wait_for(
            pilot,
            lambda: (
                detail.query_one("#metrics-charts", ChartBrowser).charts
                and detail.query(Sparkline)
                and len(detail.query_one("#manifest-tree", Tree).root.children) == 5
            ),
        )

        tabs = detail.query_one(TabbedContent)
        for key, tab in (
            ("2", "metrics"),
            ("3", "manifest"),
            ("4", "log"),
            ("5", "resources"),
            ("1", "overview"),
        ):
            await pilot.press(key)
            assert tabs.active == tab
        charts = detail.query_one("#metrics-charts", ChartBrowser).charts
        assert [c.name for c in charts] == ["acc", "loss"]
        assert len(charts[0].series[0].values) == 60
        assert len(detail.query(Sparkline)) == 4  # cpu, rss, gpu0 util, gpu0 mem
        tree = detail.query_one("#manifest-tree", Tree)
        sections = [str(n.label).split()[0] for n in tree.root.children]
        assert sections == ["data", "code", "env", "compute", "results"]
        # a commit message is shown as text, never parsed as markup
        code = tree.root.children[1]
        labels = [str(n.label) for n in code.children]
        assert "message: tune [red]lr[/red]" in labels
        compute = str(tree.root.children[3].label)
        assert "absent: no GPU visible" in compute
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


def table_run_id(app: CtuiApp, index: int) -> str:
    screen = app.screen_stack[0] if isinstance(app.screen_stack[0], RunsScreen) else None
    screen = screen or next(s for s in app.screen_stack if isinstance(s, RunsScreen))
    return screen.query_one(RunsTable).rows[index]["id"]


async def test_help_screen_lists_keys(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        from ctui.tui.screens.help import HelpScreen

        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        described = dict((d, k) for k, d in help_screen.keys)
        assert described["Filter"] == "/"
        assert described["Diff"] == "d"
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_user_keymap_rebinds(tui_project: Project) -> None:
    app = make_app(tui_project, keymap={"runs.filter": "f", "runs.diff": "D"})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f")
        assert app.focused is not None and app.focused.id == "filter-input"


def test_keymap_file_and_project_table(
    tui_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctui.tui.app import load_keymap

    user = tmp_path / "keymap.toml"
    user.write_text('[keymap]\n"runs.diff" = "D"\n"app.quit" = 3\n')
    monkeypatch.setenv("CTUI_KEYMAP", str(user))
    (tui_project.root / "ctui.toml").write_text(
        '[jobs.train]\ncommand = "python train.py"\n\n[tui.keymap]\n"runs.filter" = "f"\n'
    )
    keymap, problems = load_keymap(tui_project)
    assert keymap == {"runs.diff": "D", "runs.filter": "f"}
    assert len(problems) == 1 and "app.quit" in problems[0]


async def test_palette_offers_screen_actions(tui_project: Project) -> None:
    from ctui.tui.commands import ScreenActions

    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        provider = ScreenActions(app.screen)
        names = [h.text async for h in provider.discover()]
        assert "Filter" in names and "Diff" in names and "Sort by duration ascending" in names
        hits = [h async for h in provider.search("sort by job asc")]
        assert hits
        best = max(hits, key=lambda h: h.score)
        await best.command()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert (screen.sort_key, screen.sort_desc) == ("job", False)
        jobs = [r["job"] for r in table(app).rows]
        assert jobs == sorted(jobs)


async def test_stop_asks_first_and_only_for_active_runs(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        from ctui.tui.screens.confirm import ConfirmScreen

        await pilot.press("down", "s")  # a finished run: nothing to stop
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("home", "s")  # the running run: asks
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert table(app).rows[0]["status"] == "running"


async def test_live_refresh_when_another_process_adds_a_run(tui_project: Project) -> None:
    app = make_app(tui_project, poll_interval=0.1)
    new_id = fixed_id(FROZEN_NOW - 30, 99)
    script = (
        "import sys; from ctui.store import Store; "
        f"Store(sys.argv[1]).insert_run({{'id': {new_id!r}, 'job': 'eval', "
        f"'status': 'succeeded', 'started': {FROZEN_NOW - 30}, 'duration': 3.0, "
        "'params': {}, 'metrics': {'acc': 0.99}})"
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        polls_before = screen._polls
        subprocess.run([sys.executable, "-c", script, str(tui_project.store_file)], check=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(table(app).rows) == len(run_docs()):
            await pilot.pause(0.1)
        assert len(table(app).rows) == len(run_docs()) + 1
        assert table(app).rows[0]["id"] == new_id  # newest first
        assert screen._polls > polls_before


async def test_choose_columns(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        before = list(screen.extra_keys or [])
        await pilot.press("c")
        await pilot.pause()
        from ctui.tui.screens.columns import ColumnsScreen

        assert isinstance(app.screen, ColumnsScreen)
        options = app.screen.keys
        assert options[0] == "metric.acc" and "metric.acc" in before
        await pilot.press("space", "enter")  # untick metric.acc, apply
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert screen.extra_keys == [k for k in before if k != "metric.acc"]
        assert "metric.acc" not in [c.key for c in table(app).columns]


async def test_notifications_never_parse_markup(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        screen.notify("cannot read [/red] the store: see [tui.keymap]", severity="error")
        await pilot.pause()
        notes = list(app._notifications)
        assert notes and notes[-1].message.endswith("see [tui.keymap]")
        assert notes[-1].markup is False


@pytest.mark.parametrize(
    ("key", "module", "name"),
    [
        ("n", "ctui.tui.screens.launch", "LaunchScreen"),
        ("l", "ctui.tui.screens.live_run", "LiveRunScreen"),
        ("t", "ctui.tui.screens.triggers", "TriggersScreen"),
    ],
)
async def test_keys_open_the_other_screens(
    tui_project: Project, key: str, module: str, name: str
) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("down", key)  # a finished run under the cursor
        await pilot.pause()
        assert type(app.screen).__name__ == name
        await pilot.pause(0.3)
        app.pop_screen()
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
