"""Local backend: the job is a child of the supervisor, in its own process group, and never
outlives the supervisor.

The child's stdout and stderr are two pipes that the supervisor relays into the log
(`ctui.jobs.output`: the bytes unchanged, their arrival times and streams in `output.idx`, the
metrics read from them on the way). Wide pipe buffers and 64 KiB reads keep a job printing as
fast as it can from being slowed down by ctui.

**A job dies with its supervisor.** Only the supervisor can record a job's exit code, its
metrics and its end: a job left running without it is unsupervised (nobody can collect its
exit status — only a parent can wait for a process), it would hold a GPU beside the next
queued run and break `max_concurrent`. So rather than adopt an orphan, ctui stops it, by two
guards that do not depend on each other:

1. *The kernel*: the job's direct child is started with `PR_SET_PDEATHSIG = SIGTERM` (prctl,
   set between fork and exec, checked against a parent that died before it took), so when the
   supervisor dies — even by SIGKILL — the job's leader is told at once. It reaches only that
   one process, and only while the thread that started it lives (the supervisor's main thread).
2. *The watchdog* (`python -m ctui.jobs.backends.local`): a tiny process in a session of its
   own, started beside the job, blocked reading a pipe whose only writer is the supervisor.
   A supervisor that ends normally writes `done` first (`disarm`, once the run's end is
   recorded); one that dies any other way closes the pipe unsaid, and the watchdog stops the
   job's *whole process group* (SIGTERM, SIGKILL after `ORPHAN_GRACE` s), marks the run `lost`
   with the reason (so it is never left `running` even with nobody polling), drops the
   supervisor's disk reserve and starts the next queued run into the freed slot.

A Docker job's container is run by the engine, not the supervisor's process tree: the same
watchdog (`--container ID`) stops and removes it (`Guarded`, used by both executions).

Should both guards be gone too (both SIGKILLed), a reader's `refresh` marks the run `lost`
and, while its group still has a live member, sets `orphan` on it: such a run keeps its
`max_concurrent` slot (`ctui.jobs.queue`) and `ctui stop` kills its group.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.jobs.backends.base import Backend, Execution, LaunchSpec, StartError

if TYPE_CHECKING:
    from ctui.jobs.output import Relay
    from ctui.project import Project

#: seconds between SIGTERM and SIGKILL when the watchdog stops an orphaned job
ORPHAN_GRACE = 10.0
_PR_SET_PDEATHSIG = 1


class Guarded:
    """An execution with a watchdog (`guard`, then `disarm` once the end is recorded): what
    it stops should the supervisor die unsaid is `watched()` — `--pgid G` (a local job's
    group) or `--container ID` (a Docker job's container)."""

    _guard_fd: int | None = None

    def watched(self) -> list[str]:
        raise NotImplementedError

    def guard(self, project: Project, run_id: str) -> None:
        """Start the watchdog that stops the job's group if this process dies unsaid."""
        from ctui.jobs.spawn import SUPERVISOR_LOG, project_args, supervisor_env

        read, write = os.pipe()  # not inheritable: no other child of ours holds the writer
        try:
            with open(project.run_dir(run_id) / SUPERVISOR_LOG, "ab") as err:
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "ctui.jobs.backends.local",
                        *project_args(project),
                        *self.watched(),
                        "--supervisor",
                        str(os.getpid()),
                        run_id,
                    ],
                    cwd=str(project.root),
                    env=supervisor_env(),
                    stdin=read,
                    stdout=err,
                    stderr=err,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError:
            os.close(write)
            raise
        finally:
            os.close(read)
        self._guard_fd = write

    def disarm(self) -> None:
        """The supervisor ends normally: its watchdog leaves the job's group alone."""
        fd, self._guard_fd = self._guard_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(fd, b"done\n")
        with contextlib.suppress(OSError):
            os.close(fd)


