"""The resources pane of the live view: CPU and RAM of the job's process tree, and per GPU
utilisation and memory bars with a history sparkline — from the run's `resources.jsonl`.

Records are what the supervisor writes (`ctui.jobs.supervisor`): `{"time", "cpu", "rss",
"threads", "nprocs", "gpus": [{"index", "name", "util", "mem_used", "mem_total", "temp",
"power", "proc_mem"}]}`, or once `{"time", "gpu": {"available": false, "reason"}}`. A field
NVML could not read is "n/a" and shows as such; the rest of the GPU still shows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

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
        text-wrap: nowrap;
        text-overflow: ellipsis;
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
        #: the run is over: the figures are its last sample, not the present
        self.ended = False

    def end(self) -> None:
        """The run ended: say the figures are its last sample (not a stale "now")."""
        if not self.ended:
            self.ended = True
            self.update(self.render_pane())

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

    def render_pane(self) -> Text:
        width = max(30, (self.size.width or 44) - 2)
        label_w = 6
        bar_w = max(6, min(24, width - label_w - 16))
        spark_w = max(8, width - label_w)
        if self.last is None:
            note = Text("waiting for the first sample…", style="dim")
            if self.no_gpu:
                note.append(f"\nGPU: {self.no_gpu}", style="dim")
            return note
        out = Text(no_wrap=True, overflow="ellipsis")
        if self.ended:
            when = _num(self.last.get("time"))
            at = time.strftime(" at %H:%M:%S", time.localtime(when)) if when else ""
            out.append(f"run ended: its last sample{at}\n", style="dim italic")

        def row(label: str, fraction: float | None, value: str, bold: bool = True) -> None:
            out.append(label.ljust(label_w), style="bold" if bold else "")
            out.append_text(bar(fraction, bar_w))
            out.append(f" {value}\n")

        def history(values: Any, lo: float | None = 0, hi: float | None = None) -> None:
            out.append(" " * label_w)
            out.append(spark(values, spark_w, lo, hi), style="cyan")
            out.append("\n")

        last = self.last
        cpu = _num(last.get("cpu"))
        cpu_frac = None if cpu is None else cpu / 100 / max(1, _cores())
        row("CPU", cpu_frac, _pct(cpu))
        history(self.cpu)
        rss = _num(last.get("rss"))
        row("RAM", None if rss is None else rss / max(1, _total_ram()), bytes_(rss))
        history(self.rss)
        out.append(" " * label_w)
        procs = f"{last.get('nprocs', 'n/a')} procs · {last.get('threads', 'n/a')} threads\n"
        out.append(procs, style="dim")
        for index in sorted(self.gpus):
            g = self.gpus[index]
            out.append(f"GPU{index} ", style="bold")
            out.append(f"{g.get('name', '')}\n")
            temp, power, mine = _num(g.get("temp")), _num(g.get("power")), _num(g.get("proc_mem"))
            extra = [
                f"{temp:.0f}°C" if temp is not None else "",
                f"{power:.0f} W" if power is not None else "",
                f"job {bytes_(mine)}" if mine is not None else "",
            ]
            shown = " · ".join(e for e in extra if e)
            if shown:
                out.append(" " * label_w + shown + "\n", style="dim")
            util = _num(g.get("util"))
            row(" util", None if util is None else util / 100, _pct(util), bold=False)
            used, total = _num(g.get("mem_used")), _num(g.get("mem_total"))
            frac = used / total if used is not None and total else None
            mem = f"{bytes_(used)}/{bytes_(total)}" if frac is not None else "n/a"
            row(" mem", frac, mem, bold=False)
            history(self.gpu_util.get(index) or [], 0, 100)
        if not self.gpus and self.no_gpu:
            out.append(f"GPU: {self.no_gpu}\n", style="dim")
        out.rstrip()
        return out

    def on_resize(self) -> None:
        if self.last is not None or self.no_gpu:
            self.update(self.render_pane())


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}%"


def _cores() -> int:
    import os

    return os.cpu_count() or 1


_RAM: list[int] = []


def _total_ram() -> int:
    if not _RAM:
        import psutil

        _RAM.append(int(psutil.virtual_memory().total))
    return _RAM[0]
