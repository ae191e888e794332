"""The live run view: the log following the output, resources and metrics beside it.

Re-attaches to any run, running or finished: everything shown is read from the run's
folder and the store, so leaving the screen (or quitting ctui) never touches the job.

The launch form opens it before the launch returns (`starting=True`): the run's id and
"starting…" show at once, the store is polled often until the run is there and its job has
started, and the log shows the job's first line as soon as it is written.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from ctui.errors import CtuiError, UnknownRunError
from ctui.format import duration, run_duration
from ctui.output_metrics import OUTPUT_METRICS_FILE
from ctui.status import STATUS_LOOK
from ctui.store import ACTIVE, FINAL
from ctui.tui.widgets.jsonl_tail import JsonlTail
from ctui.tui.widgets.key_footer import KeyFooter
from ctui.tui.widgets.log_view import LogView
from ctui.tui.widgets.metrics_pane import MetricsPane
from ctui.tui.widgets.resources import ResourcesPane

if TYPE_CHECKING:
    from ctui.project import Project

#: seconds between two looks at the store and the run's JSONL files
POLL_S = 0.5
#: the same while the run is starting (not in the store yet, or its job not started)
STARTING_POLL_S = 0.1
#: how often a running run's supervisor is checked (a vanished one makes the run `lost`)
RECONCILE_S = 5.0
#: below this width the side panes go under the log
NARROW = 100


STARTING = "starting…"


def starting_line(run_id: str, job: str | None) -> Text:
    """`▶ starting…  <id>  train`: a run being launched (not in the store yet)."""
    symbol, style = STATUS_LOOK["running"]
    text = Text(f"{symbol} {STARTING}", style=style)
    text.append(f"  {run_id}  {job or ''}".rstrip())
    return text


def status_line(run: dict[str, Any], now: float | None = None) -> Text:
    """`▶ running · <id> · train · 12s` / `✓ succeeded (exit 0) · … · 3.2s`: colour + symbol.

    A `running` run whose job has not started yet (its supervisor is still capturing the
    manifest) says `starting…`."""
    status = str(run.get("status") or "?")
    if is_starting(run):
        text = starting_line(str(run.get("id", "")), run.get("job"))
    else:
        symbol, style = STATUS_LOOK.get(status, ("?", ""))
        text = Text(f"{symbol} {status}", style=style)
        if status in FINAL and run.get("exit_code") is not None:
            text.append(f" (exit {run['exit_code']})", style=style)
        text.append(f"  {run.get('id', '')}  {run.get('job', '')}")
        text.append(f"  {duration(run_duration(run, now=now))}", style="dim")
    backend = run.get("backend")
    if backend and backend != "local":
        text.append(f"  {backend}", style="dim")
    slurm = run.get("slurm") or {}
    if slurm.get("job_id"):
        text.append(f"  slurm {slurm['job_id']}", style="dim")
        if slurm.get("reason"):
            text.append(f" ({slurm['reason']})", style="dim")
    error = run.get("error")
    if error and error != f"exit code {run.get('exit_code')}" and status in FINAL | {"queued"}:
        text.append(f"\n{error}", style="red" if status != "queued" else "yellow")
    return text


def is_starting(run: dict[str, Any] | None) -> bool:
    """Not in the store yet (None), or `running` with its job not started."""
    return run is None or (run.get("status") == "running" and not run.get("started"))


class LiveRunScreen(Screen[None]):
    """`LiveRunScreen(project, run_id)`: follow one run's log, resources and metrics.

    `starting=True` (the launch form, before `launch_run` returned): a run that is not in the
    store yet is shown as starting, not as unknown; the launcher then calls `launched` or
    `launch_failed`.
    """

    CSS_PATH = "live_run.tcss"
    HELP_SECTION = "Live run"
    #: footer priority (see ctui/tui/widgets/key_footer.py)
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = (
        "live.back",
        "live.stop",
        "log.search",
        "live.follow",
        "log.next_match",
        "log.times",
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="live.back"),
        Binding("f", "toggle_follow", "Follow", id="live.follow"),
        Binding("s", "stop", "Stop run", id="live.stop"),
    ]

    def __init__(
        self,
        project: Project,
        run_id: str,
        *,
        clock: Any = None,
        starting: bool = False,
        job: str | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        self.run_id = run_id
        self.run: dict[str, Any] | None = None
        self.clock = clock or time.time
        #: the launch has not returned yet: a missing run is expected, not an error
        self.starting = starting
        self.job = job
        self.launch_error: str | None = None
        #: set once the first frame is on screen (the launcher waits for it: see launch.py)
        self.painted = threading.Event()
        self.stopping = False
        self._last_reconcile = 0.0
        self._stamp: tuple[int, int] | None = None
        self._looked = False  # the store was read at least once
        self.polls = 0  # polls applied so far
        self._status_shown = ""  # the status line's text now on screen
        run_dir = project.run_dir(run_id)
        self._resources = JsonlTail(run_dir / "resources.jsonl", history=120)
        self._metrics = JsonlTail(run_dir / "metrics.jsonl", history=2000)
        # a job that only prints its metrics: the points read from its output
        self._parsed = JsonlTail(run_dir / OUTPUT_METRICS_FILE, history=2000)
        #: where the metrics pane's points come from: None (none yet), "own", "output"
        self.metrics_from: str | None = None

    def compose(self) -> ComposeResult:
        self._layout_for(self.app.size.width)  # before the first layout, not after it
        first = starting_line(self.run_id, self.job) if self.starting else Text(f"… {self.run_id}")
        yield Static(first, id="live-status")
        with Horizontal(id="live-body"):
            log = LogView(self.project.run_dir(self.run_id) / "output.log", id="live-log")
            log.border_title = "log"
            yield log
            with VerticalScroll(id="live-side"):
                res = ResourcesPane(id="live-resources")
                res.border_title = "resources"
                yield res
                metrics = MetricsPane(id="live-metrics")
                metrics.border_title = "metrics"
                yield metrics
        yield KeyFooter()

    def on_mount(self) -> None:
        self._layout_for(self.size.width)
        self.query_one(LogView).focus()
        self.call_after_refresh(self.painted.set)
        self.poll()

    def on_resize(self) -> None:
        self._layout_for(self.size.width)

    def _layout_for(self, width: int) -> None:
        self.set_class(width < NARROW, "-narrow")

    # -- polling ---------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="live-poll")
    def poll(self) -> None:
        """One look at the run (store doc, new samples, new metric points); re-arms itself."""
        from ctui.store import Store

        run: dict[str, Any] | None = None
        error = None
        starting = self.starting  # read first: once it is False the run is in the store
        try:
            store = Store(self.project.store_file)
            stamp = store.stamp()
            now = time.monotonic()
            # the store file can hold 10k runs: read it only when it changed (or to reconcile)
            reconcile = (
                self.run is not None
                and self.run.get("status") in ACTIVE
                and now - self._last_reconcile > RECONCILE_S
            )
            # a run not found yet is looked for again once the store changed
            if stamp != self._stamp or reconcile or not self._looked:
                self._stamp, self._looked = stamp, True
                run = store.get_run(self.run_id)
                if reconcile or (run.get("status") in ACTIVE and self._last_reconcile == 0):
                    self._last_reconcile = now
                    from ctui.jobs.reconcile import refresh

                    if self.run_id in refresh(self.project, store):
                        run = store.get_run(self.run_id)
        except UnknownRunError as exc:
            if not starting:  # being launched: not in the store yet is expected
                error = exc.message
        except CtuiError as exc:
            error = exc.message
        except Exception as exc:  # noqa: BLE001 - a bad read must not stop the view
            error = f"{type(exc).__name__}: {exc}"
        samples = self._resources.read_new()
        points, source = self._read_metrics()
        try:
            self.app.call_from_thread(self._apply, run, samples, (points, source), error)
        except RuntimeError:
            pass  # the app is closing

    def _read_metrics(self) -> tuple[list[dict[str, Any]], str | None]:
        """New metric points: the run's own (`metrics.jsonl`) once it has any, else those
        read from its output (a job that only prints them)."""
        own = self._metrics.read_new()
        if own or self.metrics_from == "own":
            return own, "own"
        return self._parsed.read_new(), "output"

    def _apply(
        self,
        run: dict[str, Any] | None,
        samples: list[dict[str, Any]],
        metrics: tuple[list[dict[str, Any]], str | None],
        error: str | None,
    ) -> None:
        if not self.is_attached:
            return
        self.polls += 1
        if run is not None:
            self.run = run
        if self.launch_error is not None:
            pass  # the failed launch stays on the status line
        elif self.run is not None and error is None:  # re-drawn each poll: the time moves
            self._show_status()
        elif error:
            self._status_shown = ""
            self.query_one("#live-status", Static).update(Text(f"✗ {error}", style="red"))
        if samples:
            self.query_one(ResourcesPane).add_samples(samples)
        points, source = metrics
        if points:
            pane = self.query_one(MetricsPane)
            if source != self.metrics_from:  # the run's own metrics replace the parsed ones
                pane.history.clear()
                pane.latest.clear()
                self.metrics_from = source
                pane.border_title = "metrics" if source == "own" else "metrics (from output)"
            pane.add_points(points)
        if self.finished:
            self.query_one(LogView).ended = True  # no more "following" once the run is over
            self.query_one(ResourcesPane).end()  # nor a CPU figure that reads as the present
            self.refresh_bindings()  # and no "Stop run" in the footer
        # the next poll only once this one is done: polls never pile up
        starting = self.launch_error is None and is_starting(self.run)
        self.set_timer(STARTING_POLL_S if starting else POLL_S, self.poll)

    def _show_status(self) -> None:
        assert self.run is not None
        text = status_line(self.run, now=self.clock())
        if text.plain == self._status_shown:
            return  # redrawn each poll: most polls change nothing
        # the same number of lines: a repaint, not a layout of the whole screen
        same_height = text.plain.count("\n") == self._status_shown.count("\n")
        self._status_shown = text.plain
        self.query_one("#live-status", Static).update(text, layout=not same_height)

    # -- told by the launcher --------------------------------------------------------------
    def launched(self, doc: dict[str, Any]) -> None:
        """`launch_run` returned `doc`: the run exists (a poll may already have seen it)."""
        self.starting = False
        if self.run is None:
            self.run = doc
            if self.is_attached:
                self._show_status()

    def launch_failed(self, message: str) -> None:
        """`launch_run` raised: say so instead of `starting…` (and stop looking for the run)."""
        self.starting = False
        self.launch_error = message
        self._status_shown = ""
        if self.is_attached:
            self.query_one("#live-status", Static).update(
                Text(f"✗ launch failed: {message}", style="bold red")
            )

    @property
    def finished(self) -> bool:
        return self.run is not None and self.run.get("status") in FINAL

    # -- actions ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop" and self.finished:
            return None  # shown disabled (the footer leaves it out): nothing left to stop
        return True

    def action_back(self) -> None:
        self.dismiss(None)

    def action_toggle_follow(self) -> None:
        log = self.query_one(LogView)
        log.follow = not log.follow

    def action_stop(self) -> None:
        if self.run is None:
            self.notify("the run has not started yet", timeout=2)
            return
        if self.finished or self.stopping:
            self.notify("the run has already ended" if self.finished else "stopping…", timeout=2)
            return
        from ctui.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.stopping = True
                self.notify("stopping the run…", timeout=2)
                self._stop()

        self.app.push_screen(
            ConfirmScreen(
                f"Stop run {self.run_id}?", "SIGTERM to the job, SIGKILL after the grace period"
            ),
            answered,
        )

    @work(thread=True, exclusive=True, group="live-stop")
    def _stop(self) -> None:
        from ctui.jobs.stop import stop_run

        try:
            stop_run(self.project, self.run_id)
        except CtuiError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
        finally:
            self.stopping = False
