"""`ctui stop`: ask a run's supervisor to stop its job, or stop the job's group directly."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError, ExitCode
from ctui.jobs.backends import get_backend
from ctui.jobs.backends.local import group_alive, stop_group
from ctui.jobs.spawn import supervisor_alive
from ctui.store import FINAL, Store, open_store

if TYPE_CHECKING:
    from ctui.project import Project


def stop_run(project: Project, run_id: str, grace: float = 10.0) -> dict[str, Any]:
    """Stop a run; returns its document (status `cancelled` once stopped).

    queued → cancelled at once. Local/Docker → the supervisor is asked (SIGTERM to it) to stop
    the job: SIGTERM to its process group (or the container), SIGKILL after `grace` seconds.
    If the supervisor is gone, the job's process group is signalled from here. Slurm → scancel.
    A `lost` run whose job outlived its supervisor (`orphan`) has that group stopped from
    here and ends `cancelled`. Any other run that already ended is returned unchanged.
    """
    store = open_store(project)
    run_id = store.resolve(run_id)
    run = store.get_run(run_id)
    now = time.time()
    # a queued Slurm run waits in Slurm's queue, not ours: it needs scancel like a running one
    if run["status"] == "queued" and run.get("backend") != "slurm":
        done = store.update_run(
            run_id,
            {"status": "cancelled", "ended": now, "error": "cancelled while queued"},
            when=lambda d: d["status"] == "queued",
        )
        if done is not None:
            from ctui.jobs.seal import drop_sealed

            drop_sealed(run_id)  # it never starts: the secret values kept for it go
            return done
        run = store.get_run(run_id)
    if run["status"] == "lost" and run.get("orphan"):
        return _stop_orphan(store, run, grace)
    if run["status"] in FINAL:
        return run

    be = get_backend(run.get("backend") or "local")
    if not be.supervised:
        be.stop(project, run, grace)
        return store.update_run(
            run_id,
            {"status": "cancelled", "ended": time.time(), "error": "stopped by user"},
            when=lambda d: d["status"] not in FINAL,
        ) or store.get_run(run_id)

    host = run.get("host")
    if host and host != socket.gethostname():
        raise CtuiError(
            f"run {run_id} runs on host {host}; its processes cannot be signalled from here",
            hint=f"run `ctui stop {run_id}` on {host}",
        )
    store.update_run(
        run_id,
        {"stop_requested": {"time": now, "grace": grace}},
        when=lambda d: d["status"] == "running",
    )
    alive = supervisor_alive(run)
    if alive:
        try:
            os.kill(run["supervisor_pid"], signal.SIGTERM)
        except ProcessLookupError:
            alive = False
    deadline = time.monotonic() + grace + 10.0
    while alive and time.monotonic() < deadline:
        cur = store.get_run(run_id)
        if cur["status"] in FINAL:
            return cur
        # a supervisor still starting (no pid yet) is None here: it reads stop_requested
        if supervisor_alive(cur) is False:
            break
        time.sleep(0.05)
    # no supervisor (or it does not answer): stop the job group from here
    cur = store.get_run(run_id)
    if cur["status"] in FINAL:
        return cur
    if cur.get("backend", "local") != "local":
        try:
            be.stop(project, cur, grace)  # e.g. stop the container directly
        except NotImplementedError:
            pass
    if cur.get("pgid"):
        stop_group(cur["pgid"], grace)
    return store.update_run(
        run_id,
        {"status": "cancelled", "ended": time.time(), "error": "stopped; its supervisor was gone"},
        when=lambda d: d["status"] == "running",
    ) or store.get_run(run_id)


def _stop_orphan(store: Store, run: dict[str, Any], grace: float) -> dict[str, Any]:
    """A lost run's job still running without its supervisor: stop its group from here."""
    run_id = run["id"]
    orphan = run["orphan"]
    host = run.get("host")
    if host and host != socket.gethostname():
        raise CtuiError(
            f"run {run_id} ran on host {host}; its job cannot be stopped from here",
            hint=f"run `ctui stop {run_id}` on {host}",
        )
    pgid = int(orphan.get("pgid") or 0)
    # only a group that is still the job's (not an id reused since) is signalled
    if pgid and group_alive(pgid, since=orphan.get("since")) and not stop_group(pgid, grace):
        raise CtuiError(
            f"run {run_id}: its job (process group {pgid}) survived SIGKILL",
            hint="it may be stuck in the kernel (uninterruptible I/O); try again later",
            code=ExitCode.FAILED,
        )
    return store.update_run(
        run_id,
        {
            "status": "cancelled",
            "orphan": None,
            "error": "stopped by user; its supervisor had vanished, its job was stopped from here",
        },
        when=lambda d: d["status"] == "lost" and bool(d.get("orphan")),
    ) or store.get_run(run_id)
