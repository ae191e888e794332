"""The one launch path: `ctui run`, the TUI, triggers and reproduce all call `launch_run`.

A run is created in the store first (status `running`, or `queued` when the job's
`max_concurrent` slots are taken — decided under the store lock), then its detached supervisor
is started. `spec.json` in the run folder holds the argv/env/cwd, so a queued run can be started
later by whichever ctui process notices a free slot.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctui.errors import CtuiError, ExitCode
from ctui.ids import new_run_id
from ctui.jobs.backends import get_backend
from ctui.jobs.backends.base import LaunchSpec
from ctui.jobs.capture import capture_options
from ctui.jobs.command import build_argv, build_env, validate_params
from ctui.store import FINAL, Store, open_store

if TYPE_CHECKING:
    from ctui.config import Config, JobConfig
    from ctui.project import Project

SPEC_FILE = "spec.json"
LOG_FILE = "output.log"
SUPERVISOR_LOG = "supervisor.log"


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
    project.ensure()
    config = _load_config(project, config)
    job = config.job(job_name)
    params = validate_params(job, params)
    backend_name = backend or job.backend
    be = get_backend(backend_name)
    be.check(job)

    store = open_store(project)
    store.initialise()
    run_id = run_id or new_run_id()
    run_dir = project.run_dir(run_id)
    root = Path(workdir).resolve() if workdir is not None else project.root
    argv = build_argv(
        job, params, run_id=run_id, run_dir=run_dir, python=job_python(job, root, project.root)
    )
    env = build_env(job, params, run_dir)
    if isinstance(job.gpus, list) and backend_name == "local":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in job.gpus)

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOG_FILE).touch()
    doc = new_run_doc(
        run_id,
        job,
        params,
        backend=backend_name,
        command=argv,
        trigger=trigger or "manual",
        cause=cause,
        reproduces=reproduces,
        workdir=str(root) if workdir is not None else None,
    )
    if extra:
        doc.update(extra)
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
        backend=backend_name,
        shell=job.shell,
        gpus=job.gpus,
        image=job.image,
        options={
            "monitor_interval": config.monitor_interval,
            "metrics": list(job.metrics),
            "mlflow": config.mlflow.enabled,
            "store_file": str(project.store_file),
            "state_dir": str(project.state_dir),
            "slurm": vars(job.slurm) if backend_name == "slurm" else {},
            "capture": capture_options(project, config, job, root),
            # a run given its own checkout (reproduce) is isolated already
            "isolate": job.isolate if workdir is None else None,
            "keep_worktree": job.keep_worktree,
        },
    )
    (run_dir / SPEC_FILE).write_bytes(orjson.dumps(spec.to_dict(), option=orjson.OPT_INDENT_2))

    if not be.supervised:
        doc["status"] = "queued"
        store.insert_run(doc)
        try:
            submitted = be.submit(project, doc, spec)
        except CtuiError as exc:
            store.update_run(
                run_id, {"status": "failed", "ended": time.time(), "error": exc.message}
            )
            raise
        return store.update_run(run_id, submitted) or store.get_run(run_id)

    def insert(data: dict[str, Any]) -> str:
        runs = data.setdefault("runs", {})
        if job.max_concurrent is not None:
            busy = sum(
                1
                for r in runs.values()
                if r.get("job") == job.name and r.get("status") == "running"
            )
            if busy >= job.max_concurrent:
                doc["status"] = "queued"
        runs[run_id] = doc
        return str(doc["status"])

    status = store.transact(insert)
    if status == "running":
        start_supervisor(project, run_id, store)
    return store.get_run(run_id)


def supervisor_argv(project: Project, run_id: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ctui.jobs.supervisor",
        str(project.state_dir),
        run_id,
        "--root",
        str(project.root),
        "--store",
        str(project.store_file),
    ]


def supervisor_env() -> dict[str, str]:
    """The launcher's environment, plus the folder ctui is imported from on PYTHONPATH (so the
    supervisor finds ctui even when it runs from a source checkout); the supervisor restores
    the original PYTHONPATH before it starts the job."""
    import ctui

    env = dict(os.environ)
    original = env.get("PYTHONPATH")
    here = str(Path(ctui.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + original if original else "")
    env[_ORIG_PYTHONPATH] = original if original is not None else _UNSET
    return env


_ORIG_PYTHONPATH = "CTUI_ORIGINAL_PYTHONPATH"
_UNSET = "<unset>"


def restore_pythonpath() -> None:
    """In the supervisor: undo `supervisor_env`'s PYTHONPATH change for the job's sake."""
    original = os.environ.pop(_ORIG_PYTHONPATH, None)
    if original is None:
        return
    if original == _UNSET:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = original


def start_supervisor(project: Project, run_id: str, store: Store | None = None) -> int:
    """Start the detached supervisor of a `running` run; return its pid.

    Own session (setsid), stdin from /dev/null and output to the run's `supervisor.log`, so it
    survives the launching terminal closing, SIGHUP and the TUI quitting.
    """
    import psutil

    store = store or open_store(project)
    run_dir = project.run_dir(run_id)
    with open(run_dir / SUPERVISOR_LOG, "ab") as err:
        try:
            proc = subprocess.Popen(
                supervisor_argv(project, run_id),
                cwd=str(project.root),
                env=supervisor_env(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            store.update_run(
                run_id,
                {"status": "failed", "ended": time.time(), "error": f"supervisor failed: {exc}"},
                when=lambda d: d["status"] == "running",
            )
            raise CtuiError(
                f"could not start the supervisor: {exc}", code=ExitCode.FAILED
            ) from None
    _CHILDREN.append(proc)
    try:
        ctime = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        ctime = None
    store.update_run(
        run_id,
        {"supervisor_pid": proc.pid, "supervisor_ctime": ctime},
        when=lambda d: d["status"] == "running" and d.get("supervisor_pid") in (None, proc.pid),
    )
    reap_children()
    return proc.pid


#: supervisors started by this process: polled now and then so none stays a zombie
_CHILDREN: list[subprocess.Popen[bytes]] = []


def reap_children() -> None:
    _CHILDREN[:] = [p for p in _CHILDREN if p.poll() is None]


def supervisor_alive(run: dict[str, Any]) -> bool | None:
    """True/False whether the run's supervisor still exists (pid and start time match);
    None when it cannot be told from here (another host, no pid recorded yet)."""
    import psutil

    if run.get("host") not in (None, socket.gethostname()):
        return None
    pid = run.get("supervisor_pid")
    if not pid:
        return None
    reap_children()
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        ctime = run.get("supervisor_ctime")
        return ctime is None or abs(proc.create_time() - ctime) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # exists but not ours to inspect: assume alive


def _signal_group(pgid: int | None, sig: int) -> None:
    if pgid:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_run(project: Project, run_id: str, grace: float = 10.0) -> dict[str, Any]:
    """Stop a run; returns its document (status `cancelled` once stopped).

    queued → cancelled at once. Local/Docker → the supervisor is asked (SIGTERM to it) to stop
    the job: SIGTERM to its process group (or the container), SIGKILL after `grace` seconds.
    If the supervisor is gone, the job's process group is signalled from here. Slurm → scancel.
    A run that already ended is returned unchanged.
    """
    store = open_store(project)
    run_id = store.resolve(run_id)
    run = store.get_run(run_id)
    now = time.time()
    # a queued Slurm run waits in Slurm's queue, not ours: it needs scancel like a running one
    if run["status"] == "queued" and run.get("backend") != "slurm":
        done = store.update_run(
            run_id,
            {"status": "cancelled", "ended": now, "error": "cancelled while queued"},
            when=lambda d: d["status"] == "queued",
        )
        if done is not None:
            return done
        run = store.get_run(run_id)
    if run["status"] in FINAL:
        return run

    be = get_backend(run.get("backend") or "local")
    if not be.supervised:
        be.stop(project, run, grace)
        return store.update_run(
            run_id,
            {"status": "cancelled", "ended": time.time(), "error": "stopped by user"},
            when=lambda d: d["status"] not in FINAL,
        ) or store.get_run(run_id)

    host = run.get("host")
    if host and host != socket.gethostname():
        raise CtuiError(
            f"run {run_id} runs on host {host}; its processes cannot be signalled from here",
            hint=f"run `ctui stop {run_id}` on {host}",
        )
    store.update_run(
        run_id,
        {"stop_requested": {"time": now, "grace": grace}},
        when=lambda d: d["status"] == "running",
    )
    alive = supervisor_alive(run)
    if alive:
        try:
            os.kill(run["supervisor_pid"], signal.SIGTERM)
        except ProcessLookupError:
            alive = False
    deadline = time.monotonic() + grace + 10.0
    while alive and time.monotonic() < deadline:
        cur = store.get_run(run_id)
        if cur["status"] in FINAL:
            return cur
        if not cur.get("supervisor_pid") and cur["status"] == "running":
            pass  # supervisor still starting: it reads stop_requested when it does
        elif supervisor_alive(cur) is False:
            break
        time.sleep(0.05)
    # no supervisor (or it does not answer): stop the job group from here
    cur = store.get_run(run_id)
    if cur["status"] in FINAL:
        return cur
    if cur.get("backend", "local") != "local":
        try:
            be.stop(project, cur, grace)  # e.g. stop the container directly
        except NotImplementedError:
            pass
    _signal_group(cur.get("pgid"), signal.SIGTERM)
    end = time.monotonic() + grace
    while cur.get("pgid") and _group_alive(cur["pgid"]) and time.monotonic() < end:
        time.sleep(0.05)
    _signal_group(cur.get("pgid"), signal.SIGKILL)
    return store.update_run(
        run_id,
        {"status": "cancelled", "ended": time.time(), "error": "stopped; its supervisor was gone"},
        when=lambda d: d["status"] == "running",
    ) or store.get_run(run_id)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
