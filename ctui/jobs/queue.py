"""`max_concurrent`: which queued runs may start now (FIFO per job, decided under the lock).

A slot is held by a `running` run, and by a `lost` one whose job outlived its supervisor
(`orphan`, see `ctui.jobs.reconcile`) until that job's process group is gone.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ctui.jobs.backends import EXTERNAL
from ctui.store import RUNS, Store, live_runs, open_store

if TYPE_CHECKING:
    from ctui.config import Config
    from ctui.project import Project


class _Nothing(Exception):
    """Raised inside a transaction to write nothing."""


def queued_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Queued runs in the order they will start (creation time, then id)."""
    return sorted(
        (r for r in runs if r.get("status") == "queued" and r.get("backend") not in EXTERNAL),
        key=lambda r: (r.get("created") or 0, r["id"]),
    )


def holds_slot(run: dict[str, Any], *, here: str | None = None) -> bool:
    """Whether a run takes one of its job's `max_concurrent` slots now.

    An orphan on another host is counted (it cannot be told from here); one on this host is
    counted while its group has a live member, and loses `orphan` once it has none.
    """
    status = run.get("status")
    if status == "running":
        return True
    if status != "lost" or not isinstance(run.get("orphan"), dict):
        return False
    if orphan_lives(run, here=here):
        return True
    run["orphan"] = None  # written with the claim, when there is one
    return False


def orphan_lives(run: dict[str, Any], *, here: str | None = None) -> bool:
    """Whether a `lost` run's `orphan` (its job's process group) may still be running: it has
    a live member on this host, or it is on another host (it cannot be told from here)."""
    if run.get("host") not in (None, here or socket.gethostname()):
        return True
    from ctui.jobs.backends.local import group_alive

    orphan = run["orphan"]
    return group_alive(orphan.get("pgid"), since=orphan.get("since"))


def _limit(run: dict[str, Any], config: Config | None) -> int | None:
    if config is not None and run.get("job") in config.jobs:
        return config.jobs[run["job"]].max_concurrent
    limit = run.get("max_concurrent")
    return limit if isinstance(limit, int) else None


def claim_slots(store: Store, config: Config | None = None) -> list[str]:
    """Flip the queued runs that fit into free slots to `running` (one locked write).

    Returns their ids, oldest first; the caller starts their supervisors.
    """
    if not any(r.get("status") == "queued" for r in store.live_runs()):
        return []
    from ctui.jobs.spawn import starter

    who = starter()

    def pick(data: dict[str, Any]) -> list[str]:
        runs = live_runs(data.get(RUNS, {}))  # no other run holds a slot or waits for one
        here = socket.gethostname()
        busy = Counter(r.get("job") for r in runs if holds_slot(r, here=here))
        chosen: list[str] = []
        for run in queued_runs(runs):
            limit = _limit(run, config)
            if limit is not None and busy[run.get("job")] >= limit:
                continue
            busy[run.get("job")] += 1
            run["status"] = "running"
            run["dequeued"] = time.time()
            run["supervisor_pid"] = None
            run["starter"] = who
            chosen.append(run["id"])
        if not chosen:
            raise _Nothing
        return chosen

    try:
        result: list[str] = store.transact(pick)
    except _Nothing:
        return []
    return result


def start_queued(
    project: Project, store: Store | None = None, config: Config | None = None
) -> list[str]:
    """Start every queued run that has a free slot now; returns the ids started."""
    from ctui.jobs.spawn import start_supervisor

    store = store or open_store(project)
    if config is None:
        try:
            from ctui.config import load_config

            config = load_config(project.root)
        except Exception:  # a config broken after launch must not block the queue
            config = None
    started = claim_slots(store, config)
    for run_id in started:
        try:
            start_supervisor(project, run_id, store)
        except Exception:
            continue  # start_supervisor marked the run failed
    return started
