"""`on = "data"`: the data the job depends on changed since the job's last run.

It fires when no run of the job (reproductions aside) used the current data: new data after
the last run, or data never trained on at all; the cause names what changed since the last
run.

"The data" is the job's data section (DVC-tracked paths from dvc.lock / *.dvc plus the job's
declared `data` paths), optionally narrowed to `paths`. A job that never ran on the current
data fires. A declared path modified less than `debounce` seconds ago (default 5 s) is
still being written: wait, so a half-written dataset never starts a run. Paths that are only
outputs of `dvc.lock` stages (e.g. the model a `dvc repro` job writes) count with `outs = true`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ctui.config import TriggerConfig, parse_duration
from ctui.objects import json_hash
from ctui.triggers.base import FIRE, IDLE, WAIT, Cause, Context, Evaluation, short
from ctui.triggers.datasection import current_data_section
from ctui.triggers.validate import DEFAULT_DEBOUNCE


def _newest_mtime(path: Path) -> float | None:
    try:
        st = path.stat()
    except OSError:
        return None
    newest = st.st_mtime
    if path.is_dir():
        for dirpath, _dirs, files in os.walk(path):
            for f in files:
                try:
                    newest = max(newest, os.stat(os.path.join(dirpath, f)).st_mtime)
                except OSError:
                    continue
    return newest


def _only_a_stage_output(entry: Any) -> bool:
    from ctui.manifest.data import role_of

    return role_of(entry) == "output"


def path_hashes(
    section: dict[str, Any], only: list[str] | None, include_outs: bool = False
) -> dict[str, str | None]:
    """path → hash from a data section, narrowed to `only` (paths or folders) if given.

    Outputs of pipeline stages (every intermediate a `dvc repro` job writes, the model) are
    left out unless `include_outs`: a job that updates them would otherwise retrigger itself.
    Raw inputs (`dvc add`ed paths, stage deps no stage produces, declared paths) are what
    "new data" means; they are hashed from the workspace, so a stale dvc.lock hides nothing.
    """
    paths = section.get("paths") or {}
    out: dict[str, str | None] = {}
    for p, entry in paths.items():
        if only and not any(p == o or p.startswith(o.rstrip("/") + "/") for o in only):
            continue
        if not include_outs and _only_a_stage_output(entry):
            continue
        out[p] = entry.get("hash") if isinstance(entry, dict) else None
    return out


def describe_change(old: dict[str, str | None], new: dict[str, str | None]) -> str:
    """`data/train.csv 3f2a…→9c1e…` (first three changes, then a count)."""
    parts: list[str] = []
    for p in sorted(set(old) | set(new)):
        a, b = old.get(p), new.get(p)
        if a == b:
            continue
        if p not in old:
            parts.append(f"{p} new {short(b, 4)}")
        elif p not in new:
            parts.append(f"{p} removed")
        else:
            parts.append(f"{p} {short(a, 4)}→{short(b, 4)}")
    if not parts:
        return "data changed"
    more = f" (+{len(parts) - 3} more)" if len(parts) > 3 else ""
    return ", ".join(parts[:3]) + more


def _hashes(
    ctx: Context, section: dict[str, Any], only: list[str] | None, include_outs: bool
) -> dict[str, str | None]:
    key = ("path-hashes", section.get("hash"), tuple(only or ()), include_outs)
    if key not in ctx.cache:
        ctx.cache[key] = path_hashes(section, only, include_outs)
    result: dict[str, str | None] = ctx.cache[key]
    return result


def _old_section(ctx: Context, oid: str) -> dict[str, Any] | None:
    key = ("data-object", oid)
    if key not in ctx.cache:
        from ctui.errors import CtuiError
        from ctui.objects import ObjectStore

        try:
            ctx.cache[key] = ObjectStore(ctx.project.objects_dir).get_json(oid)
        except CtuiError:
            ctx.cache[key] = None
    section: dict[str, Any] | None = ctx.cache[key]
    return section


def evaluate(tc: TriggerConfig, state: dict[str, Any], ctx: Context) -> Evaluation:
    job = ctx.config.jobs[tc.job]
    ev = Evaluation(tc.name, tc.job, "data", IDLE)
    only_opt = tc.options.get("paths")
    only = [only_opt] if isinstance(only_opt, str) else only_opt
    debounce = parse_duration(
        tc.options.get("debounce", DEFAULT_DEBOUNCE), path=Path("ctui.toml"), key="debounce"
    )
    # Debounce: a declared path still being written is not a dataset yet.
    wall = time.time()
    for rel in job.data:
        mtime = _newest_mtime(ctx.root / rel)
        if mtime is not None and wall - mtime < debounce:
            ev.status = WAIT
            age = wall - mtime
            ev.note = f"{rel} changed {age:.1f}s ago; waiting {debounce:g}s for it to settle"
            ev.next_check = ctx.now + (debounce - (wall - mtime))
            return ev

    cache_key = ("data-section", tuple(job.data))
    if cache_key not in ctx.cache:
        ctx.cache[cache_key] = current_data_section(ctx.root, job.data, ctx.project.cache_dir)
    section = ctx.cache[cache_key]
    if section.get("status") != "ok":
        ev.note = f"no data to watch: {section.get('reason')}"
        return ev
    include_outs = bool(tc.options.get("outs", False))
    current = _hashes(ctx, section, only, include_outs)
    # narrowed: compare path maps; whole section: compare section hashes (no object loads)
    narrowed = len(current) != len(section.get("paths") or {})
    hash_key = ("path-hashes-hash", section["hash"], tuple(only or ()), include_outs)
    if narrowed and hash_key not in ctx.cache:
        ctx.cache[hash_key] = json_hash(current)
    cur_hash = ctx.cache[hash_key] if narrowed else section["hash"]
    if not current:
        where = f" under {', '.join(only)}" if only else ""
        ev.note = f"no tracked data{where} (stage outputs only count with outs = true)"
        return ev

    # Runs that trained on data; a reproduction re-runs history and says nothing of new data.
    trained = [
        r for r in ctx.runs_of(tc.job)
        if (r.get("manifest") or {}).get("data") and not r.get("reproduces")
    ]  # fmt: skip
    if not narrowed:
        same = next((r for r in reversed(trained) if r["manifest"]["data"] == cur_hash), None)
        if same is not None:
            ev.note = f"run {same['id']} used this data ({short(cur_hash, 12)})"
            return ev
    last = trained[-1] if trained else None
    if last is not None:
        oid = last["manifest"]["data"]
        old_section = _old_section(ctx, oid)
        old = (
            _hashes(ctx, {**old_section, "hash": oid}, only, include_outs)
            if old_section is not None
            else {}
        )
        if old == current:
            ev.note = f"run {last['id']} used this data ({short(cur_hash, 12)})"
            return ev
        text = describe_change(old, current)
    else:
        text = f"never ran on this data ({len(current)} paths, {short(cur_hash, 12)})"
    ev.status = FIRE
    ev.causes.append(
        Cause(
            key=f"data:{tc.name}:{cur_hash}",
            text=text,
            context={"data_hash": cur_hash[:12]},
            memory={"data_hash": cur_hash},
        )
    )
    return ev
