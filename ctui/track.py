"""The job-side metrics client: `from ctui import track`.

    track.log_params(lr=0.01, epochs=3)        # or track.log_params({"lr": 0.01})
    track.log_metric("loss", 0.42, step=1)
    track.log_metrics({"acc": 0.9, "f1": 0.8}, step=1)
    track.log_artifact("model.pt")

Appends JSON lines to the run folder named by `CTUI_RUN_DIR` (set by ctui for every run):
`metrics.jsonl` (`{"name", "value", "step", "time"}`), `params.jsonl` (`{"name", "value",
"time"}`), `artifacts.jsonl` (`{"path", "size", "time"}`). Outside a ctui run every call is a
no-op and the first one warns once. Standard library only, so it imports instantly and works in
any environment the job runs in (a container, a Slurm node).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["log_params", "log_metric", "log_metrics", "log_artifact", "run_dir", "active"]

_warned = False


def run_dir() -> str | None:
    """The run folder of the current ctui run, or None outside ctui."""
    return os.environ.get("CTUI_RUN_DIR") or None


def active() -> bool:
    return run_dir() is not None


def _target(name: str) -> str | None:
    global _warned
    folder = run_dir()
    if folder is None:
        if not _warned:
            _warned = True
            warnings.warn(
                "ctui.track: not running under ctui (CTUI_RUN_DIR is not set); "
                "params, metrics and artifacts are not recorded",
                RuntimeWarning,
                stacklevel=3,
            )
        return None
    return os.path.join(folder, name)


def _append(name: str, records: list[dict[str, Any]]) -> None:
    path = _target(name)
    if path is None or not records:
        return
    data = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records)
    # one O_APPEND write: lines from several processes never interleave
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data.encode("utf-8"))
    finally:
        os.close(fd)


def _number(name: str, value: Any) -> float | int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value if not (isinstance(value, float) and not math.isfinite(value)) else None
    try:  # numpy / torch scalars
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r}: {value!r} is not a number") from None


def log_params(params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
    """Record params the job used (beyond the ones ctui passed it)."""
    merged = {**(params or {}), **kwargs}
    now = time.time()
    _append("params.jsonl", [{"name": str(k), "value": v, "time": now} for k, v in merged.items()])


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Record one value of a metric; the last value becomes the run's final metric."""
    log_metrics({name: value}, step=step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Record several metrics at once (one write)."""
    now = time.time()
    records = [
        {"name": str(k), "value": _number(str(k), v), "step": step, "time": now}
        for k, v in metrics.items()
    ]
    _append("metrics.jsonl", records)


def log_artifact(path: str | os.PathLike[str]) -> None:
    """Record a file or folder the job produced (the path, not a copy)."""
    full = os.path.abspath(os.fspath(path))
    try:
        size: int | None = os.path.getsize(full)
    except OSError:
        size = None
    _append("artifacts.jsonl", [{"path": full, "size": size, "time": time.time()}])
