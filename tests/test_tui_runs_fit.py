# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""The runs table fits the terminal: columns by priority, the handle frozen, the key metrics in
view at 80×24, a preview pane at 160 columns; mouse, `y`, filter errors and the empty store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_tui_fixtures import (  # noqa: F401
    FROZEN_NOW,
    make_app,
    make_tui_project,
    run_docs,
    tui_project,
    wait_for,
)

from ctui.project import Project
from ctui.store import Store
from ctui.tui.app import CtuiApp
from ctui.tui.screens.runs import RunsScreen
from ctui.tui.widgets.run_preview import RunPreview
from ctui.tui.widgets.runs_table import RunsTable

pytestmark = pytest.mark.timeout(90)


def table(app: CtuiApp) -> RunsTable:
    return app.screen.query_one(RunsTable)


def shown(app: CtuiApp) -> list[str]:
    t = table(app)
    return [c.key for c in t.columns[:1] + t.shown_columns]


def screen_text(app: CtuiApp) -> str:
    """The runs table as drawn: header and rows, plain text."""
    t = table(app)
    return "\n".join(t.render_line(y).text for y in range(min(t.size.height, len(t.rows) + 1)))


async def test_80x24_shows_status_job_age_and_the_key_metrics(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        keys = shown(app)
        assert keys[:6] == ["id", "status", "job", "started", "metric.acc", "metric.loss"]
        # lower priorities do not fit: they are left out, not squeezed or scrolled
        assert "git" not in keys and "note" not in keys
        t = table(app)
        assert t._line_width <= t.scrollable_content_region.width
        header = t.render_line(0).text
        assert header.split()[:6] == ["run", "status", "job", "age▼", "acc", "loss"]
        # the handle: #seq (H1's per-project number) or nothing, and the id's last characters
        first = t.render_line(1).text
        newest = max(run_docs(), key=lambda d: d["started"])
        assert newest["id"][-6:] in first.split()[:2]
        assert app.screen.query_one(RunPreview).has_class("hidden")


async def test_wider_terminals_add_columns_and_a_preview(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        keys = shown(app)
        assert {"duration", "param.epochs", "param.lr", "trigger"} <= set(keys)
        preview = app.screen.query_one(RunPreview)
        assert not preview.has_class("hidden") and preview.size.width > 0
        run = table(app).cursor_run
        assert run is not None and preview.run is run
        # the verdict against the run of the same job before it comes from a worker
        await wait_for(pilot, lambda: "changed" in preview.text.plain)
        text = preview.text.plain
        assert run["id"] in text and "params" in text and "epochs" in text
        assert "epoch 39 loss=0.025 [bold]not markup[/bold]" in text  # the log's last line
        await pilot.press("down")
        await wait_for(pilot, lambda: "0.93" in preview.text.plain)  # #9's metrics
    app = make_app(tui_project)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert {"git", "data_hash"} <= set(shown(app))


async def test_moving_the_cursor_does_not_redraw_the_preview(
    tui_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RunPreview, "SETTLE", 1000)  # a rest that never comes
    app = make_app(tui_project)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        t, preview = table(app), app.screen.query_one(RunPreview)
        first = t.cursor_run
        assert first is not None and preview.run is first  # the first frame shows it at once
        await pilot.press("down", "down", "j")
        await pilot.pause()
        assert t.cursor == 3 and preview.run is first and first["id"] in preview.text.plain


async def test_the_preview_shows_the_run_once_the_cursor_rests(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        t, preview = table(app), app.screen.query_one(RunPreview)
        first = t.cursor_run
        assert first is not None
        await pilot.press("down", "down", "j", "k")
        await wait_for(pilot, lambda: preview.run is t.cursor_run)
        run = t.cursor_run
        assert run is not None and t.cursor == 2 and run is not first
        # its verdict (read in a worker), its params and metrics
        await wait_for(pilot, lambda: "comparing" not in preview.text.plain)
        text = preview.text.plain
        assert run["id"] in text and first["id"] not in text
        assert all(key in text for key in run.get("metrics") or {})
        # what is drawn is what the text says (the lines were rebuilt, not left stale)
        drawn = "\n".join(preview.render_line(y).text for y in range(preview.size.height))
        assert run["id"] in drawn


async def test_gate_rules_choose_the_key_metrics(tmp_path: Path) -> None:
    project = make_tui_project(tmp_path / "demo", files=False)
    (project.root / "ctui.toml").write_text(
        '[jobs.train]\ncommand = "python train.py"\n\n'
        '[jobs.train.gate]\nrules = ["metric.loss < 0.5"]\n'
    )
    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        metrics = [k for k in shown(app) if k.startswith("metric.")]
        assert metrics[0] == "metric.loss"


async def test_the_sorted_column_scrolls_into_view(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert "note" not in shown(app)
        assert screen.sort_by("note")
        await pilot.pause()
        keys = shown(app)
        assert keys[0] == "id" and "note" in keys  # the handle stays frozen on the left
        assert "note▲" in table(app).render_line(0).text
        await pilot.press("left")  # slide the columns back by hand
        assert shown(app)[1] != keys[1]
        # an unknown sort key is refused and changes nothing
        assert not screen.sort_by("bogus")
        assert screen.sort_key == "note"


async def test_mouse_click_sorts_by_a_header_and_selects_a_row(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        t = table(app)
        x = t.render_line(0).text.index("job")
        assert t.column_at(x) is not None and t.column_at(x).key == "job"  # type: ignore[union-attr]
        await pilot.click(RunsTable, offset=(x + 1, 0))
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert screen.sort_key == "job" and not screen.sort_desc  # text: A→Z first
        jobs = [r["job"] for r in t.rows]
        assert jobs == sorted(jobs)
        await pilot.click(RunsTable, offset=(x + 1, 0))  # again: reversed
        assert screen.sort_key == "job" and screen.sort_desc
        await pilot.click(RunsTable, offset=(x + 1, 4))  # the fourth row
        assert t.cursor == 3


async def test_y_copies_the_selected_run_id(tui_project: Project) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("down", "y")
        run = table(app).cursor_run
        assert run is not None
        assert app.clipboard == run["id"]
        assert any(f"copied run id {run['id']}" in str(n.message) for n in app._notifications)


async def test_a_bad_filter_teaches_keeps_the_rows_and_escape_restores(
    tui_project: Project,
) -> None:
    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await pilot.press("slash", *"job=eval", "enter")
        before = [r["id"] for r in table(app).rows]
        assert len(before) == 2
        # typed key by key: the prefix `metric.acc` alone matches nothing for a moment
        await pilot.press("slash", "ctrl+u", *"metric.acc>abc")
        error = screen.query_one("#filter-error")
        assert not error.has_class("hidden")
        assert "not a number" in str(error.render())
        # the results of the filter applied before stay, and the bar names that filter
        assert [r["id"] for r in table(app).rows] == before
        assert screen.filter_text == "job=eval"
        await pilot.press("enter")  # enter on a bad filter keeps the box open and the rows
        assert app.focused is not None and app.focused.id == "filter-input"
        assert [r["id"] for r in table(app).rows] == before
        await pilot.press("ctrl+u", *"status=failed")  # a good half-typed filter applies live
        assert [r["status"] for r in table(app).rows] == ["failed"]
        await pilot.press("escape")  # … and escape goes back to the one applied before
        assert screen.filter_text == "job=eval"
        assert [r["id"] for r in table(app).rows] == before
        assert isinstance(app.focused, RunsTable)
        await pilot.press("slash", "ctrl+u", *"status=nothing", "enter")
        hint = screen.query_one("#runs-empty")
        assert not hint.has_class("hidden")
        assert f"No runs match 'status=nothing' ({len(run_docs())} runs in the store)" in str(
            hint.render()
        )


async def test_the_empty_store_says_how_to_launch_a_run(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    (root / "ctui.toml").write_text('[jobs.train]\ncommand = "python train.py"\n')
    project = Project(root=root, state_dir=root / ".ctui").ensure()
    Store(project.store_file).initialise()
    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        hint = app.screen.query_one("#runs-empty")
        assert not hint.has_class("hidden") and table(app).has_class("hidden")
        text = str(hint.render())
        assert "No runs yet" in text and "ctui run JOB" in text and "Press n" in text


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_runs_screen(
    snap_compare: Any, tui_project: Project, size: tuple[int, int]
) -> None:
    async def settled(pilot: Any) -> None:
        await pilot.press("down")
        if size[0] >= 160:
            preview = pilot.app.screen.query_one(RunPreview)
            await wait_for(pilot, lambda: "changed" in preview.text.plain)
        await pilot.pause()

    assert snap_compare(make_app(tui_project), terminal_size=size, run_before=settled)


async def test_the_mouse_wheel_scrolls_the_table(tmp_path: Path) -> None:
    from test_tui_fixtures import fixed_id
    from textual import events

    project = make_tui_project(tmp_path / "demo", files=False)
    more = []
    for n in range(60):
        doc = dict(run_docs()[n % 10])
        doc["id"] = fixed_id(FROZEN_NOW - 90_000 - n * 60, 100 + n)
        doc["created"] = doc["started"] = FROZEN_NOW - 90_000 - n * 60
        more.append(doc)
    Store(project.store_file).put_runs(more)
    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        t = table(app)
        assert len(t.rows) == 70 and t.scroll_offset.y == 0
        for _ in range(3):
            t.post_message(events.MouseScrollDown(t, 5, 5, 0, 1, 0, False, False, False))
        await wait_for(pilot, lambda: t.scroll_offset.y > 0)
        top = round(t.scroll_offset.y)
        assert t.render_line(1).text.rstrip() == t.row_strip(top).text.rstrip()  # the rows moved
        assert t.render_line(0).text.split()[0] == "run"  # the header stayed
