"""The launch screen: job list, validated param form, GPUs, Slurm options, a real launch."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Checkbox, Input, OptionList, Static

from ctui.project import Project
from ctui.store import Store
from ctui.tui.screens.launch import LaunchScreen
from ctui.tui.screens.live_run import LiveRunScreen
from ctui.tui.widgets.log_view import LogView
from ctui.tui.widgets.metrics_pane import MetricsPane
from ctui.tui.widgets.param_form import ParamField
from tests.tui_live_helpers import ScreenApp, wait_for, write_config

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
