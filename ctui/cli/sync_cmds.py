"""MLflow commands: `ctui sync` (retry pending MLflow syncs) and `ctui import-mlflow`."""

from __future__ import annotations

from typing import Annotated

import typer

from ctui.cli import common
from ctui.errors import CtuiError, ExitCode


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
    app.command("import-mlflow")(import_mlflow)


def sync(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Retry MLflow syncs left pending (server down during a run): nothing lost, nothing twice.

    Exit code 1 when some runs are still pending (the server is still unreachable).
    """
    from ctui.config import load_config
    from ctui.integrations.mlflow_bridge import sync_pending

    project = common.project()
    result = sync_pending(project, load_config(project.root))
    if as_json:
        common.emit_json(result)
    else:
        con = common.console()
        if not result["synced"] and not result["pending"]:
            con.print("nothing to sync: every run is in MLflow")
        for run_id in result["synced"]:
            con.print(f"synced {run_id}")
        for run_id in result["pending"]:
            con.print(f"still pending {run_id}: {result['errors'].get(run_id, '')}")
    if result["pending"]:
        raise typer.Exit(int(ExitCode.FAILED))


def import_mlflow(
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", "-e", help="Only this experiment (default: every one)."),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="Where to read from (default: [mlflow] tracking_uri, else .ctui/mlflow.db). "
            "Credentials come from MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Bring existing MLflow runs (params, metrics, tags, times, status) into the store."""
    from ctui.integrations.mlflow_import import import_runs

    project = common.project()
    if not project.store_file.exists():
        raise CtuiError(f"no run store at {project.store_file}", hint="run `ctui init` first")
    added = import_runs(project, experiment=experiment, tracking_uri=tracking_uri)
    if as_json:
        common.emit_json({"imported": added})
    else:
        common.console().print(f"imported {added} new run(s) from MLflow")
