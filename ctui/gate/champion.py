"""The champion of each job (the run whose model is the one in use) and every promotion.

Two store tables:

- `champions`: job name → `{"job", "run", "since", "promotion"}`
- `promotions`: promotion id → `{"id", "job", "run", "previous", "at", "by", "reason",
  "on_promote", "registered"}`; `by` is "gate", "manual" or "rollback"

A promotion is one store transaction (read fresh under the lock, checked, written once), so
concurrent writers never lose one; the history answers "which run was serving last Tuesday".
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError
from ctui.ids import new_run_id
from ctui.store_format import RUNS

if TYPE_CHECKING:
    from ctui.config import Config
    from ctui.project import Project
    from ctui.store import Store

CHAMPIONS = "champions"
PROMOTIONS = "promotions"
BY = ("gate", "manual", "rollback")


class ChampionChanged(CtuiError):
    """The champion is no longer the one a promotion was decided against."""


def champion_of(store: Store, job: str) -> str | None:
    """The run id of `job`'s champion, or None."""
    doc = store.get_doc(CHAMPIONS, job)
    run = doc.get("run") if isinstance(doc, dict) else None
    return run if isinstance(run, str) else None


def champions(store: Store) -> dict[str, str]:
    """Every job's champion run id, in one store read."""
    return _champions(store.read_all())


