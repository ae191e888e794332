"""`ctui watch`: evaluate every enabled trigger, launch what is due, repeat.

One watcher per project (`.ctui/watch.lock`); a second one refuses (exit 2). Each cycle:
refresh job states (lost supervisors, queued runs), retry pending MLflow syncs, mirror what
changed on a shared tracking server (`[mlflow] mirror`), settle intents
left by a crashed watcher (and causes whose run never started), evaluate, launch, store what
the triggers must remember. Between cycles it refreshes job states every `LIVENESS_S` seconds,
so a run whose supervisor vanished is `lost` (and its slot's next queued run started) within
seconds whatever the interval. SIGTERM/SIGINT stop the loop after the current step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctui.atomic import try_lock
from ctui.errors import CtuiError, ExitCode
from ctui.store import Store, open_store
from ctui.triggers.base import FIRE, Evaluation
from ctui.triggers.evaluate import evaluate_all
from ctui.triggers.launching import Log, act, reconcile_intents
from ctui.triggers.state import update_states

if TYPE_CHECKING:
    from ctui.config import Config
    from ctui.project import Project

LOCK_FILE = "watch.lock"
DEFAULT_INTERVAL = 30.0
#: seconds between the job-state refreshes a watcher makes while it waits for the next cycle
LIVENESS_S = 2.0


def lock_path(project: Project) -> Any:
    return project.state_dir / LOCK_FILE


def acquire_watch_lock(project: Project) -> int:
    """Hold `.ctui/watch.lock` for the life of this process (its pid written inside)."""
    path = lock_path(project)
    fd = try_lock(path)
    if fd is None:
        try:
            pid = path.read_text().strip() or "?"
        except OSError:
            pid = "?"
        raise CtuiError(
            f"another `ctui watch` is running (pid {pid})",
            hint="stop it first; one watcher per project launches each cause exactly once",
            code=ExitCode.BAD_INPUT,
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release_watch_lock(project: Project, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


@dataclass
class CycleResult:
    started: float
    evaluations: list[Evaluation] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def launched(self) -> list[str]:
        return [e["run_id"] for e in self.events if e.get("run_id") and e["event"] == "fired"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "triggers": [e.to_dict() for e in self.evaluations],
            "events": self.events,
            "launched": self.launched,
        }


def _housekeeping(project: Project, config: Config, store: Store, log: Log) -> None:
    """Other parts' periodic duties that the long-running watcher performs."""
    try:
        from ctui.jobs.reconcile import refresh

        refresh(project, store)
    except CtuiError as exc:
        log({"event": "error", "where": "refresh", "error": exc.message})
    except ImportError:
        pass
    try:
        from ctui.integrations import mlflow_bridge

        sync = getattr(mlflow_bridge, "sync_pending", None)
        if sync is not None:
            outcome = sync(project, config)
            if isinstance(outcome, dict) and outcome.get("synced"):
                log({"event": "mlflow-synced", "runs": list(outcome["synced"])})
    except Exception as exc:  # MLflow down must not stop retraining
        log({"event": "error", "where": "mlflow sync", "error": str(exc)})
    if config.mlflow.mirror:
        _mirror(project, config, log)


def _mirror(project: Project, config: Config, log: Log) -> None:
    """`[mlflow] mirror = "1m"`: what changed on the tracking server, imported when due."""
    try:
        from ctui.integrations.mlflow_import import import_runs, mirror_due

        experiment = config.mlflow.mirror_experiment
        since = mirror_due(project, config, experiment)
        if since is False:
            return
        result = import_runs(project, experiment, since_ms=since or None)
        if result.imported or result.updated:
            log({"event": "mlflow-mirrored", **result.as_dict()})
    except Exception as exc:  # a team server that is down must not stop retraining
        log({"event": "error", "where": "mlflow mirror", "error": str(exc)})


