"""The MLflow client as ctui uses it: fails fast, keeps quiet, never writes credentials.

mlflow is imported only inside these functions (its import costs ~2 s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ctui.integrations import mlflow_uri
from ctui.integrations.mlflow_uri import is_http

# MLflow retries an unreachable server for minutes by default; ctui would rather mark the
# sync pending and try again later. Its "View run at <URL>" lines are not ctui's output
# (and would name the URI). The user's own settings win.
_QUICK_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


# -- configuration ----------------------------------------------------------------------------


def enabled(config: Any) -> bool:
    return bool(config is not None and getattr(mlflow_uri._ml(config), "enabled", False))


def tracking_uri(project: Any, config: Any = None) -> str:
    """The tracking URI in force (it may carry credentials: `safe_uri` before showing it)."""
    return mlflow_uri.resolve(project, config).uri


def experiment_name(project: Any, config: Any = None) -> str:
    return mlflow_uri.experiment_name(project, config)


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    """Fail fast on a dead server; keep MLflow's chatter off stdout, where `--json` goes."""
    saved = {k: os.environ.get(k) for k in _QUICK_HTTP}
    for k, v in _QUICK_HTTP.items():
        os.environ.setdefault(k, v)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)


def client(uri: str) -> Any:
    """An MlflowClient for `uri`; a `user:password@` in it goes to MLflow's own variables."""
    from mlflow.tracking import MlflowClient

    # MLflow's own INFO lines ("Creating initial MLflow database tables…") are noise in
    # ctui's output; its warnings and errors still show.
    for name in ("mlflow", "alembic"):
        if logging.getLogger(name).level < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=mlflow_uri.use_credentials(uri))


def _artifact_location(project: Any, uri: str) -> str | None:
    """Artifacts of an experiment ctui creates in a local store: beside its database
    (MLflow's default is ./mlruns in whatever folder the process runs in)."""
    db = mlflow_uri.sqlite_path(uri)
    if db is not None:
        return (db.parent.resolve() / "mlartifacts").as_uri()
    if not is_http(uri) and "://" not in uri:
        return (Path(project.state_dir).resolve() / "mlartifacts").as_uri()
    return None


def get_or_create_experiment(cl: Any, name: str, artifact_location: str | None) -> str:
    exp = cl.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            cl.restore_experiment(exp.experiment_id)
        return str(exp.experiment_id)
    try:
        return str(cl.create_experiment(name, artifact_location=artifact_location))
    except Exception:
        exp = cl.get_experiment_by_name(name)  # created meanwhile by another process
        if exp is None:
            raise
        return str(exp.experiment_id)


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _short(exc: BaseException) -> str:
    """One line for the run doc, without any `user:password@` an error message quoted."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return _USERINFO.sub("", f"{type(exc).__name__}: {first}")[:300]
