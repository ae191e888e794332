"""What follows a promotion: `on_promote`, the MLflow Model Registry alias, notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctui.config import Config
    from ctui.project import Project


def after_promotion(project: Project, config: Config, promotion: dict[str, Any]) -> dict[str, Any]:
    """Run the job's `on_promote` and move the registry alias for a promotion record; returns
    the fields to merge into the record (`on_promote`, `registered`). Never raises."""
    return {}


def notify(project: Project, config: Config, event: str, context: dict[str, Any]) -> None:
    """`[notify] command` for an event (`promoted`, `rejected`). Never raises."""
