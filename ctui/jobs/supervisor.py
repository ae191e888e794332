"""The detached supervisor of one run: `python -m ctui.jobs.supervisor STATE_DIR RUN_ID`.

Started by `launch.start_supervisor` in its own session, it claims the run (records its pid and
start time, compare-and-set on `status == running`), captures the run's manifest (code, data,
the job's interpreter, compute: what the job is about to run on), starts the job through the
run's backend, relays its output into the log (`ctui.jobs.output`: arrival times, streams and
the metrics read from it), samples resources every `[monitor] interval` seconds into
`resources.jsonl`, and when the job ends records exit code, end, duration, status, peaks,
final metrics and — for a failed run — the last lines of the log. Then it starts the next
queued run if a slot freed.

SIGTERM (sent by `ctui stop`) stops the job: SIGTERM to its process group (or the container),
SIGKILL after the grace period; the run ends `cancelled`. SIGHUP and SIGINT are ignored.
A local job never outlives its supervisor (see `ctui.jobs.backends.local`: a kernel death
signal and a watchdog stop its group should the supervisor die unsaid).

The end is recorded even on a full disk (`ctui.jobs.finish`); writes that are not essential
(its notes in the log, samples, heartbeats, `supervisor.json`, its own error output) are
skipped when they fail.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctui.atomic import append_jsonl, atomic_write_bytes
from ctui.jobs.backends import get_backend
from ctui.jobs.backends.base import Execution, LaunchSpec, StartError
from ctui.jobs.finish import RunEnd, _print_exc
from ctui.jobs.seal import drop_sealed, unseal_spec
from ctui.project import Project
from ctui.store import FINAL, Store

if TYPE_CHECKING:
    from ctui.jobs.output import OutputWriter
    from ctui.monitor.process import ProcessTreeSampler

#: how often supervisor.json's mtime is refreshed while the job runs
HEARTBEAT_S = 10.0


class Supervisor(RunEnd):
    def __init__(self, project: Project, store: Store, run_id: str):
        self.project = project
        self.store = store
        self.run_id = run_id
        self.run_dir = project.run_dir(run_id)
        self.spec = LaunchSpec.from_dict(orjson.loads((self.run_dir / "spec.json").read_bytes()))
        self.interval = float(self.spec.options.get("monitor_interval") or 1.0)
        self.stop_event = threading.Event()  # set by SIGTERM
        self.wake = threading.Event()
        # written to by the SIGTERM handler: the wait for the job wakes at once
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stop_seen = False
        self.execution: Execution | None = None
        self._isolated: str | None = None  # the run's own worktree (`isolate = "worktree"`)
        self._keep_worktree = False
        self._beat = time.monotonic()
        self.output: OutputWriter | None = None  # the log's writer (`ctui.jobs.output`)
        self.output_ignored = 0  # matches in the output that were not numbers

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
        if self.output is not None:
            self.output.note(text)  # stream `c` in output.idx
            return
        with contextlib.suppress(OSError), open(self.spec.log_path, "ab") as fh:
            fh.write(f"[ctui] {text}\n".encode())

    # -- the job's output ------------------------------------------------------------------
    def _open_output(self) -> None:
        """The log's writer for this process (the job's streams and these notes), with the
        parser of the metrics in the output unless the job turned it off."""
        from ctui.jobs.output import open_writer
        from ctui.output_metrics import OUTPUT_METRICS_FILE
        from ctui.output_parser import OutputParser

        parser = None
        try:
            config = self._output_metrics_config()
            if config.enabled:
                parser = OutputParser(config, self.run_dir / OUTPUT_METRICS_FILE)
        except Exception:
            _print_exc()
        try:
            self.output = open_writer(self.spec.log_path, parser)
        except OSError:
            _print_exc()  # the backend says what is wrong with the log when it starts

    def _output_metrics_config(self) -> Any:
        from ctui.output_metrics import OutputMetricsConfig

        raw = self.spec.options.get("output_metrics")
        if raw is not None:
            return OutputMetricsConfig.from_options(raw)
        # a run launched without it in its spec: the job's config as it is now
        from ctui.config import load_config

        try:
            return load_config(self.project.root).job(self.spec.job).output_metrics
        except Exception:
            return OutputMetricsConfig()

    def _end_output(self) -> None:
        """The job is over: the rest of its output into the log and the metrics read from it
        written, before its end (final metrics, the log's tail) is read."""
        from ctui.jobs.output import DRAIN_S, close_writer

        drain = getattr(self.execution, "drain_output", None)
        try:
            if drain is not None and not drain():
                self._note(
                    f"stopped relaying the job's output {DRAIN_S:g} s after it exited: a "
                    "process it started still holds its stdout or stderr open"
                )
        except Exception:
            _print_exc()
        if self.output is not None:
            feed = self.output.feed
            close_writer(self.spec.log_path)
            self.output_ignored = feed.parser.ignored if feed is not None else 0
            self.output = None

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
        self._open_output()
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
            self._end_output()
            return self._finish(None, error=exc.message, started=time.time())
        except Exception as exc:
            self._note(f"could not start: {exc}")
            _print_exc()
            self._end_output()
            return self._finish(None, error=f"could not start: {exc}", started=time.time())
        started = time.time()
        from ctui.monitor.process import ProcessTreeSampler

        # sample at once, before the store write: a short job may be over by the first tick
        procs = ProcessTreeSampler(pids=self.execution.host_pids)
        first = procs.sample()
        self._update({"started": started, **self.execution.info()})
        code = self._watch(procs, first)
        self._end_output()
        return self._finish(code, started=started)

    def _guard(self) -> None:
        """The job's watchdog (it stops the local job or the container should this process
        die unsaid)."""
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
        exit_fd = _exit_fd(ex)
        try:
            while True:
                code = self._wait_job(ex, exit_fd, max(0.0, next_sample - time.monotonic()))
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
            if exit_fd is not None:
                os.close(exit_fd)

    def _wait_job(self, ex: Execution, exit_fd: int | None, timeout: float) -> int | None:
        """The job's exit code, or None after `timeout` s or a stop request. With a pidfd the
        wait sleeps in the kernel until the job's leader exits, SIGTERM pokes the wake pipe,
        or the next sample is due; without one, `ex.wait` in steps of 0.25 s (a local job's
        `Popen.wait(timeout)` polls at 20 Hz: that alone was ~0.6 % of a core)."""
        if exit_fd is None:
            return ex.wait(timeout=min(0.25, timeout))
        if self.stop_event.is_set() and not self._stop_seen:
            self._stop_seen = True
            return None  # the loop starts the stop before waiting again
        try:
            ready, _, _ = select.select([exit_fd, self._wake_r], [], [], timeout)
        except OSError:
            ready = [exit_fd]  # not expected: fall back to asking the backend
        if self._wake_r in ready:
            with contextlib.suppress(OSError):
                os.read(self._wake_r, 512)
        if exit_fd in ready:
            return ex.wait(timeout=0.25)  # exited: reaped at once
        return None

    def poke(self) -> None:
        """Wake the wait for the job now (from the SIGTERM handler)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

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


def _exit_fd(ex: Execution) -> int | None:
    """A pidfd that turns readable when a local job's leader exits (Linux ≥ 5.3); None for
    other backends or where there is none (the wait then asks the backend every 0.25 s)."""
    proc = getattr(ex, "proc", None)
    if not isinstance(proc, subprocess.Popen) or proc.returncode is not None:
        return None
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(proc.pid)
    except OSError:
        return None
    return fd


def _signals(sup: Supervisor) -> None:
    def on_term(signum: int, frame: Any) -> None:
        sup.stop_event.set()
        sup.poke()

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
