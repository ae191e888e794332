"""MLflow commands: `ctui sync` (retry pending MLflow syncs, refresh live imported runs) and
`ctui import-mlflow` (the same as `ctui import mlflow`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ctui.cli import common
from ctui.errors import CtuiError, ExitCode

TRACKING_URI_HELP = (
    "Where to read from (default: \\[mlflow] tracking_uri, else $MLFLOW_TRACKING_URI, else "
    ".ctui/mlflow.db). Credentials come from MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN."
)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
    app.command("import-mlflow")(import_mlflow)


def sync(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Retry MLflow syncs left pending (server down during a run): nothing lost, nothing twice.
    Imported runs MLflow said were running are asked about again.

    Exit code 2 when some runs are still pending because the MLflow server is unreachable
    (README: an unreachable engine is bad input), 1 when the server answered but a sync failed.
    """
    from ctui.config import load_config
    from ctui.integrations.mlflow_bridge import sync_pending

    project = common.project()
    result = sync_pending(project, load_config(project.root))
    if as_json:
        common.emit_json(result)
    else:
        con = common.console()
        if not result["synced"] and not result["pending"] and not result["updated"]:
            con.print("nothing to sync: every run is in MLflow")
        for run_id in result["synced"]:
            con.print(f"synced {run_id}")
        for run_id in result["updated"]:
            con.print(f"updated {run_id} from MLflow")
        for run_id in result["pending"]:
            con.print(f"still pending {run_id}: {result['errors'].get(run_id, '')}", markup=False)
        for run_id, why in result["errors"].items():
            if run_id not in result["pending"]:
                common.err_console().print(f"could not refresh {run_id}: {why}", markup=False)
    if result["pending"]:
        down = [i for i in result["pending"] if _unreachable(result["errors"].get(i))]
        if down:
            if not as_json:
                common.print_error(
                    CtuiError(
                        f"{result['errors'][down[0]]}: {len(down)} run(s) still pending",
                        hint="start the server (or fix [mlflow] tracking_uri), "
                        "then `ctui sync` again",
                    )
                )
            raise typer.Exit(int(ExitCode.BAD_INPUT))
        raise typer.Exit(int(ExitCode.FAILED))


def _unreachable(why: str | None) -> bool:
    """A pending sync's reason says the server could not be reached (`sync_pending` words it
    "MLflow at URI is not reachable" when its probe found nobody listening)."""
    return bool(why) and str(why).endswith("is not reachable")


SINCE_HELP = (
    "Only runs that started or ended after WHEN: `last` (the previous import of this server "
    "and experiment; a first import reads everything), a duration (`1h`: the last hour) or a "
    "date/time (`2026-11-30`, `2026-11-30T12:00`, local time)."
)


def run_import(
    experiment: str | None,
    tracking_uri: str | None,
    *,
    since: str | None = None,
    as_json: bool = False,
) -> None:
    """`ctui import mlflow` and `ctui import-mlflow`: import, then say how many."""
    from ctui.integrations.mlflow_import import import_runs

    project = common.project()
    if not project.store_file.exists():
        raise CtuiError(f"no run store at {project.store_file}", hint="run `ctui init` first")
    since_ms = _since_ms(project, since, experiment, tracking_uri)
    result: Any = import_runs(
        project, experiment=experiment, tracking_uri=tracking_uri, since_ms=since_ms
    )
    if as_json:
        common.emit_json(result.as_dict())
    else:
        common.console().print(result.text())


def _since_ms(
    project: Any, since: str | None, experiment: str | None, tracking_uri: str | None
) -> int | None:
    """`--since` in MLflow's milliseconds (None: read everything)."""
    import time
    from datetime import datetime
    from pathlib import Path

    from ctui.config import ConfigError, parse_duration

    if since is None:
        return None
    text = since.strip()
    if text == "last":
        from ctui.config import load_config
        from ctui.integrations import mlflow_uri
        from ctui.integrations.mlflow_import import last_mark

        uri = mlflow_uri.resolve(project, load_config(project.root), cli=tracking_uri).uri
        return last_mark(project, uri, experiment)
    try:
        return int((time.time() - parse_duration(text, path=Path("--since"), key="since")) * 1000)
    except ConfigError:
        pass
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise CtuiError(
            f"--since {since!r} is not `last`, a duration or a date",
            hint="e.g. --since last, --since 1h, --since 2026-11-30T12:00",
        ) from None


def import_mlflow(
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", "-e", help="Only this experiment (default: every one)."),
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help=TRACKING_URI_HELP)
    ] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help=SINCE_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Bring existing MLflow runs (params, metrics, tags, times, status, parents) into the
    store; again to update them (`--since last`: only what changed). Same as `ctui import
    mlflow`."""
    run_import(experiment, tracking_uri, since=since, as_json=as_json)
