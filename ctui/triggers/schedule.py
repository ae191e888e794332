"""`on = "schedule"`: `every = "1h"` or `cron = "0 3 * * *"` (local time, via croniter).

A slot is the most recent due time. The first look records the current slot and fires
nothing; a later look in a newer slot fires once for it (missed slots are not replayed).
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

from ctui.config import TriggerConfig, parse_duration
from ctui.triggers.base import FIRE, IDLE, Cause, Context, Evaluation, iso


def slots(tc: TriggerConfig, now: float) -> tuple[float, float]:
    """(the latest due time ≤ now, the next due time > now)."""
    every = tc.options.get("every")
    if every is not None:
        step = parse_duration(every, path=Path("ctui.toml"), key="every")
        current = math.floor(now / step) * step
        return current, current + step
    from croniter import croniter

    start = _dt.datetime.fromtimestamp(now).astimezone()
    nxt = croniter(tc.options["cron"], start).get_next(float)
    # croniter's get_prev from an exact due time skips it: start just after now
    prev = croniter(tc.options["cron"], start + _dt.timedelta(seconds=1)).get_prev(float)
    if prev > now:  # now + 1 s crossed a due time: that is the next one, not the current
        prev = croniter(tc.options["cron"], start).get_prev(float)
    return float(prev), float(nxt)


def evaluate(tc: TriggerConfig, state: dict[str, Any], ctx: Context) -> Evaluation:
    ev = Evaluation(tc.name, tc.job, "schedule", IDLE)
    current, nxt = slots(tc, ctx.now)
    ev.next_check = nxt
    seen = state.get("slot")
    if seen is None:
        ev.note = f"first due {iso(nxt)}"
        ev.memory = {"slot": current}
        return ev
    if current <= float(seen):
        ev.note = f"next due {iso(nxt)}"
        return ev
    rule = f"every {tc.options['every']}" if "every" in tc.options else f"cron {tc.options['cron']}"
    ev.status = FIRE
    ev.causes.append(
        Cause(
            key=f"schedule:{tc.name}:{int(current)}",
            text=f"{rule}: due {iso(current)}",
            context={"slot": iso(current)},
            memory={"slot": current},
        )
    )
    return ev
