"""Reproduce a run: rebuild its recorded ingredients, run it again, compare the two.

1. code — a git worktree at the recorded commit (`.ctui/worktrees/<id>`), the stored
   uncommitted patch applied with `git apply`. A commit that is gone is a clear error (exit 2).
2. data — `dvc checkout` in the worktree, sharing the original repo's DVC cache (the worktree's
   `.dvc/config.local` points `cache.dir` at it); what the cache lacks is pulled when a remote
   is configured, else named in the error.
3. env — the current env manifest against the recorded one; differing packages are listed
   before launching, and `strict` refuses to launch on any difference (exit 1). With Docker the
   recorded image (repo digest, else image id) is what runs.
4. run — the job with the recorded params, as a new run with `reproduces: <id>`; waited for.
5. compare — code (commit + patch), data (per-path hashes), env, params, status and metrics
   (integers exactly, floats within `rel_tol`) → `reproduced` or `diverged in: …`, stored on the
   new run as `verdict`. Paths and host-specific details are not compared; compute differences
   are reported as notes only (another box may reproduce a run exactly).

The CLI (`ctui reproduce`) and the TUI (`R`) both call `reproduce_run`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError, ExitCode

if TYPE_CHECKING:
    from ctui.config import Config
    from ctui.objects import ObjectStore
    from ctui.project import Project

Progress = Callable[[str], None]

#: sections whose differences make a reproduction diverge (compute is only a note)
COMPARED = ("code", "data", "env", "params", "status", "metrics")
#: how many items of one section the verdict names before "+N more"
SHOWN = 3
WORKTREES = "worktrees"


# -- the public entry point ----------------------------------------------------------------------


def reproduce_run(
    project: Project,
    run_id: str,
    *,
    backend: str | None = None,
    strict: bool = False,
    rel_tol: float = 1e-6,
    keep_worktree: bool = False,
    progress: Progress | None = None,
    poll: float = 0.2,
) -> dict[str, Any]:
    """Reproduce `run_id` (any unique prefix or `@last`); see the module docstring.

    Returns `{"run": new_run_doc, "original": original_run_doc, "verdict": str,
    "reproduced": bool, "differences": [...], "notes": [...], "env_before": [...]}`.
    Raises CtuiError: exit 2 for what cannot be rebuilt (no manifest, commit gone, data
    missing, engine down), exit 1 for `strict` with a differing environment.
    `progress(message)` is called with each step, e.g. from a TUI worker.
    """
    from ctui import manifest as mf
    from ctui.objects import ObjectStore
    from ctui.store import ACTIVE, open_store

    say = progress or (lambda _msg: None)
    store = open_store(project)
    rid = store.resolve(run_id)
    original = store.get_run(rid)
    if original.get("status") in ACTIVE:
        raise CtuiError(
            f"run {rid} is still {original['status']}",
            hint="reproduce it once it has ended",
        )
    objects = ObjectStore(project.objects_dir)
    if not original.get("manifest"):
        raise CtuiError(
            f"run {rid} has no recorded manifest, so its ingredients are unknown",
            hint="only runs launched by ctui (ctui run, the TUI, triggers) can be reproduced",
        )
    recorded = mf.load(objects, original["manifest"])["sections"]
    code = recorded.get("code") or {}
    if code.get("status") != "ok":
        raise CtuiError(
            f"run {rid} recorded no code: {code.get('reason') or 'no code section'}",
            hint="a run made outside a git repository cannot be rebuilt",
        )
    commit = str(code["commit"])
    require_commit(project.root, commit, rid)
    if (backend or original.get("backend")) == "docker":
        from ctui.jobs.backends.docker import client

        client().close()  # engine down → exit 2 before anything is built

    worktree = project.state_dir / WORKTREES / _worktree_name()
    try:
        patch = _patch_bytes(objects, code)
        make_worktree(project.root, worktree, commit, patch)
        # the project may live in a sub-folder of the repository: the same one in the worktree
        here = worktree / git_prefix(project.root)
        say(f"worktree at {commit[:7]}" + (" + patch" if patch else "") + f": {worktree}")
        redactions = (code.get("patch") or {}).get("redactions") or 0
        if redactions:
            say(f"note: {redactions} secret(s) were redacted from the recorded patch; the "
                "worktree has placeholders there")  # fmt: skip
        untracked = code.get("untracked") or []
        if untracked:
            shown = ", ".join(untracked[:SHOWN]) + (" …" if len(untracked) > SHOWN else "")
            say(f"note: {len(untracked)} untracked file(s) of the original are not in the "
                f"patch and not rebuilt: {shown}")  # fmt: skip

        data = recorded.get("data") or {}
        say(restore_data(project.root, here, data))

        config, job_name, backend_name = _job_config(project, here, original, backend)
        job = config.jobs[job_name]
        current_env = mf.capture(here, sections=("env",), env={**os.environ, **job.env})[
            "sections"
        ]["env"]
        env_before = env_differences(recorded.get("env") or {}, current_env, image=False)
        if env_before:
            say(f"env: {_count(env_before, 'difference')}: " + ", ".join(env_before[:5])
                + (" …" if len(env_before) > 5 else ""))  # fmt: skip
            if strict:
                raise CtuiError(
                    f"the environment differs from run {rid}'s: " + ", ".join(env_before),
                    hint="install the recorded versions, or reproduce without --strict",
                    code=ExitCode.FAILED,
                )
        else:
            say("env: same Python and packages as the original")

        new = _launch(project, config, job_name, backend_name, original, here, say)
        new = _wait(project, new["id"], poll)
        say(f"run {new['id']} {new['status']}")

        result = compare_runs(original, new, objects, rel_tol=rel_tol)
        result["env_before"] = env_before
        fields = {
            "verdict": result["verdict"],
            "reproduced": result["reproduced"],
            "differences": result["differences"],
        }
        new = store.update_run(new["id"], fields) or store.get_run(new["id"])
        return {"run": new, "original": original, **result}
    finally:
        if not keep_worktree:
            remove_worktree(project.root, worktree)


# -- 1. code ---------------------------------------------------------------------------------


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


# -- 2. data ---------------------------------------------------------------------------------


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
    dvc_paths = sorted(p for p, e in paths.items() if "declared" not in (e.get("sources") or []))
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
    missing = _checkout_failures(proc.stdout + proc.stderr) or dvc_paths
    if not missing:
        said = _last_line((proc.stderr or proc.stdout).encode())
        raise CtuiError(f"dvc checkout failed in {worktree}: {said}")
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
        missing = _checkout_failures(pulled.stdout + pulled.stderr) or missing
        raise CtuiError(
            "data recorded by the run is in neither the DVC cache nor the remote: "
            + ", ".join(missing),
            hint=f"dvc pull said: {_last_line(pulled.stderr.encode())}",
        )
    raise CtuiError(
        "data recorded by the run is missing from the DVC cache: " + ", ".join(missing),
        hint="configure a DVC remote that holds it (dvc remote add), or `dvc push` it from "
        "the machine that made the run",
    )


def _is_input(entry: Mapping[str, Any] | None) -> bool:
    """Data the job reads: a `*.dvc` file's out or a stage dep (not only a stage's out)."""
    if not entry:
        return True
    return any(not str(src).endswith(":out") for src in entry.get("sources") or [])


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


# -- 3. config, env --------------------------------------------------------------------------


def _job_config(
    project: Project, worktree: Path, original: Mapping[str, Any], backend: str | None
) -> tuple[Config, str, str]:
    """The job as it was declared at the recorded commit (else as declared now), with the
    recorded image pinned for Docker."""
    from ctui.config import load_config

    job_name = str(original["job"])
    config = load_config(worktree)
    if job_name not in config.jobs:
        config = load_config(project.root)
    job = config.job(job_name)  # ConfigError (exit 2) when declared in neither
    backend_name = backend or original.get("backend") or job.backend
    if backend_name == "docker":
        image = _recorded_image(original) or job.image
        if not image:
            raise CtuiError(
                f"run {original['id']} was not made in Docker and job {job_name!r} has no image",
                hint="set image in the job's table in ctui.toml, or reproduce with --backend local",
            )
        job = dataclasses.replace(job, image=image, backend="docker", env=dict(job.env))
    elif backend_name != job.backend:
        job = dataclasses.replace(job, backend=backend_name, env=dict(job.env))
    config.jobs[job_name] = job
    return config, job_name, backend_name


def _recorded_image(run: Mapping[str, Any]) -> str | None:
    from ctui.jobs.backends.docker import pinned_ref

    info = run.get("docker") or {}
    return pinned_ref(info) if info else None


def env_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], *, image: bool = True
) -> list[str]:
    """What differs between two env sections, in words: `numpy 2.3→2.4`, `+torch 2.1`.

    Compares Python version, packages, container image, CUDA and the recorded variables —
    not paths (the executable of a worktree or another box may differ harmlessly).
    """
    if old.get("status") != "ok" or new.get("status") != "ok":
        if old.get("status") == new.get("status"):
            return []
        return [f"env section {old.get('status', 'absent')}→{new.get('status', 'absent')}"]
    out: list[str] = []
    py_old = (old.get("python") or {}).get("version")
    py_new = (new.get("python") or {}).get("version")
    if py_old != py_new:
        out.append(f"python {py_old}→{py_new}")
    out += _dict_changes(old.get("packages") or {}, new.get("packages") or {})
    if image:
        c_old = old.get("container") or {}
        c_new = new.get("container") or {}
        for key in ("image_id", "image_digest"):
            if c_old.get(key) != c_new.get(key):
                out.append(f"{key.replace('_', ' ')} {_short_id(c_old.get(key))}→"
                           f"{_short_id(c_new.get(key))}")  # fmt: skip
    out += [f"cuda {c}" for c in _dict_changes(old.get("cuda") or {}, new.get("cuda") or {})]
    out += [f"${c}" for c in _dict_changes(old.get("variables") or {}, new.get("variables") or {})]
    return out


def _dict_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if a is None:
            out.append(f"+{key} {b}")
        elif b is None:
            out.append(f"-{key} {a}")
        else:
            out.append(f"{key} {a}→{b}")
    return out


def _short_id(value: Any) -> str:
    if not value:
        return "none"
    text = str(value)
    if "sha256:" in text:
        head, _, digest = text.partition("sha256:")
        return f"{head}{digest[:12]}"
    return text


def _count(items: list[str], word: str) -> str:
    return f"{len(items)} {word}{'' if len(items) == 1 else 's'}"


# -- 4. run ----------------------------------------------------------------------------------


def _launch(
    project: Project,
    config: Config,
    job_name: str,
    backend: str,
    original: Mapping[str, Any],
    worktree: Path,
    say: Progress,
) -> dict[str, Any]:
    from ctui.jobs.launch import launch_run

    run = launch_run(
        project,
        job_name,
        dict(original.get("params") or {}),
        cause=f"reproduces {original['id']}",
        reproduces=str(original["id"]),
        backend=backend,
        workdir=worktree,
        config=config,
    )
    say(f"running {run['id']} ({backend})…")
    return run


#: how long to wait after a run ends for its MLflow metrics before comparing without them
MLFLOW_SETTLE_S = 60.0


def _wait(project: Project, run_id: str, poll: float) -> dict[str, Any]:
    """Wait for the run to end and its MLflow metrics to land (never long on an unreachable
    server); Ctrl-C stops the run and is passed on."""
    from ctui.jobs.reconcile import wait_for_end

    try:
        return wait_for_end(project, run_id, poll=poll, mlflow_settle=MLFLOW_SETTLE_S)
    except KeyboardInterrupt:
        from ctui.jobs.launch import stop_run

        with contextlib.suppress(CtuiError):
            stop_run(project, run_id, grace=5)
        raise


# -- 5. compare ------------------------------------------------------------------------------


def compare_runs(
    original: Mapping[str, Any],
    new: Mapping[str, Any],
    objects: ObjectStore,
    *,
    rel_tol: float = 1e-6,
) -> dict[str, Any]:
    """Compare a reproduction with its original → verdict, differences, notes."""
    from ctui import manifest as mf

    a = mf.load(objects, original.get("manifest") or {})["sections"]
    b = mf.load(objects, new.get("manifest") or {})["sections"]
    found: dict[str, list[str]] = {
        "code": code_differences(a.get("code") or {}, b.get("code") or {}),
        "data": data_differences(a.get("data") or {}, b.get("data") or {}),
        "env": env_differences(a.get("env") or {}, b.get("env") or {}),
        "params": _dict_changes(original.get("params") or {}, new.get("params") or {}),
        "status": []
        if original.get("status") == new.get("status")
        else [f"{original.get('status')}→{new.get('status')}"],  # fmt: skip
        "metrics": metric_differences(
            original.get("metrics") or {}, new.get("metrics") or {}, rel_tol=rel_tol
        ),
    }
    differences = [{"section": name, "items": items} for name in COMPARED if (items := found[name])]
    notes = [f"compute {c}" for c in compute_differences(a.get("compute"), b.get("compute"))]
    return {
        "verdict": verdict(differences),
        "reproduced": not differences,
        "differences": differences,
        "notes": notes,
    }


def verdict(differences: list[dict[str, Any]]) -> str:
    """`reproduced` or `diverged in: env (numpy 2.3→2.4), metrics (acc 0.91→0.89)`."""
    if not differences:
        return "reproduced"
    parts = []
    for d in differences:
        items = d["items"]
        shown = ", ".join(items[:SHOWN])
        if len(items) > SHOWN:
            shown += f", +{len(items) - SHOWN} more"
        parts.append(f"{d['section']} ({shown})")
    return "diverged in: " + ", ".join(parts)


def code_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The meaningful code: commit and uncommitted patch (not branch, root path or remote)."""
    if old.get("status") != "ok" or new.get("status") != "ok":
        return [] if old.get("status") == new.get("status") else ["code section missing"]
    out = []
    if old.get("commit") != new.get("commit"):
        out.append(f"commit {str(old.get('commit'))[:7]}→{str(new.get('commit'))[:7]}")
    p_old = (old.get("patch") or {}).get("id")
    p_new = (new.get("patch") or {}).get("id")
    if p_old != p_new:
        out.append(f"patch {_short_id(p_old)[:8]}→{_short_id(p_new)[:8]}")
    return out


