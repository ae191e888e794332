# ruff: noqa: F811  (the tui_project fixture is imported from test_tui_fixtures)
"""The gate and the champion in the TUI: the ★ in the runs table, the verdict on the run
detail, the "challenger vs champion" diff header, `C` (diff against the champion) and `P`
(promote, after a yes/no question).

The fixed project of test_tui_fixtures gets a gate on `train`, recorded verdicts and a
champion written straight into the store (the shapes `ctui.gate` writes), so ids and times
stay frozen for the snapshots. `P` calls the real `ctui.gate.champion.promote`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_tui_fixtures import FROZEN_NOW, make_app, make_tui_project, run_docs

from ctui.project import Project
from ctui.store import Store
from ctui.tui.app import CtuiApp
from ctui.tui.gate_view import challenger_line, delta, rule_metrics
from ctui.tui.screens.confirm import ConfirmScreen
from ctui.tui.screens.diff import DiffScreen
from ctui.tui.screens.run_detail import RunDetailScreen
from ctui.tui.widgets.runs_table import RunsTable

pytestmark = pytest.mark.timeout(120)

RULES = ["metric.acc >= champion.acc + 0.05", "metric.loss < 0.5"]
DOCS = run_docs()
FIRST, FAILED, SECOND, CHAMPION, REJECTED = (DOCS[i]["id"] for i in (0, 1, 3, 6, 8))
PROMOTED_AT = FROZEN_NOW - 230 * 60


def _gate(passed: bool, verdict: str, rules: list[dict[str, Any]], champion: str | None) -> Any:
    at = FROZEN_NOW - 100 * 60
    return {"passed": passed, "verdict": verdict, "rules": rules, "champion": champion, "at": at}


def _rule(rule: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"rule": rule, "passed": passed, "detail": detail}


def make_gate_project(root: Path, *, files: bool = True) -> Project:
    """The fixed runs, a gate on train: run 0 and 3 were champions, 6 is, 8 was rejected."""
    project = make_tui_project(root, files=files)
    rules = "\n".join(f'  "{r}",' for r in RULES)
    (root / "ctui.toml").write_text(
        f'[jobs.train]\ncommand = "python train.py"\n\n[jobs.train.gate]\nrules = [\n{rules}\n]\n'
    )
    store = Store(project.store_file)
    store.update_run(
        REJECTED,
        {
            "gate": _gate(
                False,
                "not promoted: metric.acc 0.93 >= champion.acc 0.91 + 0.05 failed",
                [
                    _rule(
                        RULES[0],
                        False,
                        "metric.acc 0.93 >= champion.acc 0.91 + 0.05 → 0.93 >= 0.96: failed",
                    ),
                    _rule(RULES[1], True, "metric.loss 0.18 < 0.5: passed"),
                ],
                CHAMPION,
            )
            | {"promoted": False}
        },
    )
    store.update_run(
        CHAMPION,
        {
            "gate": _gate(
                True,
                "promoted: all 2 rules passed",
                [
                    _rule(RULES[0], True, "metric.acc 0.91 >= champion.acc 0.88 + 0.05"),
                    _rule(RULES[1], True, "metric.loss 0.22 < 0.5: passed"),
                ],
                SECOND,
            )
            | {"promoted": True}
        },
    )
    previous = None
    for n, run_id in enumerate((FIRST, SECOND, CHAMPION)):
        pid = f"PROMO{n:07d}"
        at = PROMOTED_AT - (2 - n) * 3600
        store.put_doc(
            "promotions",
            pid,
            {"id": pid, "job": "train", "run": run_id, "previous": previous, "at": at,
             "by": "gate", "reason": "", "on_promote": None, "registered": None},
        )  # fmt: skip
        previous = run_id
    store.put_doc(
        "champions",
        "train",
        {"job": "train", "run": CHAMPION, "since": PROMOTED_AT, "promotion": "PROMO0000002"},
    )
    return project


@pytest.fixture
def gate_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("CTUI_KEYMAP", str(tmp_path / "no-keymap.toml"))
    return make_gate_project(tmp_path / "demo")


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def table(app: CtuiApp) -> RunsTable:
    return app.screen.query_one(RunsTable)


def row_text(app: CtuiApp, run_id: str) -> str:
    t = table(app)
    index = next(i for i, r in enumerate(t.rows) if r["id"] == run_id)
    return t.row_strip(index).text


def row_starts(app: CtuiApp, run_id: str, marks: str) -> bool:
    """The row begins with these mark cells, then the run's handle (`#7 ww0006`)."""
    text = row_text(app, run_id)
    return text.startswith(marks) and run_id[-6:] in text[len(marks) :].split()[:2]