class LocalExecution(Guarded, Execution):
    def __init__(self, proc: subprocess.Popen[bytes], relay: Relay | None = None):
        self.proc = proc
        self.pgid = proc.pid  # start_new_session=True: the child leads its own group
        self.relay = relay
        self.drained: bool | None = None  # whether the relay saw the pipes close

    def watched(self) -> list[str]:
        return ["--pgid", str(self.pgid)]

    def info(self) -> dict[str, Any]:
        return {"pid": self.proc.pid, "pgid": self.pgid}

    def host_pids(self) -> list[int]:
        return [self.proc.pid]

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def drain_output(self) -> bool:
        """The job has exited: the rest of its output into the log (once). False when a
        process it started kept the pipes open and the relay stopped without the end."""
        if self.drained is None:
            self.drained = self.relay.drain() if self.relay is not None else True
        return self.drained

    def close(self) -> None:
        self.drain_output()

    def stop(self, grace: float) -> None:
        _signal_group(self.pgid, signal.SIGTERM)
        if self.wait(grace) is None:
            _signal_group(self.pgid, signal.SIGKILL)
        else:
            # the leader exited; stragglers in its group still get the kill
            _signal_group(self.pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int | None, *, since: float | None = None) -> bool:
    """Whether process group `pgid` still has a live member on this host.

    Zombies do not count: a killed job nobody has reaped yet (its parent, the supervisor, is
    gone, and a container's init may never reap) is over. A group we may not signal is not our
    job's any more (its id was reused by another user's process). With `since`, only members
    that already existed then count: a group id reused later is not the job's.
    """
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        names = os.listdir("/proc")
    except OSError:
        return True  # no /proc to look closer: kill(0) said it exists
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp …: comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 3 or fields[2] != str(pgid).encode() or fields[0] in (b"Z", b"X"):
            continue
        if since is None or _started_by(int(name), since):
            return True
    return False


def _started_by(pid: int, when: float) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).create_time() <= when + 1.0)
    except psutil.Error:
        return False


def stop_group(pgid: int, grace: float, *, poll: float = 0.05) -> bool:
    """SIGTERM to the group, SIGKILL after `grace` s; True once no live member is left."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(poll)
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while group_alive(pgid):
        if time.monotonic() > deadline:
            return False  # unkillable for now (uninterruptible sleep)
        time.sleep(poll)
    return True


def _bind_to_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the kernel SIGTERM the child when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before the prctl took
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _why_not_started(exc: OSError, argv0: str) -> str:
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return f"command not found: {argv0!r} (not on PATH and not a file)"
    if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
        return f"command not executable: {argv0!r} (permission denied)"
    if exc.errno == errno.ENOEXEC:
        return f"command {argv0!r} is not an executable program (exec format error)"
    return f"could not start {argv0!r}: {exc.strerror or exc}"


class LocalBackend(Backend):
    name = "local"
    supervised = True

    def start(self, spec: LaunchSpec) -> Execution:
        if not spec.argv:
            raise StartError("the job's command is empty")
        from ctui.jobs.output import Relay, writer_for

        env = dict(os.environ)
        env.update(spec.env)
        writer = writer_for(spec.log_path)
        try:
            proc = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
                preexec_fn=_bind_to_parent(),  # noqa: PLW1509 - one prctl, no Python state
            )
        except NotADirectoryError:
            raise StartError(f"working directory {spec.cwd!r} is not a folder") from None
        except OSError as exc:
            if not os.path.isdir(spec.cwd):
                raise StartError(f"working directory {spec.cwd!r} does not exist") from None
            raise StartError(
                _why_not_started(exc, spec.argv[0]),
                hint="check the job's `command` in ctui.toml",
            ) from None
        pipes = []
        for pipe, stream in ((proc.stdout, "o"), (proc.stderr, "e")):
            assert pipe is not None
            pipes.append((os.dup(pipe.fileno()), stream))  # the relay's own, closed by it
            pipe.close()
        proc.stdout = proc.stderr = None
        return LocalExecution(proc, Relay(writer, pipes))


BACKEND = LocalBackend()


# -- the watchdog ------------------------------------------------------------------------------


def _settle(project: Project, run_id: str, supervisor: int, pgid: int, was_alive: bool) -> None:
    """Stop the orphaned group, then record the run `lost` with what happened to its job."""
    gone = stop_group(pgid, ORPHAN_GRACE) if was_alive else True
    base = f"the supervisor (pid {supervisor}) vanished"
    if not was_alive:
        error = f"{base} after its job ended; the job's exit was not recorded"
    elif gone:
        error = f"{base}; its job (process group {pgid}) was stopped"
    else:
        error = f"{base}; its job (process group {pgid}) would not stop: `ctui stop {run_id}`"
    orphan = None if gone else {"pgid": pgid, "since": time.time()}
    _record_lost(project, run_id, supervisor, error, orphan)


def _settle_container(project: Project, run_id: str, supervisor: int, container: str) -> None:
    """A Docker job's supervisor died: stop and remove its container, record the run lost."""
    from ctui.jobs.backends.docker import stop_container

    base = f"the supervisor (pid {supervisor}) vanished"
    try:
        run = {"id": run_id, "docker": {"container_id": container}}
        stop_container(run, ORPHAN_GRACE, remove=True)
        error = f"{base}; its container {container[:12]} was stopped"
    except Exception as exc:
        error = (
            f"{base}; its container {container[:12]} could not be stopped ({exc}): "
            f"`docker stop {container[:12]}`"
        )
    _record_lost(project, run_id, supervisor, error, None)


