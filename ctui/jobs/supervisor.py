"""The detached supervisor of one run: `python -m ctui.jobs.supervisor STATE_DIR RUN_ID`.

Started by `launch.start_supervisor` in its own session, it claims the run (records its pid and
start time, compare-and-set on `status == running`), captures the run's manifest (code, data,
the job's interpreter, compute: what the job is about to run on), starts the job through the
run's backend,
samples resources every `[monitor] interval` seconds into `resources.jsonl`, and when the job
ends records exit code, end, duration, status, peaks, final metrics and — for a failed run —
the last lines of the log. Then it starts the next queued run if a slot freed.

SIGTERM (sent by `ctui stop`) stops the job: SIGTERM to its process group (or the container),
SIGKILL after the grace period; the run ends `cancelled`. SIGHUP and SIGINT are ignored.
A local job never outlives its supervisor (see `ctui.jobs.backends.local`: a kernel death
signal and a watchdog stop its group should the supervisor die unsaid).

The end is recorded even on a full disk: the supervisor holds a disk reserve beside the run
(`supervisor.reserve`, about the store's size) from the claim on, gives it back when the final
store write fails for want of space, and retries that write, the last tries with only the
essential fields; writes that are not essential (its notes in the log, samples, heartbeats,
`supervisor.json`, its own error output) are skipped when they fail.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctui.atomic import append_jsonl, atomic_write_bytes
from ctui.jobs.backends import get_backend
from ctui.jobs.backends.base import Execution, LaunchSpec, StartError
from ctui.jobs.command import drop_sealed, unseal_spec
from ctui.project import Project
from ctui.store import FINAL, Store

if TYPE_CHECKING:
    from ctui.monitor.process import ProcessTreeSampler

#: how often supervisor.json's mtime is refreshed while the job runs
HEARTBEAT_S = 10.0
#: tries of the final store write, a second apart and more (a full disk may free up)
FINAL_TRIES = 8
#: disk held beside the run from the claim on, given back to record the end on a full disk
RESERVE_FILE = "supervisor.reserve"
#: what the final status keeps when the whole of it cannot be written
ESSENTIAL = ("status", "error", "exit_code", "ended", "duration", "started")


def _print_exc() -> None:
    """The traceback into supervisor.log, unless that cannot be written (a full disk)."""
    with contextlib.suppress(Exception):
        traceback.print_exc()
        sys.stderr.flush()


class Supervisor:
    def __init__(self, project: Project, store: Store, run_id: str):
        self.project = project
        self.store = store
        self.run_id = run_id
        self.run_dir = project.run_dir(run_id)
        self.spec = LaunchSpec.from_dict(orjson.loads((self.run_dir / "spec.json").read_bytes()))
        self.interval = float(self.spec.options.get("monitor_interval") or 1.0)
        self.stop_event = threading.Event()  # set by SIGTERM
        self.wake = threading.Event()
        self.execution: Execution | None = None
        self._isolated: str | None = None  # the run's own worktree (`isolate = "worktree"`)
        self._keep_worktree = False
        self._beat = time.monotonic()

    # -- store helpers ---------------------------------------------------------------------
    def _update(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """A store update on the way (not the end): one that fails does not stop the run."""
        from ctui.jobs.reconcile import write_failed

        try:
            return self.store.update_run(
                self.run_id, fields, when=lambda d: d["status"] == "running"
            )
        except Exception as exc:
            if not write_failed(exc):
                raise
            _print_exc()
            return None

    def _note(self, text: str) -> None:
        """A line from ctui itself in the job log (why it could not start, that it was stopped)."""
        with contextlib.suppress(OSError), open(self.spec.log_path, "ab") as fh:
            fh.write(f"[ctui] {text}\n".encode())

    def _reserve(self) -> None:
        """Hold about a store's worth of disk beside the run, for the final write."""
        path = self.run_dir / RESERVE_FILE
        try:
            size = min(self.store.path.stat().st_size + (256 << 10), 32 << 20)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:  # no space even for that, or not supported: no reserve
            with contextlib.suppress(OSError):
                path.unlink()
        finally:
            os.close(fd)

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            (self.run_dir / RESERVE_FILE).unlink()

    def _disarm(self) -> None:
        """Tell the job's watchdog this supervisor ends normally."""
        disarm = getattr(self.execution, "disarm", None)
        if disarm is not None:
            disarm()

    # -- main ------------------------------------------------------------------------------
    def run(self) -> int:
        import psutil

        me = psutil.Process()
        ctime = me.create_time()
        claimed = self.store.update_run(
            self.run_id,
            {"supervisor_pid": me.pid, "supervisor_ctime": ctime, "host": socket.gethostname()},
            when=lambda d: d["status"] == "running" and d.get("supervisor_pid") in (None, me.pid),
        )
        if claimed is None:  # cancelled while starting, or another supervisor owns it
            with contextlib.suppress(Exception):
                if self.store.get_run(self.run_id, checked=False)["status"] in FINAL:
                    drop_sealed(self.run_id)  # nobody will start it: its secrets go too
            return 0
        self._reserve()
        me_info = {"pid": me.pid, "create_time": ctime, "host": socket.gethostname()}
        try:  # not essential: the store has the pid, the start time and the host
            data = orjson.dumps({**me_info, "started": time.time()})
            atomic_write_bytes(self.run_dir / "supervisor.json", data)
        except OSError:
            _print_exc()
        if claimed.get("stop_requested"):
            self.stop_event.set()
        try:
            self.spec = unseal_spec(self.spec)  # the secret values spec.json does not hold
            backend = get_backend(self.spec.backend)
            self._isolate()
            self._capture(backend)
            self.execution = backend.start(self.spec)
            self._guard()
        except StartError as exc:
            self._note(f"could not start: {exc.message}")
            return self._finish(None, error=exc.message, started=time.time())
        except Exception as exc:
            self._note(f"could not start: {exc}")
            _print_exc()
            return self._finish(None, error=f"could not start: {exc}", started=time.time())
        started = time.time()
        from ctui.monitor.process import ProcessTreeSampler

        # sample at once: a short job may be over before the first tick
        procs = ProcessTreeSampler(pids=self.execution.host_pids)
        first = procs.sample()
        self._update({"started": started, **self.execution.info()})
        code = self._watch(procs, first)
        return self._finish(code, started=started)

    def _guard(self) -> None:
        """The local job's watchdog (it stops the job should this process die unsaid)."""
        guard = getattr(self.execution, "guard", None)
        if guard is None:
            return
        try:
            guard(self.project, self.run_id)
        except Exception:
            _print_exc()  # the kernel's death signal still binds the job's leader to us

    def _isolate(self) -> None:
        """`isolate = "worktree"`: the run in a private worktree of the project; never in the
        shared workspace when that worktree cannot be made (a StartError says why)."""
        from ctui.errors import CtuiError
        from ctui.jobs.isolate import job_isolation, make_run_worktree

        try:
            mode, self._keep_worktree = job_isolation(self.project, self.spec)
            if mode != "worktree":
                return
            path = make_run_worktree(self.project, self.spec)
        except CtuiError as exc:
            raise StartError(exc.message) from None
        self._isolated = str(path)
        self._update({"isolated": self._isolated})

    def _capture(self, backend: Any) -> None:
        """The run's manifest, now that it leaves the queue: the tree, data and interpreter
        the job is about to run on."""
        from ctui.jobs.capture import capture_run, with_dvc_params

        try:
            python = backend.job_python(self.spec)
            env = backend.job_env(self.spec)
        except Exception:
            _print_exc()
            python, env = None, None
        fields = capture_run(self.project, self.spec, env=env, python=python)
        merge = with_dvc_params(fields)
        ml = self._mlflow_before()

        def mutate(doc: dict[str, Any]) -> None:
            merge(doc)
            if ml:
                doc["mlflow"] = {**(doc.get("mlflow") or {}), **ml}

        self.store.update_run(
            self.run_id, fields, when=lambda d: d["status"] == "running", mutate=mutate
        )

    def _mlflow_before(self) -> dict[str, Any]:
        """The job's MLflow experiment made sure of before it starts (ms; the first run on a
        new local store waits for MLflow to create it, and says so in the job's log)."""
        if not self.spec.options.get("mlflow"):
            return {}
        from ctui.integrations import mlflow_bridge
        from ctui.integrations.mlflow_experiment import needs_setup

        uri = self.spec.env.get("MLFLOW_TRACKING_URI", "")
        if needs_setup(uri):
            self._note(f"setting up the MLflow store at {uri} (first use: a few seconds)")
        try:
            return mlflow_bridge.before_job(self.project, self.spec.env)
        except Exception:
            _print_exc()
            return {}

    def _watch(self, procs: ProcessTreeSampler, first: dict[str, Any]) -> int:
        from ctui.monitor.gpu import GpuSampler, visible_from_env
        from ctui.monitor.summary import Peaks

        ex = self.execution
        assert ex is not None
        visible = self._visible_gpus(visible_from_env)
        gpu = GpuSampler(visible)
        self.peaks = Peaks()
        resources = self.run_dir / "resources.jsonl"
        if not gpu.available:  # why there are no GPU samples (not essential)
            with contextlib.suppress(OSError):
                append_jsonl(resources, orjson.dumps({"time": time.time(), "gpu": gpu.sample()}))
        self._record(first, gpu, resources)
        stopping: threading.Thread | None = None
        next_sample = time.monotonic() + self.interval
        try:
            while True:
                code = ex.wait(timeout=max(0.0, min(0.25, next_sample - time.monotonic())))
                if code is not None:
                    return code
                if self.stop_event.is_set() and stopping is None:
                    grace = self._grace()
                    self._note(f"stop requested: SIGTERM, then SIGKILL after {grace:g} s")
                    stopping = threading.Thread(target=ex.stop, args=(grace,), daemon=True)
                    stopping.start()
                if time.monotonic() >= next_sample:
                    next_sample = max(next_sample + self.interval, time.monotonic())
                    self._sample(procs, gpu, resources)
                    self._heartbeat()
        finally:
            gpu.close()

    def _heartbeat(self) -> None:
        """supervisor.json's mtime says when this supervisor was last seen alive."""
        now = time.monotonic()
        if now - self._beat >= HEARTBEAT_S:
            self._beat = now
            try:
                os.utime(self.run_dir / "supervisor.json")
            except OSError:
                pass

    def _visible_gpus(self, visible_from_env: Any) -> list[int | str] | None:
        if isinstance(self.spec.gpus, list):
            return list(self.spec.gpus)
        return visible_from_env({**os.environ, **self.spec.env})

    def _sample(self, procs: ProcessTreeSampler, gpu: Any, resources: Path) -> None:
        try:
            self._record(procs.sample(), gpu, resources)
        except Exception:
            _print_exc()  # sampling must never take the run down

    def _record(self, proc: dict[str, Any], gpu: Any, resources: Path) -> None:
        if not proc["nprocs"]:
            return  # the job has already gone
        try:
            record: dict[str, Any] = {k: v for k, v in proc.items() if k != "pids"}
            g = gpu.sample(proc["pids"]) if gpu.available else None
            if g is not None:
                record["gpus"] = g.get("gpus", [])
            self.peaks.add(proc, g)
            append_jsonl(resources, orjson.dumps(record))
        except Exception:
            _print_exc()  # sampling must never take the run down

    def _grace(self) -> float:
        try:
            req = self.store.get_run(self.run_id).get("stop_requested") or {}
            return float(req.get("grace", 10.0))
        except Exception:
            return 10.0

    # -- the end -----------------------------------------------------------------------------
    def _finish(self, code: int | None, *, error: str | None = None, started: float) -> int:
        from ctui.logs import log_tail

        if self.execution is not None:
            try:
                self.execution.close()
            except Exception:
                _print_exc()
        ended = time.time()
        fields: dict[str, Any] = {"ended": ended, "duration": round(ended - started, 3)}
        if self.execution is not None:  # again with the end, should the first write have failed
            fields["started"] = started
        exit_code = code
        if code is not None and code < 0:  # killed by a signal
            exit_code = 128 - code
            try:
                error = error or f"killed by {signal.Signals(-code).name}"
            except ValueError:
                error = error or f"killed by signal {-code}"
        fields["exit_code"] = exit_code
        run = self._read_run()
        if self.stop_event.is_set() or run.get("stop_requested"):
            status = "cancelled"
            error = error or "stopped by user"
        elif code == 0 and error is None:
            status = "succeeded"
        else:
            status = "failed"
            if error is None:
                error = f"exited with code {exit_code}"
        fields["status"] = status
        fields["error"] = error
        if status == "failed":
            try:  # bounded and redacted: it goes into the store and every export
                fields["log_tail"] = log_tail(self.spec.log_path)
            except Exception:
                _print_exc()
        peaks = getattr(self, "peaks", None)
        if peaks is not None:
            fields["peaks"] = peaks.result()
        try:
            fields["metrics"] = self._final_metrics(started)
        except Exception:
            _print_exc()
        try:  # DVC plots into the run folder, the `dvc exp run` experiment's name
            from ctui.integrations.dvc_plots import record_end

            fields.update(
                record_end(
                    Path(self.spec.cwd),
                    self.run_dir,
                    self.spec.argv,
                    since=started - 1.0,
                    cache_dir=self.project.cache_dir,
                )
            )
        except Exception:
            _print_exc()
        merge = self._outputs(run, fields)
        # everything is read from the worktree by now; it goes before the run is final, so
        # whoever waits on the final status finds it gone
        if self._isolated and not self._keep_worktree:
            from ctui.jobs.isolate import drop_run_worktree

            drop_run_worktree(self.spec, self._isolated)  # never raises
        mlflow_on = bool(self.spec.options.get("mlflow"))
        if mlflow_on:  # the sync below takes seconds (mlflow's import): say it is coming
            fields["mlflow"] = {**(run.get("mlflow") or {}), "sync": "pending"}
        self._record_end(fields, merge)
        self._disarm()
        self._release()
        self._start_next()
        if mlflow_on:
            # After the final status, so waiting on a run (the TUI, `--follow`, the queue)
            # never waits on MLflow; a failure here leaves `sync = pending` for `ctui sync`.
            try:
                synced: dict[str, Any] = {"metrics": fields.get("metrics", {})}
                self._mlflow_after(synced)
                self.store.update_run(self.run_id, synced)
            except Exception:
                _print_exc()
        return 0

    def _record_end(self, fields: dict[str, Any], merge: Any) -> None:
        """The final store write, retried: on a failure (a full disk) the reserve goes back to
        make room, and the last tries keep only the essential fields."""
        for attempt in range(FINAL_TRIES):
            if attempt >= FINAL_TRIES // 2:
                fields, merge = {k: v for k, v in fields.items() if k in ESSENTIAL}, None
            try:
                done = self.store.update_run(
                    self.run_id, fields, when=lambda d: d["status"] == "running", mutate=merge
                )
                if done is None:  # someone else finished it (stop from a host without us, lost)
                    self.store.update_run(
                        self.run_id,
                        {k: v for k, v in fields.items() if k not in ("status", "error")},
                        when=lambda d: d["status"] in ("cancelled", "lost"),
                    )
                return
            except Exception:
                _print_exc()
                self._release()
                time.sleep(min(attempt, 5))

    def _outputs(self, run: dict[str, Any], fields: dict[str, Any]) -> Any:
        """What the run made (outputs, final params) into `fields`; the store mutate that
        folds the params in."""
        from ctui.jobs.capture import capture_end, with_dvc_params

        try:
            fields.update(capture_end(self.project, self.spec, run))
        except Exception:
            _print_exc()
        return with_dvc_params(fields)

    def _read_run(self) -> dict[str, Any]:
        """The run as the store has it now; {} when it cannot be read (the end is recorded
        anyway)."""
        try:
            return self.store.get_run(self.run_id)
        except Exception:
            _print_exc()
            return {}

    def _final_metrics(self, started: float) -> dict[str, Any]:
        from ctui.integrations.dvc_metrics import read_metrics

        metrics = last_metrics(self.run_dir / "metrics.jsonl")
        files = self.spec.options.get("metrics") or []
        # 1 s of slack: some filesystems keep mtimes at a coarser grain than time.time()
        metrics.update(
            read_metrics(
                Path(self.spec.cwd),
                files,
                since=started - 1.0,
                cache_dir=self.project.cache_dir,
                vouch=_runs_dvc(self.spec.argv, self.spec.cwd),
            )  # fmt: skip
        )
        return metrics

    def _mlflow_after(self, fields: dict[str, Any]) -> None:
        if not self.spec.options.get("mlflow"):
            return
        from ctui.config import load_config
        from ctui.integrations import mlflow_bridge

        config = load_config(self.project.root)
        run = {**self.store.get_run(self.run_id), **fields}
        extra = mlflow_bridge.after_run(self.project, config, run)
        fields["metrics"] = {**(extra or {}), **fields.get("metrics", {})}
        if run.get("mlflow") is not None:
            fields["mlflow"] = run["mlflow"]

    def _start_next(self) -> None:
        try:
            from ctui.jobs.queue import start_queued

            start_queued(self.project, self.store)
        except Exception:
            _print_exc()


