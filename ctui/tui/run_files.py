"""What the TUI reads from a run's folder: JSONL files (resources, metric points) from their
end, resource series, and the DVC plots recorded for the run. No textual here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: at most this much of the end of a JSONL file is read for a chart
JSONL_TAIL_BYTES = 8 * 1024 * 1024


def read_jsonl(path: Path, max_bytes: int = JSONL_TAIL_BYTES) -> list[dict[str, Any]]:
    """Records of a JSONL file (its last `max_bytes`); broken or partial lines are skipped."""

    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            start = max(0, size - max_bytes)
            fh.seek(start)
            raw = fh.read()
    except OSError:
        return []
    lines = raw.split(b"\n")
    if start:
        lines = lines[1:]  # the first line was cut by the seek
    return parse_jsonl(lines)


def parse_jsonl(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    """JSON-object lines; blank, torn or hand-edited lines are skipped, never fatal."""
    import orjson

    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def resource_series(path: Path) -> dict[str, list[float]]:
    """`resources.jsonl` → `cpu %`, `rss MiB`, `gpuN util %`, `gpuN mem MiB` series."""
    series: dict[str, list[float]] = {}

    def add(key: str, value: Any, scale: float = 1.0) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            series.setdefault(key, []).append(value * scale)

    for rec in read_jsonl(path):
        add("cpu %", rec.get("cpu"))
        add("rss MiB", rec.get("rss"), 1 / 2**20)
        for gpu in rec.get("gpus") or ():
            if isinstance(gpu, dict):
                n = gpu.get("index", "?")
                add(f"gpu{n} util %", gpu.get("util"))
                add(f"gpu{n} mem MiB", gpu.get("mem_used"), 1 / 2**20)
    return series


#: samples of a plot's y over evenly spaced x, the chart thins them to its width
PLOT_GRID = 240


@dataclass(frozen=True)
class PlotLine:
    """One recorded plot curve made chartable: `values` is y at `len(values)` evenly spaced
    x from `x_lo` to `x_hi` (linear between the recorded points, which are sorted by x)."""

    name: str
    file: str
    x: str
    y: str
    values: tuple[float, ...]
    x_lo: float
    x_hi: float
    points: int


def plot_lines(run_dir: Path, grid: int = PLOT_GRID) -> list[PlotLine]:
    """The run's recorded plots (`plots.json`, written from the DVC plots when it ended)."""
    from ctui.integrations.dvc_plots import load_plots

    lines = []
    for curve in load_plots(run_dir):
        pts = sorted(
            (float(p[0]), float(p[1]))
            for p in curve.get("points") or ()
            if isinstance(p, list | tuple)
            and len(p) == 2
            and all(isinstance(v, int | float) and v == v for v in p)  # no NaN
        )
        if not pts:
            continue
        lines.append(
            PlotLine(
                name=str(curve.get("name") or curve.get("file") or "plot"),
                file=str(curve.get("file") or ""),
                x=str(curve.get("x") or "x"),
                y=str(curve.get("y") or "y"),
                values=tuple(on_grid(pts, grid)),
                x_lo=pts[0][0],
                x_hi=pts[-1][0],
                points=len(pts),
            )
        )
    return lines


def on_grid(points: list[tuple[float, float]], n: int) -> list[float]:
    """y at `n` evenly spaced x over sorted (x, y) points, linear in between."""
    import bisect

    lo, hi = points[0][0], points[-1][0]
    if hi == lo or n < 2:
        return [y for _x, y in points]
    xs = [x for x, _y in points]
    out = []
    for i in range(n):
        x = lo + (hi - lo) * i / (n - 1)
        j = min(max(1, bisect.bisect_left(xs, x)), len(points) - 1)
        (x0, y0), (x1, y1) = points[j - 1], points[j]
        out.append(y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    return out
