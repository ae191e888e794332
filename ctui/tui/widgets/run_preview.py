"""The runs screen's preview pane (lazygit style, on terminals ≥ 160 columns wide).

It shows the selected run: its handle and status, the one-line verdict against the run of
the same job before it (`ctui.diff.diff_runs`, the diff screen's own comparison), its params,
metrics and the last lines of its log (`ctui.logs.tail`). The verdict and the log are read
in a worker, so moving the cursor never waits on the disk; each result is kept per run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.widgets import Static

from ctui.errors import CtuiError
from ctui.format import number
from ctui.tui.data import Run, handle_parts, status_look

if TYPE_CHECKING:
    from ctui.project import Project

#: log lines shown under the metrics
LOG_LINES = 8
#: preview panes are shown on terminals at least this wide
MIN_WIDTH = 160


def previous_run(runs: list[Run], run: Run) -> Run | None:
    """The run of the same job created just before `run` (else any run before it)."""
    older = [r for r in runs if r["id"] < run["id"]]
    same_job = [r for r in older if r.get("job") == run.get("job")]
    before = same_job or older
    return before[-1] if before else None


def compare_line(project: Project, before: Run, run: Run) -> str:
    """`diff_runs`' one-line verdict of `run` against `before` (no git: the verdict only)."""
    from ctui.diff import diff_runs, run_view
    from ctui.objects import ObjectStore

    objects = ObjectStore(project.objects_dir)
    result = diff_runs(run_view(before, objects), run_view(run, objects), objects=objects)
    return str(result.get("verdict") or "")


def log_lines(project: Project, run: Run, n: int = LOG_LINES) -> list[str]:
    from ctui.logs import tail

    try:
        return tail(project.run_dir(run["id"]) / "output.log", n)
    except (CtuiError, OSError):
        return []


class RunPreview(Static):
    """`show(run, runs)`: what the selected run is, at a glance."""

    DEFAULT_CSS = """
    RunPreview {
        width: 56;
        height: 1fr;
        border-left: vkey $panel;
        padding: 0 1;
        background: $surface;
        overflow-y: auto;
    }
    """

    def __init__(self, project: Project, **kw: Any) -> None:
        super().__init__(**kw)
        self.project = project
        self.run: Run | None = None
        self._extras: dict[str, tuple[str, list[str]]] = {}

    def show(self, run: Run | None, runs: list[Run]) -> None:
        self.run = run
        self._draw()
        if run is not None and run["id"] not in self._extras:
            self._load(run, previous_run(runs, run))

    def forget(self) -> None:
        """The runs changed (a reload): verdicts and logs are read again."""
        self._extras.clear()

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
        if self.run is not None and self.run["id"] == run_id:
            self._draw()

    def _draw(self) -> None:
        run = self.run
        if run is None:
            self.update(Text("no run selected", style="dim"))
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
        self.update(text)


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
