"""The launch screen: job list, validated param form, GPUs, Slurm options, a real launch."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Button, Checkbox, Input, OptionList, Static

from ctui.project import Project
from ctui.store import Store
from ctui.tui.screens.launch import LaunchScreen
from ctui.tui.screens.live_run import LiveRunScreen
from ctui.tui.widgets.log_view import LogView
from ctui.tui.widgets.metrics_pane import MetricsPane
from ctui.tui.widgets.param_form import ParamField
from tests.tui_live_helpers import LockHolder, ScreenApp, status_of, wait_for, write_config

pytestmark = pytest.mark.timeout(90)

FAKE_GPUS = (
    [
        {"index": 0, "name": "Test GPU A", "mem_total": 80 * 2**30},
        {"index": 1, "name": "Test GPU B", "mem_total": 80 * 2**30},
    ],
    None,
)


def field(screen: LaunchScreen, name: str) -> ParamField:
    return next(f for f in screen.query(ParamField).results(ParamField) if f.param == name)


def run_ids(project: Project) -> set[str]:
    return {r["id"] for r in Store(project.store_file).runs()}


def stop_if_running(project: Project, run_id: str | None) -> None:
    from ctui.jobs.stop import stop_run

    if run_id is None or run_id not in run_ids(project):
        return
    if Store(project.store_file).get_run(run_id)["status"] in ("running", "queued"):
        stop_run(project, run_id, grace=1.0)


async def launch_from_form(
    app: ScreenApp, pilot: Any, job: str
) -> tuple[LaunchScreen, LiveRunScreen]:
    """On the form of `job` (once it is chosen), ctrl+s: → the form and the live view."""
    form = app.screen
    assert isinstance(form, LaunchScreen)
    await wait_for(pilot, lambda: form.job_name == job)
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, LiveRunScreen))
    live = app.screen
    assert isinstance(live, LiveRunScreen)
    return form, live


async def test_the_live_view_shows_the_run_before_the_launch_returns(project: Project) -> None:
    """ctrl+s shows the new run's id and `starting…` while `launch_run` is still waiting
    (here for the store lock another process holds); its first log line follows."""
    write_config(project.root)
    app = ScreenApp(lambda: LaunchScreen(project, "sleeper"))
    run_id = None
    try:
        with LockHolder(Store(project.store_file).lock_path) as holder:
            async with app.run_test(size=(120, 40)) as pilot:
                form, live = await launch_from_form(app, pilot, "sleeper")
                run_id = live.run_id
                await wait_for(pilot, lambda: "starting…" in status_of(live))
                assert run_id in status_of(live) and "sleeper" in status_of(live)
                # the launch has not returned: the run is not even in the store yet
                assert form.launching and form.launched is None
                assert run_id not in run_ids(project)
                polls = live.polls
                await wait_for(pilot, lambda: live.polls >= polls + 3)
                # looked for while starting, never reported as an unknown run
                assert "starting…" in status_of(live) and "✗" not in status_of(live)
                holder.release()
                await wait_for(pilot, lambda: form.launched is not None)
                assert form.launched is not None and form.launched["id"] == run_id
                log = live.query_one(LogView)
                await wait_for(pilot, lambda: log.line_count >= 1, timeout=30)
                assert log.line_text(0) == "sleeping"
                await wait_for(pilot, lambda: "running" in status_of(live))
                assert live.run is not None and live.run["status"] == "running"
                # esc leaves the run running and goes back past the form
                await pilot.press("escape")
                await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))
                await pilot.pause()
                assert not isinstance(app.screen, LiveRunScreen | LaunchScreen)
                assert Store(project.store_file).get_run(run_id)["status"] == "running"
    finally:
        stop_if_running(project, run_id)


async def test_a_failed_launch_brings_the_form_back_with_its_reason(project: Project) -> None:
    write_config(project.root)
    broken = b"{not json"
    project.store_file.write_bytes(broken)  # launch_run refuses a store it cannot read
    app = ScreenApp(lambda: LaunchScreen(project, "count"))
    async with app.run_test(size=(120, 40)) as pilot:
        form = app.screen
        assert isinstance(form, LaunchScreen)
        await wait_for(pilot, lambda: len(form.query(ParamField)) == 4)
        field(form, "n").query_one(Input).value = "7"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: form.launch_error is not None)
        await wait_for(pilot, lambda: app.screen is form)
        assert form.launch_error is not None and "unreadable" in form.launch_error
        message = str(form.query_one("#launch-message", Static).render())
        assert message.startswith("✗ could not launch:") and str(project.store_file) in message
        assert field(form, "n").value == 7  # the form as it was typed
        assert not form.launching and not form.query_one("#launch-button", Button).disabled
        assert form.live is None
        assert project.store_file.read_bytes() == broken  # never overwritten
        # fixed, the same form launches
        project.store_file.unlink()
        Store(project.store_file).initialise()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: form.launched is not None)
        live = app.screen
        assert isinstance(live, LiveRunScreen)
        await wait_for(pilot, lambda: live.finished, timeout=30)
        assert Store(project.store_file).get_run(live.run_id)["params"]["n"] == 7


async def test_leaving_while_starting_still_reports_a_failed_launch(project: Project) -> None:
    """esc on a run still starting goes back past the form; a launch that then fails says
    so in a notification (the form it would have shown on is gone)."""
    write_config(project.root)
    app = ScreenApp(lambda: LaunchScreen(project, "count"))
    with LockHolder(Store(project.store_file).lock_path) as holder:
        async with app.run_test(size=(120, 40)) as pilot:
            form, live = await launch_from_form(app, pilot, "count")
            run_id = live.run_id
            await pilot.press("escape")
            await wait_for(pilot, lambda: not form.is_attached)
            assert form.launching
            project.store_file.write_bytes(b"{not json")  # what the launch will find
            holder.release()
            await wait_for(pilot, lambda: not form.launching)
            await pilot.pause()
            notes = [n.message for n in app._notifications]
            assert any(f"run {run_id} did not launch" in n and "unreadable" in n for n in notes)


async def test_launch_a_real_job_and_watch_it_finish(project: Project) -> None:
    write_config(project.root)
    app = ScreenApp(lambda: LaunchScreen(project, "count"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        await wait_for(pilot, lambda: len(screen.query(ParamField)) == 4)
        n_input = field(screen, "n").query_one(Input)
        n_input.value = "7"
        await pilot.pause()
        assert field(screen, "n").value == 7
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveRunScreen))
        live = app.screen
        assert isinstance(live, LiveRunScreen)
        await wait_for(pilot, lambda: screen.launched is not None)  # the view came first
        run = Store(project.store_file).get_run(live.run_id)
        assert run["params"] == {"n": 7, "lr": 0.1, "name": "a b", "fast": True}
        assert run["trigger"] == "manual"
        await wait_for(pilot, lambda: live.finished, timeout=30)
        assert live.run is not None and live.run["status"] == "succeeded"
        assert live.run["exit_code"] == 0
        log = live.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count >= 8)
        await pilot.pause()
        shown = log.visible_lines()
        assert "count line 6" in shown and "done [ok]" in shown
        status = str(live.query_one("#live-status", Static).render())
        assert "succeeded" in status and "exit 0" in status
        metrics = live.query_one(MetricsPane)
        await wait_for(pilot, lambda: metrics.latest.get("loss", (None, None))[1] == 6)


async def test_invalid_param_blocks_launch(project: Project) -> None:
    write_config(project.root)
    app = ScreenApp(lambda: LaunchScreen(project, "count"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        await wait_for(pilot, lambda: len(screen.query(ParamField)) == 4)
        button = screen.query_one("#launch-button", Button)
        assert not button.disabled
        n = field(screen, "n")
        n.query_one(Input).value = "many"
        await pilot.pause()
        assert n.error and "expected int" in n.error
        assert "expected int" in str(n.query_one(".param-error", Static).render())
        assert button.disabled
        field(screen, "fast").query_one(Input).value = "maybe"
        await pilot.pause()
        assert len(screen.errors()) == 2
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert isinstance(app.screen, LaunchScreen)
        assert Store(project.store_file).runs() == []
        n.query_one(Input).value = "3"
        field(screen, "fast").query_one(Input).value = "no"
        await pilot.pause()
        assert not button.disabled and screen.params()["fast"] is False


async def test_job_list_gpus_and_slurm_options(project: Project) -> None:
    write_config(project.root)
    app = ScreenApp(lambda: LaunchScreen(project, gpus=FAKE_GPUS))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        jobs = screen.query_one("#launch-jobs", OptionList)
        assert [jobs.get_option_at_index(i).id for i in range(jobs.option_count)] == [
            "cluster",
            "count",
            "sleeper",
        ]
        await wait_for(pilot, lambda: len(screen.query(Checkbox)) == 2)
        await wait_for(pilot, lambda: screen.query("#slurm-partition"))
        assert screen.job_name == "cluster"
        assert screen.query_one("#slurm-partition", Input).value == "gpu"
        screen.query_one("#slurm-cpus", Input).value = "8"
        screen.query_one("#slurm-time", Input).value = "00:10:00"
        screen.query_one("#gpu-1", Checkbox).value = False
        await pilot.pause()
        job = screen.job_for_launch()
        assert job.slurm.cpus == 8 and job.slurm.time == "00:10:00"
        assert job.slurm.partition == "gpu" and job.slurm.mem == "16G"
        assert job.gpus == [0]
        screen.query_one("#slurm-cpus", Input).value = "lots"
        await pilot.pause()
        assert screen.query_one("#launch-button", Button).disabled
        # another job: its own params, no Slurm inputs
        jobs.focus()
        await pilot.press("down")
        await wait_for(
            pilot, lambda: screen.job_name == "count" and len(screen.query(ParamField)) == 4
        )
        await pilot.pause()
        assert not screen.query("#slurm-partition")
        assert screen.job_for_launch().gpus == [0, 1] or screen.selected_gpus() == [0, 1]


async def test_no_gpu_says_so_and_carries_on(project: Project) -> None:
    write_config(project.root)
    app = ScreenApp(lambda: LaunchScreen(project, "count", gpus=([], "no NVIDIA driver")))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        await wait_for(pilot, lambda: screen.query("#no-gpu"))
        assert "no NVIDIA GPU" in str(screen.query_one("#no-gpu", Static).render())
        assert screen.selected_gpus() is None
        assert screen.job_for_launch().gpus is None


async def test_real_gpu_listing_never_fails(project: Project) -> None:
    """The real NVML path: GPUs where there are some, the reason where there are none."""
    from ctui.tui.screens.launch import list_gpus

    gpus, reason = list_gpus()
    assert gpus or reason
    for g in gpus:
        assert isinstance(g["index"], int)


SNAPSHOT_TOML = """
[jobs.train]
command = "python train.py --lr {lr} --epochs {epochs} --name {name}"
params = { lr = 0.01, epochs = 3, name = "baseline", augment = false }

[jobs.evaluate]
command = "python eval.py"
"""


def test_snapshot_launch_form(project: Project, snap_compare) -> None:  # type: ignore[no-untyped-def]
    (project.root / "ctui.toml").write_text(SNAPSHOT_TOML)
    app = ScreenApp(lambda: LaunchScreen(project, "train", gpus=FAKE_GPUS))

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.query(ParamField)) == 4)
        await wait_for(pilot, lambda: len(screen.query(Checkbox)) == 2)
        screen.query_one("#gpu-1", Checkbox).value = False
        field(screen, "lr").query_one(Input).value = "fast"  # shows an inline error
        await pilot.pause()
        screen.query_one("#launch-jobs").focus()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 34), run_before=settle)


async def test_broken_config_is_a_message_not_a_crash(project: Project) -> None:
    (project.root / "ctui.toml").write_text("[jobs.train]\nparams = { lr = 0.1 }\n")  # no command
    app = ScreenApp(lambda: LaunchScreen(project))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        await pilot.pause()
        message = str(screen.query_one("#launch-message", Static).render())
        assert "command" in message and "ctui.toml" in message
        assert screen.query_one("#launch-button", Button).disabled
        await pilot.press("ctrl+s")
        assert Store(project.store_file).runs() == []
