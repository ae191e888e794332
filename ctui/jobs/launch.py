"""The one launch path: `ctui run`, the TUI, triggers and reproduce all call `launch_run`.

A run is created in the store first (status `running`, or `queued` when the job's
`max_concurrent` slots are taken — decided under the store lock), then its detached supervisor
is started. `spec.json` in the run folder holds the argv/env/cwd, so a queued run can be started
later by whichever ctui process notices a free slot.

Nothing ctui writes holds a secret: the run document goes through `redact_doc` (a param named
like a secret is `<redacted>`), and `spec.json` is sealed (`seal.seal`): its secret values
wait in a private folder on a memory file system until the run's supervisor takes them back
(`seal.unseal_spec`), so the job still gets them and no disk ever does.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctui.atomic import atomic_write_bytes
from ctui.errors import CtuiError
from ctui.ids import new_run_id
from ctui.jobs.backends import get_backend
from ctui.jobs.backends.base import LaunchSpec
from ctui.jobs.capture import capture_options
from ctui.jobs.command import build_argv, build_env, validate_params
from ctui.jobs.queue import holds_slot
from ctui.jobs.seal import keep_sealed, seal
from ctui.jobs.spawn import Spawner, start_supervisors, starter
from ctui.jobs.stop import stop_run
from ctui.store import RUNS, Store, live_runs, open_store

if TYPE_CHECKING:
    from ctui.config import Config, JobConfig
    from ctui.project import Project

__all__ = ["LOG_FILE", "SPEC_FILE", "job_python", "launch_many", "launch_run", "stop_run"]

SPEC_FILE = "spec.json"
LOG_FILE = "output.log"


def _load_config(project: Project, config: Config | None) -> Config:
    if config is not None:
        return config
    from ctui.config import load_config

    return load_config(project.root)


def job_python(job: JobConfig, root: Path, project_root: Path) -> str | None:
    """The job's `python` setting as an absolute path when it is a relative one (looked up in
    the checkout the job runs in, then the project: a reproduce worktree has no `.venv`)."""
    if not job.python or "/" not in job.python or os.path.isabs(job.python):
        return job.python
    for base in (root, project_root):
        if (base / job.python).exists():
            return str(base / job.python)
    return str(root / job.python)


def new_run_doc(
    run_id: str, job: JobConfig, params: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A run document with every field of the schema (docs/architecture.md)."""
    doc: dict[str, Any] = {
        "id": run_id,
        "job": job.name,
        "status": "running",
        "created": time.time(),
        "started": None,
        "ended": None,
        "duration": None,
        "exit_code": None,
        "params": params,
        "metrics": {},
        "tags": [],
        "note": "",
        "trigger": "manual",
        "cause": None,
        "backend": job.backend,
        "command": [],
        "manifest": {},
        "git": None,
        "data_hash": None,
        "host": socket.gethostname(),
        "pid": None,
        "pgid": None,
        "supervisor_pid": None,
        "error": None,
        "log_tail": [],
        "peaks": {},
        "reproduces": None,
        "verdict": None,
        "mlflow": None,
        "slurm": None,
        "docker": None,
        "max_concurrent": job.max_concurrent,
    }
    doc.update(fields)
    return doc


