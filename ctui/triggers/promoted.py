"""`on = "promoted"`: a run of another job became its champion — one cause per promotion.

Every promotion record of the upstream job (`ctui.gate.champion`'s `promotions` table: gate,
manual and rollback alike) is one cause, `promoted:<trigger>:<promotion id>`, acted on exactly
once (the causes ledger). Promotions recorded before the trigger was first evaluated are
history.
"""

from __future__ import annotations

from typing import Any

from ctui.config import TriggerConfig
from ctui.store import CAUSES
from ctui.triggers.base import FIRE, IDLE, Cause, Context, Evaluation

#: the store table the gate records promotions in
PROMOTIONS = "promotions"


def promotions_of(data: dict[str, Any], job: str) -> list[dict[str, Any]]:
    """The job's promotion records in a store snapshot, oldest first."""
    docs = data.get(PROMOTIONS, {}) or {}
    mine = [d for d in docs.values() if isinstance(d, dict) and d.get("job") == job]
    return sorted(mine, key=lambda d: (float(d.get("at") or 0), str(d.get("id") or "")))


def evaluate(tc: TriggerConfig, state: dict[str, Any], ctx: Context) -> Evaluation:
    ev = Evaluation(tc.name, tc.job, "promoted", IDLE)
    upstream = str(tc.options["after"])
    records = promotions_of(ctx.data, upstream)
    since = state.get("since")
    if since is None:
        ev.memory = {"since": ctx.now}
        ev.note = f"waiting for a promotion of {upstream}"
        return ev
    acted = ctx.data.get(CAUSES, {})
    for rec in records:
        if float(rec.get("at") or 0) <= float(since):
            continue
        key = f"promoted:{tc.name}:{rec['id']}"
        if key in acted:
            continue
        by = rec.get("by") or "gate"
        ev.causes.append(
            Cause(
                key=key,
                text=f"{upstream} run {rec['run']} promoted ({by})",
                context={
                    "upstream_run": rec["run"],
                    "promotion": rec["id"],
                    "previous": rec.get("previous") or "",
                },
            )
        )
    if ev.causes:
        ev.status = FIRE
    else:
        ev.note = f"waiting for a promotion of {upstream}"
    return ev
