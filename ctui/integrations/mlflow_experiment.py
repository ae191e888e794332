"""The run's MLflow experiment, made sure of as the job starts, in milliseconds.

The launcher only names the experiment (`MLFLOW_EXPERIMENT_NAME`: no mlflow import, no
network). Whatever starts the job (the supervisor, the Slurm node) calls `ensure` first, so
the job's own MLflow calls find ctui's experiment, with its artifact location, by that name:

- a tracking server is asked over its REST API (`experiments/get-by-name`, `create`) with
  urllib: a few ms, no mlflow import; a slow or dead server costs at most `timeout`;
- a sqlite store that has the experiment is read with sqlite3 (read-only);
- only a database or an experiment that does not exist yet goes through MLflow itself (its
  import, and for a new database its schema: seconds, once per store). `ctui init` does it
  ahead (`prepare`).

Nothing here raises: a failure is an `error` on the run's MLflow section and `sync: pending`
(the sync after the run creates what is missing; `ctui sync` retries).
"""

from __future__ import annotations

import urllib.error
from typing import Any

from ctui.integrations.mlflow_rest import call, experiment_by_name
from ctui.integrations.mlflow_uri import is_http, sqlite_path, sqlite_rows

#: seconds a tracking server gets per request before the job starts without it
TIMEOUT = 0.5


def ensure(project: Any, uri: str, name: str) -> dict[str, Any]:
    """Fields for the run's `mlflow` section: `experiment_id` and `sync: ok` once the
    experiment exists, else `error` and `sync: pending`. `uri` may carry credentials."""
    try:
        if is_http(uri):
            exp_id = _rest(uri, name)
        else:
            exp_id = prepare(project, uri, name)
    except Exception as exc:  # a slow, dead or odd store never stops the job
        from ctui.integrations.mlflow_client import _short

        return {"sync": "pending", "error": _short(exc)}
    return {"experiment_id": exp_id, "sync": "ok"}


def needs_setup(uri: str) -> bool:
    """Whether the first run will have to create the store (a sqlite file not there yet)."""
    db = sqlite_path(uri)
    return db is not None and not db.is_file()


def prepare(project: Any, uri: str, name: str) -> str:
    """Create the store's schema and the experiment now (`ctui init`): its id."""
    return _sqlite_lookup(uri, name) or _create_with_mlflow(project, uri, name)


# -- a tracking server ---------------------------------------------------------------------------


def _rest(uri: str, name: str) -> str:
    try:
        exp = experiment_by_name(uri, name, timeout=TIMEOUT)["experiment"]
        if exp.get("lifecycle_stage") == "deleted":
            body = {"experiment_id": exp["experiment_id"]}
            call(uri, "experiments/restore", body, timeout=TIMEOUT)
        return str(exp["experiment_id"])
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
    try:
        return str(
            call(uri, "experiments/create", {"name": name}, timeout=TIMEOUT)["experiment_id"]
        )
    except urllib.error.HTTPError as exc:
        if exc.code not in (400, 409):  # RESOURCE_ALREADY_EXISTS: made meanwhile
            raise
        return str(experiment_by_name(uri, name, timeout=TIMEOUT)["experiment"]["experiment_id"])


# -- a local store -------------------------------------------------------------------------------


def _sqlite_lookup(uri: str, name: str) -> str | None:
    """The active experiment's id read straight from a sqlite store; None when there is no
    such file, table or active experiment (MLflow then makes or restores it)."""
    rows = sqlite_rows(
        uri,
        "SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage = ?",
        (name, "active"),
        timeout=1.0,
    )
    return str(rows[0][0]) if rows else None


def _create_with_mlflow(project: Any, uri: str, name: str) -> str:
    from ctui.integrations.mlflow_client import (
        _artifact_location,
        _quick_http,
        client,
        get_or_create_experiment,
    )

    with _quick_http():
        return get_or_create_experiment(client(uri), name, _artifact_location(project, uri))