def run_cycle(
    project: Project,
    *,
    config: Config | None = None,
    now: float | None = None,
    log: Log | None = None,
    interval: float | None = None,
    stop: threading.Event | None = None,
    housekeeping: bool = True,
    reader: Store | None = None,
) -> CycleResult:
    """One evaluation of all triggers and the launches it calls for. `reader`: a caching
    store (`Store(cache=True)`) a watcher keeps from cycle to cycle, so a cycle parses only
    the segments that changed since the last one."""
    from ctui.config import load_config
    from ctui.triggers.validate import validate_all

    log = log or (lambda e: None)
    config = config or load_config(project.root)
    validate_all(config)
    store = open_store(project)
    store.initialise()
    now = time.time() if now is None else now
    result = CycleResult(started=now)
    if housekeeping:
        _housekeeping(project, config, store, log)
    result.events += reconcile_intents(project, config, store=store, log=log)

    evaluations = evaluate_all(project, config, (reader or store).read_all(), now=now)
    result.evaluations = evaluations
    for ev in evaluations:
        for cause in ev.causes:
            if stop is not None and stop.is_set():
                break
            result.events.append(
                act(
                    project,
                    config,
                    config.triggers[ev.trigger],
                    cause,
                    now=now,
                    store=store,
                    log=log,
                )
            )
    updates = {}
    for ev in evaluations:
        next_check = ev.next_check
        if next_check is None and interval is not None:
            next_check = now + interval
        updates[ev.trigger] = {
            "last_check": now,
            "status": ev.status,
            "note": ev.note,
            "next_check": next_check,
            **ev.memory,
        }
    update_states(store, updates)
    return result


def watch_loop(
    project: Project,
    *,
    interval: float = DEFAULT_INTERVAL,
    once: bool = False,
    log: Log,
    clock: Callable[[], float] = time.time,
    stop: threading.Event | None = None,
) -> list[CycleResult]:
    """Take the watch lock and run cycles until stopped (or one, with `once`)."""
    fd = acquire_watch_lock(project)
    stop = stop or threading.Event()
    restore = _install_signal_handlers(stop) if not once else {}
    results: list[CycleResult] = []
    seen: dict[str, tuple[str, str]] = {}
    reader = Store(project.store_file, cache=True)
    try:
        if not once:
            log(
                {
                    "event": "started",
                    "pid": os.getpid(),
                    "interval": interval,
                    "root": str(project.root),
                }
            )
        while True:
            try:
                res = run_cycle(
                    project,
                    now=clock(),
                    log=log,
                    interval=None if once else interval,
                    stop=stop,
                    reader=reader,
                )
            except CtuiError as exc:
                if once:
                    raise
                log({"event": "error", "where": "cycle", "error": exc.message})
                res = None
            except Exception as exc:  # a daemon logs and carries on; --once reports it
                if once:
                    raise
                log({"event": "error", "where": "cycle", "error": f"{type(exc).__name__}: {exc}"})
                res = None
            if res is not None:
                results.append(res)
                if not res.evaluations and (once or not results[:-1]):
                    log({"event": "no-triggers"})
                for ev in res.evaluations:
                    look = (ev.status, ev.note)
                    if ev.status != FIRE and (once or seen.get(ev.trigger) != look):
                        log({"event": "trigger", **ev.to_dict()})
                    seen[ev.trigger] = look
            if once or _idle(project, interval, stop, log):
                break
        if not once:
            log({"event": "stopped", "pid": os.getpid()})
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
        release_watch_lock(project, fd)
    return results


def _idle(project: Project, interval: float, stop: threading.Event, log: Log) -> bool:
    """Wait `interval` s for the next cycle, refreshing job states every `LIVENESS_S` s on the
    way (lost supervisors, freed slots); True when stopped meanwhile."""
    from ctui.jobs.reconcile import refresh

    deadline = time.monotonic() + interval
    said = ""
    while (left := deadline - time.monotonic()) > 0:
        if stop.wait(min(LIVENESS_S, left)):
            return True
        if deadline - time.monotonic() <= 0:
            return False  # the cycle, due now, refreshes anyway
        try:
            refresh(project)
            said = ""
        except Exception as exc:  # said once, not every LIVENESS_S
            text = exc.message if isinstance(exc, CtuiError) else f"{type(exc).__name__}: {exc}"
            if text != said:
                log({"event": "error", "where": "refresh", "error": text})
            said = text
    return stop.is_set()


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    old: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        old[sig] = signal.signal(sig, handler)
    return old
