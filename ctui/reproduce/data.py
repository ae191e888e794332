"""Reproduce, step 2: the data — `dvc checkout` in the worktree, sharing the original repo's
DVC cache (the worktree's `.dvc/config.local` points `cache.dir` at it); what the cache lacks
is pulled when a remote is configured, else named in the error. For a pipeline that must be
rebuilt out of reach of `--force`, `isolate_dvc_cache` then gives the worktree a cache of its
own holding only the raw inputs (see `rebuild.py`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctui.errors import CtuiError
from ctui.manifest.data import role_of
from ctui.reproduce.worktree import _last_line


def _dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=3600,
    )  # fmt: skip


def restore_data(root: Path, here: Path, data: Mapping[str, Any]) -> str:
    """Check the recorded DVC data out in the worktree (`here` is the project's folder in it,
    `root` the project's own); a one-line account of what was done."""
    paths = (data.get("paths") or {}) if data.get("status") == "ok" else {}
    dvc_paths = sorted(p for p, e in paths.items() if role_of(e) != "declared")
    roots = dvc_roots(root, here)
    if roots is None:
        if data.get("status") != "ok":
            return f"data: none recorded ({data.get('reason') or 'no data section'})"
        return f"data: {len(paths)} declared path(s), not in a DVC repository"
    # the DVC files at the commit (+ patch) define the data, even where the project's own
    # data section saw none of them (a project in a sub-folder of the DVC repository)
    root, worktree = roots
    share_dvc_cache(root, worktree)
    proc = _dvc(worktree, "checkout", "--force")
    if proc.returncode == 0:
        return f"dvc checkout: {len(dvc_paths)} path(s)" if dvc_paths else "dvc checkout: done"
    missing = _checkout_failures(proc.stdout + proc.stderr)
    if not missing:  # not missing data: DVC could not read the pipeline, or worse
        said = _dvc_error(proc.stderr or proc.stdout)
        raise CtuiError(
            f"dvc checkout failed in the rebuilt worktree: {said}",
            hint="the DVC files at the recorded commit are what DVC could not use",
        )
    inputs = [m for m in missing if _is_input(paths.get(m))]
    if not inputs:
        # only outputs of pipeline stages are missing: the job makes them again
        return f"dvc checkout: {len(dvc_paths) - len(missing)} path(s); not cached, made by " \
            f"the run: {', '.join(missing)}"  # fmt: skip
    remotes = _dvc(worktree, "remote", "list")
    if remotes.returncode == 0 and remotes.stdout.strip():
        pulled = _dvc(worktree, "pull", "--force")
        if pulled.returncode == 0:
            return f"dvc pull: {len(dvc_paths)} path(s) ({len(missing)} fetched from the remote)"
        failed = _checkout_failures(pulled.stdout + pulled.stderr) or missing
        lacking = [m for m in failed if _is_input(paths.get(m))] or failed
        raise CtuiError(
            "data recorded by the run is in neither the DVC cache nor the remote: "
            + ", ".join(lacking),
            hint=f"dvc pull said: {_last_line(pulled.stderr.encode())}",
        )
    raise CtuiError(  # the outputs missing with them are made again by the run
        "data recorded by the run is missing from the DVC cache: " + ", ".join(inputs),
        hint="configure a DVC remote that holds it (dvc remote add), or `dvc push` it from "
        "the machine that made the run",
    )


def _is_input(entry: Mapping[str, Any] | None) -> bool:
    """Data the job reads: a raw input (not a pipeline stage's out, which the run remakes)."""
    if not entry:
        return True
    return role_of(dict(entry)) != "output"


def dvc_roots(root: Path, here: Path) -> tuple[Path, Path] | None:
    """The DVC repository holding `root` (the folder with `.dvc/`, up to the git top) and the
    same folder in the worktree; None when the project is not in a DVC repository."""
    orig, mirror = root, here
    while True:
        if (orig / ".dvc").is_dir() and (mirror / ".dvc").is_dir():
            return orig, mirror
        if (orig / ".git").exists() or orig.parent == orig or mirror.parent == mirror:
            return None
        orig, mirror = orig.parent, mirror.parent


def share_dvc_cache(root: Path, worktree: Path) -> None:
    """Point the worktree's DVC cache at the original repo's (no copy of the cache)."""
    cache = dvc_cache_dir(root)
    local = worktree / ".dvc" / "config.local"
    original_local = root / ".dvc" / "config.local"
    if original_local.is_file():
        shutil.copyfile(original_local, local)  # remotes' credentials, cache type…
        _dvc(worktree, "config", "--local", "cache.dir", str(cache))
    else:
        local.write_text(f"[cache]\n    dir = {cache}\n")


def isolate_dvc_cache(root: Path, here: Path, data: Mapping[str, Any]) -> int | None:
    """Give the worktree a DVC cache of its own, empty but for the run's raw inputs (hard
    links to the project's cache objects, where the filesystem allows): no stage output, no
    run-cache, so `dvc repro` can restore nothing and must run every stage. Call it after the
    data checkout. → how many input objects were linked; None outside a DVC repository."""
    roots = dvc_roots(root, here)
    if roots is None:
        return None
    root, worktree = roots
    shared = dvc_cache_dir(root)
    own = worktree / ".dvc" / "cache"  # ignored by .dvc/.gitignore: never "untracked" code
    if own.resolve() == shared.resolve():
        raise CtuiError(f"the worktree's DVC cache would be the project's own: {own}")
    shutil.rmtree(own, ignore_errors=True)
    own.mkdir(parents=True)
    proc = _dvc(worktree, "config", "--local", "cache.dir", str(own))
    if proc.returncode != 0:
        said = _last_line((proc.stderr or proc.stdout).encode())
        raise CtuiError(f"could not give the worktree its own DVC cache: {said}")
    paths = (data.get("paths") or {}) if data.get("status") == "ok" else {}
    linked = 0
    for entry in paths.values():
        if role_of(entry) == "input" and entry.get("hash"):
            linked += _link_object(shared, own, str(entry["hash"]))
    return linked


def _link_object(shared: Path, own: Path, oid: str) -> int:
    """Hard-link one cache object (a `.dir` with the files it lists) from `shared` into `own`,
    in DVC 3's layout (files/md5/ab/cdef…) or the older one (ab/cdef…). → objects linked; 0
    where a link is impossible (another filesystem): DVC then copies the input itself."""
    import json

    for layout in (Path("files", "md5"), Path()):
        src = shared / layout / oid[:2] / oid[2:]
        if src.is_file():
            break
    else:
        return 0
    dst = own / layout / oid[:2] / oid[2:]
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            os.link(src, dst)
    except OSError:
        return 0
    count = 1
    if oid.endswith(".dir"):
        try:
            listing = json.loads(src.read_text())
        except (OSError, ValueError):
            return count
        for item in listing if isinstance(listing, list) else []:
            md5 = item.get("md5") if isinstance(item, dict) else None
            if isinstance(md5, str) and len(md5) > 2:
                count += _link_object(shared, own, md5)
    return count


def dvc_cache_dir(root: Path) -> Path:
    """The repo's cache folder: `cache.dir` from .dvc/config.local or .dvc/config (relative
    paths are relative to .dvc/), else .dvc/cache — read directly, as `dvc cache dir` costs
    a DVC start-up (~1 s)."""
    for name in ("config.local", "config"):
        found = _ini_value(root / ".dvc" / name, "cache", "dir")
        if found:
            path = Path(os.path.expanduser(found))
            return path if path.is_absolute() else (root / ".dvc" / path).resolve()
    return root / ".dvc" / "cache"


def _ini_value(path: Path, section: str, key: str) -> str | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    current = None
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]").strip().strip("'\"")
        elif current == section and "=" in line:
            k, _, v = line.partition("=")
            if k.strip() == key:
                return v.strip().strip("'\"")
    return None


def _dvc_error(output: str) -> str:
    """DVC's own error, on one line: its `ERROR: …` line, else the last line it wrote."""
    errors = [ln.strip() for ln in output.splitlines() if ln.strip().startswith("ERROR")]
    if errors:
        return errors[0].removeprefix("ERROR:").strip()
    return _last_line(output.encode())


def _checkout_failures(output: str) -> list[str]:
    """The paths DVC names after 'Checkout failed for following targets:' (or 'missing')."""
    lines = output.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if "failed for following targets" in line or "following targets" in line:
            for follow in lines[i + 1 :]:
                item = follow.strip()
                if not item or item.lower().startswith(("is your cache", "error", "warning")):
                    break
                out.append(item.rstrip("/"))
    return out
