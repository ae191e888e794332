"""CPU %, RSS and threads of a job's whole process tree, sampled cheaply.

The tree is walked (`children(recursive=True)`, ~5 ms) only every `rewalk` seconds; between
walks the cached `psutil.Process` objects are sampled. Keeping the same objects is what makes
`cpu_percent()` meaningful (it measures since that object's previous call).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil


class ProcessTreeSampler:
    """Samples the process trees under `root_pid` (or the roots `pids()` returns each walk)."""

    def __init__(
        self,
        root_pid: int | None = None,
        *,
        pids: Callable[[], Iterable[int]] | None = None,
        rewalk: float = 3.0,
    ):
        if root_pid is None and pids is None:
            raise ValueError("give root_pid or pids")
        self._roots_fn: Callable[[], Iterable[int]] = pids or (lambda: [root_pid])  # type: ignore[list-item]
        self.rewalk = rewalk
        self._procs: dict[int, psutil.Process] = {}
        self._walked = 0.0

    def _walk(self) -> None:
        found: dict[int, psutil.Process] = {}
        for pid in self._roots_fn():
            try:
                root = self._procs.get(pid) or psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in tree:
                # keep the object we already had: its cpu_percent baseline lives in it
                found[p.pid] = self._procs.get(p.pid, p)
        for pid, p in found.items():
            if pid not in self._procs:
                try:
                    p.cpu_percent(None)  # prime: the first call always returns 0.0
                except psutil.Error:
                    pass
        self._procs = found
        self._walked = time.monotonic()

    def pids(self) -> list[int]:
        """The PIDs of the tree as of the last walk."""
        return list(self._procs)

    def sample(self) -> dict[str, Any]:
        """`{"time", "cpu" (% of one core, summed), "rss" (bytes), "threads", "nprocs", "pids"}`."""
        if not self._procs or time.monotonic() - self._walked >= self.rewalk:
            self._walk()
        cpu = 0.0
        rss = 0
        threads = 0
        gone: list[int] = []
        for pid, p in self._procs.items():
            try:
                with p.oneshot():
                    if p.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped
                        gone.append(pid)
                        continue
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss
                    threads += p.num_threads()
            except psutil.Error:  # exited (or a zombie) since the walk
                gone.append(pid)
        for pid in gone:
            self._procs.pop(pid, None)
        return {
            "time": time.time(),
            "cpu": round(cpu, 1),
            "rss": rss,
            "threads": threads,
            "nprocs": len(self._procs),
            "pids": list(self._procs),
        }
