"""`ctui top`: one rich frame of the live numbers — each running run's last resource sample
(from its `resources.jsonl`, written by the supervisor) and the machine's GPUs (NVML, live)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from ctui.monitor.gpu import NA, GpuSampler

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ctui.project import Project


def last_sample(path: Any) -> dict[str, Any] | None:
    """The newest process sample of a run (the last line of resources.jsonl with `cpu`)."""
    from ctui.logs import tail

    for line in reversed(tail(path, 3)):
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if "cpu" in rec:
            return dict(rec)
    return None


def _gb(n: Any) -> str:
    if not isinstance(n, int | float):
        return NA
    return f"{n / 2**30:.1f}G" if n >= 2**30 else f"{n / 2**20:.0f}M"


def _pct(v: Any) -> str:
    return f"{v:.0f}%" if isinstance(v, int | float) else NA


class TopView:
    """Builds frames; keeps one GpuSampler (NVML init once) between frames."""

    def __init__(self, project: Project, run_ref: str | None = None):
        from ctui.store import open_store

        self.project = project
        self.store = open_store(project)
        self.run_id = self.store.resolve(run_ref) if run_ref else None
        self.gpu = GpuSampler(None)
        self._refreshed = 0.0

    def close(self) -> None:
        self.gpu.close()

    def runs(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        if now - self._refreshed > 5.0:
            from ctui.jobs.reconcile import refresh

            self._refreshed = now
            refresh(self.project, self.store)
        if self.run_id:
            return [self.store.get_run(self.run_id)]
        return [r for r in self.store.live_runs() if r.get("status") == "running"]

    def frame(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        from ctui import format as fmt

        now = time.time()
        runs = self.runs()
        table = Table(title="runs", title_justify="left", box=None, header_style="bold")
        for name in ("id", "job", "status", "elapsed", "cpu", "rss", "threads", "procs", "gpu mem"):
            table.add_column(
                name, no_wrap=True, justify="left" if name in ("id", "job") else "right"
            )
        for r in runs:
            s = last_sample(self.project.run_dir(r["id"]) / "resources.jsonl") or {}
            gpu_mem = [g.get("proc_mem") for g in s.get("gpus", [])]
            mem = sum(m for m in gpu_mem if isinstance(m, int)) if gpu_mem else None
            table.add_row(
                Text(r["id"]),
                Text(str(r.get("job"))),
                Text(str(r.get("status"))),
                fmt.duration(fmt.run_duration(r, now=now)),
                _pct(s.get("cpu")),
                _gb(s.get("rss")),
                str(s.get("threads", "")),
                str(s.get("nprocs", "")),
                _gb(mem) if mem is not None else "",
            )
        parts: list[RenderableType] = [table if runs else Text("no runs running", style="dim")]
        g = self.gpu.sample()
        if not g.get("available"):
            parts.append(Text(f"GPU: {g.get('reason')}", style="dim"))
        else:
            gt = Table(title="GPUs", title_justify="left", box=None, header_style="bold")
            for name in ("#", "name", "util", "memory", "temp", "power"):
                gt.add_column(name, no_wrap=True)
            for d in g["gpus"]:
                temp = d["temp"]
                power = d["power"]
                gt.add_row(
                    str(d["index"]),
                    Text(str(d["name"])),
                    _pct(d["util"]),
                    f"{_gb(d['mem_used'])} / {_gb(d['mem_total'])}",
                    f"{temp}°C" if temp != NA else NA,
                    f"{power} W" if power != NA else NA,
                )
            parts.append(gt)
        return Group(*parts)


#: keys that end `ctui top` (besides Ctrl-C)
QUIT_KEYS = frozenset({"q", "Q", "\x1b"})


class Keys:
    """Single key presses from a terminal on stdin (cbreak mode, no echo, restored on exit);
    with no terminal, `wait` only waits (a pipe or /dev/null never quits `ctui top`)."""

    def __init__(self, stream: Any = None):
        import sys

        self.stream = stream if stream is not None else sys.stdin
        self._saved: Any = None
        self._fd = -1

    def __enter__(self) -> Keys:
        import termios
        import tty

        try:
            if self.stream.isatty():
                self._fd = self.stream.fileno()
                self._saved = termios.tcgetattr(self._fd)
                tty.setcbreak(self._fd)
        except (OSError, ValueError, termios.error):
            self._saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def wait(self, timeout: float) -> str | None:
        """The key pressed within `timeout` seconds, or None."""
        if self._saved is None:
            time.sleep(timeout)
            return None
        import os
        import select

        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return None
        data = os.read(self._fd, 32)
        return data.decode(errors="replace")[:1] if data else None


def run_live(view: TopView, console: Any, interval: float) -> None:
    """Redraw `view` every `interval` seconds until `q` (or Esc, or Ctrl-C)."""
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    def frame() -> RenderableType:
        return Group(view.frame(), Text("q quits", style="dim"))

    with Keys() as keys, Live(frame(), console=console, auto_refresh=False) as live:
        while True:
            key = keys.wait(interval)
            if key in QUIT_KEYS:
                return
            live.update(frame(), refresh=True)
