"""The live run view: re-attach, follow, stop with confirmation, leave without stopping."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from ctui.project import Project
from ctui.store import Store
from ctui.tui.screens.live_run import LiveRunScreen, status_line
from ctui.tui.widgets.jsonl_tail import JsonlTail
from ctui.tui.widgets.log_prompt import SearchPrompt
from ctui.tui.widgets.log_view import LogView
from ctui.tui.widgets.metrics_pane import MetricsPane
from ctui.tui.widgets.resources import ResourcesPane
from tests.tui_live_helpers import PY, ScreenApp, status_of, wait_for, write_config

pytestmark = pytest.mark.timeout(90)


def launch(project: Project, job: str, **params: object) -> str:
    from ctui.jobs.launch import launch_run

    return str(launch_run(project, job, dict(params))["id"])


def kill_if_running(project: Project, run_id: str) -> None:
    run = Store(project.store_file).get_run(run_id)
    if run.get("status") == "running" and run.get("pgid"):
        try:
            os.killpg(run["pgid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


async def test_stop_a_running_job_with_s(project: Project) -> None:
    write_config(project.root)
    run_id = launch(project, "sleeper")
    try:
        app = ScreenApp(lambda: LiveRunScreen(project, run_id))
        async with app.run_test(size=(120, 36)) as pilot:
            live = app.screen
            assert isinstance(live, LiveRunScreen)
            await wait_for(pilot, lambda: live.run and live.run["status"] == "running")
            log = live.query_one(LogView)
            await wait_for(pilot, lambda: log.line_count >= 1)
            assert log.line_text(0) == "sleeping"
            await pilot.press("s")
            await pilot.pause()
            assert app.screen is not live  # the confirmation
            await pilot.press("n")  # no: nothing happens
            await pilot.pause(0.3)
            assert app.screen is live
            assert Store(project.store_file).get_run(run_id)["status"] == "running"
            await pilot.press("s")
            await pilot.pause()
            await pilot.press("y")
            await wait_for(pilot, lambda: live.finished, timeout=30)
            assert live.run is not None and live.run["status"] == "cancelled"
            await wait_for(pilot, lambda: "cancelled" in status_of(live))
    finally:
        kill_if_running(project, run_id)


async def test_leaving_never_stops_the_job_and_reopening_reattaches(project: Project) -> None:
    write_config(project.root)
    run_id = launch(project, "sleeper")
    try:
        app = ScreenApp(lambda: LiveRunScreen(project, run_id))
        async with app.run_test(size=(120, 36)) as pilot:
            live = app.screen
            assert isinstance(live, LiveRunScreen)
            await wait_for(pilot, lambda: live.run and live.run["status"] == "running")
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, LiveRunScreen)
        # the app is gone too: the job still runs
        time.sleep(0.3)
        assert Store(project.store_file).get_run(run_id)["status"] == "running"
        app2 = ScreenApp(lambda: LiveRunScreen(project, run_id))
        async with app2.run_test(size=(120, 36)) as pilot:
            live2 = app2.screen
            assert isinstance(live2, LiveRunScreen)
            await wait_for(pilot, lambda: live2.run and live2.run["status"] == "running")
            log = live2.query_one(LogView)
            await wait_for(pilot, lambda: log.line_count >= 1)
            assert "running" in status_of(live2)
    finally:
        from ctui.jobs.stop import stop_run

        stop_run(project, run_id, grace=1.0)
        kill_if_running(project, run_id)


def finished_run(project: Project) -> str:
    """A finished run with fixed files: log, resource samples (one fake GPU), metrics."""
    run_id = "0f1x2d3r4u5n"
    store = Store(project.store_file)
    store.insert_run(
        {
            "id": run_id,
            "job": "train",
            "status": "failed",
            "created": 1_790_000_000.0,
            "started": 1_790_000_000.0,
            "ended": 1_790_000_083.0,
            "duration": 83.0,
            "exit_code": 3,
            "params": {"lr": 0.1},
            "metrics": {"loss": 0.25},
            "backend": "local",
            "host": "box-1",
            "error": "loss did not improve for 5 epochs",
        }
    )
    d = project.run_dir(run_id)
    d.mkdir(parents=True, exist_ok=True)
    lines = [f"epoch {i}: loss={1 / (i + 1):.3f} [step {i * 10}]" for i in range(40)]
    lines += ["\x1b[31mERROR\x1b[0m: [bold]out of patience[/bold]", "Traceback: exit 3"]
    (d / "output.log").write_text("\n".join(lines) + "\n")
    with (d / "resources.jsonl").open("w") as fh:
        for i in range(30):
            gpu = {
                "index": 0,
                "name": "Test GPU",
                "util": (i * 7) % 100,
                "mem_used": (10 + i) * 2**30,
                "mem_total": 80 * 2**30,
                "temp": 60,
                "power": "n/a",
                "proc_mem": 9 * 2**30,
            }
            rec = {
                "time": 1_790_000_000.0 + i,
                "cpu": 50.0 + i,
                "rss": (1 + i / 10) * 2**30,
                "threads": 12,
                "nprocs": 3,
                "gpus": [gpu],
            }
            fh.write(json.dumps(rec) + "\n")
    with (d / "metrics.jsonl").open("w") as fh:
        for i in range(40):
            for name, value in (("loss", 1 / (i + 1)), ("acc", i / 40)):
                fh.write(json.dumps({"name": name, "value": value, "step": i, "time": 0}) + "\n")
    return run_id


async def test_reattach_to_a_finished_run_shows_everything(project: Project) -> None:
    run_id = finished_run(project)
    app = ScreenApp(lambda: LiveRunScreen(project, run_id))
    async with app.run_test(size=(120, 36)) as pilot:
        live = app.screen
        assert isinstance(live, LiveRunScreen)
        await wait_for(pilot, lambda: live.finished)
        status = status_of(live)
        assert "✗ failed (exit 3)" in status and "1m23s" in status and "did not improve" in status
        res = live.query_one(ResourcesPane)
        await wait_for(pilot, lambda: res.samples == 30)
        assert res.gpus[0]["util"] == (29 * 7) % 100 and len(res.gpu_util[0]) == 30
        # the figures are the run's last sample, not a stale "now"
        assert res.ended and "run ended: its last sample at" in res.render_pane().plain
        metrics = live.query_one(MetricsPane)
        assert metrics.latest["loss"] == (pytest.approx(1 / 40), 39)
        log = live.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 42)
        assert log.line_text(40) == "ERROR: [bold]out of patience[/bold]"
        # search: `/`, a term, enter; `n` for the next match, `N` back
        await pilot.press("slash")
        prompt = app.screen
        assert isinstance(prompt, SearchPrompt)
        search = prompt.query_one(Input)
        assert search.has_focus
        top = int(log.scroll_y)
        await pilot.press(*"[step 1")  # lines 10-19 say [step 100] … [step 190]; 1 [step 10]
        assert search.value == "[step 1"
        await pilot.press("enter")
        first = max(10, top + 1)
        await wait_for(pilot, lambda: log._match_line == first)
        assert app.screen is live
        assert "[step 1" in log.line_text(first)
        assert log.match_count == 11  # [step 10] too
        await pilot.press("n")
        await wait_for(pilot, lambda: log._match_line == first + 1)
        await pilot.press("N")
        await wait_for(pilot, lambda: log._match_line == first)
        assert log.match_position == first - 8  # after line 1's [step 10]
        assert f"{first - 8}/11" in str(log.border_subtitle)
        assert "following" not in str(log.border_subtitle)  # a finished run: "run ended"
        assert "run ended" in str(log.border_subtitle)
        assert log.follow is False
        await pilot.press("f")
        assert log.follow is True


async def test_narrow_terminal_puts_the_panes_under_the_log(project: Project) -> None:
    run_id = finished_run(project)
    app = ScreenApp(lambda: LiveRunScreen(project, run_id))
    async with app.run_test(size=(80, 24)) as pilot:
        live = app.screen
        assert isinstance(live, LiveRunScreen)
        await wait_for(pilot, lambda: live.finished)
        assert live.has_class("-narrow")
        log, side = live.query_one("#live-log"), live.query_one("#live-side")
        assert side.region.y >= log.region.bottom


def test_status_line_reads_without_colour() -> None:
    text = status_line({"id": "abc", "job": "train", "status": "running", "started": 100.0}, 112.0)
    assert text.plain.startswith("▶ running  abc  train  12")
    # created, but its supervisor has not started the job yet
    text = status_line({"id": "abc", "job": "train", "status": "running", "started": None})
    assert text.plain == "▶ starting…  abc  train"


async def test_a_run_being_launched_is_starting_not_unknown(project: Project) -> None:
    """The launch form opens the view before the run exists: `starting…` until it does."""
    app = ScreenApp(lambda: LiveRunScreen(project, "0notthere000", starting=True, job="train"))
    async with app.run_test(size=(80, 24)) as pilot:
        live = app.screen
        assert isinstance(live, LiveRunScreen)
        await wait_for(pilot, lambda: live.polls >= 3)
        assert status_of(live) == "▶ starting…  0notthere000  train"
        assert live.painted.is_set()
        live.launch_failed("no Docker engine reachable")
        await pilot.pause()
        assert "✗ launch failed: no Docker engine reachable" in status_of(live)
    # re-attaching to an id that is not there is an error, said as one
    app = ScreenApp(lambda: LiveRunScreen(project, "0notthere000"))
    async with app.run_test(size=(80, 24)) as pilot:
        live = app.screen
        assert isinstance(live, LiveRunScreen)
        await wait_for(pilot, lambda: live.polls >= 1)
        assert status_of(live).startswith("✗ no run '0notthere000'")


def test_jsonl_tail_reads_the_end_then_only_appends(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    f.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(500)))
    tail = JsonlTail(f, history=10)
    assert [r["i"] for r in tail.read_new()] == list(range(490, 500))
    assert tail.read_new() == []
    with f.open("a") as fh:
        fh.write('{"i": 500}\n{"i": 5')  # a half-written line waits for its end
    assert [r["i"] for r in tail.read_new()] == [500]
    with f.open("a") as fh:
        fh.write("01}\nnot json\n")
    assert [r["i"] for r in tail.read_new()] == [501]


def test_snapshot_live_view_of_a_finished_run(  # type: ignore[no-untyped-def]
    project: Project, snap_compare, monkeypatch
) -> None:
    import ctui.tui.widgets.resources as resources

    monkeypatch.setattr(resources, "_cores", lambda: 4)
    monkeypatch.setattr(resources, "_total_ram", lambda: 16 * 2**30)
    run_id = finished_run(project)
    app = ScreenApp(lambda: LiveRunScreen(project, run_id))

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        live = app.screen
        await wait_for(pilot, lambda: live.finished)
        await wait_for(pilot, lambda: live.query_one(ResourcesPane).samples == 30)
        await wait_for(pilot, lambda: live.query_one(LogView).line_count == 42)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 34), run_before=settle)


# prints its metrics (read from the output by ctui), then, once let go, logs one with ctui.track
PRINTS_METRICS = (
    "import sys, time; from pathlib import Path; from ctui import track\n"
    "for i in range(5): print(f'step={i} loss={1 / (i + 1):.3f}', flush=True)\n"
    "while not Path(sys.argv[1]).exists(): time.sleep(0.02)\n"
    "track.log_metric('acc', 0.9, 7)\n"
)


async def test_metrics_read_from_the_output_until_the_job_logs_its_own(
    project: Project, tmp_path: Path
) -> None:
    (project.root / "printer.py").write_text(PRINTS_METRICS)
    gate = tmp_path / "gate"
    (project.root / "ctui.toml").write_text(
        f"[jobs.printer]\ncommand = {json.dumps(f'{PY} printer.py {gate}')}\n"
    )
    run_id = launch(project, "printer")
    try:
        app = ScreenApp(lambda: LiveRunScreen(project, run_id))
        async with app.run_test(size=(120, 36)) as pilot:
            live = app.screen
            assert isinstance(live, LiveRunScreen)
            metrics = live.query_one(MetricsPane)
            await wait_for(pilot, lambda: metrics.latest.get("loss", (None,))[0] == 0.2)
            assert live.metrics_from == "output"
            assert metrics.border_title == "metrics (from output)"
            gate.touch()  # the job's own metric: the pane shows the run's metrics.jsonl
            await wait_for(pilot, lambda: "acc" in metrics.latest)
            assert live.metrics_from == "own" and "loss" not in metrics.latest
            assert metrics.border_title == "metrics"
            await wait_for(pilot, lambda: live.finished)
            assert "run ended" in str(live.query_one(LogView).border_subtitle)
    finally:
        gate.touch()
