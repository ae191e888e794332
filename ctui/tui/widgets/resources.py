"""The resources pane of the live view: CPU and RAM of the job's process tree, and per GPU
utilisation and memory bars with a history sparkline — from the run's `resources.jsonl`.

Records are what the supervisor writes (`ctui.jobs.supervisor`): `{"time", "cpu", "rss",
"threads", "nprocs", "gpus": [{"index", "name", "util", "mem_used", "mem_total", "temp",
"power", "proc_mem"}]}`, or once `{"time", "gpu": {"available": false, "reason"}}`. A field
NVML could not read is "n/a" and shows as such; the rest of the GPU still shows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ctui.format import bytes_
from ctui.tui.widgets.sparkline_text import bar, spark

HISTORY = 120


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


class ResourcesPane(Static):
    DEFAULT_CSS = """
    ResourcesPane {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.cpu: deque[float] = deque(maxlen=HISTORY)
        self.rss: deque[float] = deque(maxlen=HISTORY)
        self.gpu_util: dict[int, deque[float]] = {}
        self.last: dict[str, Any] | None = None
        self.gpus: dict[int, dict[str, Any]] = {}
        self.no_gpu: str | None = None
        self.samples = 0

    def add_samples(self, records: Iterable[dict[str, Any]]) -> None:
        """Fold in new records (oldest first) and repaint once."""
        changed = False
        for rec in records:
            changed = True
            gpu_note = rec.get("gpu")
            if isinstance(gpu_note, dict) and not gpu_note.get("available", True):
                self.no_gpu = str(gpu_note.get("reason") or "no NVIDIA GPU")
            if "cpu" not in rec:
                continue
            self.samples += 1
            self.last = rec
            cpu, rss = _num(rec.get("cpu")), _num(rec.get("rss"))
            if cpu is not None:
                self.cpu.append(cpu)
            if rss is not None:
                self.rss.append(rss)
            for g in rec.get("gpus") or []:
                index = g.get("index")
                if not isinstance(index, int):
                    continue
                self.gpus[index] = g
                util = _num(g.get("util"))
                if util is not None:
                    self.gpu_util.setdefault(index, deque(maxlen=HISTORY)).append(util)
        if changed:
            self.update(self.render_pane())

    def render_pane(self) -> Group | Text:
        width = max(30, (self.size.width or 40) - 2)
        spark_w = max(8, width - 30)
        bar_w = max(6, min(20, width - 24))
        if self.last is None:
            note = Text("waiting for the first sample…", style="dim")
            if self.no_gpu:
                note.append(f"\nGPU: {self.no_gpu}", style="dim")
            return note
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, justify="right")
        last = self.last
        cpu = _num(last.get("cpu"))
        grid.add_row(
            Text("CPU", style="bold"),
            bar(None if cpu is None else cpu / 100 / max(1, _cores()), bar_w),
            Text("n/a" if cpu is None else f"{cpu:.0f}%"),
        )
        grid.add_row(Text(""), Text(spark(self.cpu, spark_w, lo=0), style="cyan"), Text(""))
        rss = _num(last.get("rss"))
        grid.add_row(
            Text("RAM", style="bold"),
            bar(None if rss is None else rss / max(1, _total_ram()), bar_w),
            Text(bytes_(rss)),
        )
        grid.add_row(Text(""), Text(spark(self.rss, spark_w, lo=0), style="cyan"), Text(""))
        grid.add_row(
            Text("procs", style="dim"),
            Text(f"{last.get('nprocs', 'n/a')} procs · {last.get('threads', 'n/a')} threads"),
            Text(""),
        )
        parts: list[Any] = [grid]
        if self.gpus:
            parts.append(self._gpu_grid(bar_w, spark_w))
        elif self.no_gpu:
            parts.append(Text(f"GPU: {self.no_gpu}", style="dim"))
        return Group(*parts)

    def _gpu_grid(self, bar_w: int, spark_w: int) -> Table:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, justify="right")
        for index in sorted(self.gpus):
            g = self.gpus[index]
            name = Text(f"GPU{index} {g.get('name', '')}", style="bold")
            extra = " · ".join(
                s
                for s in (
                    f"{g['temp']}°C" if _num(g.get("temp")) is not None else "",
                    f"{_num(g.get('power')):.0f} W" if _num(g.get("power")) is not None else "",
                    f"job {bytes_(_num(g.get('proc_mem')))}"
                    if _num(g.get("proc_mem")) is not None
                    else "",
                )
                if s
            )
            grid.add_row(name, Text(extra, style="dim"), Text(""))
            util = _num(g.get("util"))
            grid.add_row(
                Text(" util"),
                bar(None if util is None else util / 100, bar_w),
                Text("n/a" if util is None else f"{util:.0f}%"),
            )
            used, total = _num(g.get("mem_used")), _num(g.get("mem_total"))
            frac = used / total if used is not None and total else None
            grid.add_row(
                Text(" mem"),
                bar(frac, bar_w),
                Text(f"{bytes_(used)}/{bytes_(total)}" if frac is not None else "n/a"),
            )
            history = self.gpu_util.get(index) or []
            grid.add_row(Text(""), Text(spark(history, spark_w, 0, 100), style="cyan"), Text(""))
        return grid

    def on_resize(self) -> None:
        if self.last is not None or self.no_gpu:
            self.update(self.render_pane())


def _cores() -> int:
    import os

    return os.cpu_count() or 1


_RAM: list[int] = []


def _total_ram() -> int:
    if not _RAM:
        import psutil

        _RAM.append(int(psutil.virtual_memory().total))
    return _RAM[0]
