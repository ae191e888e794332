# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""Find in logs: `ctui.log_grep.grep_runs` on logs written by real processes (a tqdm-style
`\\r` bar matches on its rendered text), a bad regex; the TUI's `f` on marked runs lists the
matches of both, and enter lands on the run's log tab at the matching line."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from test_tui_fixtures import FROZEN_NOW, make_app, tui_project  # noqa: F401

from ctui.errors import CtuiError
from ctui.log_grep import Match, grep_runs
from ctui.project import Project
from ctui.tui.widgets.runs_table import RunsTable

pytestmark = pytest.mark.timeout(90)

#: a job drawing a `\r`-updated bar, then a key=value line, some in colour
BAR_JOB = r"""
import sys
for epoch in range(2):
    for pct in (0, 50, 100):
        sys.stdout.write(f"\repoch {epoch}: {pct:3d}%|{'#' * (pct // 10):10s}|")
        sys.stdout.flush()
    sys.stdout.write(f" val_loss=0.{4 - epoch}{sys.argv[1]}\n")
print("\x1b[31mWARNING\x1b[0m: lr schedule ended")
print("done")
"""


def write_log(project: Project, run_id: str, tag: str) -> None:
    """The run's output.log, written by a real process (stdout redirected to the file)."""
    folder = project.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "output.log").open("wb") as fh:
        subprocess.run([sys.executable, "-c", BAR_JOB, tag], stdout=fh, check=True, timeout=30)


def run_ids(project: Project) -> list[str]:
    return sorted(p.name for p in project.run_dir("x").parent.iterdir() if p.is_dir())


def test_grep_runs_matches_rendered_lines_of_real_logs(tui_project: Project) -> None:
    a, b = run_ids(tui_project)[:2]
    write_log(tui_project, a, "1")
    write_log(tui_project, b, "2")
    found = list(grep_runs(tui_project, [a, b], "val_loss"))
    # the bar's line as a terminal shows it: its last state, not every update joined
    assert [(m.run_id, m.line_no, m.text) for m in found] == [
        (a, 1, "epoch 0: 100%|##########| val_loss=0.41"),
        (a, 2, "epoch 1: 100%|##########| val_loss=0.31"),
        (b, 1, "epoch 0: 100%|##########| val_loss=0.42"),
        (b, 2, "epoch 1: 100%|##########| val_loss=0.32"),
    ]
    assert found[0] == Match(a, 1, 0, "epoch 0: 100%|##########| val_loss=0.41")
    raw = (tui_project.run_dir(a) / "output.log").read_bytes()
    assert raw[found[1].offset - 1 : found[1].offset] == b"\n"  # where the line starts
    assert raw[found[1].offset :].startswith(b"\repoch 1:   0%")
    # the bar's earlier states are gone from the rendered line: "  0%" does not match
    assert list(grep_runs(tui_project, [a], "  0%")) == []
    # regex, case, colour codes left out of matching, limit, a run without a log
    assert [m.line_no for m in grep_runs(tui_project, [a], r"loss=0\.[3]", regex=True)] == [2]
    assert list(grep_runs(tui_project, [a], "warning: lr")) == []
    warned = list(grep_runs(tui_project, [a], "warning: lr", ignore_case=True))
    assert [(m.line_no, m.text) for m in warned] == [
        (3, "\x1b[31mWARNING\x1b[0m: lr schedule ended")
    ]
    assert len(list(grep_runs(tui_project, [a, b], "loss", limit=3))) == 3
    assert list(grep_runs(tui_project, ["no-such-run"], "loss")) == []


def test_a_bad_regex_raises_one_line_before_reading(tui_project: Project) -> None:
    with pytest.raises(CtuiError) as info:
        grep_runs(tui_project, run_ids(tui_project), "loss=(", regex=True)
    message = str(info.value)
    assert "'loss=('" in message and "not a valid regular expression" in message
    assert "\n" not in message
    # the same text as a plain pattern is fine
    assert list(grep_runs(tui_project, run_ids(tui_project), "loss=(")) == []


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)
    return value


async def test_f_finds_in_the_logs_of_the_marked_runs_and_enter_opens_the_line(
    tui_project: Project,
) -> None:
    from textual.widgets import OptionList, TabbedContent

    from ctui.tui.screens.log_grep import LogGrepScreen
    from ctui.tui.screens.run_detail import RunDetailScreen

    app = make_app(tui_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        await pilot.press("space", "down", "space")
        marked = sorted(r["id"] for r in table.marked_runs())
        assert len(marked) == 2
        for n, run_id in enumerate(marked, 1):
            write_log(tui_project, run_id, str(n))
        await pilot.press("f")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, LogGrepScreen) and app.screen)
        await pilot.press(*"val_loss", "enter")
        await wait_for(pilot, lambda: screen.done)
        assert screen.status_text() == "4 matches in 2 runs"
        results = screen.query_one(OptionList)
        assert results.highlighted == 0 and results.has_focus  # the first match, ready for j k
        listed = [str(results.get_option_at_index(i).prompt) for i in range(results.option_count)]
        assert len(listed) == 4
        assert all(f"{r[-6:]}:" in " ".join(listed) for r in marked)  # both runs' handles
        assert listed[3].endswith(":2: epoch 1: 100%|##########| val_loss=0.32")
        assert marked[1][-6:] in listed[3]
        status = str(screen.query_one("#grep-status").render())
        assert "4 matches in 2 runs" in status
        from ctui.tui.screens.help import help_sections, section_name

        assert "marked runs" in help_sections()[section_name(screen) or ""]
        # a bad regex: a notice, the list kept
        await pilot.press("slash", "ctrl+r")
        await pilot.press("ctrl+e", "(", "enter")
        await pilot.pause()
        assert screen.regex and results.option_count == 4
        await pilot.press("backspace", "ctrl+r", "enter")
        await wait_for(pilot, lambda: screen.done and screen.count == 4)
        # j moves to the second match (run 1, line 2); enter opens its log at that line
        await pilot.press("g", "j", "enter")
        detail = await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen
        )
        assert detail.run_id == marked[0]
        await wait_for(pilot, lambda: detail.query_one(TabbedContent).active == "log")
        log = detail.query_one("#detail-log")
        await wait_for(pilot, lambda: log._match_line == 1)  # 0-based: the file's line 2
        assert log.search_query is not None and log.search_query.term == "val_loss"
        assert "val_loss=0.31" in log.line_text(1)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("q")
        await wait_for(pilot, lambda: not isinstance(app.screen, LogGrepScreen))


async def test_f_with_nothing_marked_searches_the_cursor_run(tui_project: Project) -> None:
    from ctui.tui.screens.log_grep import LogGrepScreen

    app = make_app(tui_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        cursor = app.screen.query_one(RunsTable).cursor_run
        assert cursor is not None
        write_log(tui_project, cursor["id"], "7")
        await pilot.press("f")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, LogGrepScreen) and app.screen)
        assert [r["id"] for r in screen.runs] == [cursor["id"]]
        await pilot.press(*"VAL_LOSS", "enter")  # a capital: exact case, so nothing
        await wait_for(pilot, lambda: screen.done)
        assert screen.status_text() == "0 matches in 0 runs"
        await pilot.press("slash", "ctrl+u", *"val_loss=0.37", "enter")
        await wait_for(pilot, lambda: screen.done and screen.count == 1)
        assert screen.status_text() == "1 match in 1 run"
