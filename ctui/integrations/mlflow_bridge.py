"""MLflow bridge: create the MLflow run before launch, read metrics back, sync, import.

mlflow is imported only inside these functions (its import costs ~2 s).
The job launcher calls `before_launch` and the supervisor calls `after_run`; both are
no-ops unless the project enables MLflow (`[mlflow]` in ctui.toml).
"""

from __future__ import annotations

from typing import Any


def before_launch(project: Any, config: Any, run: dict[str, Any]) -> dict[str, str]:
    """Create the MLflow run; return env vars for the job (MLFLOW_TRACKING_URI, MLFLOW_RUN_ID,
    MLFLOW_EXPERIMENT_NAME) and set `run["mlflow"]`. Never raises: unreachable → sync pending."""
    return {}


def after_run(project: Any, config: Any, run: dict[str, Any]) -> dict[str, float]:
    """Log the manifest/section hashes, close the MLflow run, return the job's final MLflow
    metrics to fold into the run summary. Never raises: failures leave `sync = pending`."""
    return {}
