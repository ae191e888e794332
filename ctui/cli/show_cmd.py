"""`ctui show RUN`: one run, its status, params, metrics, manifest hashes and files."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ctui.cli import common
from ctui.errors import CtuiError


def register(app: typer.Typer) -> None:
    app.command("show")(show)


def show(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix (or @last).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run document as JSON.")
    ] = False,
) -> None:
    """Show one run: status, params, metrics, manifest hashes, where its files are."""
    project = common.project()
    store = common.store()
    doc = store.get_run(store.resolve(run))
    run_dir = project.run_dir(doc["id"])
    if as_json:
        common.emit_json({**doc, "run_dir": str(run_dir)})
        return
    from rich.table import Table
    from rich.text import Text

    from ctui import format as fmt

    con = common.console()
    number = fmt.seq(doc)
    head = Text(f"run {doc['id']}" + (f" {number}" if number else "") + "  ", style="bold")
    head.append_text(common.status_text(doc.get("status", "?")))
    head.append(f"  job {doc.get('job')}")
    con.print(head)
    info = Table.grid(padding=(0, 2))
    info.add_column(style="dim")
    info.add_column()
    rows: list[tuple[str, Any]] = [
        (
            "command",
            " ".join(doc["command"])
            if isinstance(doc.get("command"), list)
            else doc.get("command"),
        ),
        ("started", fmt.iso(doc.get("started") or doc.get("created"))),
        ("duration", fmt.duration(fmt.run_duration(doc))),
        ("exit code", doc.get("exit_code")),
        ("error", doc.get("error")),
        ("trigger", " — ".join(x for x in (doc.get("trigger"), doc.get("cause")) if x)),
        ("git", doc.get("git")),
        ("python", _python_line(project, doc)),
        ("mlflow", _mlflow_line(doc)),
        ("manifest error", doc.get("manifest_error")),
        ("backend", doc.get("backend")),
        ("host", doc.get("host")),
        ("tags", ", ".join(doc.get("tags") or [])),
        ("note", doc.get("note")),
        ("reproduces", doc.get("reproduces")),
        ("verdict", doc.get("verdict")),
        (
            "gate",
            (doc.get("gate") or {}).get("verdict") if isinstance(doc.get("gate"), dict) else None,
        ),
        ("metrics from", _FROM.get(doc.get("metrics_from") or "", doc.get("metrics_from"))),
        ("output metrics", _ignored_line(doc)),
        ("run folder", str(run_dir)),
    ]
    for k, v in rows:
        if v not in (None, "", []):
            info.add_row(k, Text(str(v)))
    con.print(info)
    for title, field in (("params", "params"), ("metrics", "metrics")):
        values = doc.get(field) or {}
        if values:
            t = Table(title=title, title_justify="left", box=None, show_header=False)
            from_dvc = set(doc.get("dvc_params") or []) if field == "params" else set()
            for k in sorted(values):
                where = Text("  params file", style="dim") if k in from_dvc else Text("")
                t.add_row(Text(k, style="dim"), fmt.number(values[k]), where)
            con.print(t)
    if doc.get("manifest"):
        t = Table(title="manifest", title_justify="left", box=None, show_header=False)
        for k, v in sorted(doc["manifest"].items()):
            t.add_row(Text(k, style="dim"), str(v)[:12])
        con.print(t)
    if doc.get("log_tail"):
        con.print(Text("last log lines:", style="dim"))
        for line in doc["log_tail"]:
            con.print(Text(line))


#: where a run's final metrics came from, when not from the run itself
_FROM = {"output": "the job's output (read from its log)"}


def _ignored_line(doc: dict[str, Any]) -> str | None:
    """How many matches of the output's metric patterns were not numbers."""
    n = doc.get("output_metrics_ignored")
    if not n:
        return None
    return f"{n} match{'es' if n != 1 else ''} ignored (not a number)"


def _mlflow_line(doc: dict[str, Any]) -> str | None:
    """The run's MLflow run, where it is and why there, and its sync state, in one line."""
    ml = doc.get("mlflow")
    if not ml:
        return None
    from ctui.integrations.mlflow_uri import TrackingUri

    run = ml.get("run_id") or "not created yet"
    exp = ml.get("experiment") or "?"
    if ml.get("experiment_id"):
        exp = f"{exp} ({ml['experiment_id']})"
    where = str(ml.get("tracking_uri") or "?")
    source = ml.get("tracking_uri_from")
    if source:
        where += f" — {TrackingUri(where, source).why()}"
    line = f"run {run} in experiment {exp} at {where}; sync {ml.get('sync', '?')}"
    if ml.get("imported"):
        line += f"; imported (MLflow status {ml.get('status') or '?'})"
    if ml.get("nested"):
        line += f"; {ml['nested']} nested run(s)"
    if ml.get("error") and ml.get("sync") == "pending":
        line += f" ({ml['error']})"
    return line


def _python_line(project: Any, doc: dict[str, Any]) -> str | None:
    """The job's interpreter as the env section recorded it, in one line."""
    oid = (doc.get("manifest") or {}).get("env")
    if not oid:
        return None
    from ctui.objects import ObjectStore

    try:
        env = ObjectStore(project.objects_dir).get_json(oid)
    except CtuiError:
        return None
    if env.get("status") != "ok":
        return f"not recorded: {env.get('reason')}"
    py = env.get("python") or {}
    if py.get("absent"):
        return f"none: {py['absent']}"
    count = len(env.get("packages") or {})
    return f"{py.get('version')} in {py.get('prefix')} ({py.get('how')}), {count} packages"
