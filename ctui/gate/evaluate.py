"""The gate at the end of a run: evaluate the job's rules against the champion, record the
verdict, promote a run that passed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctui.project import Project
    from ctui.store import Store


def after_run(project: Project, store: Store, run_id: str) -> None:
    """Called by the supervisor once a run succeeded and its metrics are final (MLflow's
    included). Never raises."""