def launch_run(
    project: Project,
    job_name: str,
    params: dict[str, Any] | None = None,
    *,
    trigger: str | None = None,
    cause: str | None = None,
    reproduces: str | None = None,
    backend: str | None = None,
    workdir: Path | None = None,
    extra: dict[str, Any] | None = None,
    config: Config | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Launch a run of `job_name` and return its run document.

    Validates `params` against the job's declared params (unknown or ill-typed → CtuiError,
    exit 2), creates the run (`running`, or `queued` when the job's `max_concurrent` is
    reached), starts the detached supervisor (local/docker) or submits to the engine (slurm).
    The manifest is captured when the job starts, by whatever starts it (`ctui.jobs.capture`).
    `workdir` runs the job in another checkout of the project (reproduce
    uses a git worktree); `trigger`/`cause` record why it was launched (default `manual`);
    `extra` fields are merged into the run document. `run_id` (from `ctui.ids.new_run_id`)
    lets a caller show the run before the launch returns (the TUI's live view).
    """
    return launch_many(
        project,
        job_name,
        [params or {}],
        extras=[{**(extra or {}), **({"id": run_id} if run_id else {})}],
        trigger=trigger,
        cause=cause,
        reproduces=reproduces,
        backend=backend,
        workdir=workdir,
        config=config,
    )[0]


def launch_many(
    project: Project,
    job_name: str,
    params: list[dict[str, Any]],
    *,
    extras: list[dict[str, Any]] | None = None,
    trigger: str | None = None,
    cause: str | None = None,
    reproduces: str | None = None,
    backend: str | None = None,
    workdir: Path | None = None,
    config: Config | None = None,
) -> list[dict[str, Any]]:
    """Launch one run of `job_name` per entry of `params` (a sweep): every one validated
    before any is created, all inserted in one store write and their supervisors recorded in
    another, so a sweep costs about what one launch does. `extras[i]` is merged into run i
    (an `id` there is used as the run's id). An external backend (Slurm) gets them one by one.
    """
    project.ensure()
    config = _load_config(project, config)
    job = config.job(job_name)
    checked = [validate_params(job, p) for p in params]
    backend_name = backend or job.backend
    be = get_backend(backend_name)
    be.check(job)
    store = open_store(project)
    store.initialise()
    root = Path(workdir).resolve() if workdir is not None else project.root
    base = {
        "backend": backend_name,
        "trigger": trigger or "manual",
        "cause": cause,
        "reproduces": reproduces,
        "workdir": str(root) if workdir is not None else None,
    }
    extras = extras or [{} for _ in checked]
    ids = [x.get("id") or new_run_id() for x in extras]
    prepared: list[tuple[dict[str, Any], LaunchSpec]] = []
    try:
        for p, x, run_id in zip(checked, extras, ids, strict=True):
            fields = {**base, **x, "id": run_id}
            prepared.append(
                _prepare(
                    project,
                    config,
                    job,
                    p,
                    root,
                    fields,
                    isolated=workdir is not None,
                    supervised=be.supervised,
                )
            )
    except BaseException:  # a full disk half way: no run folder without its run
        _forget(project, ids)
        raise
    if not be.supervised:
        return [_submit(project, store, be, doc, spec) for doc, spec in prepared]
    docs = [doc for doc, _ in prepared]
    # many supervisors are started by a helper, so the launcher returns at once (forking 50
    # of them here took 3 s on 2 busy cores); one is started here, a few ms
    spawner = Spawner(project) if len(docs) > 1 else None
    who = spawner.who if spawner else starter()
    for doc in docs:
        doc["starter"] = who

    def insert(data: dict[str, Any]) -> list[str]:
        runs = data.setdefault(RUNS, {})
        # a lost run whose job lives on (an orphan) still holds its slot
        busy = sum(1 for r in live_runs(runs) if r.get("job") == job.name and holds_slot(r))
        running = []
        for doc in docs:
            if job.max_concurrent is not None and busy >= job.max_concurrent:
                doc["status"] = "queued"
            else:
                busy += 1
                running.append(doc["id"])
            runs[doc["id"]] = doc
        return running

    running: list[str] = []
    try:
        running = store.transact(insert)
    except BaseException:
        _forget(project, [doc["id"] for doc in docs])
        raise
    finally:
        if spawner:
            spawner.hand(running)  # nothing, when the insert failed: it exits
    if running and not spawner:
        start_supervisors(project, running, store)
    table = store.read_all().get(RUNS, {})  # the launched runs' own segments only
    return [table.get(doc["id"], doc) for doc in docs]


def _forget(project: Project, run_ids: list[str]) -> None:
    """The run folders (and sealed secrets) of runs that never made it into the store."""
    import shutil

    from ctui.jobs.seal import drop_sealed

    for run_id in run_ids:
        shutil.rmtree(project.run_dir(run_id), ignore_errors=True)
        drop_sealed(run_id)


def _prepare(
    project: Project,
    config: Config,
    job: JobConfig,
    params: dict[str, Any],
    root: Path,
    fields: dict[str, Any],
    *,
    isolated: bool,
    supervised: bool,
) -> tuple[dict[str, Any], LaunchSpec]:
    """One run's document and launch spec (`spec.json` written into its new run folder)."""
    run_id = fields.pop("id", None) or new_run_id()
    run_dir = project.run_dir(run_id)
    argv = build_argv(
        job, params, run_id=run_id, run_dir=run_dir, python=job_python(job, root, project.root)
    )
    env = build_env(job, params, run_dir)
    if isinstance(job.gpus, list) and fields["backend"] == "local":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in job.gpus)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOG_FILE).touch()
    from ctui.manifest.redact import redact_doc

    # the run document never holds a secret param's value (nor `command` repeating it)
    doc = redact_doc(new_run_doc(run_id, job, params, command=argv, **fields))
    if config.mlflow.enabled:
        from ctui.integrations import mlflow_bridge

        env.update(mlflow_bridge.before_launch(project, config, doc))
    spec = LaunchSpec(
        run_id=run_id,
        job=job.name,
        argv=argv,
        env=env,
        cwd=str((root / job.workdir).resolve()),
        project_root=str(project.root),
        run_dir=str(run_dir),
        log_path=str(run_dir / LOG_FILE),
        backend=fields["backend"],
        shell=job.shell,
        gpus=job.gpus,
        image=job.image,
        options={
            "monitor_interval": config.monitor_interval,
            "metrics": list(job.metrics),
            "mlflow": config.mlflow.enabled,
            "store_file": str(project.store_file),
            "state_dir": str(project.state_dir),
            "slurm": vars(job.slurm) if fields["backend"] == "slurm" else {},
            "capture": capture_options(project, config, job, root),
            # a run given its own checkout (reproduce) is isolated already
            "isolate": None if isolated else job.isolate,
            "keep_worktree": job.keep_worktree,
            "output_metrics": job.output_metrics.to_options(),
        },
    )
    written = _sealed_spec(spec, params, supervised=supervised)
    atomic_write_bytes(
        run_dir / SPEC_FILE, orjson.dumps(written.to_dict(), option=orjson.OPT_INDENT_2)
    )
    # the real values, and what is masked (`options["sealed"]`) for an engine's batch script
    return doc, dataclasses.replace(spec, options=written.options)