def data_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Paths whose recorded hash differs (or that appear on one side only)."""
    if old.get("status") != "ok" or new.get("status") != "ok":
        return [] if old.get("status") == new.get("status") else ["data section missing"]
    h_old = {p: e.get("hash") for p, e in (old.get("paths") or {}).items()}
    h_new = {p: e.get("hash") for p, e in (new.get("paths") or {}).items()}
    out = []
    for path in sorted(set(h_old) | set(h_new)):
        if path not in h_new:
            out.append(f"-{path}")
        elif path not in h_old:
            out.append(f"+{path}")
        elif h_old[path] != h_new[path]:
            out.append(f"{path} {str(h_old[path])[:8]}→{str(h_new[path])[:8]}")
    return out


def compute_differences(old: Any, new: Any) -> list[str]:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return []
    if old.get("hash") and old.get("hash") == new.get("hash"):
        return []
    skip = {"hash", "status", "reason", "disk", "captured_at"}
    out = []
    for key in sorted((set(old) | set(new)) - skip):
        if old.get(key) != new.get(key):
            out.append(f"{key} differs")
    return out


def metric_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], *, rel_tol: float = 1e-6
) -> list[str]:
    """`acc 0.91→0.89` for each metric that differs: integers exactly, floats within rel_tol."""
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(f"{name} {_num(old[name])}→missing")
        elif name not in old:
            out.append(f"{name} missing→{_num(new[name])}")
        elif not metric_equal(old[name], new[name], rel_tol=rel_tol):
            out.append(f"{name} {_num(old[name])}→{_num(new[name])}")
    return out


def metric_equal(a: Any, b: Any, *, rel_tol: float = 1e-6) -> bool:
    numbers = (int, float)
    if (
        isinstance(a, bool)
        or isinstance(b, bool)
        or not (isinstance(a, numbers) and isinstance(b, numbers))
    ):
        return bool(a == b)
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    return math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=0.0)


def _num(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