async def put_cursor_on(pilot: Any, run_id: str) -> None:
    t = table(pilot.app)
    t.move_to(next(i for i, r in enumerate(t.rows) if r["id"] == run_id))
    await pilot.pause()


def champion_in_store(project: Project) -> str | None:
    doc = Store(project.store_file).get_doc("champions", "train")
    return doc["run"] if doc else None


# -- pure helpers ------------------------------------------------------------------------------
def test_rule_metrics_names_the_metrics_rules_use() -> None:
    assert rule_metrics(
        ["metric.acc >= champion.acc - 0.005", "peaks.max_rss < 8e9", "metric.val.loss<0.5"]
    ) == ["acc", "val.loss"]


def test_delta_signs_and_non_numbers() -> None:
    assert delta(0.91, 0.93) == "+0.02"
    assert delta(0.22, 0.18) == "-0.04"
    assert delta(None, 0.5) is None and delta(True, 1) is None


def test_challenger_line_uses_rule_metrics_else_run_metrics() -> None:
    champ = {"metrics": {"acc": 0.5, "loss": 0.3, "f1": 0.1}}
    chall = {"metrics": {"acc": 0.512, "loss": 0.3, "f1": 0.2}}
    line = challenger_line(champ, chall, ["metric.acc >= champion.acc"], {"passed": True})
    assert line == "challenger vs champion: acc +0.012, gate passed"
    line = challenger_line(champ, chall, [], None)
    assert line == "challenger vs champion: acc +0.012, f1 +0.1, loss +0, no gate verdict"
    champ["id"] = "NOW"
    line = challenger_line(champ, chall, ["metric.f1 > 0"], {"passed": False, "champion": "OLD"})
    assert line == "challenger vs champion: f1 +0.1, gate failed against OLD"


# -- runs table ----------------------------------------------------------------------------------
async def test_champion_row_has_a_star_and_rejected_a_dim_cross(gate_project: Project) -> None:
    app = make_app(gate_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).champions)
        assert table(app).champions == {CHAMPION}
        assert row_starts(app, CHAMPION, " ★ ")
        assert row_starts(app, REJECTED, " ✗ ")
        for other in (FIRST, SECOND, FAILED):
            assert row_starts(app, other, "   ")
        await put_cursor_on(pilot, CHAMPION)
        await pilot.press("space")
        assert row_starts(app, CHAMPION, "●★ ")  # marked and champion


async def test_no_gate_column_in_a_project_without_a_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTUI_KEYMAP", str(tmp_path / "no-keymap.toml"))
    project = make_tui_project(tmp_path / "plain", files=False)
    app = make_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not table(app).show_gate
        assert row_starts(app, CHAMPION, "  ")
        await put_cursor_on(pilot, CHAMPION)
        await pilot.press("C")
        await pilot.pause()
        assert not isinstance(app.screen, DiffScreen)
        assert any("has no champion" in n.message for n in app._notifications)


# -- run detail ---------------------------------------------------------------------------------
def overview_text(app: CtuiApp) -> str:
    from textual.widgets import Static

    body = app.screen.query_one("#overview-body", Static)
    return "\n".join(line.text for line in body.render_lines(body.region.reset_offset))


async def open_detail(pilot: Any, run_id: str) -> RunDetailScreen:
    await wait_for(pilot, lambda: table(pilot.app).champions)
    await put_cursor_on(pilot, run_id)
    await pilot.press("enter")
    screen = pilot.app.screen
    assert isinstance(screen, RunDetailScreen)
    await wait_for(pilot, lambda: screen.champion is not None)
    await pilot.pause()
    return screen


