"""The live run view: the log following the output, resources and metrics beside it.

Re-attaches to any run, running or finished: everything shown is read from the run's
folder and the store, so leaving the screen (or quitting ctui) never touches the job.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from ctui.errors import CtuiError
from ctui.format import duration, run_duration
from ctui.status import STATUS_LOOK
from ctui.store import ACTIVE, FINAL
from ctui.tui.widgets.jsonl_tail import JsonlTail
from ctui.tui.widgets.log_view import LogView
from ctui.tui.widgets.metrics_pane import MetricsPane
from ctui.tui.widgets.resources import ResourcesPane

if TYPE_CHECKING:
    from ctui.project import Project

#: seconds between two looks at the store and the run's JSONL files
POLL_S = 0.5
#: how often a running run's supervisor is checked (a vanished one makes the run `lost`)
RECONCILE_S = 5.0
#: below this width the side panes go under the log
NARROW = 100


def status_line(run: dict[str, Any], now: float | None = None) -> Text:
    """`▶ running · <id> · train · 12s` / `✓ succeeded (exit 0) · … · 3.2s`: colour + symbol."""
    status = str(run.get("status") or "?")
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


class LiveRunScreen(Screen[None]):
    """`LiveRunScreen(project, run_id)`: follow one run's log, resources and metrics."""

    CSS_PATH = "live_run.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="live.back"),
        Binding("f", "toggle_follow", "Follow", id="live.follow"),
        Binding("slash", "search", "Search", id="live.search"),
        Binding("n", "find_next", "Next match", id="live.next_match"),
        Binding("N", "find_previous", "Prev match", id="live.previous_match"),
        Binding("s", "stop", "Stop run", id="live.stop"),
    ]

    def __init__(self, project: Project, run_id: str, *, clock: Any = None) -> None:
        super().__init__()
        self.project = project
        self.run_id = run_id
        self.run: dict[str, Any] | None = None
        self.clock = clock or time.time
        self.stopping = False
        self._last_reconcile = 0.0
        self._stamp: tuple[int, int] | None = None
        self._term = ""
        run_dir = project.run_dir(run_id)
        self._resources = JsonlTail(run_dir / "resources.jsonl", history=120)
        self._metrics = JsonlTail(run_dir / "metrics.jsonl", history=2000)

    def compose(self) -> ComposeResult:
        yield Static(Text(f"… {self.run_id}"), id="live-status")
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
        yield Input(placeholder="search the log (lower case: any case)", id="live-search")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#live-search").display = False
        self._layout_for(self.size.width)
        self.query_one(LogView).focus()
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
            if stamp != self._stamp or self.run is None or reconcile:
                self._stamp = stamp
                run = store.get_run(self.run_id)
                if reconcile or (run.get("status") in ACTIVE and self._last_reconcile == 0):
                    self._last_reconcile = now
                    from ctui.jobs.reconcile import refresh

                    if self.run_id in refresh(self.project, store):
                        run = store.get_run(self.run_id)
        except CtuiError as exc:
            error = exc.message
        except Exception as exc:  # noqa: BLE001 - a bad read must not stop the view
            error = f"{type(exc).__name__}: {exc}"
        samples = self._resources.read_new()
        points = self._metrics.read_new()
        try:
            self.app.call_from_thread(self._apply, run, samples, points, error)
        except RuntimeError:
            pass  # the app is closing

    def _apply(
        self,
        run: dict[str, Any] | None,
        samples: list[dict[str, Any]],
        points: list[dict[str, Any]],
        error: str | None,
    ) -> None:
        if not self.is_attached:
            return
        if run is not None:
            self.run = run
        if self.run is not None and error is None:  # re-drawn each poll: the elapsed time moves
            self.query_one("#live-status", Static).update(status_line(self.run, now=self.clock()))
        elif error:
            self.query_one("#live-status", Static).update(Text(f"✗ {error}", style="red"))
        if samples:
            self.query_one(ResourcesPane).add_samples(samples)
        if points:
            self.query_one(MetricsPane).add_points(points)
        self.set_timer(POLL_S, self.poll)

    @property
    def finished(self) -> bool:
        return self.run is not None and self.run.get("status") in FINAL

    # -- actions ---------------------------------------------------------------------------
    def action_back(self) -> None:
        search = self.query_one("#live-search", Input)
        if search.display:
            search.display = False
            self.query_one(LogView).focus()
            return
        self.dismiss(None)

    def action_toggle_follow(self) -> None:
        log = self.query_one(LogView)
        log.follow = not log.follow

    def action_search(self) -> None:
        search = self.query_one("#live-search", Input)
        search.display = True
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "live-search":
            return
        self._term = event.value.strip()
        event.input.display = False
        log = self.query_one(LogView)
        log.focus()
        if self._term:
            log.find(self._term)
        else:
            log.clear_search()

    def action_find_next(self) -> None:
        if self._term:
            self.query_one(LogView).find(self._term)

    def action_find_previous(self) -> None:
        if self._term:
            self.query_one(LogView).find(self._term, backwards=True)

    def on_log_view_search_result(self, event: LogView.SearchResult) -> None:
        if event.line is None:
            self.notify(f"no more matches for {event.term!r}", timeout=2)

    def action_stop(self) -> None:
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
        from ctui.jobs.launch import stop_run

        try:
            stop_run(self.project, self.run_id)
        except CtuiError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
        finally:
            self.stopping = False
