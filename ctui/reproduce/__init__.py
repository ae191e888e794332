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
   A DVC pipeline really runs again, every stage (`rebuild.py`): `dvc repro` / `dvc exp run`
   get `--force`; any other command that runs dvc gets an own, empty DVC cache for the
   worktree and the stage outputs removed. How is recorded on the new run as `rebuild`.
5. compare — code (commit + patch), data inputs (per-path hashes), env, params, status,
   metrics (integers exactly, floats within `rel_tol`) and the pipeline's outputs (DVC's
   hashes) → `reproduced (model.pkl bit-identical)`, `metrics match, model.pkl differs`,
   `diverged in: …` or `not verified: …` (a stage the log shows DVC skipped or restored from a
   cache among the reasons), stored on the new run as `verdict`. Paths and host-specific
   details are not compared; compute differences are notes only (another box may reproduce a
   run exactly).

Steps 1 to 4 up to the launch are the set-up: each reports its line and time as it ends
(`progress.py`), and the result carries them (`setup`, `setup_s`, `start_s`).

The CLI (`ctui reproduce`) and the TUI (`R`) both call `reproduce_run`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError, ExitCode
from ctui.reproduce.compare import (
    SHOWN,
    _count,
    compare_runs,
    dvc_stages,
    env_differences,
    metric_differences,
    metric_equal,
    verdict,
)
from ctui.reproduce.data import _checkout_failures, _is_input, restore_data
from ctui.reproduce.progress import Progress, Said, SetupClock, seconds_text
from ctui.reproduce.rebuild import Rebuild, force_rebuild, read_pipeline
from ctui.reproduce.worktree import (
    WORKTREES,
    _patch_bytes,
    _top,
    _worktree_name,
    add_worktree,
    apply_patch,
    checkout_submodules,
    git_prefix,
    patch_files,
    remove_worktree,
    require_commit,
    write_untracked,
)

