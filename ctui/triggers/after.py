"""`on = "after"`: a run of another job finished (by default: succeeded) — one cause per run.

Runs that ended before the trigger was first evaluated are history, except the upstream's
latest qualifying run when this job has not run since it ended (the chain was never
completed for it).
"""

from __future__ import annotations

from typing import Any

from ctui.config import TriggerConfig
from ctui.store import CAUSES
from ctui.triggers.base import FIRE, IDLE, Cause, Context, Evaluation


def evaluate(tc: TriggerConfig, state: dict[str, Any], ctx: Context) -> Evaluation:
    ev = Evaluation(tc.name, tc.job, "after", IDLE)
    upstream = str(tc.options["after"])
    status = tc.options.get("status", "succeeded")
    statuses = {status} if isinstance(status, str) else set(status)
    done = [r for r in ctx.runs_of(upstream) if r.get("status") in statuses and r.get("ended")]
    done.sort(key=lambda r: (float(r["ended"]), r["id"]))
    since = state.get("since")
    if since is None:
        ev.memory = {"since": ctx.now}
        own = ctx.runs_of(tc.job)
        last_own = max((float(r.get("created") or 0) for r in own), default=None)
        latest = done[-1] if done else None
        if latest is None or (last_own is not None and last_own >= float(latest["ended"])):
            ev.note = f"waiting for {upstream} runs ({'/'.join(sorted(statuses))})"
            return ev
        candidates = [latest]
    else:
        candidates = [r for r in done if float(r["ended"]) > float(since)]
    acted = ctx.data.get(CAUSES, {})
    for run in candidates:
        key = f"after:{tc.name}:{run['id']}"
        if key in acted:
            continue
        ev.causes.append(
            Cause(
                key=key,
                text=f"{upstream} run {run['id']} {run['status']}",
                context={"upstream_run": run["id"]},
            )
        )
    if ev.causes:
        ev.status = FIRE
    else:
        ev.note = f"waiting for {upstream} runs ({'/'.join(sorted(statuses))})"
    return ev
