"""`isolate = "worktree"`: a run in a private git worktree of the project (`.ctui/worktrees/
run-<id>`) at HEAD with the workspace's uncommitted changes and captured untracked files, its
DVC data checked out from the project's (shared) DVC cache. Two pipelines then never meet in
one workspace; what `dvc repro` makes survives the worktree in that shared cache.

The supervisor calls `make_run_worktree` when the run leaves the queue (before the manifest is
captured, so the manifest describes the worktree) and `drop_run_worktree` when it has ended."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError

if TYPE_CHECKING:
    from ctui.jobs.backends.base import LaunchSpec
    from ctui.project import Project

ISOLATE_MODES = ("worktree",)


def worktree_path(project: Project, run_id: str) -> Path:
    from ctui.reproduce.worktree import WORKTREES

    return project.state_dir / WORKTREES / f"run-{run_id}"


def job_isolation(project: Project, spec: LaunchSpec) -> tuple[str | None, bool]:
    """(`isolate`, `keep_worktree`) of the run's job: from the spec where launch put them
    there, else from the project's config as it is now."""
    if "isolate" in spec.options:
        return spec.options["isolate"], bool(spec.options.get("keep_worktree"))
    from ctui.config import load_config

    config = load_config(project.root)
    if spec.job not in config.jobs:
        return None, False
    jc = config.job(spec.job)
    return jc.isolate, jc.keep_worktree


def make_run_worktree(project: Project, spec: LaunchSpec) -> Path:
    """Build the run's worktree and point `spec` at it (`cwd`, capture root); → its path.
    Raises `CtuiError` with the reason in words when it cannot be made (then nothing runs in
    the shared workspace)."""
    from ctui.reproduce.worktree import make_worktree, remove_worktree

    opts = spec.options.setdefault("capture", {})
    root = Path(opts.get("root") or spec.project_root).resolve()
    path = worktree_path(project, spec.run_id)
    try:
        _build(project, root, path, opts, make_worktree)
    except CtuiError as exc:
        remove_worktree(root, path)
        raise CtuiError(f"could not make the run's worktree: {exc.message}") from None
    except OSError as exc:
        remove_worktree(root, path)
        raise CtuiError(f"could not make the run's worktree at {path}: {exc}") from None
    from ctui.reproduce.worktree import git_prefix

    here = path / git_prefix(root)
    cwd = Path(spec.cwd).resolve()
    rel = cwd.relative_to(root) if cwd.is_relative_to(root) else Path()
    spec.cwd = str(here / rel)
    opts["root"] = str(here)
    opts["bases"] = list(dict.fromkeys([str(here), *(opts.get("bases") or [])]))
    return path


def _build(project: Project, root: Path, path: Path, opts: dict[str, Any], make: Any) -> None:
    from ctui import manifest as mf
    from ctui.config import ManifestConfig
    from ctui.reproduce.data import restore_data
    from ctui.reproduce.worktree import git_prefix

    if path.exists():
        raise CtuiError(f"{path} already exists")
    found = mf.capture(
        root,
        sections=("code", "data"),
        cache_dir=project.cache_dir,
        options=ManifestConfig(**(opts.get("manifest") or {})),
    )
    code = found["sections"].get("code") or {}
    if code.get("status") != "ok":
        raise CtuiError(f"the project is not a git checkout ({code.get('reason') or 'no code'})")
    blobs = _real_blobs(root, code, dict(found.get("blobs") or {}))
    patch = code.get("patch")
    make(
        root, path, str(code["commit"]), blobs[patch["id"]] if patch else None,
        submodules=code.get("submodules"), untracked=code.get("untracked_files"),
        blob=blobs.__getitem__,
    )  # fmt: skip
    restore_data(root, path / git_prefix(root), found["sections"].get("data") or {})


def _real_blobs(root: Path, code: dict[str, Any], blobs: dict[str, bytes]) -> dict[str, bytes]:
    """The captured blobs with secrets as they are (the manifest's copies are redacted, and
    the job must run on the real files): the uncommitted patch and untracked files again."""
    from ctui.manifest import Absent
    from ctui.manifest.code import IGNORED_PREFIXES, _diff
    from ctui.reproduce.worktree import _top

    patch = code.get("patch")
    if patch and patch.get("redactions"):
        # the same diff the code capture took, before redaction
        try:
            blobs[patch["id"]] = _diff(
                root, ":/", *(f":(top,exclude,glob)**/{p}**" for p in IGNORED_PREFIXES)
            )
        except Absent:
            pass
    top = _top(root)
    for rel, entry in (code.get("untracked_files") or {}).items():
        if entry.get("redactions"):
            try:
                blobs[entry["id"]] = (top / rel).read_bytes()
            except OSError:
                pass
    return blobs


def drop_run_worktree(spec: LaunchSpec, isolated: str) -> None:
    """Remove the run's worktree (the project's git forgets it); a failure is only logged:
    the run has ended either way."""
    import traceback

    from ctui.reproduce.worktree import remove_worktree

    try:
        remove_worktree(Path(spec.project_root), Path(isolated))
    except Exception:
        traceback.print_exc()
