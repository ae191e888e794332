"""The manifest of a run, captured when the run leaves the queue, where it runs.

`launch_run` only writes down *what* to capture (`capture_options`, kept in `spec.json`); the
supervisor (local, Docker) or the batch script's first step on the node (Slurm) calls
`capture_run` right before the job starts. So a run that waited in the queue records the tree,
data and interpreter it actually ran on, not those of the moment it was queued.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctui.config import Config, JobConfig
    from ctui.jobs.backends.base import LaunchSpec
    from ctui.project import Project


def capture_options(project: Project, config: Config, job: JobConfig, root: Path) -> dict[str, Any]:
    """What `capture_run` needs, as JSON-safe data for `spec.options["capture"]`."""
    return {
        "root": str(root),
        "data": list(job.data),
        "python": job.python,
        "bases": list(dict.fromkeys([str(root), str(project.root)])),
        "manifest": dataclasses.asdict(config.manifest),
    }


def capture_run(
    project: Project,
    spec: LaunchSpec,
    *,
    env: Mapping[str, str] | None = None,
    python: Callable[[], dict[str, Any]] | None = None,
    sections: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Capture and store the run's manifest → run fields (`manifest`, `git`, `dirty`,
    `data_hash`, and `manifest_error` when something went wrong that was not a section
    being absent). Never raises: a job is never kept from starting by its record.

    `env`: the environment the job gets (default: this process's plus the spec's).
    `python`: describes the job's interpreter (a container backend asks inside the image);
    default: resolved from the spec's command and PATH, asked by a probe.
    """
    from ctui import manifest as mf
    from ctui.config import ManifestConfig
    from ctui.manifest import interpreter
    from ctui.objects import ObjectStore

    opts = spec.options.get("capture") or {}
    root = Path(opts.get("root") or spec.cwd)
    job_env = {**os.environ, **spec.env} if env is None else dict(env)
    cwd = Path(spec.cwd)

    def describe() -> dict[str, Any]:
        return interpreter.describe(
            spec.argv,
            job_env,
            cwd,
            configured=opts.get("python"),
            bases=[Path(b) for b in opts.get("bases") or []],
            shell=spec.shell,
            cache_dir=project.cache_dir,
        )

    manifest_opts = ManifestConfig(**(opts.get("manifest") or {}))
    try:
        m = mf.capture(
            root,
            sections=sections or mf.SECTIONS,
            data_paths=opts.get("data") or [],
            cache_dir=project.cache_dir,
            env=job_env,
            python=python or describe,
            options=manifest_opts,
        )
        hashes = mf.save(ObjectStore(project.objects_dir), m)
    except Exception as exc:  # a bug or a full disk: say so on the run, start the job anyway
        return {"manifest_error": f"manifest capture failed: {type(exc).__name__}: {exc}"}
    secs = m.get("sections", {})
    code = secs.get("code", {})
    commit = code.get("commit") if code.get("status") == "ok" else None
    data = secs.get("data", {})
    fields: dict[str, Any] = {"manifest": hashes, "captured": m.get("captured_at")}
    if "code" in secs:
        fields["git"] = commit[:10] if isinstance(commit, str) else None
        fields["dirty"] = bool(code.get("dirty")) if commit else None
    if "data" in secs:
        fields["data_hash"] = hashes.get("data", "")[:12] if data.get("status") == "ok" else None
    return fields


def job_describer(
    job: JobConfig,
    root: Path,
    project_root: Path,
    env: Mapping[str, str],
    *,
    cache_dir: Path | None,
    params: Mapping[str, Any] | None = None,
) -> Callable[[], dict[str, Any]]:
    """`describe()` of the interpreter a run of `job` in `root` would use, before any run
    exists (`ctui manifest --job`, reproduce's env check)."""
    from ctui.jobs.command import build_argv, validate_params
    from ctui.jobs.launch import job_python
    from ctui.manifest import interpreter

    argv = build_argv(
        job, validate_params(job, dict(params or {})), python=job_python(job, root, project_root)
    )
    cwd = (root / job.workdir).resolve()

    def describe() -> dict[str, Any]:
        return interpreter.describe(
            argv, env, cwd, configured=job.python, bases=[root, project_root], shell=job.shell,
            cache_dir=cache_dir,
        )  # fmt: skip

    return describe


def interpreter_describer(
    python: str, env: Mapping[str, str], cwd: Path, cache_dir: Path | None
) -> Callable[[], dict[str, Any]]:
    """`describe()` of one named interpreter (`ctui manifest --python PATH`)."""
    from ctui.manifest import interpreter

    def describe() -> dict[str, Any]:
        info = interpreter.describe([python], env, cwd, configured=python, cache_dir=cache_dir)
        return {**info, "how": "given with --python"}

    return describe
