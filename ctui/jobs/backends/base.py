"""The backend contract: where a job runs and how ctui starts, watches and stops it.

There are two kinds of backend.

**Supervised** (`supervised = True`: local, docker). The job runs *inside* ctui's detached
supervisor process (`python -m ctui.jobs.supervisor`), which owns everything around it: the
log file, resource sampling, the final status. The supervisor calls

    execution = backend.start(spec)       # raise StartError if it cannot start at all
    execution.info()                      # fields merged into the run doc (pid, docker{...})
    execution.host_pids()                 # PIDs on this host to sample with psutil (each tick)
    execution.poll() / wait(timeout)      # exit code once it ended, else None
    execution.stop(grace)                 # SIGTERM-equivalent, then kill after `grace` s
    execution.close()                     # after exit: join log-streaming threads etc.

`start` must send the job's stdout+stderr into `spec.log_path` (append). The local backend
lets the child write straight to the file descriptor; a container backend streams the
container's output there from a thread until it ends. `ctui stop` never talks to a supervised
backend directly: it asks the supervisor (SIGTERM to it), which calls `execution.stop`.

**External** (`supervised = False`: slurm). Another engine runs and tracks the job; there is no
local supervisor. ctui calls

    fields = backend.submit(project, run, spec)         # e.g. {"slurm": {"job_id": ...}}
    updates = backend.refresh(project, runs)            # {run_id: fields}, one engine query
    backend.stop(project, run, grace)                   # e.g. scancel

`refresh` is called by `ctui.jobs.reconcile.refresh` with all the backend's active runs at
once; the fields it returns are merged into each run (status, exit_code, ended, slurm{...}).
A final status it returns is the run's final status.

Every backend may implement `check(job)` — a cheap pre-flight run before a run is created
(e.g. the Docker daemon is reachable) that raises `UnavailableError` (exit 2) so nothing is
left half-created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError, ExitCode

if TYPE_CHECKING:
    from ctui.config import JobConfig
    from ctui.project import Project


class StartError(CtuiError):
    """The job could not be started at all (command not found, not executable, no image)."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message, hint=hint, code=ExitCode.FAILED)


@dataclass
class LaunchSpec:
    """Everything a backend needs to run one run; saved as `spec.json` in the run folder.

    `env` holds only what ctui adds (CTUI_*, the job's env, MLflow vars); the backend layers
    it over the supervisor's own environment for local runs, or passes it as-is to a container.
    """

    run_id: str
    job: str
    argv: list[str]
    env: dict[str, str]
    #: working directory of the job (the project root, a job `workdir`, or a reproduce worktree)
    cwd: str
    project_root: str
    run_dir: str
    log_path: str
    backend: str = "local"
    shell: bool = False
    #: None = whatever is visible; "all"; or GPU indices
    gpus: str | list[int] | None = None
    image: str | None = None
    #: backend-specific options (docker mounts, slurm partition/time/...)
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaunchSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def log(self) -> Path:
        return Path(self.log_path)


class Execution:
    """A started job, as seen by the supervisor. Subclassed by each supervised backend."""

    def info(self) -> dict[str, Any]:
        """Fields to merge into the run doc once started (`pid`, `pgid`, `docker`, …)."""
        return {}

    def host_pids(self) -> list[int]:
        """Root PIDs on this host whose process trees are the job (sampled with psutil)."""
        return []

    def poll(self) -> int | None:
        """The exit code if the job has ended, else None. Must not block."""
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> int | None:
        """Block up to `timeout` seconds for the end; the exit code, or None if still running."""
        raise NotImplementedError

    def stop(self, grace: float) -> None:
        """Ask the job to stop (SIGTERM or equivalent), kill it after `grace` s. Returns at once
        or after the kill; the supervisor keeps waiting on `poll`/`wait` for the exit code."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources after the job ended (flush/join log streaming)."""


class Backend:
    """Base class of every backend. See the module docstring for the contract."""

    name: str = ""
    supervised: bool = True

    def check(self, job: JobConfig) -> None:
        """Pre-flight before a run is created; raise UnavailableError if the engine is down."""

    def job_env(self, spec: LaunchSpec) -> dict[str, str]:
        """The environment the job runs with (the env section records its variables)."""
        import os

        return {**os.environ, **spec.env}

    def job_python(self, spec: LaunchSpec) -> Callable[[], dict[str, Any]] | None:
        """How to describe the job's interpreter where this backend runs it (a container asks
        inside its image); None = resolve it here from the command and PATH."""
        return None

    # -- supervised backends (run inside the supervisor) -----------------------------------
    def start(self, spec: LaunchSpec) -> Execution:
        raise NotImplementedError(f"{self.name} backend cannot start jobs in a supervisor")

    # -- external backends (no local supervisor) -------------------------------------------
    def submit(self, project: Project, run: dict[str, Any], spec: LaunchSpec) -> dict[str, Any]:
        """Hand the job to the engine; return fields to merge into the run (ids, status)."""
        raise NotImplementedError(f"{self.name} backend has no submit")

    def refresh(self, project: Project, runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """One engine query for all these active runs → {run_id: fields to merge}."""
        return {}

    def stop(self, project: Project, run: dict[str, Any], grace: float) -> None:
        """Stop an externally run job (e.g. scancel)."""
        raise NotImplementedError(f"{self.name} backend has no stop")
