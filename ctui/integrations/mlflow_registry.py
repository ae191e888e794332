"""A promoted run's model in MLflow's Model Registry, with the alias `champion` on it.

The run's MLflow run (`run["mlflow"]["run_id"]`, linked by the bridge) must hold the model
artifact (`register_artifact`, default `model`). A run whose model was registered before (a
rollback to an earlier champion) gets the alias back on its existing version: no new
version. mlflow is imported only inside `register`.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ctui.store import Store

if TYPE_CHECKING:
    from ctui.project import Project

ALIAS = "champion"
RUN_TAG = "ctui.run_id"


def _tracking_uri(project: Project, config: Any, run: dict[str, Any]) -> str:
    """Where the run's MLflow run lives: the URI it was created at, with the configured
    URI's credentials when it is the same server."""
    from ctui.integrations.mlflow_client import tracking_uri
    from ctui.integrations.mlflow_uri import safe_uri

    configured = tracking_uri(project, config)
    recorded = (run.get("mlflow") or {}).get("tracking_uri")
    if recorded and safe_uri(configured) != recorded:
        return str(recorded)
    return configured


def register(
    project: Project, config: Any, run_id: str, name: str, artifact: str = "model"
) -> dict[str, Any]:
    """Register `runs:/<mlflow run>/<artifact>` as a version of model `name` (or find the
    version made from it before) and point the alias `champion` at it.

    `{"ok", "name", "version", "alias", "model_uri", "source", "previous_version", "error"}`;
    a run with no MLflow run or no such artifact is `ok: False` with the reason."""
    out: dict[str, Any] = {
        "ok": False,
        "name": name,
        "version": None,
        "alias": ALIAS,
        "model_uri": f"models:/{name}@{ALIAS}",
        "source": None,
        "previous_version": None,
        "error": None,
    }
    run = Store(project.store_file).get_run(run_id)
    ml = run.get("mlflow") or {}
    mlflow_run = ml.get("run_id")
    if not mlflow_run:
        out["error"] = (
            f"run {run_id} has no MLflow run to register a model from "
            "(enable [mlflow] and log the model with mlflow in the job)"
        )
        return out
    uri = _tracking_uri(project, config, run)
    out["source"] = source = f"runs:/{mlflow_run}/{artifact}"
    from ctui.integrations.mlflow_uri import safe_uri

    try:
        cl = _client(uri)
        if not cl.list_artifacts(mlflow_run, artifact):
            out["error"] = (
                f"MLflow run {mlflow_run} of run {run_id} has no artifact {artifact!r} "
                "(log the model there, or set register_artifact)"
            )
            return out
        out["previous_version"] = _alias_version(cl, name)
        version = _existing_version(cl, name, mlflow_run, run_id)
        out["reused"] = version is not None
        if version is None:
            version = _new_version(uri, source, name, run_id)
        cl.set_registered_model_alias(name, ALIAS, version)
    except Exception as exc:  # a registry failure is recorded; the promotion stands
        from ctui.manifest.redact import redact_text

        out["error"] = redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0])[:300]
        out["tracking_uri"] = safe_uri(uri)
        return out
    out.update(ok=True, version=str(version), tracking_uri=safe_uri(uri))
    return out


def _alias_version(cl: Any, name: str) -> str | None:
    try:
        return str(cl.get_model_version_by_alias(name, ALIAS).version)
    except Exception:  # no such model yet, or no alias on it
        return None


def _existing_version(cl: Any, name: str, mlflow_run: str, run_id: str) -> str | None:
    """The version registered from this run before (highest first), if any."""
    try:
        found = cl.search_model_versions(f"name = '{_quote(name)}' and run_id = '{mlflow_run}'")
    except Exception:  # no such registered model yet
        return None
    mine = [v for v in found if (v.tags or {}).get(RUN_TAG, run_id) == run_id]
    if not mine:
        return None
    return str(max(mine, key=lambda v: int(v.version)).version)


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _client(uri: str) -> Any:
    """A client whose registry is the tracking store at `uri` (not MLflow's global one)."""
    from mlflow.tracking import MlflowClient

    from ctui.integrations.mlflow_client import client
    from ctui.integrations.mlflow_uri import use_credentials

    client(uri)  # MLflow's INFO lines quieted; credentials in MLflow's own variables
    plain = use_credentials(uri)
    return MlflowClient(tracking_uri=plain, registry_uri=plain)


_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def _pointed_at(uri: str) -> Iterator[None]:
    """MLflow's global tracking and registry URIs set to `uri` for a fluent call, then put
    back as they were (a long-lived process, the TUI, may talk to other stores after)."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = (
        getattr(tracking_utils, "_tracking_uri", None),
        getattr(registry_utils, "_registry_uri", None),
        {k: os.environ.get(k) for k in _URI_VARS},
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri = saved[0]
        registry_utils._registry_uri = saved[1]
        for key, value in saved[2].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _new_version(uri: str, source: str, name: str, run_id: str) -> str:
    """`mlflow.register_model` against `uri` (MLflow's own resolution of a runs:/ URI: the
    run's artifacts, or the model MLflow 3 logged from that run)."""
    import mlflow

    from ctui.integrations.mlflow_uri import use_credentials

    with _pointed_at(use_credentials(uri)), contextlib.redirect_stderr(io.StringIO()):
        mv = mlflow.register_model(source, name, tags={RUN_TAG: run_id})  # "Created version…"
    return str(mv.version)
