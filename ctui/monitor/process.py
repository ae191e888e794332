"""CPU %, RSS and threads of a job's whole process tree, sampled cheaply.

The tree is walked (`children(recursive=True)`, ~2 ms: psutil reads every process's parent)
only every `rewalk` seconds; between walks only the processes found are sampled. On Linux a
sample of one process is one `pread` of its `/proc/<pid>/stat` from the walk on
(state, CPU ticks and threads) and one of its `/proc/<pid>/statm` (the RSS psutil reports:
stat's own RSS field is the kernel's approximate count), both held open from the walk on (a
descriptor of a process that has exited reads ESRCH, so a reused pid is never mistaken for
it). Elsewhere the cached
`psutil.Process` objects are sampled (`oneshot`, `cpu_percent` since that object's previous
call). Either way CPU % is the process's CPU time since the previous sample over the wall time
between them, summed over the tree (% of one core).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

_LINUX = psutil.LINUX and os.path.isdir("/proc/self")
_TICKS = os.sysconf("SC_CLK_TCK") if _LINUX else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if _LINUX else 4096


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
        # Linux: pid → its /proc/<pid>/stat and statm held open, and (CPU ticks, time) then
        self._fds: dict[int, tuple[int, int]] = {}
        self._prev: dict[int, tuple[int, float]] = {}

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
        for pid in [pid for pid in self._fds if pid not in found]:
            self._forget(pid)
        for pid, p in found.items():
            if pid not in self._procs:
                self._prime(pid, p)
        self._procs = found
        self._walked = time.monotonic()

    def _prime(self, pid: int, p: psutil.Process) -> None:
        """The first reading of a new process: the baseline its next CPU % is measured from."""
        if _LINUX:
            fds: list[int] = []
            try:
                for name in ("stat", "statm"):
                    fds.append(os.open(f"/proc/{pid}/{name}", os.O_RDONLY | os.O_CLOEXEC))
                if p.is_running():  # the pid is still the process the walk found
                    self._fds[pid] = (fds[0], fds[1])
                    self._read(pid, time.monotonic())
                    return
            except OSError:
                pass
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        try:
            p.cpu_percent(None)  # prime: the first call always returns 0.0
        except psutil.Error:
            pass

    def _forget(self, pid: int) -> None:
        fds = self._fds.pop(pid, ())
        self._prev.pop(pid, None)
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _read(self, pid: int, now: float) -> tuple[bool, float, int, int] | None:
        """(zombie, CPU % since the previous reading, RSS bytes, threads) from the held-open
        stat and statm files; None when they cannot be read (the process has gone)."""
        stat_fd, statm_fd = self._fds[pid]
        try:
            data = os.pread(stat_fd, 1024, 0)
            f = data[data.rindex(b")") + 2 :].split()
            ticks = int(f[11]) + int(f[12])  # utime + stime
            threads = int(f[17])
            rss = int(os.pread(statm_fd, 256, 0).split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return None
        prev = self._prev.get(pid)
        self._prev[pid] = (ticks, now)
        cpu = 0.0
        if prev is not None and now > prev[1]:
            cpu = (ticks - prev[0]) / _TICKS / (now - prev[1]) * 100.0
        return f[0] in (b"Z", b"X"), cpu, rss, threads

    def pids(self) -> list[int]:
        """The PIDs of the tree as of the last walk."""
        return list(self._procs)

    def close(self) -> None:
        """Close the stat files held open (the sampler can still be used: they reopen)."""
        for pid in list(self._fds):
            self._forget(pid)
        self._procs = {}

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def sample(self) -> dict[str, Any]:
        """`{"time", "cpu" (% of one core, summed), "rss" (bytes), "threads", "nprocs", "pids"}`."""
        if not self._procs or time.monotonic() - self._walked >= self.rewalk:
            self._walk()
        cpu = 0.0
        rss = 0
        threads = 0
        gone: list[int] = []
        now = time.monotonic()
        for pid, p in self._procs.items():
            if pid in self._fds:
                stat = self._read(pid, now)
                if stat is None or stat[0]:  # exited, or a zombie not yet reaped
                    gone.append(pid)
                    continue
                cpu += stat[1]
                rss += stat[2]
                threads += stat[3]
                continue
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
            self._forget(pid)
        return {
            "time": time.time(),
            "cpu": round(cpu, 1),
            "rss": rss,
            "threads": threads,
            "nprocs": len(self._procs),
            "pids": list(self._procs),
        }
