"""Fold resource samples into the run's peaks and means (`peaks` in the run document)."""

from __future__ import annotations

from typing import Any

from ctui.monitor.gpu import NA


class Peaks:
    """Running max/mean of CPU, RSS and GPU figures over a run's samples."""

    def __init__(self) -> None:
        self.n = 0
        self.cpu_sum = 0.0
        self.max_cpu = 0.0
        self.max_rss = 0
        self.gpu_n = 0
        self.gpu_util_sum = 0.0
        self.max_gpu_util: float | None = None
        self.max_gpu_mem: int | None = None

    def add(self, proc: dict[str, Any], gpu: dict[str, Any] | None = None) -> None:
        self.n += 1
        self.cpu_sum += proc.get("cpu", 0.0)
        self.max_cpu = max(self.max_cpu, proc.get("cpu", 0.0))
        self.max_rss = max(self.max_rss, proc.get("rss", 0))
        if not gpu or not gpu.get("available"):
            return
        utils = [g["util"] for g in gpu["gpus"] if g.get("util") not in (None, NA)]
        if utils:
            mean = sum(utils) / len(utils)
            self.gpu_n += 1
            self.gpu_util_sum += mean
            self.max_gpu_util = max(self.max_gpu_util or 0.0, max(utils))
        mems = [
            g.get("proc_mem") if isinstance(g.get("proc_mem"), int) else g.get("mem_used")
            for g in gpu["gpus"]
        ]
        mems_ok = [m for m in mems if isinstance(m, int)]
        if mems_ok:
            self.max_gpu_mem = max(self.max_gpu_mem or 0, max(mems_ok))

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "samples": self.n,
            "max_rss": self.max_rss,
            "max_cpu": round(self.max_cpu, 1),
            "mean_cpu": round(self.cpu_sum / self.n, 1) if self.n else 0.0,
        }
        if self.gpu_n:
            out["mean_gpu_util"] = round(self.gpu_util_sum / self.gpu_n, 1)
            out["max_gpu_util"] = self.max_gpu_util
        if self.max_gpu_mem is not None:
            out["max_gpu_mem"] = self.max_gpu_mem
        return out