def _sealed_spec(spec: LaunchSpec, params: dict[str, Any], *, supervised: bool) -> LaunchSpec:
    """What `spec.json` holds: `spec` with secret values masked (`seal.seal`), the real ones
    kept in memory until the supervisor takes them back (`keep_sealed`, `unseal_spec`); where
    the machine has no memory file system, the spec as it is."""
    safe_argv, safe_env, sealed = seal(spec.argv, spec.env, params)
    # an engine's batch script carries the job's argv and env (the backend's own file, naming
    # the masked ones by reference); what ctui keeps beside the run is read only to capture
    # the manifest
    if not sealed or (supervised and not keep_sealed(spec.run_id, sealed)):
        return spec
    from ctui.manifest.redact import is_secret_param

    masked = {
        "params": sorted(k for k in params if is_secret_param(k)),
        "argv": sorted(int(i) for i in sealed.get("argv", {})),
        "env": sorted(sealed.get("env", {})),
    }
    return dataclasses.replace(
        spec, argv=safe_argv, env=safe_env, options={**spec.options, "sealed": masked}
    )


def _submit(
    project: Project, store: Store, be: Any, doc: dict[str, Any], spec: LaunchSpec
) -> dict[str, Any]:
    """An external backend's run: queued in the store, then handed to the engine."""
    run_id = doc["id"]
    doc["status"] = "queued"
    store.insert_run(doc)
    try:
        submitted = be.submit(project, doc, spec)
    except CtuiError as exc:
        store.update_run(run_id, {"status": "failed", "ended": time.time(), "error": exc.message})
        raise
    return store.update_run(run_id, submitted) or store.get_run(run_id)
