"""Reproduce, step 1: the code — a git worktree at the recorded commit with the stored
uncommitted patch applied (staged and unstaged changes alike, through the index), each
recorded submodule checked out at its commit with its own patch, and the captured untracked
files written back. Everything comes from the original checkout, offline; the user's
repository config is never written. A commit that is gone is a clear error (exit 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError, ExitCode

if TYPE_CHECKING:
    from ctui.objects import ObjectStore

WORKTREES = "worktrees"

#: object id → bytes (the object store's `get_bytes`)
Blob = Callable[[str], bytes]


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


def make_worktree(
    root: Path,
    path: Path,
    commit: str,
    patch: bytes | None,
    *,
    submodules: Mapping[str, Mapping[str, Any]] | None = None,
    untracked: Mapping[str, Mapping[str, Any]] | None = None,
    blob: Blob | None = None,
) -> None:
    """A detached worktree of `root` at `commit`, with `patch` applied; then the recorded
    `submodules` (path → {commit, patch, initialised}) checked out from the original
    checkout's, and the captured `untracked` files (path → {id, exec}) written. `blob`
    reads a stored patch or file by id (needed when there are any). Reproduce runs the same
    steps one by one, to time each."""
    add_worktree(root, path, commit)
    if patch:
        apply_patch(path, patch, commit)
    if submodules or untracked:
        if blob is None:
            raise ValueError("make_worktree needs `blob` to restore submodules or files")
        top = _top(root)
        if submodules:
            checkout_submodules(top, path, submodules, blob)
        if untracked:
            write_untracked(path, untracked, blob)


def add_worktree(root: Path, path: Path, commit: str) -> None:
    """A detached worktree of `root` at `commit`, in `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = _git(root, "worktree", "add", "--detach", "--force", str(path), commit)
    if proc.returncode != 0:
        raise CtuiError(
            f"could not make a git worktree at {commit[:10]}: {_last_line(proc.stderr)}",
            code=ExitCode.FAILED,
        )


def apply_patch(path: Path, patch: bytes, commit: str) -> None:
    """The recorded uncommitted patch, applied in the worktree at `path`."""
    _apply(path, patch, f"the recorded uncommitted patch does not apply at {commit[:10]}")


def patch_files(patch: bytes) -> int:
    """How many files a `git diff` touches."""
    return sum(1 for line in patch.splitlines() if line.startswith(b"diff --git "))


def _apply(repo: Path, patch: bytes, failure: str) -> None:
    """Apply a recorded `git diff HEAD` through the index, so staged files (new ones too)
    are staged again and the rerun records the same patch. A patch recorded before that
    (its gitlink lines may carry `-dirty`) still applies to the files alone."""
    args = ("apply", "--binary", "--whitespace=nowarn")
    proc = _git(repo, *args, "--index", "-", input=patch)
    if proc.returncode != 0:
        proc = _git(repo, *args, "-", input=patch)
    if proc.returncode != 0:
        raise CtuiError(
            f"{failure}: {_last_line(proc.stderr)}",
            hint="the patch is in the object store; `ctui show` names its id",
        )


def _top(root: Path) -> Path:
    proc = _git(root, "rev-parse", "--show-toplevel")
    return Path(proc.stdout.decode().strip()) if proc.returncode == 0 else root


def _inside(base: Path, rel: str) -> Path:
    """`base / rel`, refusing a recorded path that would leave `base` (a hand-edited
    manifest must not write elsewhere)."""
    target = Path(os.path.normpath(base / rel))
    if rel.startswith("/") or not target.is_relative_to(base):
        raise CtuiError(f"recorded path {rel!r} leaves the worktree; the manifest is damaged")
    return target


def checkout_submodules(
    top: Path, worktree: Path, submodules: Mapping[str, Mapping[str, Any]], blob: Blob
) -> None:
    """Each initialised submodule (parents before the submodules nested in them) cloned from
    the original checkout's copy, sharing its objects (`--shared`: nothing is copied, nothing
    fetched), detached at the recorded commit, with its patch applied. Submodules the original
    had not checked out stay empty, as they were."""
    for rel in sorted(submodules, key=lambda p: (p.count("/"), p)):
        entry = submodules[rel]
        commit = entry.get("commit")
        if not entry.get("initialised") or not commit:
            continue
        src, dst = _inside(top, rel), _inside(worktree, rel)
        if not (src / ".git").exists():
            raise CtuiError(
                f"submodule {rel} is not checked out in {top}, so its recorded commit "
                f"{str(commit)[:10]} cannot be read offline",
                hint=f"check it out: git submodule update --init {rel}",
            )
        if _git(src, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
            raise CtuiError(
                f"commit {str(commit)[:10]} of submodule {rel} is not in its repository at "
                f"{src} (rebased away or garbage-collected?)",
                hint=f"fetch it there: git -C {rel} fetch <remote> {commit}",
            )
        if dst.exists() and any(dst.iterdir()):
            shutil.rmtree(dst)  # only an empty placeholder is expected; never mix trees
        dst.parent.mkdir(parents=True, exist_ok=True)
        for args in (
            ("clone", "--quiet", "--shared", "--no-checkout", str(src), str(dst)),
            ("-C", str(dst), "checkout", "--quiet", "--detach", str(commit)),
        ):
            proc = _git(top, *args)
            if proc.returncode != 0:
                raise CtuiError(
                    f"could not check out submodule {rel} at {str(commit)[:10]}: "
                    f"{_last_line(proc.stderr)}",
                    code=ExitCode.FAILED,
                )
        patch = entry.get("patch")
        if patch:
            failure = f"the recorded patch of submodule {rel} does not apply at {str(commit)[:10]}"
            _apply(dst, blob(str(patch["id"])), failure)


def write_untracked(worktree: Path, files: Mapping[str, Mapping[str, Any]], blob: Blob) -> None:
    """The captured untracked files, written where they were (untracked again)."""
    for rel, entry in sorted(files.items()):
        dst = _inside(worktree, rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(blob(str(entry["id"])))
        if entry.get("exec"):
            dst.chmod(dst.stat().st_mode | 0o111)


def remove_worktree(root: Path, path: Path) -> None:
    if not path.exists():
        return
    # git refuses to remove a worktree holding submodules: then the folder goes and git
    # forgets it
    _git(root, "worktree", "remove", "--force", "--force", str(path))
    shutil.rmtree(path, ignore_errors=True)
    _git(root, "worktree", "prune")


def _last_line(raw: bytes) -> str:
    lines = [ln for ln in raw.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no message)"
