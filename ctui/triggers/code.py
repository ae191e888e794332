"""`on = "code"`: a new commit on a branch (optionally only when given paths changed).

The first look records the branch head as the baseline (or the commit of the job's last
run) and fires nothing; every later new head fires once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ctui.config import TriggerConfig
from ctui.triggers.base import ERROR, FIRE, IDLE, Cause, Context, Evaluation, short


def git(root: Path, *args: str) -> tuple[int, str]:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return proc.returncode, (proc.stdout if proc.returncode == 0 else proc.stderr).strip()


def resolve(ctx: Context, rev: str) -> str | None:
    key = ("git-rev", rev)
    if key not in ctx.cache:
        rc, out = git(ctx.root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
        ctx.cache[key] = out if rc == 0 and out else None
    result: str | None = ctx.cache[key]
    return result


def evaluate(tc: TriggerConfig, state: dict[str, Any], ctx: Context) -> Evaluation:
    ev = Evaluation(tc.name, tc.job, "code", IDLE)
    branch = str(tc.options.get("branch", "HEAD"))
    head = resolve(ctx, branch)
    if head is None:
        ev.status = ERROR
        ev.note = f"branch {branch!r} not found in {ctx.root}"
        return ev
    seen = state.get("seen_commit")
    if not seen:
        last = next((r for r in reversed(ctx.runs_of(tc.job)) if r.get("git")), None)
        seen = resolve(ctx, str(last["git"])) if last else None
    if not seen:
        ev.note = f"watching {branch} from {short(head, 10)}"
        ev.memory = {"seen_commit": head}
        return ev
    if seen == head:
        ev.note = f"{branch} is at {short(head, 10)}"
        ev.memory = {} if state.get("seen_commit") == head else {"seen_commit": head}
        return ev
    paths = tc.options.get("paths")
    paths = [paths] if isinstance(paths, str) else paths
    if paths:
        rc, out = git(ctx.root, "diff", "--name-only", seen, head, "--", *paths)
        # rc != 0: the old commit is gone (rebased away) — treat as changed
        if rc == 0 and not out:
            change = f"{short(seen, 7)}→{short(head, 7)}"
            ev.note = f"{branch} {change} touches none of {', '.join(paths)}"
            ev.memory = {"seen_commit": head}
            return ev
    _, subject = git(ctx.root, "log", "-1", "--format=%s", head)
    ev.status = FIRE
    ev.causes.append(
        Cause(
            key=f"code:{tc.name}:{head}",
            text=f"{branch} {seen[:7]}→{head[:7]} {subject[:60]}".rstrip(),
            context={"commit": head},
            memory={"seen_commit": head},
        )
    )
    return ev
