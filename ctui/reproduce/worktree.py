"""Reproduce, step 1: the code — a git worktree at the recorded commit with the stored
uncommitted patch applied. A commit that is gone is a clear error (exit 2)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError, ExitCode

if TYPE_CHECKING:
    from ctui.objects import ObjectStore

WORKTREES = "worktrees"


def _git(root: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=root, input=input, capture_output=True, timeout=300)


def require_commit(root: Path, commit: str, run_id: str) -> None:
    """Raise a clear error (exit 2) when the recorded commit is not in the repository."""
    proc = _git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    if proc.returncode != 0:
        raise CtuiError(
            f"commit {commit[:10]} recorded by run {run_id} is no longer in the repository at "
            f"{root} (rebased away or garbage-collected?)",
            hint=f"fetch it (git fetch <remote> {commit}) or restore the branch that held it",
        )


def _worktree_name() -> str:
    from ctui.ids import new_run_id

    return new_run_id()


def _patch_bytes(objects: ObjectStore, code: Mapping[str, Any]) -> bytes | None:
    patch = code.get("patch")
    if not patch:
        return None
    return objects.get_bytes(str(patch["id"]))


def git_prefix(root: Path) -> str:
    """Where `root` is inside its git repository ("" at the top, else "sub/dir/")."""
    proc = _git(root, "rev-parse", "--show-prefix")
    return proc.stdout.decode().strip() if proc.returncode == 0 else ""


def make_worktree(root: Path, path: Path, commit: str, patch: bytes | None) -> None:
    """A detached worktree of `root` at `commit`, with `patch` applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = _git(root, "worktree", "add", "--detach", "--force", str(path), commit)
    if proc.returncode != 0:
        raise CtuiError(
            f"could not make a git worktree at {commit[:10]}: {_last_line(proc.stderr)}",
            code=ExitCode.FAILED,
        )
    if patch:
        proc = _git(path, "apply", "--binary", "--whitespace=nowarn", "-", input=patch)
        if proc.returncode != 0:
            raise CtuiError(
                f"the recorded uncommitted patch does not apply at {commit[:10]}: "
                f"{_last_line(proc.stderr)}",
                hint="the patch is in the object store; `ctui show` names its id",
            )


def remove_worktree(root: Path, path: Path) -> None:
    if not path.exists():
        return
    _git(root, "worktree", "remove", "--force", "--force", str(path))
    shutil.rmtree(path, ignore_errors=True)
    _git(root, "worktree", "prune")


def _last_line(raw: bytes) -> str:
    lines = [ln for ln in raw.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no message)"
