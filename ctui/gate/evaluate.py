"""The gate at the end of a run: evaluate the job's rules against the champion, record the
verdict, promote a run that passed."""

from __future__ import annotations

import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctui.project import Project
    from ctui.store import Store

#: how often the gate is decided again when another promotion came in meanwhile
TRIES = 5


def after_run(project: Project, store: Store, run_id: str) -> None:
    """Called by the supervisor once a run succeeded and its metrics are final (MLflow's
    included). Never raises."""
    try:
        gate_run(project, store, run_id)
    except Exception:  # the supervisor's stderr is supervisor.log
        print(f"ctui gate: the gate of run {run_id} failed:", file=sys.stderr, flush=True)
        traceback.print_exc(file=sys.stderr)


def gate_run(project: Project, store: Store, run_id: str) -> dict[str, Any] | None:
    """Evaluate, record the `gate` field, promote a run that passed (never a reproduction),
    notify `rejected` for a run a trigger launched (not `manual`) that failed. Returns the
    gate field, or None when the job has no gate."""
    from ctui.config import load_config
    from ctui.errors import CtuiError
    from ctui.gate import actions
    from ctui.gate.champion import ChampionChanged, champion_to_beat, promote
    from ctui.gate.rules import evaluate

    config = load_config(project.root)
    run = store.get_run(run_id)
    job = run.get("job") or ""
    gate_config = config.gate_of(job)
    if gate_config is None:
        return None
    reproduces = run.get("reproduces")
    for attempt in range(TRIES):
        champion_run, why = champion_to_beat(store, job, run_id)
        result = evaluate(gate_config.rules, run, champion_run, no_champion=why)
        champion = result["champion"]
        gate = {**result, "at": time.time(), "promoted": False}
        if result["passed"] and reproduces:
            gate["verdict"] = _reproduction(result["verdict"], reproduces)
        store.update_run(run_id, {"gate": gate})
        if not result["passed"] or reproduces:
            break
        try:
            promote(
                project,
                store,
                run_id,
                by="gate",
                reason=result["verdict"],
                expect=champion,
                config=config,
            )
        except ChampionChanged:
            if attempt + 1 < TRIES:
                continue  # decide again against the new champion
            _not_promoted(store, run_id, gate, "the champion kept changing meanwhile")
            raise
        except CtuiError as exc:  # the run changed meanwhile (removed, say)
            _not_promoted(store, run_id, gate, exc.message)
            raise
        gate["promoted"] = True
        store.update_run(run_id, {"gate": gate})
        break
    if not gate["passed"] and run.get("trigger") not in (None, "", "manual"):
        context = {
            "event": "rejected",
            "job": job,
            "run_id": run_id,
            "verdict": gate["verdict"],
            "champion": gate.get("champion") or "",
        }
        try:
            actions.notify(project, config, "rejected", context)
        except Exception:
            traceback.print_exc(file=sys.stderr)
    return gate


def _not_promoted(store: Store, run_id: str, gate: dict[str, Any], why: str) -> None:
    gate["verdict"] = f"passed, not promoted: {why}"
    store.update_run(run_id, {"gate": gate})


def _reproduction(verdict: str, original: str) -> str:
    """`promoted: all 3 rules passed` → `passed, not promoted (reproduces …): all 3 …`."""
    head, _, rest = verdict.partition(": ")
    detail = rest if head == "promoted" else head
    return f"passed, not promoted (a reproduction of {original}): {detail}"
