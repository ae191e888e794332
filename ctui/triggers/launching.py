"""Exactly once per cause: write the intent, launch, confirm — and reconcile after a crash.

1. `claim_cause` writes the intent (and the trigger's new memory) under the store lock,
   unless the cause is already in the ledger.
2. `launch_run` starts the run, recording `trigger`, `cause` and `cause_key` on it.
3. The intent is confirmed with the run id.

A process killed between 1 and 3 leaves an intent whose owner is gone. `reconcile_intents`
(run by every watcher cycle and by `ctui triggers fire`) finds it: if a run carries the cause
key, the intent is confirmed; if not, it launches now. Both checks happen under the store
lock on fresh data, so the run is never launched twice.

A process killed after inserting the run but before its supervisor started leaves a run that
goes `lost` without ever starting (`state.never_started`); so does a supervisor that died
before it took its run. Such a run does not settle its cause: `reconcile_intents` launches
the cause again (an unconfirmed intent, or a confirmed one whose run never started), up to
`MAX_ATTEMPTS` runs, so the cause gets exactly one run that started — not at most one.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctui.errors import ConfigError, CtuiError
from ctui.store import CAUSES, RUNS, Store, open_store
from ctui.triggers.base import Cause, iso, render_params
from ctui.triggers.state import (
    FAILED,
    INTENT,
    LAUNCHED,
    MAX_ATTEMPTS,
    _Skip,
    claim_cause,
    confirm_cause,
    never_started,
    owner_alive,
    owner_token,
    run_for_cause,
    runs_for_cause,
)

if TYPE_CHECKING:
    from ctui.config import Config, TriggerConfig
    from ctui.project import Project

#: test hook: SIGKILL this process right after an intent is written (before the launch)
CRASH_ENV = "CTUI_WATCH_CRASH_AFTER_INTENT"

Log = Callable[[dict[str, Any]], None]


def _no_log(event: dict[str, Any]) -> None:
    pass


def _launch(project: Project, config: Config, intent: dict[str, Any]) -> dict[str, Any]:
    from ctui.jobs.launch import launch_run

    return launch_run(
        project,
        intent["job"],
        intent.get("params") or {},
        trigger=intent["trigger"],
        cause=intent.get("cause"),
        extra={"cause_key": intent["cause_key"]},
        config=config,
    )


def _launch_and_confirm(
    project: Project, store: Store, config: Config, intent: dict[str, Any], log: Log
) -> dict[str, Any]:
    key = intent["cause_key"]
    base = {
        "trigger": intent["trigger"],
        "job": intent["job"],
        "cause": intent.get("cause"),
        "cause_key": key,
    }
    try:
        run = _launch(project, config, intent)
    except Exception as exc:  # recorded, so the cause is settled and the watcher goes on
        error = exc.message if isinstance(exc, CtuiError) else f"{type(exc).__name__}: {exc}"
        confirm_cause(store, key, {"state": FAILED, "error": error})
        event = {**base, "event": "launch-failed", "error": error}
        log(event)
        return event
    confirm_cause(store, key, {"state": LAUNCHED, "run_id": run["id"]})
    event = {**base, "event": "fired", "run_id": run["id"], "status": run.get("status")}
    log(event)
    return event


def act(
    project: Project,
    config: Config,
    tc: TriggerConfig,
    cause: Cause,
    *,
    now: float | None = None,
    store: Store | None = None,
    log: Log = _no_log,
) -> dict[str, Any]:
    """Launch the run for `cause` unless it was already acted on; an event dict says what
    happened (`fired`, `duplicate`, `launch-failed`)."""
    store = store or open_store(project)
    now = time.time() if now is None else now
    context = {
        "trigger": tc.name,
        "cause": cause.text,
        "cause_key": cause.key,
        "time": iso(now),
        **cause.context,
    }
    intent = {
        "trigger": tc.name,
        "job": tc.job,
        "cause": cause.text,
        "params": render_params(tc.params, context),
    }
    fields = {
        "last_fired": now,
        "last_cause": cause.text,
        "last_cause_key": cause.key,
        **cause.memory,
    }
    claimed = claim_cause(store, cause.key, intent, fields)
    if claimed is None:
        event = {
            "event": "duplicate",
            "trigger": tc.name,
            "job": tc.job,
            "cause": cause.text,
            "cause_key": cause.key,
        }
        log(event)
        return event
    if os.environ.get(CRASH_ENV):
        os.kill(os.getpid(), signal.SIGKILL)
    return _launch_and_confirm(project, store, config, claimed, log)


def reconcile_intents(
    project: Project, config: Config, *, store: Store | None = None, log: Log = _no_log
) -> list[dict[str, Any]]:
    """Settle intents left by a process that died between deciding and confirming, and causes
    whose run never started."""
    store = store or open_store(project)
    data = store.read_all()
    runs = data.get(RUNS, {})
    pending = [k for k, d in data.get(CAUSES, {}).items() if _owed(d, runs)]
    events: list[dict[str, Any]] = []
    for key in pending:
        outcome = _settle(store, key)
        if outcome is None:
            continue
        what, doc = outcome
        if what == "failed":
            event = {
                "event": "launch-failed",
                "trigger": doc.get("trigger"),
                "job": doc.get("job"),
                "cause": doc.get("cause"),
                "cause_key": key,
                "error": doc.get("error"),
            }
            log(event)
            events.append(event)
        elif what == "confirmed":
            event = {
                "event": "reconciled",
                "trigger": doc.get("trigger"),
                "cause_key": key,
                "cause": doc.get("cause"),
                "run_id": doc.get("run_id"),
            }
            log(event)
            events.append(event)
        else:
            log(
                {
                    "event": "relaunching",
                    "trigger": doc.get("trigger"),
                    "cause_key": key,
                    "cause": doc.get("cause"),
                    "retry_of": doc.get("retry_of"),
                }
            )
            events.append(_launch_and_confirm(project, store, config, doc, log))
    return events


def _owed(doc: dict[str, Any], runs: dict[str, Any]) -> bool:
    """A cause still owed its run: an intent whose owner died, or a run that never started."""
    if doc.get("state") == INTENT:
        return not owner_alive(doc.get("owner"))
    if doc.get("state") == LAUNCHED:
        run = runs.get(doc.get("run_id") or "")
        return isinstance(run, dict) and never_started(run)
    return False


def _settle(store: Store, key: str) -> tuple[str, dict[str, Any]] | None:
    """Under the lock: confirm from a run carrying the key that started (or may still), or
    take the cause over to launch it (again), or give up after `MAX_ATTEMPTS` unstarted runs."""

    def fn(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        doc = data.get(CAUSES, {}).get(key)
        if doc is None or not _owed(doc, data.get(RUNS, {})):
            raise _Skip
        run = run_for_cause(data, key)
        if run is not None:
            if doc.get("state") == LAUNCHED and doc.get("run_id") == run["id"]:
                raise _Skip
            doc.update(state=LAUNCHED, run_id=run["id"], confirmed=time.time(), reconciled=True)
            return "confirmed", dict(doc)
        unstarted = [r["id"] for r in runs_for_cause(data, key)]  # all never started
        if len(unstarted) >= MAX_ATTEMPTS:
            doc.update(
                state=FAILED,
                confirmed=time.time(),
                error=f"none of its {len(unstarted)} runs started ({', '.join(unstarted)})",
            )
            return "failed", dict(doc)
        doc.update(state=INTENT, owner=owner_token(), taken_over=time.time())
        if unstarted:
            doc["retry_of"] = unstarted[-1]
        return "launch", dict(doc)

    try:
        result: tuple[str, dict[str, Any]] = store.transact(fn)
    except _Skip:
        return None
    return result


def fire_manually(
    project: Project, name: str, *, config: Config | None = None, log: Log = _no_log
) -> dict[str, Any]:
    """`ctui triggers fire NAME`: launch the trigger's job now, cause `manual:<time>`.

    Works on a disabled trigger too (a person asked for it) and ignores the cooldown.
    """
    from ctui.config import load_config
    from ctui.triggers.validate import validate_all

    config = config or load_config(project.root)
    validate_all(config)
    tc = config.triggers.get(name)
    if tc is None:
        known = ", ".join(sorted(config.triggers)) or "none declared"
        raise ConfigError(
            config.path or "ctui.toml", f"triggers.{name}", f"no such trigger (known: {known})"
        )
    store = open_store(project)
    store.initialise()
    reconcile_intents(project, config, store=store, log=log)
    now = time.time()
    stamp = iso(now)
    cause = Cause(
        key=f"manual:{name}:{now:.6f}",
        text=f"manual {stamp}",
        context=manual_context(project, config, tc, store),
    )
    return act(project, config, tc, cause, now=now, store=store, log=log)


def manual_context(
    project: Project, config: Config, tc: TriggerConfig, store: Store
) -> dict[str, Any]:
    """Best-effort placeholder values for a hand-fired trigger ("" where there is none)."""
    ctx: dict[str, Any] = {
        "data_hash": "",
        "commit": "",
        "upstream_run": "",
        "promotion": "",
        "previous": "",
        "value": "",
        "slot": iso(time.time()),
    }
    try:
        if tc.on == "data":
            from ctui.triggers.datasection import current_data_section

            section = current_data_section(
                project.root, config.jobs[tc.job].data, project.cache_dir
            )
            ctx["data_hash"] = str(section.get("hash", ""))[:12]
        elif tc.on == "code":
            from ctui.triggers.code import git

            rc, out = git(project.root, "rev-parse", str(tc.options.get("branch", "HEAD")))
            ctx["commit"] = out if rc == 0 else ""
        elif tc.on == "after":
            upstream = [
                r
                for r in store.runs()
                if r.get("job") == tc.options.get("after") and r.get("status") == "succeeded"
            ]
            ctx["upstream_run"] = upstream[-1]["id"] if upstream else ""
        elif tc.on == "promoted":
            from ctui.triggers.promoted import promotions_of

            done = promotions_of(store.read_all(), str(tc.options.get("after")))
            if done:
                ctx["upstream_run"] = done[-1]["run"]
                ctx["promotion"] = done[-1]["id"]
                ctx["previous"] = done[-1].get("previous") or ""
    except Exception:  # placeholders are a convenience; a hand-fired run still launches
        pass
    return ctx
