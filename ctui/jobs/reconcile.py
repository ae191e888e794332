"""Keep run states true: `lost` supervisors, queued runs whose slot freed, Slurm states.

`refresh` is cheap enough for every `ctui runs`/`ctui ps`/TUI poll: with no active run it
reads the store once and does nothing else.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctui.jobs.backends import EXTERNAL, get_backend
from ctui.store import ACTIVE, FINAL, Store, open_store

if TYPE_CHECKING:
    from ctui.project import Project

#: a `running` run whose supervisor has not recorded itself after this long is lost
START_GRACE = 60.0


def _lost_reason(run: dict[str, Any], now: float) -> str | None:
    from ctui.jobs.launch import supervisor_alive

    alive = supervisor_alive(run)
    if alive is False:
        pgid = run.get("pgid")
        tail = f"; its job (process group {pgid}) may still be running" if pgid else ""
        return f"the supervisor (pid {run.get('supervisor_pid')}) vanished{tail}"
    if alive is None and not run.get("supervisor_pid"):
        since = run.get("dequeued") or run.get("created") or now
        if now - since > START_GRACE:
            return "the supervisor never started"
    return None


def refresh(project: Project, store: Store | None = None) -> list[str]:
    """Reconcile active runs; returns the ids whose document changed.

    - local/docker `running` runs whose supervisor vanished (pid gone, reused or a zombie)
      → `lost` with the reason in `error`;
    - queued runs start in FIFO order when their job has a free `max_concurrent` slot;
    - runs of external backends (Slurm) get their state from one engine query per backend.
    """
    store = store or open_store(project)
    runs = store.runs()
    active = [r for r in runs if r.get("status") in ACTIVE]
    if not active:
        return []
    changed: list[str] = []
    now = time.time()
    external: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in active:
        backend = run.get("backend") or "local"
        if backend in EXTERNAL:
            external[backend].append(run)
            continue
        if backend == "mlflow":
            continue  # imported from MLflow: its state lives there (`ctui import-mlflow` again)
        if run["status"] != "running":
            continue
        reason = _lost_reason(run, now)
        if reason is None:
            continue
        done = store.update_run(
            run["id"],
            {"status": "lost", "ended": now, "error": reason},
            when=_same_supervisor(run.get("supervisor_pid")),
        )
        if done is not None:
            changed.append(run["id"])
    for name, group in external.items():
        try:
            updates = get_backend(name).refresh(project, group)
        except Exception as exc:  # an engine that is down must not break `ctui runs`
            updates = {}
            _note_refresh_error(name, exc)
        for run_id, fields in updates.items():
            done = store.update_run(run_id, fields, when=lambda d: d["status"] not in FINAL)
            if done is not None:
                changed.append(run_id)
    from ctui.jobs.queue import start_queued

    changed.extend(start_queued(project, store))
    return changed


def _same_supervisor(pid: int | None) -> Callable[[dict[str, Any]], bool]:
    """Compare-and-set guard: still running under the supervisor we judged gone."""
    return lambda d: d["status"] == "running" and d.get("supervisor_pid") == pid


#: the last error each external backend's refresh raised (shown by `ctui ps`)
REFRESH_ERRORS: dict[str, str] = {}


def _note_refresh_error(backend: str, exc: Exception) -> None:
    REFRESH_ERRORS[backend] = str(exc)