if TYPE_CHECKING:
    from ctui.config import Config
    from ctui.objects import ObjectStore
    from ctui.project import Project

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
    "reproduced": bool, "differences": [...], "notes": [...], "env_before": [...],
    "setup": [{"step", "seconds", "detail"}, ...], "setup_s": float, "start_s": float}`
    (`setup_s`: this call → the job handed to its supervisor; `start_s`: → the job's
    `started`). Raises CtuiError: exit 2 for what cannot be rebuilt (no manifest, commit gone,
    data missing, engine down), exit 1 for `strict` with a differing environment.
    `progress(message)` is called with each step as it ends, e.g. from a TUI worker; a set-up
    step's message is a `Said`, with its `seconds`.
    """
    from ctui import manifest as mf
    from ctui.objects import ObjectStore
    from ctui.store import ACTIVE, open_store

    say = progress or (lambda _msg: None)
    clock = SetupClock(say)
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
        here = _rebuild_code(project, worktree, code, objects, clock, keep_worktree)

        since = clock.now()
        pipeline = read_pipeline(here, commit)  # a broken dvc.yaml: exit 2, before DVC runs
        data = recorded.get("data") or {}
        clock.done("data", restore_data(project.root, here, data), since)

        since = clock.now()
        config, job_name, backend_name = _job_config(project, here, original, backend)
        env_before = _env_before(project, config, job_name, here, original, recorded)
        if env_before:
            said = (
                f"env: {_count(env_before, 'difference')}: "
                + ", ".join(env_before[:5])
                + (" …" if len(env_before) > 5 else "")
            )
            clock.done("env", said, since)
            if strict:
                raise CtuiError(
                    f"the environment differs from run {rid}'s: " + ", ".join(env_before),
                    hint="install the recorded versions, or reproduce without --strict",
                    code=ExitCode.FAILED,
                )
        elif backend_name != "docker":
            clock.done("env", "env: same Python and packages as the original", since)

        since = clock.now()
        rebuild = force_rebuild(config, job_name, project.root, worktree, here, pipeline, data)
        if rebuild is not None:
            clock.done("rebuild", rebuild.said, since)
        since = clock.now()
        new = _launch(project, config, job_name, backend_name, original, here, rebuild)
        clock.done("launch", f"launched {new['id']} ({backend_name})", since)
        say(f"set up in {seconds_text(clock.finish())}; waiting for run {new['id']}…")
        new = _wait(project, new["id"], poll)
        say(f"run {new['id']} {new['status']}")

        from ctui.jobs.launch import LOG_FILE

        # any job of a DVC project: what DVC printed says whether it ran the stages (a job
        # that runs dvc where no rebuild could reach, `make repro`, is caught here)
        log = project.run_dir(new["id"]) / LOG_FILE
        with _lines(log if pipeline.stages else None) as lines:
            result = compare_runs(
                original, new, objects, rel_tol=rel_tol, log=lines, order=pipeline.order()
            )
        ran = result["stages"]["ran"]
        if ran:
            say(f"dvc ran {_count(ran, 'stage')}: " + ", ".join(ran[:8])
                + (" …" if len(ran) > 8 else ""))  # fmt: skip
        result["env_before"] = env_before
        fields = {
            "verdict": result["verdict"],
            "reproduced": result["reproduced"],
            "outcome": result["outcome"],
            "differences": result["differences"],
            "unverified": result["unverified"],
        }
        new = store.update_run(new["id"], fields) or store.get_run(new["id"])
        return {"run": new, "original": original, **result, **clock.result(new.get("started"))}
    finally:
        if not keep_worktree:
            remove_worktree(project.root, worktree)


# -- 1. code ---------------------------------------------------------------------------------


def _rebuild_code(
    project: Project,
    worktree: Path,
    code: Mapping[str, Any],
    objects: ObjectStore,
    clock: SetupClock,
    keep: bool,
) -> Path:
    """The worktree at the recorded commit, the patch, the submodules and the untracked files,
    each timed; → the project's folder in the worktree."""
    commit = str(code["commit"])
    since = clock.now()
    add_worktree(project.root, worktree, commit)
    # the project may live in a sub-folder of the repository: the same one in the worktree
    here = worktree / git_prefix(project.root)
    clock.done("worktree", f"worktree at {commit[:7]}" + (f": {worktree}" if keep else ""), since)

    since = clock.now()
    patch = _patch_bytes(objects, code)
    if patch:
        apply_patch(worktree, patch, commit)
        clock.done("patch", f"patch applied ({_count_files(patch_files(patch))})", since)
    redactions = (code.get("patch") or {}).get("redactions") or 0
    if redactions:
        clock.note(f"note: {redactions} secret(s) were redacted from the recorded patch; the "
                   "worktree has placeholders there")  # fmt: skip

    submodules = code.get("submodules") or {}
    subs = sorted(p for p, s in submodules.items() if s.get("initialised"))
    if subs:
        since = clock.now()
        checkout_submodules(_top(project.root), worktree, submodules, objects.get_bytes)
        said = (
            f"{len(subs)} submodule(s) at their recorded commits: "
            + ", ".join(subs[:SHOWN])
            + (" …" if len(subs) > SHOWN else "")
        )
        clock.done("submodules", said, since)

    captured = code.get("untracked_files") or {}
    if captured:
        since = clock.now()
        write_untracked(worktree, captured, objects.get_bytes)
        said = f"restored {len(captured)} untracked file(s) of the original"
        clock.done("untracked", said, since)
    untracked = [p for p in code.get("untracked") or [] if p not in captured]
    if untracked:
        skipped = code.get("untracked_skipped") or {}
        named = [f"{p} ({skipped[p]})" if p in skipped else p for p in untracked[:SHOWN]]
        shown = ", ".join(named) + (" …" if len(untracked) > SHOWN else "")
        clock.note(f"note: {len(untracked)} untracked file(s) of the original were not "
                   f"captured and not rebuilt: {shown}")  # fmt: skip
    return here


def _count_files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"


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


def _env_before(
    project: Project,
    config: Config,
    job_name: str,
    here: Path,
    original: Mapping[str, Any],
    recorded: Mapping[str, Any],
) -> list[str]:
    """The job's environment now (its interpreter, as the run will see it) against the
    recorded one. A Docker run's image is pinned: its env is compared after the run."""
    from ctui import manifest as mf
    from ctui.jobs.capture import job_describer

    job = config.jobs[job_name]
    if job.backend == "docker":
        return []
    env = {**os.environ, **job.env}
    describe = job_describer(
        job, here, project.root, env, cache_dir=project.cache_dir, params=job_params(original)
    )
    current = mf.capture(
        here, sections=("env",), env=env, python=describe, options=config.manifest,
        cache_dir=project.cache_dir,
    )["sections"]["env"]  # fmt: skip
    return env_differences(recorded.get("env") or {}, current, image=False)


def job_params(run: Mapping[str, Any]) -> dict[str, Any]:
    """The params the job itself takes: the run's, less those read from DVC's params files
    (`dvc_params`), which the worktree's params.yaml gives the new run again."""
    from_dvc = set(run.get("dvc_params") or [])
    return {k: v for k, v in (run.get("params") or {}).items() if k not in from_dvc}


def _recorded_image(run: Mapping[str, Any]) -> str | None:
    from ctui.jobs.backends.docker import pinned_ref

    info = run.get("docker") or {}
    return pinned_ref(info) if info else None


# -- 4. run ----------------------------------------------------------------------------------


def _launch(
    project: Project,
    config: Config,
    job_name: str,
    backend: str,
    original: Mapping[str, Any],
    worktree: Path,
    rebuild: Rebuild | None = None,
) -> dict[str, Any]:
    from ctui.jobs.launch import launch_run

    return launch_run(
        project,
        job_name,
        job_params(original),
        cause=f"reproduces {original['id']}",
        reproduces=str(original["id"]),
        backend=backend,
        workdir=worktree,
        config=config,
        extra={"rebuild": rebuild.how if rebuild is not None else None},
    )


@contextlib.contextmanager
def _lines(path: Path | None) -> Iterator[Iterable[str]]:
    """The lines of a run's log, read as they are consumed (a log may be large)."""
    if path is None or not path.is_file():
        yield []
        return
    with path.open(errors="replace") as fh:
        yield fh


#: how long to wait after a run ends for its MLflow metrics before comparing without them
MLFLOW_SETTLE_S = 60.0


def _wait(project: Project, run_id: str, poll: float) -> dict[str, Any]:
    """Wait for the run to end and its MLflow metrics to land (never long on an unreachable
    server); Ctrl-C stops the run and is passed on."""
    from ctui.jobs.reconcile import wait_for_end

    try:
        return wait_for_end(project, run_id, poll=poll, mlflow_settle=MLFLOW_SETTLE_S)
    except KeyboardInterrupt:
        from ctui.jobs.stop import stop_run

        with contextlib.suppress(CtuiError):
            stop_run(project, run_id, grace=5)
        raise


__all__ = [
    "reproduce_run",
    "Progress",
    "Said",
    "compare_runs",
    "dvc_stages",
    "job_params",
    "env_differences",
    "metric_differences",
    "metric_equal",
    "verdict",
    "restore_data",
    "_checkout_failures",
    "_is_input",
]