async def test_detail_shows_the_gate_verdict_rules_and_champion(gate_project: Project) -> None:
    app = make_app(gate_project)
    async with app.run_test(size=(120, 60)) as pilot:
        await open_detail(pilot, REJECTED)
        text = overview_text(app)
        assert "✗ not promoted: metric.acc 0.93 >= champion.acc 0.91 + 0.05 failed" in text
        assert f"✗ {RULES[0]}" in text and f"✓ {RULES[1]}" in text
        assert "0.93 >= 0.96: failed" in text
        assert f"champion of train: {CHAMPION} since 2026-11-27 08:10:00 (3h ago), by gate" in text
        await pilot.press("escape")
        await open_detail(pilot, CHAMPION)
        text = overview_text(app)
        assert "✓ promoted: all 2 rules passed" in text
        assert "★ champion of train since 2026-11-27 08:10:00 (3h ago), by gate" in text


# -- diff --------------------------------------------------------------------------------------
async def test_diff_header_says_challenger_vs_champion(gate_project: Project) -> None:
    app = make_app(gate_project)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(DiffScreen(gate_project, [CHAMPION, REJECTED]))
        await wait_for(pilot, lambda: getattr(app.screen, "docs", None))
        expected = "challenger vs champion: acc +0.02, loss -0.04, gate failed"
        assert app.screen.champion_line == expected
        await pilot.press("escape")
        # two runs neither of which is the champion: no such header
        app.push_screen(DiffScreen(gate_project, [FIRST, SECOND]))
        await wait_for(pilot, lambda: getattr(app.screen, "docs", None))
        assert app.screen.champion_line is None


async def test_C_diffs_the_selected_run_against_its_champion(gate_project: Project) -> None:
    app = make_app(gate_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).champions)
        await put_cursor_on(pilot, REJECTED)
        await pilot.press("C")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        assert screen.run_ids == [CHAMPION, REJECTED]
        await wait_for(pilot, lambda: screen.docs)
        assert screen.champion_line and screen.champion_line.startswith("challenger vs champion")
        await pilot.press("escape")
        await put_cursor_on(pilot, CHAMPION)
        await pilot.press("C")
        await pilot.pause()
        assert not isinstance(app.screen, DiffScreen)
        assert any("is the champion of train" in n.message for n in app._notifications)


# -- promote -----------------------------------------------------------------------------------
async def test_P_asks_then_promotes_the_selected_run(gate_project: Project) -> None:
    app = make_app(gate_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).champions)
        await put_cursor_on(pilot, REJECTED)
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # no: nothing changes
        await pilot.pause()
        assert champion_in_store(gate_project) == CHAMPION
        await pilot.press("P")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: champion_in_store(gate_project) == REJECTED)
        # the table follows the store: the star moved
        await wait_for(pilot, lambda: table(app).champions == {REJECTED})
        assert row_text(app, REJECTED).startswith(" ★ ")
        await wait_for(
            pilot, lambda: any("champion of train" in n.message for n in app._notifications)
        )
        history = Store(gate_project.store_file).docs("promotions").values()
        manual = [p for p in history if p.get("run") == REJECTED]
        assert manual and manual[0]["by"] == "manual" and manual[0]["previous"] == CHAMPION


async def test_P_on_a_failed_run_says_why_and_changes_nothing(gate_project: Project) -> None:
    app = make_app(gate_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).champions)
        await put_cursor_on(pilot, FAILED)
        await pilot.press("P", "y")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        errors = [n.message for n in app._notifications if n.severity == "error"]
        why = f"run {FAILED} is failed: only a succeeded run can be promoted"
        assert any(m.startswith(why) for m in errors), errors
        assert champion_in_store(gate_project) == CHAMPION


