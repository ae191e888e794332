"""The runs screen's preview pane (lazygit style, on terminals ≥ 160 columns wide).

It shows the selected run: its handle and status, the one-line verdict against the run of
the same job before it (`ctui.diff.diff_runs`, the diff screen's own comparison), its params,
metrics and the last lines of its log (`ctui.logs.tail`). The verdict and the log are read
in a worker, so moving the cursor never waits on the disk; each result is kept per run.

A cursor move does not repaint the pane: it waits until the cursor has rested on a run for
`SETTLE` seconds (one timer, re-armed only when it fires too early), so holding `j` costs no
more than the table's own two lines; then the run is drawn and its verdict and log are read.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.geometry import Region
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from ctui.errors import CtuiError
from ctui.format import number
from ctui.tui.data import Run, handle_parts, status_look

if TYPE_CHECKING:
    from ctui.project import Project

#: log lines shown under the metrics
LOG_LINES = 8
#: preview panes are shown on terminals at least this wide
MIN_WIDTH = 160


def previous_runs(runs: list[Run]) -> dict[str, Run | None]:
    """run id → the run of the same job created just before it (else any run before it);
    one pass over the runs (oldest first), so a cursor move only looks it up."""
    out: dict[str, Run | None] = {}
    last_of_job: dict[Any, Run] = {}
    last: Run | None = None
    for run in sorted(runs, key=lambda r: r["id"]):
        out[run["id"]] = last_of_job.get(run.get("job"), last)
        last_of_job[run.get("job")] = run
        last = run
    return out


def compare_line(project: Project, before: Run, run: Run) -> str:
    """`diff_runs`' one-line verdict of `run` against `before` (no git: the verdict only),
    from their whole documents (a table row holds only its table fields)."""
    from ctui.diff import diff_runs, run_view
    from ctui.objects import ObjectStore
    from ctui.store import Store

    store = Store(project.store_file)
    old, new = (store.get_run(r["id"], checked=False) for r in (before, run))
    objects = ObjectStore(project.objects_dir)
    result = diff_runs(run_view(old, objects), run_view(new, objects), objects=objects)
    return str(result.get("verdict") or "")


def log_lines(project: Project, run: Run, n: int = LOG_LINES) -> list[str]:
    from ctui.logs import tail

    try:
        return tail(project.run_dir(run["id"]) / "output.log", n)
    except (CtuiError, OSError):
        return []


class RunPreview(Widget):
    """`show(run, runs)`: what the selected run is, at a glance.

    Drawn with the line API from lines rendered once per change: Textual's `Static` costs
    ~17 ms a cursor move for a pane this tall, these lines ~2 ms."""

    DEFAULT_CSS = """
    RunPreview {
        width: 56;
        height: 1fr;
        border-left: vkey $panel;
        padding: 0 1;
        background: $surface;
        overflow: hidden hidden;
    }
    """

    #: seconds the cursor rests on a run before the pane shows it (and reads its verdict, log)
    SETTLE = 0.1

    def __init__(self, project: Project, **kw: Any) -> None:
        super().__init__(**kw)
        self.project = project
        self.run: Run | None = None
        self._extras: dict[str, tuple[str, list[str]]] = {}
        self._before: tuple[list[Run], dict[str, Run | None]] | None = None
        self._timer: Timer | None = None
        #: the run a cursor move asked for, and when (shown once the cursor rests)
        self._wanted: tuple[Run | None, list[Run]] | None = None
        self._moved_at = 0.0
        self.text = Text()
        self._lines: list[Strip] = []
        self._blank = Strip.blank(0)
        self._width = 0

    def show(self, run: Run | None, runs: list[Run], *, rest: bool = False) -> None:
        """Show `run` now; with `rest` (a cursor move), once the cursor has rested on it."""
        if rest and self.run is not None:
            self._wanted = (run, runs)
            self._moved_at = time.monotonic()
            if self._timer is None:
                self._timer = self.set_timer(self.SETTLE, self._settle)
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._wanted = None
        self._present(run, runs)

    def _settle(self) -> None:
        """The timer fired: show the wanted run, or wait on while the cursor still moves."""
        rested = time.monotonic() - self._moved_at
        if rested < self.SETTLE:
            self._timer = self.set_timer(self.SETTLE - rested, self._settle)
            return
        self._timer = None
        if self._wanted is not None:
            run, runs = self._wanted
            self._wanted = None
            self._present(run, runs)

    def _present(self, run: Run | None, runs: list[Run]) -> None:
        if run is self.run and run is not None:
            return
        self.run = run
        self._draw()
        if run is None or run["id"] in self._extras:
            return
        if self._before is None or self._before[0] is not runs:
            self._before = (runs, previous_runs(runs))
        self._load(run, self._before[1].get(run["id"]))

    def forget(self) -> None:
        """The runs changed (a reload): verdicts and logs are read again."""
        self._extras.clear()
        self.run = None

    @work(thread=True, exclusive=True, group="run-preview", exit_on_error=False)
    def _load(self, run: Run, before: Run | None) -> None:
        if before is None:
            line = "the first run: nothing before it to compare"
        else:
            try:
                seq, short = handle_parts(before)
                line = f"vs {seq or short}: {compare_line(self.project, before, run)}"
            except (CtuiError, OSError) as exc:
                line = f"cannot compare with the run before: {exc}"
        extras = (line, log_lines(self.project, run))
        try:
            self.app.call_from_thread(self._loaded, run["id"], extras)
        except RuntimeError:
            pass  # the app is closing

    def _loaded(self, run_id: str, extras: tuple[str, list[str]]) -> None:
        self._extras[run_id] = extras
        if len(self._extras) > 256:
            self._extras.pop(next(iter(self._extras)))
        if self.run is not None and self.run["id"] == run_id:
            self._draw()

    def _draw(self) -> None:
        run = self.run
        if run is None:
            self._set_text(Text("no run selected", style="dim"))
            return
        text = Text()
        seq, _short = handle_parts(run)
        if seq:
            text.append(f"{seq} ", style="bold")
        text.append(str(run.get("id", "")), style="dim")
        symbol, style = status_look(str(run.get("status", "")))
        text.append(f"  {symbol} {run.get('status', '')}", style=style)
        text.append(f"  {run.get('job') or ''}\n", style="bold")
        verdict, logs = self._extras.get(run["id"], ("comparing…", []))
        text.append(verdict + "\n", style="italic")
        _section(text, "params", run.get("params"))
        _section(text, "metrics", run.get("metrics"))
        text.append("\nlog\n", style="bold underline")
        if logs:
            for line in logs:
                text.append(line + "\n")
        else:
            text.append("(no output)\n", style="dim")
        self._set_text(text)

    def _set_text(self, text: Text) -> None:
        self.text = text
        old, width = self._lines, self.size.width
        if not old or width != self._width:
            self._lines = []
            self.refresh()
            return
        self._build(width)
        # only the lines that changed are painted again (a cursor move changes a few)
        for y in range(max(len(old), len(self._lines))):
            a = old[y] if y < len(old) else self._blank
            b = self._lines[y] if y < len(self._lines) else self._blank
            if a != b:
                self.refresh(Region(0, y, width, 1))

    def _build(self, width: int) -> None:
        self._width = width
        options = self.app.console.options.update_width(max(1, width))
        text = self.text.copy()
        text.no_wrap, text.overflow = True, "ellipsis"  # one line per line: cut, never wrapped
        style = self.rich_style
        self._blank = Strip.blank(width, style)
        self._lines = [
            Strip(line, width).apply_style(style)
            for line in self.app.console.render_lines(text, options, pad=True, new_lines=False)
        ]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if not self._lines or width != self._width:
            self._build(width)
        return self._lines[y] if y < len(self._lines) else self._blank


def _section(text: Text, title: str, values: Any) -> None:
    text.append(f"\n{title}\n", style="bold underline")
    if not isinstance(values, dict) or not values:
        text.append("—\n", style="dim")
        return
    width = min(24, max(len(str(k)) for k in values))
    for key, value in values.items():
        shown = number(value) if isinstance(value, int | float) else str(value)
        text.append(f"{str(key):<{width}} ", style="dim")
        text.append(shown + "\n")
