"""The end of a run, as its supervisor records it: exit code, status, peaks, final metrics,
what the run made, the bounded and redacted log tail — and the MLflow sync after it.

The end is recorded even on a full disk: from the claim on the supervisor holds a disk
reserve beside the run (`supervisor.reserve`, about the store's size), gives it back when the
final store write fails for want of space, and retries that write, the last tries with only
the essential fields. `RunEnd` is the part of `Supervisor` that does this.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ctui.jobs.backends.base import Execution, LaunchSpec
    from ctui.project import Project
    from ctui.store import Store

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


class RunEnd:
    """The supervisor's end of a run (mixed into `Supervisor`, which sets these)."""

    project: Project
    store: Store
    run_id: str
    run_dir: Path
    spec: LaunchSpec
    execution: Execution | None
    _isolated: str | None
    _keep_worktree: bool
    stop_event: threading.Event

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
        try:  # a job that logged no metrics: those read from its output
            from ctui.output_metrics import finish_fields

            ignored = int(getattr(self, "output_ignored", 0) or 0)
            fields.update(finish_fields(self.run_dir, fields.get("metrics") or {}, ignored))
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
                # metrics read from the output only stand in for a run's own: MLflow's win
                parsed = fields.get("metrics_from") == "output"
                synced: dict[str, Any] = {"metrics": {} if parsed else fields.get("metrics", {})}
                self._mlflow_after(synced)
                if parsed and synced["metrics"]:
                    synced["metrics_from"] = None
                elif parsed:
                    synced["metrics"] = fields.get("metrics", {})
                self.store.update_run(self.run_id, synced)
            except Exception:
                _print_exc()
        if status == "succeeded":  # its metrics are final now, MLflow's included
            from ctui.gate.evaluate import after_run

            after_run(self.project, self.store, self.run_id)
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
