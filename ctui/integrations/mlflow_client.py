"""The MLflow client as ctui uses it: fails fast, keeps quiet, never writes credentials.

mlflow is imported only inside these functions (its import costs ~2 s).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ctui.integrations import mlflow_uri
from ctui.integrations.mlflow_uri import is_http

# MLflow retries an unreachable server for minutes by default; ctui would rather mark the
# sync pending and try again later. The user's own settings win for those.
_QUICK_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
# ctui's own client never prints MLflow's "🏃 View run … at <URL>" lines (they would name the
# URI in `supervisor.log` and in ctui's output), whatever the environment says: a user's
# `MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT=false` is meant for their jobs.
_FORCED = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
#: MLflow's lines that name the server (dropped should one get through)
_URL_LINES = re.compile(r"View (?:run|experiment)\b.*\bat:? ")


# -- configuration ----------------------------------------------------------------------------


def enabled(config: Any) -> bool:
    return bool(config is not None and getattr(mlflow_uri._ml(config), "enabled", False))


def tracking_uri(project: Any, config: Any = None) -> str:
    """The tracking URI in force (it may carry credentials: `safe_uri` before showing it)."""
    return mlflow_uri.resolve(project, config).uri


def experiment_name(project: Any, config: Any = None) -> str:
    return mlflow_uri.experiment_name(project, config)


class _RedactingStream(io.TextIOBase):
    """A text stream that writes whole lines to `target` with credentials redacted and
    MLflow's "View run at <URL>" lines left out."""

    def __init__(self, target: Any):
        self._target = target
        self._partial = ""

    def write(self, text: str) -> int:
        from ctui.manifest.redact import redact_text

        lines = (self._partial + str(text)).split("\n")
        self._partial = lines.pop()
        if len(self._partial) > 65536:  # a progress bar's `\r` updates: no line end comes
            lines.append(self._partial)
            self._partial = ""
        for line in lines:
            if not _URL_LINES.search(line):
                self._target.write(redact_text(line) + "\n")
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def end(self) -> None:
        if self._partial:
            self.write("\n")
        with contextlib.suppress(Exception):
            self.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return int(self._target.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._target, "encoding", "utf-8"))


_LOCK = threading.Lock()
#: how many `_quick_http` blocks are open in this process (threads of the TUI, a supervisor's
#: sync beside its experiment check): the environment and streams are set by the first and
#: restored by the last, so one ending never unmutes another still talking to MLflow
_STATE: dict[str, Any] = {"depth": 0}


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    """Fail fast on a dead server; keep MLflow's chatter off stdout, where `--json` goes, and
    any credential out of what it prints (stdout and stderr both go through `redact_text`)."""
    with _LOCK:
        if _STATE["depth"] == 0:
            names = [*_QUICK_HTTP, *_FORCED]
            _STATE["env"] = {k: os.environ.get(k) for k in names}
            for k, v in _QUICK_HTTP.items():
                os.environ.setdefault(k, v)
            os.environ.update(_FORCED)
            err = _RedactingStream(sys.stderr)
            _STATE["streams"] = (sys.stdout, sys.stderr, err)
            sys.stdout = sys.stderr = err
        _STATE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                out, errs, mine = _STATE.pop("streams")
                if sys.stdout is mine:
                    sys.stdout = out
                if sys.stderr is mine:
                    sys.stderr = errs
                mine.end()
                for k, old in _STATE.pop("env").items():
                    if old is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = old


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
    """One line for the run doc, without any credential an error message quoted."""
    from ctui.manifest.redact import redact_text

    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return redact_text(_USERINFO.sub("", f"{type(exc).__name__}: {first}"))[:300]