def _runs_dvc(argv: list[str], cwd: str) -> bool:
    """Whether the job ran DVC: only then does the final dvc.lock speak for its metrics."""
    import shlex

    from ctui.config import runs_dvc

    return runs_dvc(shlex.join(argv), Path(cwd))


def last_metrics(path: Path) -> dict[str, Any]:
    """The last value of each metric in a `metrics.jsonl` (streamed, not loaded whole)."""
    out: dict[str, Any] = {}
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return out
    with fh:
        for line in fh:
            try:
                rec = orjson.loads(line)
                value = rec["value"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # a half-written last line or a stray record
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[str(rec["name"])] = value  # a metric is a number (the store checks it)
    return out


def _signals(sup: Supervisor) -> None:
    def on_term(signum: int, frame: Any) -> None:
        sup.stop_event.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ctui.jobs.supervisor")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    from ctui.jobs.spawn import project_from_args, restore_pythonpath

    restore_pythonpath()
    project = project_from_args(args.state_dir, args.root, args.store)
    store = Store(project.store_file)
    sup = Supervisor(project, store, args.run_id)
    _signals(sup)
    try:
        return sup.run()
    except Exception:
        sup._release()  # room for the traceback; undisarmed, the watchdog stops the job
        _print_exc()
        try:
            store.update_run(
                args.run_id,
                {
                    "status": "failed",
                    "ended": time.time(),
                    "error": "internal error in the supervisor (see supervisor.log)",
                },
                when=lambda d: d["status"] == "running",
            )
        except Exception:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
