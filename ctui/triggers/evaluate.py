"""One look at every trigger: which have a new reason to launch, and why not the others.

Evaluation only reads (the store snapshot, git, DVC files, a metric command); what must be
remembered comes back in `Evaluation.memory` / `Cause.memory`, and `ctui.triggers.watch`
stores it. A cause already in the ledger (`CAUSES`) is dropped here, so a trigger whose
reason was acted on reads as idle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctui.store import CAUSES
from ctui.triggers import after, code, data, metric, promoted, schedule
from ctui.triggers.base import (
    COOLDOWN,
    DISABLED,
    ERROR,
    FIRE,
    IDLE,
    Context,
    Evaluation,
    iso,
)
from ctui.triggers.state import effective_enabled, trigger_state

if TYPE_CHECKING:
    from ctui.config import Config, TriggerConfig
    from ctui.project import Project

Kind = Callable[["TriggerConfig", dict[str, Any], Context], Evaluation]

KINDS: dict[str, Kind] = {
    "data": data.evaluate,
    "code": code.evaluate,
    "schedule": schedule.evaluate,
    "metric": metric.evaluate,
    "after": after.evaluate,
    "promoted": promoted.evaluate,
}


def evaluate_trigger(tc: TriggerConfig, ctx: Context) -> Evaluation:
    state = trigger_state(ctx.data, tc.name)
    if not effective_enabled(tc.enabled, state):
        return Evaluation(tc.name, tc.job, tc.on, DISABLED, note="disabled")
    try:
        ev = KINDS[tc.on](tc, state, ctx)
    except Exception as exc:  # one broken trigger must not stop the others
        return Evaluation(tc.name, tc.job, tc.on, ERROR, note=f"{type(exc).__name__}: {exc}")
    acted = ctx.data.get(CAUSES, {})
    fresh = [c for c in ev.causes if c.key not in acted]
    if ev.causes and not fresh:
        ev.note = ev.note or f"already acted on {ev.causes[-1].text}"
        ev.status = IDLE
    ev.causes = fresh
    if ev.causes and tc.cooldown > 0:
        last = state.get("last_fired")
        if last is not None and ctx.now - float(last) < tc.cooldown:
            until = float(last) + tc.cooldown
            ev.status = COOLDOWN
            ev.note = f"{ev.causes[0].text}; cooling down until {iso(until)}"
            ev.next_check = until
            ev.causes = []
        else:
            ev.causes = ev.causes[:1]  # one launch per cooldown period
    if ev.status == FIRE and not ev.causes:
        ev.status = IDLE
    return ev


def evaluate_all(
    project: Project,
    config: Config,
    data: dict[str, Any],
    *,
    now: float | None = None,
    names: list[str] | None = None,
) -> list[Evaluation]:
    """Evaluate the triggers of `config` (all, or `names`) against a store snapshot `data`."""
    ctx = Context(
        project=project, config=config, data=data, now=time.time() if now is None else now
    )
    return [
        evaluate_trigger(tc, ctx)
        for name, tc in config.triggers.items()
        if names is None or name in names
    ]