def add_on_promote(project: Project, command: str, failure: str = "keep") -> None:
    config = project.root / "ctui.toml"
    q = "'" * 3  # a TOML literal string: the command keeps its quotes
    text = f'on_promote = {q}{command}{q}\non_promote_failure = "{failure}"\n'
    config.write_text(config.read_text() + text)


async def promote_with_p(pilot: Any, run_id: str) -> None:
    await wait_for(pilot, lambda: table(pilot.app).champions)
    await put_cursor_on(pilot, run_id)
    await pilot.press("P")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmScreen)
    await pilot.press("y")


def note(app: CtuiApp, part: str) -> Any:
    return next((n for n in app._notifications if part in n.message), None)


async def test_P_runs_on_promote_with_the_run_id(gate_project: Project, tmp_path: Path) -> None:
    out = tmp_path / "promoted.txt"
    script = "import os, sys; open(sys.argv[1], 'w').write(os.environ['CTUI_RUN_ID'])"
    add_on_promote(gate_project, f'{sys.executable} -c "{script}" {out}')
    app = make_app(gate_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await promote_with_p(pilot, REJECTED)
        await wait_for(pilot, lambda: note(app, "on_promote ran"))
        assert out.read_text() == REJECTED
        assert champion_in_store(gate_project) == REJECTED
        assert note(app, "on_promote ran").severity == "information"


async def test_P_with_a_failing_on_promote_warns(gate_project: Project) -> None:
    add_on_promote(gate_project, f"{sys.executable} -c 'raise SystemExit(3)'", "rollback")
    app = make_app(gate_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await promote_with_p(pilot, REJECTED)
        await wait_for(pilot, lambda: note(app, "rolled back"))
        assert note(app, "rolled back").severity == "warning"
        assert champion_in_store(gate_project) == CHAMPION  # rolled back to the champion
        await wait_for(pilot, lambda: table(app).champions == {CHAMPION})


async def test_a_promotion_from_the_cli_moves_the_star(gate_project: Project) -> None:
    """`ctui promote` in another process: the open runs table follows within a poll."""
    from cli_helpers import ctui

    app = CtuiApp(gate_project, clock=lambda: FROZEN_NOW, poll_interval=0.1, keymap={})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).champions == {CHAMPION})
        out = ctui(gate_project.root, "promote", SECOND)
        assert out.returncode == 0, out.stderr
        await wait_for(pilot, lambda: table(app).champions == {SECOND})
        assert row_text(app, SECOND).startswith(" ★ ")
        assert not row_text(app, CHAMPION).startswith(" ★ ")


# -- snapshots at 80×24 ------------------------------------------------------------------------
async def _champions_shown(pilot: Any) -> None:
    await wait_for(pilot, lambda: table(pilot.app).champions)
    await pilot.pause()


def test_snapshot_champion_marker(snap_compare: Any, gate_project: Project) -> None:
    assert snap_compare(make_app(gate_project), terminal_size=(80, 24), run_before=_champions_shown)


def test_snapshot_gate_verdict_in_detail(snap_compare: Any, gate_project: Project) -> None:
    async def detail(pilot: Any) -> None:
        screen = await open_detail(pilot, REJECTED)
        scroll = screen.query_one(".detail-scroll")
        gate_row = next(
            i
            for i, line in enumerate(overview_text(pilot.app).splitlines())
            if line.strip() == "gate"
        )
        scroll.scroll_to(y=gate_row - 1, animate=False, immediate=True)
        await pilot.pause()

    assert snap_compare(make_app(gate_project), terminal_size=(80, 24), run_before=detail)


def test_snapshot_challenger_vs_champion_diff(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no manifests: the diff holds params and metrics only, no line naming the tmp folder
    monkeypatch.setenv("CTUI_KEYMAP", str(tmp_path / "no-keymap.toml"))
    project = make_gate_project(tmp_path / "demo", files=False)

    async def diff(pilot: Any) -> None:
        await wait_for(pilot, lambda: table(pilot.app).champions)
        await put_cursor_on(pilot, REJECTED)
        await pilot.press("C")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "docs", None))
        await pilot.pause()

    assert snap_compare(make_app(project), terminal_size=(80, 24), run_before=diff)
