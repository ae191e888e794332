"""`ctui.toml` (or `[tool.ctui]` in pyproject.toml): jobs, triggers, MLflow, monitoring.

Every problem is a ConfigError naming the file, the key and what is wrong.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctui.config_check import (
    check_type,
    known_keys,
    opt,
    param_table,
    parse_duration,
    str_list,
    table,
)
from ctui.errors import ConfigError
from ctui.gate.config import GateConfig, NotifyConfig, parse_gate, parse_notify
from ctui.output_metrics import OutputMetricsConfig, parse_output_metrics

BACKENDS = ("local", "docker", "slurm")
TRIGGER_KINDS = ("data", "code", "schedule", "metric", "after", "promoted")


@dataclass
class SlurmOptions:
    partition: str | None = None
    time: str | None = None
    cpus: int | None = None
    mem: str | None = None
    sbatch_args: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)  # module loads, env activation


@dataclass
class JobConfig:
    name: str
    command: str
    params: dict[str, Any] = field(default_factory=dict)
    backend: str = "local"
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    #: None = whatever is visible; "all"; or a list of GPU indices
    gpus: str | list[int] | None = None
    data: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    max_concurrent: int | None = None
    workdir: str = "."
    image: str | None = None
    #: params also exported as CTUI_PARAM_<NAME> environment variables
    params_env: bool = True
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    #: the interpreter the job runs with, when its command does not name it (a venv's python)
    python: str | None = None
    #: "worktree": each run in its own git worktree (then no DVC `max_concurrent = 1` default)
    isolate: str | None = None
    #: keep an isolated run's worktree after it ended (for a look inside)
    keep_worktree: bool = False
    #: `[jobs.NAME.gate]`: what a run must pass to become the job's champion
    gate: GateConfig | None = None
    #: `output_metrics`: metrics read from the job's output
    output_metrics: OutputMetricsConfig = field(default_factory=OutputMetricsConfig)


@dataclass
class TriggerConfig:
    name: str
    job: str
    on: str
    enabled: bool = True
    cooldown: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    #: kind-specific options (paths, debounce, branch, every, cron, command, threshold, after…)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class MlflowConfig:
    """`[mlflow]`. `tracking_uri` unset: `MLFLOW_TRACKING_URI`, else `.ctui/mlflow.db`
    (`ctui.integrations.mlflow_uri`); `experiment` unset: `MLFLOW_EXPERIMENT_NAME`, else the
    project folder's name. Credentials are never read from here: MLflow's own variables."""

    enabled: bool = False
    tracking_uri: str | None = None
    experiment: str | None = None
    #: `ctui watch` imports what changed on the tracking server this often (seconds)
    mirror: float | None = None
    #: ... from this experiment only (unset: every experiment)
    mirror_experiment: str | None = None


_MLFLOW_KEYS = {"enabled", "tracking_uri", "experiment", "mirror", "mirror_experiment"}


def parse_mlflow(raw: Any, path: Path) -> MlflowConfig:
    ml = table(raw, path, "mlflow")
    known_keys(ml, _MLFLOW_KEYS, path, "mlflow")
    enabled = check_type(ml.get("enabled", bool(ml)), bool, path, "mlflow.enabled", "true or false")
    for key in ("tracking_uri", "experiment", "mirror_experiment"):
        if ml.get(key) is not None:
            check_type(ml[key], str, path, f"mlflow.{key}", "a string")
    mirror = ml.get("mirror")
    return MlflowConfig(
        enabled=enabled,
        tracking_uri=ml.get("tracking_uri") or None,
        experiment=ml.get("experiment") or None,
        mirror=None
        if mirror is None
        else parse_duration(mirror, path=path, key="mlflow.mirror", positive=True),
        mirror_experiment=ml.get("mirror_experiment") or None,
    )


@dataclass
class ManifestConfig:
    """`[manifest]`: what the env and code sections record beyond the defaults."""

    #: more environment variables to record: exact names or fnmatch patterns (`MYLAB_*`)
    env_vars: list[str] = field(default_factory=list)
    #: variables never recorded (names or patterns), even when a default rule picks them
    exclude: list[str] = field(default_factory=list)
    #: untracked files whose content is captured (and restored by reproduce): patterns
    untracked: list[str] = field(default_factory=lambda: ["*.py"])
    #: a captured untracked file may be at most this big; binaries are never captured
    untracked_max_bytes: int = 256 * 1024


@dataclass
class Config:
    path: Path | None
    jobs: dict[str, JobConfig] = field(default_factory=dict)
    triggers: dict[str, TriggerConfig] = field(default_factory=dict)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    monitor_interval: float = 1.0
    manifest: ManifestConfig = field(default_factory=ManifestConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    raw: dict[str, Any] = field(default_factory=dict)

    def gate_of(self, job: str) -> GateConfig | None:
        """The gate of a job (None: the job has none, or is not declared)."""
        jc = self.jobs.get(job)
        return jc.gate if jc is not None else None

    def job(self, name: str) -> JobConfig:
        try:
            return self.jobs[name]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none declared"
            raise ConfigError(
                self.path or "ctui.toml", f"jobs.{name}", f"no such job (known: {known})"
            ) from None


def find_config_file(root: Path) -> Path | None:
    toml = root / "ctui.toml"
    if toml.is_file():
        return toml
    pyproject = root / "pyproject.toml"
    try:
        if pyproject.is_file() and "[tool.ctui" in pyproject.read_text(errors="replace"):
            return pyproject
    except OSError as exc:
        raise ConfigError(pyproject, "", f"cannot be read: {exc.strerror or exc}") from None
    return None


def load_config(root: Path) -> Config:
    """The project's config; every problem (unreadable, not UTF-8, not TOML, a key of the wrong
    type) is a ConfigError naming the file and the key."""
    path = find_config_file(root)
    if path is None:
        return Config(path=None)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, "", f"cannot be read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start : exc.start + 1].hex()
        raise ConfigError(path, "", f"not UTF-8 text (byte 0x{bad} on line {line})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = table(data.get("tool", {}), path, "tool")
        data = table(tool.get("ctui", {}), path, "tool.ctui")
    return parse_config(data, path)


_JOB_KEYS = {
    "command", "params", "backend", "shell", "env", "gpus", "data", "metrics", "max_concurrent",
    "workdir", "image", "params_env", "slurm", "description", "python", "isolate", "keep_worktree",
    "gate", "output_metrics",
}  # fmt: skip
_SLURM_KEYS = {"partition", "time", "cpus", "mem", "sbatch_args", "setup"}


def parse_job(name: str, raw: Any, path: Path) -> JobConfig:
    key = f"jobs.{name}"
    raw = table(raw, path, key)
    known_keys(raw, _JOB_KEYS, path, key)
    if "command" not in raw:
        raise ConfigError(path, key, "missing required key 'command'")
    command = raw["command"]
    if isinstance(command, list):
        command = " ".join(str_list(command, path, f"{key}.command"))
    check_type(command, str, path, f"{key}.command", "a string")
    if not command.strip():
        raise ConfigError(path, f"{key}.command", "is empty")
    params = param_table(raw.get("params", {}), path, key)
    backend = raw.get("backend", "local")
    if backend not in BACKENDS:
        raise ConfigError(
            path, f"{key}.backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}"
        )
    env = table(raw.get("env", {}), path, f"{key}.env")
    for ek, ev in env.items():
        check_type(ev, (str, int, float, bool), path, f"{key}.env.{ek}", "a string or number")
    env = {str(k): str(v) for k, v in env.items()}
    gpus = raw.get("gpus")
    if gpus is not None:
        if isinstance(gpus, int) and not isinstance(gpus, bool):
            gpus = [gpus]
        if not (
            gpus == "all" or (isinstance(gpus, list) and all(isinstance(g, int) for g in gpus))
        ):
            raise ConfigError(path, f"{key}.gpus", 'expected "all", an index, or a list of indices')
    isolate = raw.get("isolate")
    if isolate is not None and isolate != "worktree":
        raise ConfigError(path, f"{key}.isolate", f'must be "worktree", got {isolate!r}')
    keep = check_type(
        raw.get("keep_worktree", False), bool, path, f"{key}.keep_worktree", "true or false"
    )
    max_c = raw.get("max_concurrent")
    if max_c is not None:
        check_type(max_c, int, path, f"{key}.max_concurrent", "a positive integer")
        if max_c < 1:
            raise ConfigError(path, f"{key}.max_concurrent", "must be at least 1")
    elif isolate is None and runs_dvc(command, path.parent):
        max_c = 1  # one pipeline per workspace: two `dvc repro` collide on DVC's lock
    image = opt(raw, "image", str, path, key, "an image name")
    opt(raw, "description", str, path, key, "a string")
    if backend == "docker" and not image:
        raise ConfigError(path, f"{key}.image", 'backend = "docker" needs an image')
    slurm_raw = table(raw.get("slurm", {}), path, f"{key}.slurm")
    known_keys(slurm_raw, _SLURM_KEYS, path, f"{key}.slurm")
    skey = f"{key}.slurm"
    cpus = opt(slurm_raw, "cpus", int, path, skey, "a positive integer")
    if cpus is not None and cpus < 1:
        raise ConfigError(path, f"{skey}.cpus", f"must be at least 1, got {cpus}")
    time_, mem = (opt(slurm_raw, k, (str, int), path, skey, "a string") for k in ("time", "mem"))
    slurm = SlurmOptions(
        partition=opt(slurm_raw, "partition", str, path, skey, "a partition name"),
        time=None if time_ is None else str(time_),
        cpus=cpus,
        mem=None if mem is None else str(mem),
        sbatch_args=str_list(slurm_raw.get("sbatch_args", []), path, f"{key}.slurm.sbatch_args"),
        setup=str_list(slurm_raw.get("setup", []), path, f"{key}.slurm.setup"),
    )
    return JobConfig(
        name=name,
        command=command,
        params=dict(params),
        backend=backend,
        shell=bool(
            check_type(raw.get("shell", False), bool, path, f"{key}.shell", "true or false")
        ),
        env=env,
        gpus=gpus,
        data=str_list(raw.get("data", []), path, f"{key}.data"),
        metrics=str_list(raw.get("metrics", []), path, f"{key}.metrics"),
        max_concurrent=max_c,
        workdir=check_type(raw.get("workdir", "."), str, path, f"{key}.workdir", "a folder path"),
        image=image,
        params_env=check_type(
            raw.get("params_env", True), bool, path, f"{key}.params_env", "true or false"
        ),
        slurm=slurm,
        python=None
        if raw.get("python") is None
        else check_type(raw["python"], str, path, f"{key}.python", "a path or command name"),
        isolate=isolate,
        keep_worktree=bool(keep),
        gate=parse_gate(raw.get("gate"), path, key),
        output_metrics=parse_output_metrics(raw.get("output_metrics"), path, key),
    )


#: a script line that runs a pipeline: `dvc repro`, `dvc exp run`
_RUNS_PIPELINE = re.compile(r"\bdvc\b[^\n]*?\b(?:repro|exp\s+run|experiments\s+run)\b")
_SCRIPT_LIMIT = 256 * 1024


def runs_dvc(command: str, cwd: Path | None = None) -> bool:
    """Whether a job's command runs DVC in its workspace (`dvc repro`, `python -m dvc exp run`,
    `uv run dvc …`, `sh -c "dvc pull && dvc repro"`); with `cwd`, also a script there that runs
    a pipeline (`sh run.sh`, `./pipeline.sh`)."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for i, word in enumerate(words):
        name = word.rsplit("/", 1)[-1]
        if name == "dvc" or (name == "-m" and i + 1 < len(words) and words[i + 1] == "dvc"):
            return True
        if " " in word and runs_dvc(word):  # a shell script given as one word
            return True
    if cwd is not None:
        for word in words:
            path = Path(cwd) / word
            try:
                small = path.is_file() and path.stat().st_size <= _SCRIPT_LIMIT
                if small and _RUNS_PIPELINE.search(path.read_text(errors="replace")):
                    return True
            except (OSError, ValueError):
                continue
    return False


