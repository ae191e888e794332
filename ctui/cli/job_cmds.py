"""Job commands: run, stop, ps, logs, queue, top, jobs."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctui.cli import common
from ctui.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from ctui.project import Project


def register(app: typer.Typer) -> None:
    """Add this module's commands (`logs`: `log_cmds`)."""
    app.command("run")(run)
    app.command("stop")(stop)
    app.command("ps")(ps)
    app.command("queue")(queue)
    app.command("top")(top)
    app.command("jobs")(jobs)


# -- run ------------------------------------------------------------------------------------


def run(
    job: Annotated[str, typer.Argument(help="Job name from ctui.toml (`ctui jobs` lists them).")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Override a param: -p lr=0.1 (repeatable)."),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow/--detach",
            "-f/-d",
            help="Stream the log until the run ends and exit with its status "
            "(default: detach and print the run id).",
        ),
    ] = False,
    backend: Annotated[
        str | None, typer.Option("--backend", help="local | docker | slurm (default: the job's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run document.")] = False,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="One run per value: --sweep lr=0.1,0.01 (repeatable: every combination). "
            "On Slurm the sweep is one job array.",
        ),
    ] = None,
) -> None:
    """Launch a run of JOB in the background (detached supervisor)."""
    from ctui.config import load_config
    from ctui.jobs.command import parse_assignments
    from ctui.jobs.launch import launch_run

    project = common.project()
    config = load_config(project.root)
    config.job(job)  # unknown job → exit 2 before anything else
    params = parse_assignments(param or [])
    if sweep:
        _run_sweep(project, job, params, sweep, backend, config, follow, as_json)
        return
    doc = launch_run(project, job, params, backend=backend, config=config)
    if as_json and not follow:
        common.emit_json(doc)
        return
    out = common.err_console() if as_json else common.console()
    out.print(_launched_line(doc, job))
    if not follow:
        from rich.text import Text

        out.print(Text("follow its log with ", style="dim").append(f"ctui logs -f {doc['id']}"))
        return
    final = follow_run(project, doc["id"])
    if as_json:
        common.emit_json(final)
    else:
        common.console().print(common.status_text(final["status"]), _end_note(final))
    raise typer.Exit(0 if final["status"] == "succeeded" else int(ExitCode.FAILED))


def _run_sweep(
    project: Project,
    job: str,
    params: dict[str, Any],
    sweep: list[str],
    backend: str | None,
    config: Any,
    follow: bool,
    as_json: bool,
) -> None:
    from ctui.errors import CtuiError
    from ctui.jobs.sweep import launch_sweep, parse_sweep

    if follow:
        raise CtuiError("--follow follows one run", hint="drop --follow; `ctui ps` shows the sweep")
    docs = launch_sweep(project, job, parse_sweep(sweep), params, backend=backend, config=config)
    if as_json:
        common.emit_json(docs)
        return
    for doc in docs:
        shown = " ".join(f"{k}={doc['params'][k]}" for k in parse_sweep(sweep))
        common.console().print(_launched_line(doc, job).append(f": {shown}"))


def _launched_line(doc: dict[str, Any], job: str) -> Any:
    """`running run 08jgkcxrd2ta #7 of job train`, never read as markup."""
    from rich.text import Text

    from ctui import format as fmt

    line = Text(f"{doc['status']} run ")
    line.append(doc["id"], style="bold")
    number = fmt.seq(doc)
    return line.append((f" {number}" if number else "") + f" of job {job}")


def _end_note(doc: dict[str, Any]) -> str:
    parts = []
    if doc.get("exit_code") is not None:
        parts.append(f"exit code {doc['exit_code']}")
    if doc.get("error") and doc.get("status") != "succeeded":
        parts.append(str(doc["error"]))
    return " — ".join(parts)


def _is_over(project: Project, run_id: str) -> Callable[[], bool]:
    """A predicate for `follow`: the run is final (a lost supervisor ends it too)."""
    from ctui.jobs.reconcile import end_check

    check = end_check(project, run_id)
    return lambda: check() is not None


#: the longest `--follow` waits after a run's end for its MLflow sync (about 3 s normally:
#: the supervisor imports mlflow, pushes, closes the MLflow run)
FOLLOW_MLFLOW_SETTLE_S = 60.0


