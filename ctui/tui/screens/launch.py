"""The launch screen: pick a job, edit its params, choose GPUs (and Slurm options), launch.

ctrl+s picks the run's id (`ctui.ids.new_run_id`) and opens the live view of that run at
once ("starting…"), above the form; `ctui.jobs.launch.launch_run` — the same path as
`ctui run` — then runs in a worker. A launch that fails brings the form back with the
reason (the values as they were typed); esc on the live view of a launched (or launching)
run goes back to where the form was opened from.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ctui.errors import CtuiError
from ctui.ids import new_run_id
from ctui.tui.screens.live_run import LiveRunScreen
from ctui.tui.widgets.key_footer import KeyFooter
from ctui.tui.widgets.param_form import ParamField

if TYPE_CHECKING:
    from ctui.config import Config, JobConfig
    from ctui.project import Project

SLURM_FIELDS = ("partition", "time", "cpus", "mem")
#: the launch waits at most this long for the live view's first frame (see `_launch`)
PAINT_WAIT_S = 0.5
NOT_USED = "  (not used)"


def list_gpus() -> tuple[list[dict[str, Any]], str | None]:
    """The GPUs NVML sees (index, name, mem_total), or why there are none."""
    from ctui.monitor.gpu import GpuSampler

    sampler = GpuSampler(None)
    try:
        sample = sampler.sample()
    finally:
        sampler.close()
    if not sample.get("available"):
        return [], str(sample.get("reason") or "no NVIDIA GPU")
    return list(sample.get("gpus") or []), None


class LaunchScreen(Screen[None]):
    """`LaunchScreen(project, job=None)`; `gpus` (index/name/mem_total dicts) overrides NVML."""

    CSS_PATH = "launch.tcss"
    HELP_SECTION = "Launch"
    #: footer priority (see ctui/tui/widgets/key_footer.py)
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = ("launch.launch", "launch.back")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="launch.back"),
        Binding("ctrl+s", "launch", "Launch", id="launch.launch", priority=True),
        # the job list; inputs keep these letters (they are typed there)
        Binding("j", "jobs('down')", "Next job", show=False, id="launch.job_down"),
        Binding("k", "jobs('up')", "Previous job", show=False, id="launch.job_up"),
    ]

    def __init__(
        self,
        project: Project,
        job: str | None = None,
        *,
        gpus: tuple[list[dict[str, Any]], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        self.job_name = job
        self.config: Config | None = None
        self.config_error: str | None = None
        self.gpus = gpus
        self.launching = False
        self.launched: dict[str, Any] | None = None
        #: why the last launch failed (shown on the form)
        self.launch_error: str | None = None
        #: the live view of the launch in progress (None once it is closed)
        self.live: LiveRunScreen | None = None

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(Text("Launch a run", style="bold"), id="launch-title")
        with Horizontal(id="launch-body"):
            with Vertical(id="launch-jobs-box"):
                yield Label("job")
                yield OptionList(id="launch-jobs")
            with VerticalScroll(id="launch-form"):
                yield Static("", id="launch-command")
                yield Vertical(id="launch-params")
                yield Label("GPUs", classes="launch-heading")
                yield Vertical(id="launch-gpus")
                yield Vertical(id="launch-slurm")
        with Horizontal(id="launch-actions"):
            yield Button(
                "Launch (ctrl+s)",
                id="launch-button",
                variant="primary",
                disabled=True,
                compact=True,
            )
            yield Static("", id="launch-message")
        yield KeyFooter()

    def on_mount(self) -> None:
        from ctui.config import load_config

        try:
            self.config = load_config(self.project.root)
        except CtuiError as exc:
            self.config_error = exc.message + (f" ({exc.hint})" if exc.hint else "")
        jobs = self.query_one("#launch-jobs", OptionList)
        names = sorted(self.config.jobs) if self.config else []
        for name in names:
            jobs.add_option(Option(Text(name), id=name))
        if self.config_error:
            self._message(f"✗ {self.config_error}", error=True)
        elif not names:
            self._message("no jobs declared: add a [jobs.NAME] table to ctui.toml", error=True)
        if names:
            chosen = self.job_name if self.job_name in names else names[0]
            jobs.highlighted = names.index(chosen)
            self.call_after_refresh(self._choose, chosen)
        self._load_gpus()

    @on(OptionList.OptionHighlighted, "#launch-jobs")
    def _job_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.job_name:
            self.call_later(self._choose, event.option.id)

    async def _choose(self, name: str) -> None:
        assert self.config is not None
        job = self.config.jobs[name]
        self.job_name = name
        self.query_one("#launch-command", Static).update(
            Text(f"{job.command}\nbackend: {job.backend}", style="dim")
        )
        params = self.query_one("#launch-params", Vertical)
        await params.remove_children()
        fields = [ParamField(job, pname, i) for i, pname in enumerate(job.params)]
        if fields:
            await params.mount_all(fields)
        else:
            await params.mount(Static(Text("this job has no params", style="dim")))
        slurm = self.query_one("#launch-slurm", Vertical)
        await slurm.remove_children()
        if job.backend == "slurm":
            widgets: list[Any] = [Label("Slurm", classes="launch-heading")]
            for key in SLURM_FIELDS:
                value = getattr(job.slurm, key)
                widgets.append(Label(key))
                widgets.append(Input(value="" if value is None else str(value), id=f"slurm-{key}"))
            await slurm.mount_all(widgets)
        self._apply_gpu_defaults(job)
        self._revalidate()

    # -- GPUs ------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="launch-gpus")
    def _load_gpus(self) -> None:
        found = self.gpus if self.gpus is not None else list_gpus()
        self.app.call_from_thread(self._show_gpus, *found)  # type: ignore[arg-type]

    async def _show_gpus(self, gpus: list[dict[str, Any]], reason: str | None) -> None:
        box = self.query_one("#launch-gpus", Vertical)
        await box.remove_children()
        if not gpus:
            await box.mount(Static(Text(f"no NVIDIA GPU ({reason})", style="dim"), id="no-gpu"))
            return
        boxes = []
        for g in gpus:
            mem = g.get("mem_total")
            size = f"  {mem / 2**30:.0f} GiB" if isinstance(mem, int | float) else ""
            label = f"GPU {g.get('index')}: {g.get('name', '?')}{size}"
            boxes.append(Checkbox(label, value=True, id=f"gpu-{g.get('index')}", compact=True))
        await box.mount_all(boxes)
        if self.config and self.job_name in self.config.jobs:
            self._apply_gpu_defaults(self.config.jobs[self.job_name])

    def _apply_gpu_defaults(self, job: JobConfig) -> None:
        for box in self.query("#launch-gpus Checkbox").results(Checkbox):
            index = int(str(box.id).removeprefix("gpu-"))
            box.value = not isinstance(job.gpus, list) or index in job.gpus

    def selected_gpus(self) -> list[int] | None:
        """The checked GPU indices; None when there are no GPUs to choose from."""
        boxes = list(self.query("#launch-gpus Checkbox").results(Checkbox))
        if not boxes:
            return None
        return [int(str(b.id).removeprefix("gpu-")) for b in boxes if b.value]

    @on(Checkbox.Changed, "#launch-gpus Checkbox")
    def _gpu_toggled(self, event: Checkbox.Changed) -> None:
        # say it in words too: the checkbox glyph differs only by colour
        label = str(event.checkbox.label).removesuffix(NOT_USED)
        event.checkbox.label = label if event.value else label + NOT_USED

    # -- validation ------------------------------------------------------------------------
    @on(ParamField.Changed)
    def _param_changed(self) -> None:
        self._revalidate()

    def _fields(self) -> list[ParamField]:
        return list(self.query(ParamField).results(ParamField))

    def errors(self) -> list[str]:
        errs = [f"{f.param}: {f.error}" for f in self._fields() if f.error]
        for key in ("cpus",):
            for inp in self.query(f"#slurm-{key}").results(Input):
                if inp.value.strip() and not inp.value.strip().isdigit():
                    errs.append(f"slurm {key}: expected a whole number, got {inp.value!r}")
        return errs

    @on(Input.Changed, "#launch-slurm Input")
    def _slurm_changed(self) -> None:
        self._revalidate()

    def _revalidate(self) -> None:
        errs = self.errors()
        button = self.query_one("#launch-button", Button)
        button.disabled = bool(errs) or self.launching or self.job_name is None
        if errs:
            self._message(f"fix {len(errs)} field(s) before launching", error=True)
        elif not self.launching and self.config_error is None:
            self._message("")

    def _message(self, text: str, *, error: bool = False) -> None:
        self.query_one("#launch-message", Static).update(
            Text(text, style="bold red" if error else "")
        )

    # -- launching -------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {f.param: f.value for f in self._fields()}

    def job_for_launch(self) -> JobConfig:
        """The chosen job with the GPUs and Slurm options of the form."""
        assert self.config is not None and self.job_name is not None
        job = self.config.jobs[self.job_name]
        changes: dict[str, Any] = {}
        gpus = self.selected_gpus()
        if gpus is not None:
            all_checked = len(gpus) == len(list(self.query("#launch-gpus Checkbox")))
            if not (all_checked and not isinstance(job.gpus, list)):
                changes["gpus"] = gpus
        if job.backend == "slurm":
            opts: dict[str, Any] = {}
            for key in SLURM_FIELDS:
                value = self.query_one(f"#slurm-{key}", Input).value.strip() or None
                opts[key] = int(value) if key == "cpus" and value else value
            changes["slurm"] = dataclasses.replace(job.slurm, **opts)
        return dataclasses.replace(job, **changes) if changes else job

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch-button":
            self.action_launch()

    def action_launch(self) -> None:
        if self.launching or self.config is None or self.job_name is None:
            return
        errs = self.errors()
        if errs:
            self._message("✗ " + "; ".join(errs), error=True)
            return
        job = self.job_for_launch()
        config = dataclasses.replace(self.config, jobs={**self.config.jobs, job.name: job})
        self.launching = True
        self.launch_error = None
        self.query_one("#launch-button", Button).disabled = True
        self._message(f"launching {job.name}…")
        # the run is shown before it exists: its id now, then the launch in a worker
        run_id = new_run_id()
        self.live = LiveRunScreen(self.project, run_id, starting=True, job=job.name)
        self.app.push_screen(self.live, self._live_closed)
        # the app's worker, not this screen's: esc may close the form before it is done
        self.app.run_worker(
            partial(self._launch, self.live, job.name, self.params(), config),
            name=f"launch {run_id}",
            group="launch",
            thread=True,
            exit_on_error=False,
        )

    def _launch(
        self, live: LiveRunScreen, job: str, params: dict[str, Any], config: Config
    ) -> None:
        """In a thread: `launch_run`, then `_launched` or `_failed` on the UI thread.

        It starts once the live view is on screen: the launch's imports (MLflow's take
        seconds) would otherwise hold the GIL while that first frame is being drawn."""
        live.painted.wait(PAINT_WAIT_S)
        from ctui.jobs.launch import launch_run

        app, run_id = self.app, live.run_id
        try:
            doc = launch_run(
                self.project, job, params, trigger="manual", config=config, run_id=run_id
            )
        except CtuiError as exc:
            msg = exc.message + (f" ({exc.hint})" if exc.hint else "")
            done: tuple[Any, ...] = (self._failed, run_id, msg)
        except Exception as exc:  # noqa: BLE001 - shown on the form, never a crash
            done = (self._failed, run_id, f"{type(exc).__name__}: {exc}")
        else:
            done = (self._launched, doc)
        try:
            app.call_from_thread(*done)
        except RuntimeError:
            pass  # the app has closed; the run (if it launched) goes on without it

    def _failed(self, run_id: str, message: str) -> None:
        self.launching = False
        if not self.is_attached:  # the user left the form and the live view: say it there
            self.app.notify(
                f"run {run_id} did not launch: {message}",
                severity="error",
                timeout=10,
                markup=False,
            )
            return
        self.launch_error = message
        self._revalidate()
        self._message(f"✗ could not launch: {message}", error=True)
        if self.live is not None:
            self.live.launch_failed(message)
            self.pop_until_active()  # back to the form, as it was typed, with the reason

    def _launched(self, doc: dict[str, Any]) -> None:
        self.launched = doc
        self.launching = False
        if self.live is not None:
            self.live.launched(doc)

    def _live_closed(self, _result: None) -> None:
        self.live = None
        if self.launch_error is None and self.is_current:
            # launched (or still launching): esc leaves the run for where the form came from
            self.dismiss(None)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_jobs(self, where: str) -> None:
        jobs = self.query_one("#launch-jobs", OptionList)
        if self.focused is jobs:
            jobs.action_cursor_down() if where == "down" else jobs.action_cursor_up()