def _record_lost(
    project: Project, run_id: str, supervisor: int, error: str, orphan: dict[str, Any] | None
) -> None:
    """The run `lost` with what happened to its job and what the job left; then the next
    queued run into the freed slot (unless the job lives on as an orphan)."""
    from ctui.jobs.finish import RESERVE_FILE, last_metrics
    from ctui.logs import log_tail
    from ctui.store import Store

    gone = orphan is None
    store = Store(project.store_file)
    now = time.time()

    def ours(doc: dict[str, Any]) -> bool:
        if doc.get("supervisor_pid") != supervisor:
            return False
        return doc["status"] == "running" or (doc["status"] == "lost" and bool(doc.get("orphan")))

    run_dir = project.run_dir(run_id)
    try:  # what the job left: its metrics so far, the end of its log (its exit code is gone)
        results: dict[str, Any] = {
            "metrics": last_metrics(run_dir / "metrics.jsonl"),
            "log_tail": log_tail(run_dir / "output.log"),
        }
        if not results["metrics"]:  # none of its own: those read from its output so far
            from ctui.output_metrics import finish_fields

            results.update(finish_fields(run_dir, {}))
    except Exception:
        results = {}

    def mutate(doc: dict[str, Any]) -> None:
        if doc["status"] == "running":
            doc.update(status="lost", ended=now)
            if isinstance(doc.get("started"), int | float):
                doc["duration"] = round(now - doc["started"], 3)
        metrics = {**(doc.get("metrics") or {}), **results.get("metrics", {})}
        doc.update(results, metrics=metrics, error=error)
        doc["orphan"] = orphan

    for attempt in range(5):  # a full disk may free up
        try:
            store.update_run(run_id, None, when=ours, mutate=mutate)
            break
        except Exception:
            with contextlib.suppress(Exception):  # supervisor.log may be on that full disk
                traceback.print_exc()
            time.sleep(1.0 + attempt)
    with contextlib.suppress(OSError):
        (run_dir / RESERVE_FILE).unlink()
    if gone:  # the slot is free: its queued run need not wait for a reader
        from ctui.jobs.queue import start_queued

        try:
            start_queued(project, store)
        except Exception:
            with contextlib.suppress(Exception):
                traceback.print_exc()


def main(argv: list[str] | None = None) -> int:
    """`python -m ctui.jobs.backends.local STATE_DIR --pgid G --supervisor PID RUN_ID`: the
    watchdog of one job; the pipe from its supervisor on stdin."""
    parser = argparse.ArgumentParser(prog="python -m ctui.jobs.backends.local")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--pgid", type=int, default=None)
    parser.add_argument("--container", default=None)
    parser.add_argument("--supervisor", type=int, required=True)
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    for sig in (signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    said = b""
    while chunk := os.read(0, 64):  # until the supervisor's end closes the pipe
        said += chunk
    if b"done" in said:
        return 0
    from ctui.jobs.spawn import project_from_args, restore_pythonpath

    restore_pythonpath()  # a queued run it starts gets the supervisor's environment, as from it
    project = project_from_args(args.state_dir, args.root, args.store)
    if args.container:
        _settle_container(project, args.run_id, args.supervisor, args.container)
    elif args.pgid:
        _settle(project, args.run_id, args.supervisor, args.pgid, group_alive(args.pgid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