def follow_run(project: Project, run_id: str, *, offset: int = 0) -> dict[str, Any]:
    """Copy the run's log to stdout until the run is complete — ended, and its MLflow sync
    done or failed (then said: `ctui sync` retries); returns the final run document.

    Ctrl-C stops following only: the run keeps going (exit 130).
    """
    from ctui.logs import follow

    path = project.run_dir(run_id) / "output.log"
    write = sys.stdout.write
    try:
        for line in follow(path, _is_over(project, run_id), offset=offset):
            write(line + "\n")
        sys.stdout.flush()
        final = _wait_for_mlflow(project, run_id)
    except KeyboardInterrupt:
        sys.stdout.flush()
        common.err_console().print(
            f"stopped following; the run keeps going (ctui stop {run_id} stops it)"
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if (final.get("mlflow") or {}).get("sync") == "pending":
        common.err_console().print("MLflow sync pending: ctui sync retries")
    return final


def _wait_for_mlflow(project: Project, run_id: str) -> dict[str, Any]:
    """The ended run, once its supervisor's MLflow sync is done or has failed (it marks the
    attempt), the supervisor is gone, or FOLLOW_MLFLOW_SETTLE_S passed."""
    from ctui.integrations.mlflow_sync import sync_settled
    from ctui.jobs.reconcile import wait_for_end
    from ctui.jobs.spawn import supervisor_alive

    run = wait_for_end(project, run_id, poll=0.1)
    deadline = time.monotonic() + FOLLOW_MLFLOW_SETTLE_S

    def coming(doc: dict[str, Any]) -> bool:  # only a supervisor syncs after the end
        local = (doc.get("backend") or "local") in ("local", "docker")
        return local and supervisor_alive(doc) is not False

    while not sync_settled(run) and coming(run) and time.monotonic() < deadline:
        # returns at once when the sync is ok, else after one short settle: poll again
        run = wait_for_end(project, run_id, poll=0.1, mlflow_settle=0.2)
    return run


# -- stop -----------------------------------------------------------------------------------


def stop(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id or unique prefix.")],
    grace: Annotated[
        float, typer.Option("--grace", help="Seconds between SIGTERM and SIGKILL.")
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run document.")] = False,
) -> None:
    """Stop a run: SIGTERM to its process group, SIGKILL after the grace period."""
    from ctui.jobs.stop import stop_run
    from ctui.store import ACTIVE, open_store

    project = common.project()
    run_id = open_store(project).resolve(run_ref)
    before = open_store(project).get_run(run_id)["status"]
    doc = stop_run(project, run_id, grace=grace)
    if as_json:
        common.emit_json(doc)
        return
    if before not in ACTIVE and doc["status"] == before:
        common.console().print(f"run {run_id} had already ended ({before})")
        return
    # a lost run whose job lived on (an orphan) is stopped too: cancelled
    common.console().print(f"run {run_id}:", common.status_text(doc["status"]))


# -- ps / queue -----------------------------------------------------------------------------


def _active_runs(project: Project) -> list[dict[str, Any]]:
    from ctui.jobs.reconcile import refresh
    from ctui.store import open_store

    store = open_store(project)
    refresh(project, store)
    return [r for r in store.live_runs() if r.get("status") in ("running", "queued")]


def ps(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include queued runs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run documents.")] = False,
) -> None:
    """List running runs (with --all, queued ones too)."""
    from rich.table import Table
    from rich.text import Text

    from ctui import format as fmt

    project = common.project()
    docs = [r for r in _active_runs(project) if all_ or r["status"] == "running"]
    if as_json:
        common.emit_json(docs)
        return
    if not docs:
        common.console().print("no runs running")
        return
    now = time.time()
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("id", "job", "status", "started", "elapsed", "pid", "trigger", "params"):
        table.add_column(name, no_wrap=name != "params")
    for r in docs:
        params = " ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())
        table.add_row(
            Text(r["id"]),
            Text(str(r.get("job"))),
            common.status_text(r["status"]),
            fmt.timestamp(r.get("started") or r.get("created"), now=now),
            fmt.duration(fmt.run_duration(r, now=now)),
            Text(str(r.get("pid") or "")),
            Text(str(r.get("trigger") or "")),
            Text(params),
        )
    common.console().print(table)


def queue(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the queued run documents.")
    ] = False,
) -> None:
    """Show queued runs in the order they will start."""
    from rich.table import Table
    from rich.text import Text

    from ctui import format as fmt
    from ctui.jobs.queue import queued_runs

    project = common.project()
    docs = queued_runs(_active_runs(project))
    if as_json:
        common.emit_json(docs)
        return
    if not docs:
        common.console().print("the queue is empty")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("#", "id", "job", "queued", "max_concurrent", "trigger", "params"):
        table.add_column(name, no_wrap=name != "params")
    for i, r in enumerate(docs, 1):
        params = " ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())
        table.add_row(
            str(i),
            Text(r["id"]),
            Text(str(r.get("job"))),
            fmt.timestamp(r.get("created")),
            str(r.get("max_concurrent") or ""),
            Text(str(r.get("trigger") or "")),
            Text(params),
        )
    common.console().print(table)


# -- jobs -----------------------------------------------------------------------------------


def jobs(
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON.")] = False,
) -> None:
    """List the jobs declared in ctui.toml with their params."""
    from dataclasses import asdict

    from rich.table import Table
    from rich.text import Text

    from ctui.config import load_config

    project = common.project()
    config = load_config(project.root)
    if as_json:
        common.emit_json({name: asdict(job) for name, job in config.jobs.items()})
        return
    if not config.jobs:
        where = config.path or project.root / "ctui.toml"
        common.console().print(
            f"no jobs declared in {where} — add a [jobs.NAME] table", markup=False
        )
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("job", "backend", "max", "params", "command"):
        table.add_column(name, no_wrap=name in ("job", "backend", "max"))
    for name, job in config.jobs.items():
        params = " ".join(f"{k}={v!r}" for k, v in job.params.items())
        table.add_row(
            Text(name),
            Text(job.backend),
            str(job.max_concurrent or ""),
            Text(params),
            Text(job.command),
        )
    common.console().print(table)


# -- top ------------------------------------------------------------------------------------


def top(
    run_ref: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="One run (default: all running runs).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Refresh period (s).")] = 1.0,
) -> None:
    """Live CPU, RAM and GPU of running runs (q or Ctrl-C quits)."""
    from ctui.monitor.top import TopView

    project = common.project()
    view = TopView(project, run_ref)
    try:
        if once:
            common.console().print(view.frame())
            return
        from ctui.monitor.top import run_live

        run_live(view, common.console(), interval)
    except KeyboardInterrupt:
        pass
    finally:
        view.close()
