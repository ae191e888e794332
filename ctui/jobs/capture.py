"""The manifest of a run, captured when the run leaves the queue, where it runs.

`launch_run` only writes down *what* to capture (`capture_options`, kept in `spec.json`); the
supervisor (local, Docker) or the batch script's first step on the node (Slurm) calls
`capture_run` right before the job starts. So a run that waited in the queue records the tree,
data and interpreter it actually ran on, not those of the moment it was queued.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
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
    return {
        "manifest": hashes,
        "captured": m.get("captured_at"),
        "git": commit[:10] if isinstance(commit, str) else None,
        "dirty": bool(code.get("dirty")) if commit else None,
        "data_hash": hashes.get("data", "")[:12] if data.get("status") == "ok" else None,
        "dvc_params": dvc_params(data),
    }


def dvc_params(data: Mapping[str, Any]) -> dict[str, Any]:
    """The params a DVC pipeline's stages use, as run params: `train.n_est` for params.yaml,
    `other.yaml:key` for other params files; one named like a secret (`db.password`) masked,
    as every run param is."""
    from ctui.manifest.redact import redact_params

    out: dict[str, Any] = {}
    if data.get("status") != "ok":
        return out
    for pfile, values in (data.get("params") or {}).items():
        for key, value in (values or {}).items():
            name = key if pfile == "params.yaml" else f"{pfile}:{key}"
            if isinstance(value, str | int | float | bool) or value is None:
                out[name] = value
            else:
                out[name] = str(value)
    return redact_params(out)


def with_dvc_params(fields: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A store `mutate` that folds `fields["dvc_params"]` into the run's params (the job's own
    params win on equal names) and records which params came from DVC."""
    found = fields.pop("dvc_params", None)

    def mutate(doc: dict[str, Any]) -> None:
        if not found:
            return
        own = {
            k: v for k, v in (doc.get("params") or {}).items() if k not in doc.get("dvc_params", [])
        }
        doc["params"] = {**found, **own}
        doc["dvc_params"] = sorted(k for k in found if k not in own)

    return mutate


def capture_end(project: Project, spec: LaunchSpec, run: Mapping[str, Any]) -> dict[str, Any]:
    """When the run has ended: the data section again, for what the run *made* — the outputs
    as the final `dvc.lock` and workspace hold them, and the params as the job left them (a job
    may write them: `dvc exp run -S`). The inputs stay those read when the run started.
    Returns run fields (`manifest` with the new data hash, `data_hash`, `dvc_params`)."""
    from ctui import manifest as mf
    from ctui.manifest.data import role_of
    from ctui.objects import ObjectStore

    hashes = dict(run.get("manifest") or {})
    opts = spec.options.get("capture") or {}
    if not hashes.get("data"):
        return {}
    objects = ObjectStore(project.objects_dir)
    try:
        start = dict(objects.get_json(hashes["data"]))
        if start.get("status") != "ok":
            return {}
        end = mf.capture(
            Path(opts.get("root") or spec.cwd), sections=("data",),
            data_paths=opts.get("data") or [], cache_dir=project.cache_dir,
        )["sections"]["data"]  # fmt: skip
        if end.get("status") != "ok":
            return {}
        paths = {p: e for p, e in (start.get("paths") or {}).items() if role_of(e) != "output"}
        paths.update({p: e for p, e in (end.get("paths") or {}).items() if role_of(e) == "output"})
        merged = {k: v for k, v in end.items() if k not in ("hash", "status", "reason")}
        merged["paths"] = dict(sorted(paths.items()))
        section = mf.finish_section(merged)
        oid = objects.put_json({k: v for k, v in section.items() if k != "hash"})
    except Exception as exc:  # the run has ended either way: keep the start section
        return {"manifest_error": f"outputs not recorded: {type(exc).__name__}: {exc}"}
    return {
        "manifest": {**hashes, "data": oid},
        "data_hash": oid[:12],
        "dvc_params": dvc_params(section),
    }


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