def parse_trigger(name: str, raw: Any, path: Path, jobs: dict[str, JobConfig]) -> TriggerConfig:
    key = f"triggers.{name}"
    raw = dict(table(raw, path, key))
    job = raw.pop("job", None)
    if not isinstance(job, str):
        raise ConfigError(path, f"{key}.job", "missing: name the job this trigger launches")
    if job not in jobs:
        raise ConfigError(
            path, f"{key}.job", f"unknown job {job!r} (known: {', '.join(sorted(jobs))})"
        )
    on = raw.pop("on", None)
    if on not in TRIGGER_KINDS:
        raise ConfigError(
            path, f"{key}.on", f"must be one of {', '.join(TRIGGER_KINDS)}, got {on!r}"
        )
    enabled = check_type(raw.pop("enabled", True), bool, path, f"{key}.enabled", "true or false")
    cooldown = parse_duration(raw.pop("cooldown", 0), path=path, key=f"{key}.cooldown")
    params = param_table(raw.pop("params", {}), path, key)
    return TriggerConfig(
        name=name,
        job=job,
        on=on,
        enabled=enabled,
        cooldown=cooldown,
        params=dict(params),
        options=raw,
    )


def parse_config(data: dict[str, Any], path: Path) -> Config:
    jobs = {n: parse_job(n, j, path) for n, j in table(data.get("jobs", {}), path, "jobs").items()}
    triggers = {
        n: parse_trigger(n, t, path, jobs)
        for n, t in table(data.get("triggers", {}), path, "triggers").items()
    }
    mlflow = parse_mlflow(data.get("mlflow", {}), path)
    monitor = table(data.get("monitor", {}), path, "monitor")
    known_keys(monitor, {"interval"}, path, "monitor")
    interval = parse_duration(
        monitor.get("interval", 1.0), path=path, key="monitor.interval", positive=True
    )
    return Config(
        path=path,
        jobs=jobs,
        triggers=triggers,
        mlflow=mlflow,
        monitor_interval=interval,
        manifest=parse_manifest(data.get("manifest", {}), path),
        notify=parse_notify(data.get("notify", {}), path),
        raw=data,
    )


_MANIFEST_KEYS = {"env_vars", "exclude", "untracked", "untracked_max_kb"}


def parse_manifest(raw: Any, path: Path) -> ManifestConfig:
    raw = table(raw, path, "manifest")
    known_keys(raw, _MANIFEST_KEYS, path, "manifest")
    out = ManifestConfig()
    for name in ("env_vars", "exclude", "untracked"):
        if name in raw:
            setattr(out, name, str_list(raw[name], path, f"manifest.{name}"))
    if "untracked_max_kb" in raw:
        kb = check_type(
            raw["untracked_max_kb"],
            (int, float),
            path,
            "manifest.untracked_max_kb",
            "a size in KiB",
        )
        if kb < 0:
            raise ConfigError(path, "manifest.untracked_max_kb", "must be 0 or more")
        out.untracked_max_bytes = int(kb * 1024)
    return out