def _champions(data: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for job, doc in (data.get(CHAMPIONS) or {}).items():
        if isinstance(doc, dict) and isinstance(doc.get("run"), str):
            out[job] = doc["run"]
    return out


def champion_doc(store: Store, job: str) -> dict[str, Any] | None:
    """`job`'s row of the champions table (`run`, `since`, `promotion`), or None."""
    doc = store.get_doc(CHAMPIONS, job)
    return doc if isinstance(doc, dict) and isinstance(doc.get("run"), str) else None


def history(store: Store, job: str | None = None) -> list[dict[str, Any]]:
    """Promotions and rollbacks, oldest first (of one job, or of all)."""
    docs = [d for d in store.docs(PROMOTIONS).values() if isinstance(d, dict)]
    if job is not None:
        docs = [d for d in docs if d.get("job") == job]
    return sorted(docs, key=lambda d: (d.get("at") or 0, str(d.get("id"))))


def promote(
    project: Project,
    store: Store,
    run_id: str,
    *,
    by: str,
    reason: str = "",
    expect: str | None | bool = False,
    config: Config | None = None,
) -> dict[str, Any]:
    """Make `run_id` its job's champion and record the promotion; then `on_promote`, the
    registry alias and the `promoted` notification (`ctui.gate.actions`). Returns the final
    promotion record (with `"unchanged": True`, and nothing recorded, when the run already is
    the champion).

    `expect` (a run id or None; False: do not check) is the champion the decision was made
    against: if another promotion came in between, `ChampionChanged` is raised and nothing
    is written. A run that is not a succeeded run is refused (CtuiError, exit 2)."""
    if by not in BY:
        raise ValueError(f"promotion by {by!r}; expected one of {BY}")
    promotion = _record(store, run_id, by=by, reason=reason, expect=expect)
    if promotion.get("unchanged"):
        return promotion
    if config is None:
        config = _load_config(project)
    if config is None:
        return promotion
    promotion = _after(project, store, config, promotion)
    gate = config.gate_of(promotion["job"])
    on_promote = promotion.get("on_promote")
    failed = isinstance(on_promote, dict) and on_promote.get("ok") is False
    if failed and gate is not None and gate.on_promote_failure == "rollback":
        previous = promotion.get("previous")
        why = f"on_promote of {run_id} failed"
        detail = on_promote.get("error") if isinstance(on_promote, dict) else None
        if detail:
            why += f": {detail}"
        if previous:
            try:
                back = _record(store, previous, by="rollback", reason=why, expect=run_id)
            except CtuiError as exc:  # the previous champion is gone, or another promotion
                _log(f"rollback after a failed on_promote: {exc.message}")
            else:
                promotion = _merge(store, promotion["id"], {"rolled_back": back["id"]})
                back = _after_rollback(project, store, config, back)
                _notify(project, config, back, why)
                return promotion
        else:
            _log(f"{why}; no previous champion of {promotion['job']} to roll back to")
    _notify(project, config, promotion, promotion.get("reason") or "")
    return promotion


def _record(
    store: Store, run_id: str, *, by: str, reason: str, expect: str | None | bool
) -> dict[str, Any]:
    """The promotion itself: one transaction over the champions and promotions tables."""

    def change(data: dict[str, Any]) -> dict[str, Any]:
        run = (data.get(RUNS) or {}).get(run_id)
        if not isinstance(run, dict):
            raise CtuiError(f"no run {run_id!r}", hint="`ctui runs` lists the run ids")
        status = run.get("status")
        if status != "succeeded":
            raise CtuiError(
                f"run {run_id} is {status}: only a succeeded run can be promoted",
                hint="`ctui champion JOB --history` lists the runs that were champion",
            )
        job = run.get("job")
        if not isinstance(job, str) or not job:
            raise CtuiError(f"run {run_id} has no job: only a job's run can be champion")
        table = data.setdefault(CHAMPIONS, {})
        current = table.get(job) if isinstance(table.get(job), dict) else None
        previous = current.get("run") if current else None
        if expect is not False and previous != expect:
            raise ChampionChanged(
                f"the champion of {job} changed ({expect} → {previous}) since the gate ran"
            )
        if previous == run_id and current is not None:
            known = (data.get(PROMOTIONS) or {}).get(current.get("promotion"))
            base = known if isinstance(known, dict) else {"job": job, "run": run_id}
            return {**base, "unchanged": True}
        now = time.time()
        pid = new_run_id(now)
        promotion = {
            "id": pid,
            "job": job,
            "run": run_id,
            "previous": previous,
            "at": now,
            "by": by,
            "reason": reason,
            "on_promote": None,
            "registered": None,
        }
        data.setdefault(PROMOTIONS, {})[pid] = promotion
        table[job] = {"job": job, "run": run_id, "since": now, "promotion": pid}
        return dict(promotion)

    result: dict[str, Any] = store.transact(change)
    return result


def _after(
    project: Project, store: Store, config: Config, promotion: dict[str, Any]
) -> dict[str, Any]:
    from ctui.gate import actions

    try:
        extra = actions.after_promotion(project, config, dict(promotion)) or {}
    except Exception:  # after_promotion never raises; if it does, the promotion stands
        _log_exc("after_promotion")
        return promotion
    known = {k: v for k, v in extra.items() if k not in ("id", "job", "run", "previous", "at")}
    if not known:
        return promotion
    return _merge(store, promotion["id"], known)


def _after_rollback(
    project: Project, store: Store, config: Config, back: dict[str, Any]
) -> dict[str, Any]:
    """The registry alias back on the restored champion's version (`on_promote` not rerun)."""
    from ctui.gate import actions

    try:
        extra = actions.after_rollback(project, config, back)
    except Exception:
        _log_exc("after_rollback")
        return back
    return _merge(store, back["id"], extra) if extra.get("registered") is not None else back


def _merge(store: Store, promotion_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        doc = data.setdefault(PROMOTIONS, {}).setdefault(promotion_id, {"id": promotion_id})
        doc.update(fields)
        return dict(doc)

    result: dict[str, Any] = store.transact(change)
    return result


def _notify(project: Project, config: Config, promotion: dict[str, Any], verdict: str) -> None:
    from ctui.gate import actions

    context = {
        "event": "promoted",
        "job": promotion["job"],
        "run_id": promotion["run"],
        "verdict": verdict,
        "champion": promotion["run"],
        "previous": promotion.get("previous") or "",
        "by": promotion.get("by"),
    }
    try:
        actions.notify(project, config, "promoted", context)
    except Exception:
        _log_exc("notify")


def _load_config(project: Project) -> Config | None:
    from ctui.config import load_config

    try:
        return load_config(project.root)
    except CtuiError as exc:  # recorded; what follows a promotion needs the config
        _log(f"promotion recorded, but on_promote/notify skipped: {exc.message}")
        return None


def check(project: Project, store: Store, run_id: str) -> dict[str, Any]:
    """The gate's verdict on a run against its job's champion, recording nothing: the
    `gate` field minus `at`/`promoted`, plus `job`; the verdict reads "gate passed: …" or
    "gate failed: …". A champion is compared against the
    champion it replaced. CtuiError (exit 2) when the run's job has no gate."""
    from ctui.config import load_config
    from ctui.gate.rules import evaluate

    config = load_config(project.root)
    run = store.get_run(run_id)
    job = run.get("job") or ""
    gate = config.gate_of(job)
    if gate is None:
        raise CtuiError(
            f"job {job!r} has no gate" if job else f"run {run_id} has no job",
            hint="add [jobs.NAME.gate] rules = [...] to ctui.toml",
        )
    champion_run, why = champion_to_beat(store, job, run_id)
    result = evaluate(gate.rules, run, champion_run, no_champion=why)
    result["verdict"] = _checked(result["verdict"], passed=result["passed"])
    result["job"] = job
    return result


def _checked(verdict: str, *, passed: bool) -> str:
    """A verdict as `ctui gate` says it (nothing is promoted): `gate passed: all 3 rules
    passed`, `gate failed: metric.acc 0.41 >= … failed`."""
    head, _, rest = verdict.partition(": ")
    if head == "no gate rules":
        rest = "no gate rules"
    return f"gate {'passed' if passed else 'failed'}: {rest}"


def champion_to_beat(store: Store, job: str, run_id: str) -> tuple[dict[str, Any] | None, str]:
    """The run `run_id` is compared against (the champion, or for the champion itself the
    one it replaced) and, when there is none, why."""
    data = store.read_all()
    row = (data.get(CHAMPIONS) or {}).get(job)
    champion = row.get("run") if isinstance(row, dict) else None
    if champion == run_id and isinstance(row, dict):
        known = (data.get(PROMOTIONS) or {}).get(row.get("promotion")) or {}
        champion = known.get("previous") if isinstance(known, dict) else None
        if not champion:
            return None, "no champion before it"
    if not champion:
        return None, "no champion yet"
    doc = (data.get(RUNS) or {}).get(champion)
    if not isinstance(doc, dict):
        return None, f"champion {champion} is no longer in the store"
    return doc, ""


def _log(message: str) -> None:
    print(f"ctui gate: {message}", file=sys.stderr, flush=True)


def _log_exc(where: str) -> None:
    print(f"ctui gate: {where} raised:", file=sys.stderr, flush=True)
    traceback.print_exc(file=sys.stderr)
