"""Slurm backend: `sbatch` a generated batch script; states from one `squeue` per refresh.

There is no local supervisor. The batch script (`slurm.sbatch` in the run folder) runs on the
compute node:

1. the job's `setup` lines (module loads, env activation), as written in ctui.toml;
2. `python -m ctui.jobs.backends.slurm node-start STATE_DIR RUN_ID`: captures the manifest
   *on the node* as the job starts (code, data, the job's interpreter, compute) and records
   the node in the run;
3. the job's argv (every token shell-quoted; params never pasted into a shell string);
4. `... node-end STATE_DIR RUN_ID RC`: writes `slurm_exit.json` (exit code, final metrics,
   the MLflow sync) into the run folder, then the script exits with the job's code.

stdout+stderr go to the run folder's `output.log` (`#SBATCH --output`), so `ctui logs -f` and
the TUI follow it like a local run. This assumes the run folder is on a filesystem shared by
the login and compute nodes — the normal set-up of a cluster.

`refresh` asks `squeue --states=all` once for all active runs. Jobs the controller no longer
lists are looked up with one `sacct` call; when accounting is disabled (`sacct` exits 1 with
"accounting storage is disabled") with `scontrol show job`; when the controller has forgotten
them too, the exit record the batch script wrote decides; with none, the run is `lost`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctui.atomic import atomic_write_bytes
from ctui.errors import CtuiError, ExitCode, UnavailableError
from ctui.jobs.backends.base import Backend, LaunchSpec

if TYPE_CHECKING:
    from ctui.config import JobConfig
    from ctui.project import Project

SCRIPT_FILE = "slurm.sbatch"
ARRAY_FILE = "slurm-array.sbatch"
EXIT_FILE = "slurm_exit.json"
TIMEOUT = 30.0
#: a Slurm run still without a job id after this long was never submitted
SUBMIT_GRACE = 120.0

#: Slurm job state → ctui status
STATES = {
    "PENDING": "queued",
    "CONFIGURING": "queued",
    "REQUEUED": "queued",
    "REQUEUE_HOLD": "queued",
    "REQUEUE_FED": "queued",
    "RESV_DEL_HOLD": "queued",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SIGNALING": "running",
    "STAGE_OUT": "running",
    "SUSPENDED": "running",
    "STOPPED": "running",
    "RESIZING": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "PREEMPTED": "failed",
    "CANCELLED": "cancelled",
    "REVOKED": "cancelled",
    "TIMEOUT": "timeout",
}
FINAL_STATES = {s for s, c in STATES.items() if c not in ("queued", "running")}

_SQUEUE_FORMAT = "%i|%T|%r|%N|%P|%S|%e"


# -- the commands -----------------------------------------------------------------------------


def _slurm(
    argv: list[str], *, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a Slurm CLI command; a missing or unanswering controller is UnavailableError."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    except FileNotFoundError:
        raise UnavailableError(
            f"{argv[0]} not found: Slurm's commands are not installed here",
            hint='run ctui on a Slurm login node, or use backend = "local"',
        ) from None
    except subprocess.TimeoutExpired:
        raise UnavailableError(
            f"{argv[0]} did not answer within {TIMEOUT:.0f} s", hint="is slurmctld up?"
        ) from None
    if check and done.returncode != 0:
        err = (done.stderr or done.stdout).strip()
        raise UnavailableError(f"{' '.join(argv[:2])} failed: {err}", hint="check `sinfo`")
    return done


def _slurm_time(text: str) -> float | None:
    """`2026-11-27T04:15:15` (the cluster's local time) → unix time; N/A/Unknown → None."""
    if not text or text in ("N/A", "Unknown", "None"):
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _exit_code(text: str) -> tuple[int | None, int | None]:
    """Slurm's `code:signal` → (code, signal)."""
    code, _, sig = (text or "").partition(":")
    try:
        return int(code), int(sig or 0)
    except ValueError:
        return None, None


# -- the batch script -------------------------------------------------------------------------


def sbatch_options(spec: LaunchSpec) -> list[str]:
    """The `#SBATCH` options of a run (extra `sbatch_args` go on the command line)."""
    opts = spec.options.get("slurm") or {}
    out = [
        f"--job-name=ctui-{spec.job}",
        f"--comment=ctui:{spec.run_id}",
        f"--output={spec.log_path}",
        "--open-mode=append",
        f"--chdir={spec.cwd}",
    ]
    if opts.get("partition"):
        out.append(f"--partition={opts['partition']}")
    if opts.get("time"):
        out.append(f"--time={opts['time']}")
    if opts.get("cpus"):
        out.append(f"--cpus-per-task={int(opts['cpus'])}")
    if opts.get("mem"):
        out.append(f"--mem={opts['mem']}")
    if isinstance(spec.gpus, list) and spec.gpus:
        out.append(f"--gres=gpu:{len(spec.gpus)}")  # a cluster allocates by count, not index
    return out


class Secrets:
    """The job's secret argv tokens and variables (those `seal` masked at launch, named in
    `options["sealed"]`): the batch script names them by reference, and their values reach the
    job through sbatch's environment (Slurm passes it on: `--export=ALL`, its default), never
    through a file ctui writes."""

    def __init__(self, spec: LaunchSpec):
        self.argv: dict[int, str] = {}  # token index → the script's shell variable
        self.env: dict[str, str] = {}  # job variable → the script's shell variable
        self.values: dict[str, str] = {}  # for sbatch's environment: CTUI_SECRET_* → value
        self._taken: list[tuple[str, str]] = []  # (shell variable, CTUI_SECRET_* name)
        masked = spec.options.get("sealed") or {}
        tag = "".join(c for c in spec.run_id if c.isalnum())
        for i in masked.get("argv") or []:
            if 0 <= i < len(spec.argv):
                self.argv[i] = self._keep(f"ctui_a{i}", f"CTUI_SECRET_{tag}_A{i}", spec.argv[i])
        secret_vars = set(masked.get("env") or [])
        for n, (name, value) in enumerate(sorted(spec.env.items())):
            if name.isidentifier() and name in secret_vars:
                self.env[name] = self._keep(f"ctui_e{n}", f"CTUI_SECRET_{tag}_E{n}", value)

    def _keep(self, local: str, exported: str, value: str) -> str:
        self.values[exported] = value
        self._taken.append((local, exported))
        return local

    def lines(self) -> list[str]:
        """The values out of the environment into shell variables, so the job's own
        environment holds only what it is meant to."""
        taken = [f'{local}="${{{exported}}}"' for local, exported in self._taken]
        # a sweep's array job carries every member's: none of them reaches the job
        return [*taken, 'for v in $(compgen -e CTUI_SECRET_); do unset "$v"; done']


def batch_script(spec: LaunchSpec, secrets: Secrets | None = None) -> str:
    opts = spec.options.get("slurm") or {}
    state_dir = str(spec.options.get("state_dir") or Path(spec.run_dir).parent.parent)
    ctui = [sys.executable, "-m", "ctui.jobs.backends.slurm"]
    q = shlex.quote
    argv_refs = secrets.argv if secrets else {}
    env_refs = secrets.env if secrets else {}
    lines = ["#!/bin/bash", f"# ctui run {spec.run_id} of job {spec.job} (generated; do not edit)"]
    lines += [f"#SBATCH {q(o)}" for o in sbatch_options(spec)]
    lines.append("")
    if secrets:
        lines.extend(secrets.lines())
    if opts.get("setup"):
        lines.append("# setup lines from ctui.toml")
        lines.extend(str(s) for s in opts["setup"])
    lines += [
        f'export {k}="${env_refs[k]}"' if k in env_refs else f"export {k}={q(v)}"
        for k, v in sorted(spec.env.items())
        if k.isidentifier()
    ]
    lines.append(" ".join(q(t) for t in [*ctui, "node-start", state_dir, spec.run_id]) + " || true")
    # the job runs as a child so a TERM (scancel, time limit) reaches it; wait returns its code
    words = [f'"${argv_refs[i]}"' if i in argv_refs else q(t) for i, t in enumerate(spec.argv)]
    lines.append(" ".join(words) + " &")
    lines.append("ctui_job=$!")
    lines.append("ctui_term=0")
    lines.append("trap 'ctui_term=1; kill -TERM $ctui_job 2>/dev/null' TERM INT")
    lines.append("wait $ctui_job; rc=$?")
    lines.append("while kill -0 $ctui_job 2>/dev/null; do wait $ctui_job; rc=$?; done")
    # cancelled or out of time: Slurm kills us shortly; its own state says what happened
    lines.append('[ "$ctui_term" = 1 ] && exit "$rc"')
    lines.append(" ".join(q(t) for t in [*ctui, "node-end", state_dir, spec.run_id]) + ' "$rc"')
    lines.append('exit "$rc"')
    return "\n".join(lines) + "\n"


def array_script(spec: LaunchSpec, run_dirs: list[Path]) -> str:
    """One Slurm job array for a sweep: task i runs the batch script of run i (its options
    are the job's, the same for every element), with its output in that run's log."""
    q = shlex.quote
    opts = [o for o in sbatch_options(spec) if not o.startswith(("--output", "--comment"))]
    lines = ["#!/bin/bash", f"# ctui sweep of job {spec.job}: {len(run_dirs)} runs (generated)"]
    lines += [f"#SBATCH {q(o)}" for o in opts]
    lines += [f"#SBATCH --array=0-{len(run_dirs) - 1}", "#SBATCH --output=/dev/null", ""]
    lines.append('case "$SLURM_ARRAY_TASK_ID" in')
    for i, d in enumerate(run_dirs):
        lines.append(
            f"  {i}) exec bash {q(str(d / SCRIPT_FILE))} >> {q(str(d / 'output.log'))} 2>&1 ;;"
        )
    lines.append("esac")
    lines.append("exit 2")
    return "\n".join(lines) + "\n"


#: the secret values of sweep members written but not yet handed to sbatch (this process
#: submits a sweep's array with its last run)
_SECRETS: dict[str, dict[str, str]] = {}


def _sbatch(args: list[str], secrets: dict[str, str] | None = None) -> str:
    """`sbatch`; `secrets` go in its environment only (the job gets them, no file holds them)."""
    env = {**os.environ, **secrets} if secrets else None
    done = _slurm(["sbatch", "--parsable", *args], check=False, env=env)
    if done.returncode != 0:
        raise CtuiError(
            f"sbatch refused the job: {(done.stderr or done.stdout).strip()}",
            hint="check the job's [jobs.NAME.slurm] options in ctui.toml",
        )
    return done.stdout.strip().split(";")[0]


# -- the backend ------------------------------------------------------------------------------


class SlurmBackend(Backend):
    name = "slurm"
    supervised = False

    def check(self, job: JobConfig) -> None:
        if shutil.which("sbatch") is None:
            raise UnavailableError(
                'sbatch not found: this job uses backend = "slurm" but Slurm\'s commands are '
                "not installed here",
                hint='run ctui on a Slurm login node, or set the job\'s backend to "local"',
            )

    def submit(self, project: Project, run: dict[str, Any], spec: LaunchSpec) -> dict[str, Any]:
        if not spec.argv:
            raise CtuiError("the job's command is empty", code=ExitCode.FAILED)
        run_dir = Path(spec.run_dir)
        script = run_dir / SCRIPT_FILE
        secrets = Secrets(spec)
        _SECRETS[spec.run_id] = secrets.values
        script.write_text(batch_script(spec, secrets))
        opts = spec.options.get("slurm") or {}
        fields: dict[str, Any] = {
            "status": "queued",
            "slurm": {
                "job_id": None,
                "nodes": None,
                "partition": opts.get("partition"),
                "state": "PENDING",
                "reason": None,
                "script": str(script),
            },
        }
        sweep = run.get("sweep") or {}
        if sweep:
            # one job array for the whole sweep, submitted with its last element
            fields["slurm"]["array"] = sweep["id"]
            if int(sweep["index"]) < int(sweep["size"]) - 1:
                return fields
            return self._submit_array(project, run, spec, fields)
        extra = [str(a) for a in opts.get("sbatch_args") or []]
        fields["slurm"]["job_id"] = _sbatch([*extra, str(script)], _SECRETS.pop(spec.run_id))
        return fields

    def _submit_array(
        self, project: Project, run: dict[str, Any], spec: LaunchSpec, fields: dict[str, Any]
    ) -> dict[str, Any]:
        from ctui.store import Store

        store = Store(project.store_file)
        sweep_id = run["sweep"]["id"]
        members = sorted(
            (r for r in store.runs() if (r.get("sweep") or {}).get("id") == sweep_id),
            key=lambda r: int(r["sweep"]["index"]),
        )
        dirs = [Path(project.run_dir(r["id"])) for r in members if r["id"] != run["id"]]
        dirs.append(Path(spec.run_dir))
        script = Path(spec.run_dir) / ARRAY_FILE
        script.write_text(array_script(spec, dirs))
        extra = [str(a) for a in (spec.options.get("slurm") or {}).get("sbatch_args") or []]
        try:
            values = {k: v for r in members for k, v in _SECRETS.pop(r["id"], {}).items()}
            array_id = _sbatch([*extra, str(script)], {**values, **_SECRETS.pop(run["id"], {})})
        except CtuiError as exc:
            for r in members:
                if r["id"] != run["id"]:
                    store.update_run(
                        r["id"], {"status": "failed", "ended": time.time(), "error": exc.message}
                    )
            raise
        for i, r in enumerate(m for m in members if m["id"] != run["id"]):
            task = f"{array_id}_{i}"

            def mutate(doc: dict[str, Any], task: str = task) -> None:
                doc["slurm"] = {**(doc.get("slurm") or {}), "job_id": task}

            store.update_run(r["id"], mutate=mutate)
        fields["slurm"]["job_id"] = f"{array_id}_{len(dirs) - 1}"
        return fields

    def stop(self, project: Project, run: dict[str, Any], grace: float) -> None:
        job_id = (run.get("slurm") or {}).get("job_id")
        if not job_id:
            return
        done = _slurm(["scancel", str(job_id)], check=False)
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            raise UnavailableError(f"scancel {job_id} failed: {done.stderr.strip()}")
        from ctui.store import Store

        def mutate(doc: dict[str, Any]) -> None:
            # the run leaves the active set now, so no later refresh would record this
            doc["slurm"] = {**(doc.get("slurm") or {}), "state": "CANCELLED", "reason": None}
            if doc.get("mlflow"):  # nothing ran node-end: `ctui sync` closes the MLflow run
                doc["mlflow"] = {**doc["mlflow"], "sync": "pending"}

        Store(project.store_file).update_run(run["id"], mutate=mutate)

    def refresh(self, project: Project, runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        updates: dict[str, dict[str, Any]] = {}
        by_job: dict[str, dict[str, Any]] = {}
        now = time.time()
        for r in runs:
            job_id = (r.get("slurm") or {}).get("job_id")
            if job_id:
                by_job[str(job_id)] = r
            elif now - float(r.get("created") or now) > SUBMIT_GRACE:
                # created but never handed to sbatch (the launching process died)
                updates[r["id"]] = {
                    "status": "lost",
                    "ended": now,
                    "error": "the run was never submitted to Slurm",
                }
        if not by_job:
            return updates
        seen = squeue(list(by_job))
        gone = [j for j in by_job if j not in seen]
        if gone:
            seen.update(finished_jobs(gone))
        for job_id, run in by_job.items():
            info = seen.get(job_id)
            fields = _fields(project, run, info)
            if fields:
                updates[run["id"]] = fields
        return updates


def squeue(job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """One `squeue` call: {job_id: {state, reason, nodes, partition, start, end}}."""
    done = _slurm(
        [
            "squeue",
            "--states=all",
            "--array",  # one line per array task, pending ones too
            "--noheader",
            f"--jobs={','.join(job_ids)}",
            f"--format={_SQUEUE_FORMAT}",
        ],
        check=False,
    )
    if done.returncode != 0:
        if "Invalid job id" in done.stderr:
            return {}  # none of them is known to the controller any more
        raise UnavailableError(f"squeue failed: {done.stderr.strip()}", hint="is slurmctld up?")
    out: dict[str, dict[str, Any]] = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 7:
            continue
        job_id, state, reason, nodes, partition, start, end = parts[:7]
        out[job_id] = {
            "state": state.split()[0] if state else "",
            "reason": None if reason in ("None", "") else reason,
            "nodes": nodes or None,
            "partition": partition or None,
            "start": _slurm_time(start),
            "end": _slurm_time(end),
        }
    return out


def finished_jobs(job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """States of jobs squeue no longer lists: `sacct`, else `scontrol show job`."""
    done = _slurm(
        [
            "sacct",
            "--noheader",
            "--parsable2",
            "--allocations",
            f"--jobs={','.join(job_ids)}",
            "--format=JobID,State,ExitCode,NodeList,Partition,Start,End",
        ],
        check=False,
    )
    out: dict[str, dict[str, Any]] = {}
    if done.returncode == 0:
        for line in done.stdout.splitlines():
            parts = line.split("|")
            if len(parts) < 7 or parts[0] not in job_ids:
                continue
            code, sig = _exit_code(parts[2])
            out[parts[0]] = {
                "state": parts[1].split()[0],
                "reason": None,
                "nodes": parts[3] or None,
                "partition": parts[4] or None,
                "start": _slurm_time(parts[5]),
                "end": _slurm_time(parts[6]),
                "exit_code": code,
                "signal": sig,
            }
        return out
    # accounting disabled (or slurmdbd down): ask the controller while it remembers the job
    for job_id in job_ids:
        info = scontrol_job(job_id)
        if info is not None:
            out[job_id] = info
    return out


def scontrol_job(job_id: str) -> dict[str, Any] | None:
    done = _slurm(["scontrol", "--oneliner", "show", "job", job_id], check=False)
    if done.returncode != 0:
        return None
    kv: dict[str, str] = {}
    for token in done.stdout.split():
        key, sep, value = token.partition("=")
        if sep and key not in kv:
            kv[key] = value
    if "JobState" not in kv:
        return None
    code, sig = _exit_code(kv.get("ExitCode", ""))
    return {
        "state": kv["JobState"],
        "reason": None if kv.get("Reason") in (None, "None") else kv.get("Reason"),
        "nodes": None if kv.get("NodeList") in (None, "(null)") else kv.get("NodeList"),
        "partition": kv.get("Partition"),
        "start": _slurm_time(kv.get("StartTime", "")),
        "end": _slurm_time(kv.get("EndTime", "")),
        "exit_code": code,
        "signal": sig,
    }


def read_exit_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads((run_dir / EXIT_FILE).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _fields(project: Project, run: dict[str, Any], info: dict[str, Any] | None) -> dict[str, Any]:
    """What changed in `run`, given what Slurm says (None: Slurm does not know the job)."""
    slurm = dict(run.get("slurm") or {})
    run_dir = Path(project.run_dir(run["id"]))
    record = None
    if info is None:
        record = read_exit_record(run_dir)
        if record is None:
            return {
                "status": "lost",
                "ended": time.time(),
                "error": f"Slurm no longer knows job {slurm.get('job_id')} and it left no exit "
                "record (accounting is disabled and the controller forgot it)",
                "slurm": {**slurm, "state": "UNKNOWN", "reason": None},
            }
        code = record.get("exit_code")
        info = {
            "state": "COMPLETED" if code == 0 else "FAILED",
            "reason": None,
            "end": record.get("ended"),
            "exit_code": code,
        }
    status = STATES.get(info["state"], run.get("status", "running"))
    new_slurm = {
        **slurm,
        "state": info["state"],
        "reason": info.get("reason"),
        "nodes": info.get("nodes") or slurm.get("nodes"),
        "partition": info.get("partition") or slurm.get("partition"),
    }
    fields: dict[str, Any] = {}
    if new_slurm != slurm:
        fields["slurm"] = new_slurm
    if status != run.get("status"):
        fields["status"] = status
    if status == "running" and not run.get("started") and info.get("start"):
        fields["started"] = info["start"]
    if status in ("queued", "running"):
        return fields
    fields.update(_final_fields(run, run_dir, status, info, record))
    return fields


def _final_fields(
    run: dict[str, Any],
    run_dir: Path,
    status: str,
    info: dict[str, Any],
    record: dict[str, Any] | None,
) -> dict[str, Any]:
    from ctui.jobs.finish import last_metrics
    from ctui.logs import log_tail

    record = record if record is not None else read_exit_record(run_dir)
    code = (record or {}).get("exit_code", info.get("exit_code"))
    ended = (record or {}).get("ended") or info.get("end") or time.time()
    started = run.get("started") or info.get("start")
    fields: dict[str, Any] = {"status": status, "exit_code": code, "ended": ended}
    if started:
        fields["started"] = started
        fields["duration"] = round(max(0.0, ended - started), 3)
    if status == "failed":
        fields["error"] = f"Slurm job {info['state']}" + (
            f", exit code {code}" if code is not None else ""
        )
        fields["log_tail"] = log_tail(run_dir / "output.log")  # bounded, redacted
    elif status == "timeout":
        fields["error"] = "hit the Slurm time limit"
    elif status == "cancelled":
        fields["error"] = run.get("error") or "cancelled in Slurm (scancel)"
    metrics = dict((record or {}).get("metrics") or last_metrics(run_dir / "metrics.jsonl"))
    if metrics:
        fields["metrics"] = {**(run.get("metrics") or {}), **metrics}
    ml = run.get("mlflow")
    if ml:
        done = (record or {}).get("mlflow")
        # the node could not finish the MLflow run (killed, server down): `ctui sync` will
        fields["mlflow"] = done if done and done.get("sync") == "ok" else {**ml, "sync": "pending"}
    return fields


BACKEND = SlurmBackend()


# -- the steps the batch script runs on the node ---------------------------------------------


def _project_for(state_dir: Path, run_id: str) -> tuple[Project, LaunchSpec]:
    from ctui.project import Project, _StoreProject

    spec = LaunchSpec.from_dict(
        orjson.loads((state_dir / "runs" / run_id / "spec.json").read_bytes())
    )
    root = Path(spec.project_root)
    store_file = Path(spec.options.get("store_file") or state_dir / "ctui.json")
    if store_file != state_dir / "ctui.json":
        return _StoreProject(root=root, state_dir=state_dir, _store_file=store_file), spec
    return Project(root=root, state_dir=state_dir), spec


def node_start(state_dir: Path, run_id: str) -> None:
    """On the node, as the job starts: capture the manifest here (code, data, the interpreter
    the job's PATH gives after the setup lines, the node's compute), make sure of the job's
    MLflow experiment, and record the node."""
    from ctui.jobs.capture import capture_run, with_dvc_params
    from ctui.store import FINAL, Store

    project, spec = _project_for(state_dir, run_id)
    fields: dict[str, Any] = {"host": socket.gethostname(), "started": time.time()}
    captured = capture_run(project, spec)
    if captured.get("manifest_error"):
        print(f"ctui: {captured['manifest_error']}", file=sys.stderr)
    hashes = captured.pop("manifest", {})
    fields.update(captured)
    merge = with_dvc_params(fields)  # the pipeline's params into the run's, as the supervisor
    ml: dict[str, Any] = {}
    if spec.options.get("mlflow"):  # the job's experiment, made sure of before it starts
        from ctui.integrations import mlflow_bridge

        ml = mlflow_bridge.before_job(project, spec.env)

    def mutate(doc: dict[str, Any]) -> None:
        merge(doc)
        if ml:
            doc["mlflow"] = {**(doc.get("mlflow") or {}), **ml}
        doc["manifest"] = {**(doc.get("manifest") or {}), **hashes}
        slurm = dict(doc.get("slurm") or {})
        slurm["nodes"] = os.environ.get("SLURM_JOB_NODELIST") or socket.gethostname()
        slurm["state"] = "RUNNING"
        slurm["reason"] = None
        doc["slurm"] = slurm
        if doc.get("status") == "queued":
            doc["status"] = "running"

    Store(project.store_file).update_run(
        run_id, fields, when=lambda d: d.get("status") not in FINAL, mutate=mutate
    )


def node_end(state_dir: Path, run_id: str, rc: int) -> None:
    """On the node, after the job: the exit record, final metrics and the MLflow sync."""
    from ctui.integrations.dvc_metrics import read_metrics
    from ctui.jobs.finish import _runs_dvc, last_metrics
    from ctui.store import Store

    project, spec = _project_for(state_dir, run_id)
    run_dir = Path(spec.run_dir)
    ended = time.time()
    metrics: dict[str, Any] = last_metrics(run_dir / "metrics.jsonl")
    try:
        started = Store(project.store_file).get_run(run_id).get("started") or 0.0
        files = spec.options.get("metrics") or []
        metrics.update(
            read_metrics(
                Path(spec.cwd),
                files,
                since=float(started) - 1.0,
                cache_dir=project.cache_dir,
                vouch=_runs_dvc(spec.argv, spec.cwd),
            )  # fmt: skip
        )
    except Exception as exc:
        print(f"ctui: could not read the metrics files: {exc}", file=sys.stderr)
    try:  # DVC plots into the run folder, the `dvc exp run` experiment's name
        from ctui.integrations.dvc_plots import record_end

        Store(project.store_file).update_run(
            run_id,
            record_end(
                Path(spec.cwd),
                run_dir,
                spec.argv,
                since=float(started) - 1.0,
                cache_dir=project.cache_dir,
            ),
        )
    except Exception as exc:
        print(f"ctui: could not record the DVC plots: {exc}", file=sys.stderr)
    record: dict[str, Any] = {
        "exit_code": rc,
        "ended": ended,
        "host": socket.gethostname(),
        "metrics": metrics,
    }
    atomic_write_bytes(run_dir / EXIT_FILE, orjson.dumps(record))
    _record_outputs(project, spec, run_id)
    if not spec.options.get("mlflow"):
        return
    from ctui.config import load_config
    from ctui.integrations import mlflow_bridge

    run = {
        **Store(project.store_file).get_run(run_id),
        "exit_code": rc,
        "ended": ended,
        "status": "succeeded" if rc == 0 else "failed",
    }
    extra = mlflow_bridge.after_run(project, load_config(project.root), run)
    record["metrics"] = {**extra, **metrics}
    record["mlflow"] = run.get("mlflow")
    atomic_write_bytes(run_dir / EXIT_FILE, orjson.dumps(record))


def _record_outputs(project: Project, spec: LaunchSpec, run_id: str) -> None:
    """On the node, after the job: what it made (outputs, final params) into the manifest."""
    from ctui.jobs.capture import capture_end, with_dvc_params
    from ctui.store import Store

    try:
        store = Store(project.store_file)
        end = capture_end(project, spec, store.get_run(run_id))
        if end:
            store.update_run(run_id, end, mutate=with_dvc_params(end))
    except Exception as exc:
        print(f"ctui: could not record the run's outputs: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ctui.jobs.backends.slurm")
    sub = parser.add_subparsers(dest="step", required=True)
    start = sub.add_parser("node-start")
    start.add_argument("state_dir", type=Path)
    start.add_argument("run_id")
    end = sub.add_parser("node-end")
    end.add_argument("state_dir", type=Path)
    end.add_argument("run_id")
    end.add_argument("rc", type=int)
    args = parser.parse_args(argv)
    if args.step == "node-start":
        node_start(args.state_dir.resolve(), args.run_id)
    else:
        node_end(args.state_dir.resolve(), args.run_id, args.rc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
