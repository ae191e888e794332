"""MLflow bridge: link each ctui run to one MLflow run, sync it, retry what was pending.

The job launcher calls `before_launch`, the supervisor `before_job` and `after_run`; all are
no-ops unless the project enables MLflow (`[mlflow]` in ctui.toml). mlflow is imported only
inside functions (its import costs ~2 s).

- Where runs go: `mlflow_uri` (the tracking URI in force and why; credentials never written).
- Which MLflow run: `mlflow_runs` (the job's own run is adopted; MLflow's mechanism there).
- The sync itself: `mlflow_sync` (exactly once per metric point).
- Nothing is lost when the tracking server is down: every failure leaves
  `run["mlflow"]["sync"] = "pending"`; `sync_pending` (from `ctui sync` and `ctui watch`)
  does the whole sync again later.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ctui.integrations import mlflow_runs, mlflow_uri
from ctui.integrations.mlflow_client import (
    _short,
    client,
    enabled,
    experiment_name,
    tracking_uri,
)
from ctui.integrations.mlflow_sync import (
    SYNCED_FILE,
    _mark,
    _uri_for,
    read_metric_points,
    sync_run,
)
from ctui.integrations.mlflow_uri import reachable, safe_uri
from ctui.store import FINAL, Store

__all__ = [
    "RUN_TAG",
    "SYNCED_FILE",
    "after_run",
    "before_job",
    "before_launch",
    "client",
    "enabled",
    "experiment_name",
    "pending_runs",
    "read_metric_points",
    "reachable",
    "safe_uri",
    "sync_pending",
    "sync_run",
    "tracking_uri",
]

RUN_TAG = mlflow_runs.RUN_TAG


def before_launch(project: Any, config: Any, run: dict[str, Any]) -> dict[str, str]:
    """Set `run["mlflow"]` and return the job's MLflow variables. Never raises, never waits:
    no mlflow import and no network here (a launch takes milliseconds); the experiment is
    made sure of as the job starts (`mlflow_experiment.ensure`, by the supervisor).

    The job gets the tracking URI (without credentials), ctui's experiment by name
    (`MLFLOW_EXPERIMENT_NAME`) and `MLFLOW_RUN_CONTEXT` (tags MLflow adds to every run the
    job starts: `ctui.run_id` links them), but no `MLFLOW_RUN_ID`: the run the job starts
    itself is adopted after it (see `mlflow_runs`), so `set_experiment`, autolog and nested
    runs work unchanged.
    """
    if not enabled(config):
        return {}
    tracking = mlflow_uri.resolve(project, config)
    name = experiment_name(project, config)
    run["mlflow"] = {
        "run_id": None,
        "experiment_id": None,
        "experiment": name,
        "tracking_uri": tracking.safe,
        "tracking_uri_from": tracking.source,
        "sync": "pending",
    }
    mlflow_uri.use_credentials(tracking.uri)  # the supervisor (and a local job) inherit them
    env = {
        "MLFLOW_TRACKING_URI": tracking.safe,
        "MLFLOW_EXPERIMENT_NAME": name,
        mlflow_runs.RUN_CONTEXT_ENV: mlflow_runs.run_context(project, run, os.environ),
    }
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        if os.environ.get(inherited):  # the user's shell must not redirect the job's runs
            env[inherited] = ""
    return env


def before_job(project: Any, spec_env: dict[str, str]) -> dict[str, Any]:
    """As the job starts: make sure of its experiment (milliseconds; seconds only the first
    time a local store is created). The fields to merge into the run's `mlflow` section."""
    from ctui.integrations import mlflow_experiment

    uri, name = spec_env.get("MLFLOW_TRACKING_URI"), spec_env.get("MLFLOW_EXPERIMENT_NAME")
    if not uri or not name:
        return {}
    return mlflow_experiment.ensure(project, uri, name)


def after_run(project: Any, config: Any, run: dict[str, Any]) -> dict[str, float]:
    """Sync the ended run (adopt or create its MLflow run, push, close it); return the MLflow
    run's final metrics to fold into the run summary. Never raises: failures leave
    `sync = pending` (with `error` and `tried`)."""
    if not enabled(config) and not run.get("mlflow"):
        return {}
    uri = tracking_uri(project, config)
    try:
        metrics = sync_run(project, run, uri, experiment=experiment_name(project, config))
    except Exception as exc:
        _mark(project, run, {"sync": "pending", "error": _short(exc), "tried": time.time()})
        return {}
    return metrics


# -- retry ---------------------------------------------------------------------------------------


def pending_runs(project: Any, runs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Ended runs whose MLflow sync is pending (cheap: no mlflow import)."""
    return [
        r
        for r in (Store(project.store_file).runs() if runs is None else runs)
        if (r.get("mlflow") or {}).get("sync") == "pending" and r.get("status") in FINAL
    ]


def sync_pending(project: Any, config: Any = None) -> dict[str, Any]:
    """Retry every pending MLflow sync of an ended run, and bring imported runs that MLflow
    still said were running up to date.

    Returns {"synced": [run ids], "pending": [run ids still pending], "updated": [imported
    run ids that changed], "errors": {id: why}}. Imports mlflow only when there is work.
    """
    from ctui.integrations import mlflow_import

    runs = Store(project.store_file).runs()  # read once for both
    todo = pending_runs(project, runs)
    live = mlflow_import.live_imported(project, runs)
    result: dict[str, Any] = {"synced": [], "pending": [], "updated": [], "errors": {}}
    if not todo and not live:
        return result
    if config is None:
        from ctui.config import load_config

        config = load_config(Path(project.root))
    uri = tracking_uri(project, config)
    experiment = experiment_name(project, config)
    down: set[str] = set()
    for run in todo:
        target = _uri_for(run, uri)
        if target not in down and not reachable(target):
            down.add(target)
        if target in down:  # one unreachable server is tried once per call, not per run
            result["pending"].append(run["id"])
            result["errors"][run["id"]] = f"MLflow at {safe_uri(target)} is not reachable"
            continue
        try:
            sync_run(project, run, uri, experiment=experiment)
        except Exception as exc:
            _mark(project, run, {"sync": "pending", "error": _short(exc), "tried": time.time()})
            result["pending"].append(run["id"])
            result["errors"][run["id"]] = _short(exc)
        else:
            result["synced"].append(run["id"])
    if live:
        updated, errors = mlflow_import.refresh_live(project, live, uri)
        result["updated"] = updated
        result["errors"].update(errors)
    return result
