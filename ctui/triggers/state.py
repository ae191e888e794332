"""Trigger state and the ledger of causes, kept in the run store.

`TRIGGERS[name]`: the enabled override (None = as in ctui.toml), last fired, last cause, next
check, and the kind's own memory (the commit seen, the schedule slot, the metric's crossing…).

`CAUSES[cause_key]`: one document per reason to launch that was acted on. It is written as an
*intent* before the launch and *confirmed* with the run id after it, so a watcher killed in
between can be reconciled on restart without launching twice.

A run that never started (`never_started`: `lost` before any supervisor took it — a launch
killed half way) does not count as the cause's run: the cause is launched again, up to
`MAX_ATTEMPTS` runs in all, so each cause gets exactly one run that started.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ctui.store import CAUSES, RUNS, TRIGGERS, Store

INTENT = "intent"
LAUNCHED = "launched"
FAILED = "failed"
#: runs one cause may get when those before never started (then it is settled `failed`)
MAX_ATTEMPTS = 3


class _Skip(Exception):
    """Raised inside a transaction to write nothing."""


def trigger_state(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The state document of a trigger in a whole-store dict (empty if never seen)."""
    doc: dict[str, Any] = data.get(TRIGGERS, {}).get(name) or {}
    return doc


def effective_enabled(config_enabled: bool, state: dict[str, Any]) -> bool:
    """The store's override (set by `ctui triggers enable/disable`) wins over the config."""
    override = state.get("enabled")
    return config_enabled if override is None else bool(override)


def set_enabled(store: Store, name: str, enabled: bool | None) -> None:
    """Override the config's `enabled` (None: back to what ctui.toml says)."""

    def fn(data: dict[str, Any]) -> None:
        doc = data.setdefault(TRIGGERS, {}).setdefault(name, {"name": name})
        doc["enabled"] = enabled
        doc["changed"] = time.time()

    store.transact(fn)


#: causes whose keys never come back (the slot, the crossing count and the clock only grow), so
#: their ledger entries may go once settled and old; data/code/after keys can recur: kept
PRUNABLE = ("schedule:", "metric:", "manual:")
PRUNE_AFTER = 7 * 86400.0


def update_states(
    store: Store, updates: dict[str, dict[str, Any]], *, now: float | None = None
) -> None:
    """Merge per-trigger fields (last check, next check, the kind's memory) in one write,
    and drop settled ledger entries that can never recur once they are a week old."""
    now = time.time() if now is None else now

    def fn(data: dict[str, Any]) -> None:
        table = data.setdefault(TRIGGERS, {})
        for name, fields in updates.items():
            table.setdefault(name, {"name": name}).update(fields)
        causes = data.get(CAUSES, {})
        for key in [
            k for k, d in causes.items()
            if k.startswith(PRUNABLE) and d.get("state") != INTENT
            and now - float(d.get("confirmed") or d.get("created") or now) > PRUNE_AFTER
        ]:  # fmt: skip
            del causes[key]

    store.transact(fn)


def claim_cause(
    store: Store,
    cause_key: str,
    intent: dict[str, Any],
    trigger_fields: dict[str, Any],
) -> dict[str, Any] | None:
    """Write the intent for `cause_key` unless that cause was already acted on.

    One locked read-modify-write: the check, the intent and the trigger's new state (last
    fired, its kind's memory) land together or not at all. Returns the intent, or None when
    the cause is already in the ledger (by this or any other process, ever).
    """

    def fn(data: dict[str, Any]) -> dict[str, Any]:
        causes = data.setdefault(CAUSES, {})
        if cause_key in causes:
            raise _Skip
        doc = {
            **intent,
            "cause_key": cause_key,
            "state": INTENT,
            "created": time.time(),
            "owner": owner_token(),
        }
        causes[cause_key] = doc
        name = intent["trigger"]
        data.setdefault(TRIGGERS, {}).setdefault(name, {"name": name}).update(trigger_fields)
        return doc

    try:
        result: dict[str, Any] = store.transact(fn)
    except _Skip:
        return None
    return result


def confirm_cause(store: Store, cause_key: str, fields: dict[str, Any]) -> None:
    """Record the outcome of an intent (`launched` + run id, or `failed` + error)."""

    def fn(data: dict[str, Any]) -> None:
        doc = data.setdefault(CAUSES, {}).setdefault(cause_key, {"cause_key": cause_key})
        doc.update(fields)
        doc["confirmed"] = time.time()
        run_id = fields.get("run_id")
        trig = doc.get("trigger")
        if run_id and trig:
            data.setdefault(TRIGGERS, {}).setdefault(trig, {"name": trig})["last_run"] = run_id

    store.transact(fn)


def run_for_cause(data: dict[str, Any], cause_key: str) -> dict[str, Any] | None:
    """The run launched for a cause, found by the cause key recorded on it; runs that never
    started do not count."""
    for run in runs_for_cause(data, cause_key):
        if not never_started(run):
            return dict(run)
    return None


def runs_for_cause(data: dict[str, Any], cause_key: str) -> list[dict[str, Any]]:
    """Every run carrying the cause key, oldest first (ids are time-sortable)."""
    runs = data.get(RUNS, {})
    return [runs[k] for k in sorted(runs) if run_cause_key(runs[k]) == cause_key]


def never_started(run: dict[str, Any]) -> bool:
    """A run `lost` before any supervisor claimed it (its launch was interrupted, or its
    supervisor never started or died first): its job never ran, since a supervisor only
    starts the job after claiming the run, and a lost run cannot be claimed."""
    return run.get("status") == "lost" and not run.get("supervisor_pid")


def run_cause_key(run: dict[str, Any]) -> str | None:
    key = run.get("cause_key")
    if key:
        return str(key)
    extra = run.get("extra")
    if isinstance(extra, dict) and extra.get("cause_key"):
        return str(extra["cause_key"])
    for tag in run.get("tags") or ():
        if isinstance(tag, str) and tag.startswith("cause:"):
            return tag[len("cause:") :]
    return None


# -- who owns an intent -------------------------------------------------------------------


def owner_token() -> dict[str, Any]:
    """This process, identified so a reused pid is not mistaken for it."""
    return {"pid": os.getpid(), "started": _process_start(os.getpid())}


def owner_alive(owner: Any) -> bool:
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    pid = owner["pid"]
    started = _process_start(pid)
    if started is None:
        return False
    recorded = owner.get("started")
    return recorded is None or abs(started - float(recorded)) < 1.0


def _process_start(pid: int) -> float | None:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped: gone for us
            return None
        return float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None
