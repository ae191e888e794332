"""Keep run states true: `lost` supervisors, queued runs whose slot freed, Slurm states.

`refresh` is cheap enough for every `ctui runs`/`ctui ps`/TUI poll: with no active run it
reads the store once and does nothing else.

A run whose supervisor vanished is `lost` as soon as any reader looks (the job's watchdog
usually says so first, see `ctui.jobs.backends.local`). If its job's process group still has
a live member then, the run carries `orphan` (`pgid`, `since`): it keeps its
`max_concurrent` slot until the group is gone (`ctui.jobs.queue`) and `ctui stop` kills it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError
from ctui.jobs.backends import EXTERNAL, get_backend
from ctui.store import ACTIVE, FINAL, Store, open_store

if TYPE_CHECKING:
    from ctui.project import Project

#: a `running` run whose supervisor has not recorded itself after this long is lost
START_GRACE = 60.0


def _lost_reason(project: Project, run: dict[str, Any], now: float) -> str | None:
    from ctui.jobs.spawn import starter_gone, starting_supervisor, supervisor_alive

    alive = supervisor_alive(run)
    if alive is False:
        return f"the supervisor (pid {run.get('supervisor_pid')}) vanished"
    if alive is None and not run.get("supervisor_pid"):
        starting = starting_supervisor(project, run)
        if starting is False:
            return "the supervisor exited before it took the run (see supervisor.log)"
        if starting is None and starter_gone(run):
            return "the launch was interrupted before the run's supervisor started"
        since = run.get("dequeued") or run.get("created") or now
        if not starting and now - since > START_GRACE:
            return "the supervisor never started"
    return None


def refresh(project: Project, store: Store | None = None) -> list[str]:
    """Reconcile active runs; returns the ids whose document changed.

    - local/docker `running` runs whose supervisor vanished (pid gone, reused or a zombie)
      → `lost` with the reason in `error`;
    - queued runs start in FIFO order when their job has a free `max_concurrent` slot;
    - runs of external backends (Slurm) get their state from one engine query per backend.

    A correction that cannot be written (disk full, read-only) raises the store's one-line
    CtuiError, having changed nothing; `ctui runs` shows it as a warning.
    """
    store = store or open_store(project)
    runs = store.live_runs()  # the others need no look (a segmented store: its index says)
    changed = _orphans_gone(store, runs)
    active = [r for r in runs if r.get("status") in ACTIVE]
    if not active:
        return changed
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
        reason = _lost_reason(project, run, now)
        if reason is None:
            continue
        done = store.update_run(
            run["id"],
            lost_fields(run, reason, now),
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


def write_failed(exc: BaseException) -> bool:
    """A write the system refused (disk full, read-only): the OSError, or the one-line
    CtuiError the store makes of it (`ctui.errors.os_error`, raised while handling it)."""
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, CtuiError) and isinstance(exc.__context__, OSError)


def _orphans_gone(store: Store, runs: list[dict[str, Any]]) -> list[str]:
    """Lost runs of this host whose orphaned job group has ended: their `orphan` goes."""
    from ctui.jobs.queue import orphan_lives

    here = socket.gethostname()
    changed = []
    for run in runs:
        if run.get("status") != "lost" or not isinstance(run.get("orphan"), dict):
            continue
        if orphan_lives(run, here=here):
            continue
        done = store.update_run(
            run["id"],
            {"orphan": None},
            when=lambda d: d["status"] == "lost" and bool(d.get("orphan")),
        )
        if done is not None:
            changed.append(run["id"])
    return changed


def lost_fields(run: dict[str, Any], reason: str, now: float) -> dict[str, Any]:
    """What a `running` run whose supervisor is gone becomes: `lost`, and `orphan` while its
    job's process group lives on (this host only: a reader elsewhere cannot tell)."""
    from ctui.jobs.backends.local import group_alive

    fields: dict[str, Any] = {"status": "lost", "ended": now, "error": reason}
    pgid = run.get("pgid")
    if pgid and (run.get("backend") or "local") == "local" and group_alive(pgid):
        fields["orphan"] = {"pgid": pgid, "since": now}
        fields["error"] = (
            f"{reason}; its job (process group {pgid}) is still running and holds its slot: "
            f"`ctui stop {run['id']}` ends it"
        )
    return fields


def _same_supervisor(pid: int | None) -> Callable[[dict[str, Any]], bool]:
    """Compare-and-set guard: still running under the supervisor we judged gone."""
    return lambda d: d["status"] == "running" and d.get("supervisor_pid") == pid


#: the last error each external backend's refresh raised (shown by `ctui ps`)
REFRESH_ERRORS: dict[str, str] = {}


def _note_refresh_error(backend: str, exc: Exception) -> None:
    REFRESH_ERRORS[backend] = str(exc)


def end_check(
    project: Project, run_id: str, *, refresh_every: float = 2.0
) -> Callable[[], dict[str, Any] | None]:
    """A poll function: the run's document once it is final, else None.

    It also refreshes now and then (lost supervisors, freed queue slots), so a run whose
    supervisor died still ends the wait.
    """
    store = open_store(project)
    last = [0.0]

    def check() -> dict[str, Any] | None:
        run = store.get_run(run_id)
        if run["status"] in FINAL:
            return run
        now = time.monotonic()
        if now - last[0] > refresh_every:
            last[0] = now
            with contextlib.suppress(CtuiError):
                refresh(project, store)
        return None

    return check


def wait_for_end(
    project: Project,
    run_id: str,
    *,
    poll: float = 0.2,
    timeout: float | None = None,
    mlflow_settle: float = 0.0,
) -> dict[str, Any]:
    """Block until the run is final; `TimeoutError` after `timeout` seconds.

    With `mlflow_settle`, also wait up to that long after the end for the MLflow sync,
    which folds the job's MLflow metrics in just after the final status (not once an
    attempt after the end has failed: the server is down and `ctui sync` retries).
    """
    check = end_check(project, run_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    ended_at: float | None = None
    while True:
        run = check()
        if run is not None:
            ended_at = ended_at or time.monotonic()
            syncing = False
            if (run.get("mlflow") or {}).get("sync") == "pending":
                from ctui.integrations.mlflow_sync import sync_settled

                syncing = not sync_settled(run)  # a failed attempt after the end: stop waiting
            if not syncing or time.monotonic() - ended_at >= mlflow_settle:
                return run
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not end within {timeout:g} s")
        time.sleep(poll)
