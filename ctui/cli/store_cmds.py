"""Commands over the run store: init, runs, tag, note, rm, doctor (show: `show_cmd`; export
and import: `transfer_cmds`; the runs table: `runs_table`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ctui.cli import common
from ctui.errors import BadRunError, CtuiError, ExitCode, os_error

CONFIG_TEMPLATE = """\
# ctui.toml — jobs, triggers and settings for ctui (https://github.com/ctui/ctui)
#
# A job is a command with default params. Params fill {placeholders} token by token
# (never pasted into a shell string) and are also exported as CTUI_PARAM_<NAME>.
#
# [jobs.train]
# command = "python train.py --lr {lr} --epochs {epochs}"
# params = { lr = 0.01, epochs = 3 }
# backend = "local"          # local | docker | slurm
# data = ["data/train.csv"]  # extra data paths to hash (DVC-tracked paths are found anyway)
# metrics = ["metrics.json"] # metrics files read after the run (dvc.yaml metrics too)
# max_concurrent = 1         # further runs wait as `queued`
# env = { OMP_NUM_THREADS = "4" }
# gpus = "all"               # or [0, 1]
#
# [triggers.new-data]
# job = "train"
# on = "data"                # data | code | schedule | metric | after
# cooldown = "10m"
#
# [mlflow]
# enabled = true             # tracking_uri defaults to sqlite:///.ctui/mlflow.db
"""


def register(app: typer.Typer) -> None:
    """Add this module's commands (`show`, `export`, `import`: their own modules)."""
    app.command("init")(init)
    app.command("runs")(runs)
    app.command("tag")(tag)
    app.command("note")(note)
    app.command("rm")(rm)
    app.command("doctor")(doctor)


def init(
    path: Annotated[Path, typer.Argument(help="Project folder (default: here).")] = Path("."),
) -> None:
    """Make a folder a ctui project: `.ctui/` state and a commented `ctui.toml`."""
    from ctui.project import Project
    from ctui.store import Store

    root = path.resolve()
    if not root.is_dir():
        raise CtuiError(f"{root} is not a folder")
    proj = Project(root=root, state_dir=root / ".ctui").ensure()
    Store(proj.store_file).initialise()
    said = [f"initialised {proj.state_dir}"]
    toml = root / "ctui.toml"
    if not toml.exists():
        toml.write_text(CONFIG_TEMPLATE)
        said.append(f"wrote {toml} (commented example)")
    if (root / ".git").exists():
        gi = root / ".gitignore"
        lines = gi.read_text().splitlines() if gi.exists() else []
        if not any(line.strip().rstrip("/") in (".ctui", "/.ctui") for line in lines):
            with gi.open("a") as fh:
                fh.write(("" if not lines or gi.read_text().endswith("\n") else "\n") + ".ctui/\n")
            said.append("added .ctui/ to .gitignore")
    for line in said:
        common.console().print(line)
    _prepare_mlflow(proj)


def _prepare_mlflow(project: Any) -> None:
    """With `[mlflow] enabled`, create a new local MLflow store and ctui's experiment now
    (seconds, once), so the first run starts as fast as the others."""
    from ctui.config import load_config
    from ctui.integrations import mlflow_experiment, mlflow_uri

    try:
        config = load_config(project.root)
    except CtuiError:  # a broken ctui.toml is for `ctui doctor` to explain, not init
        return
    if not config.mlflow.enabled:
        return
    tracking = mlflow_uri.resolve(project, config)
    if not mlflow_experiment.needs_setup(tracking.uri):
        return
    common.console().print(f"setting up the MLflow store at {tracking.safe} (once)…", markup=False)
    name = mlflow_uri.experiment_name(project, config)
    try:
        exp_id = mlflow_experiment.prepare(project, tracking.uri, name)
    except Exception as exc:  # the first run tries again
        from ctui.integrations.mlflow_client import _short

        common.console().print(f"MLflow store not set up: {_short(exc)}", markup=False)
        return
    common.console().print(
        f"MLflow experiment {name!r} ({exp_id}) at {tracking.safe}", markup=False
    )


def _refresh_if_active(project: Any, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Let the job layer settle runs whose supervisor died (lost) or queue slots that freed.

    A refresh that cannot write (a full disk, a read-only `.ctui`, a store busy too long)
    is a warning: the runs are listed as they are."""
    if not any(d.get("status") in _LIVE for d in docs) or not _settle(project):
        return docs
    from ctui.store import Store

    return Store(project.store_file).runs()


_LIVE = ("running", "queued")


def _settle(project: Any) -> bool:
    """`ctui.jobs.reconcile.refresh`: whether it changed a run (a failure is a warning)."""
    try:
        from ctui.jobs.reconcile import refresh
    except ImportError:
        return False
    try:
        return bool(refresh(project))
    except (CtuiError, OSError) as exc:
        error = exc if isinstance(exc, CtuiError) else os_error(exc)
        common.print_warning(f"run states not refreshed: {error.message}")
        return False


def select_runs(
    project: Any,
    filter_text: str | None,
    sort: str | None,
    limit: int | None,
    damaged: dict[str, str] | None = None,
    counts: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The runs `ctui runs` shows: filtered, sorted (newest first by default), limited.

    A filter that does not parse or compares a number with a word, and a sort key that
    names nothing, are a CtuiError (exit 2). Runs with wrongly typed fields are left out;
    `damaged` (if given) gets id → problem; `counts` gets `total` (runs in the store) and
    `matched` (runs the filter kept)."""
    from ctui.query import check_sort, parse_filter
    from ctui.store import Store

    flt = parse_filter(filter_text)  # before any work: a typo costs nothing
    key = check_sort(sort) if sort else None
    store = Store(project.store_file)
    if not (flt or sort):
        if limit is not None and limit >= 0:
            return _newest(project, store, limit, damaged, counts)
        docs = _refresh_if_active(project, store.runs())
        if damaged is not None:
            damaged.update(store.damaged)
        if counts is not None:
            counts.update(total=len(docs), matched=len(docs))
        return docs[::-1]
    # filtered or sorted over the segment indexes' columns: only the chosen runs are read
    table = store.columns()
    if key and "." in key and table.n and not table.has(key):
        check_sort(sort or "", table.rows()[-2000:])  # says which names there are
    if not set(_LIVE).isdisjoint(table.column("status")) and _settle(project):
        table = store.columns()
    chosen = table.select(flt) if flt else list(range(table.n))
    if damaged is not None:
        damaged.update(table.damaged)
    if counts is not None:
        counts.update(total=table.n, matched=len(chosen))
    if key:
        picked = bytearray(table.n)
        for i in chosen:
            picked[i] = 1
        chosen = [i for i in table.order(key, (sort or "").strip().startswith("-")) if picked[i]]
    else:
        chosen.reverse()  # newest first
    if limit is not None and limit >= 0:
        chosen = chosen[:limit]
    snapshot = store.snapshot()
    ids = table.column("id")
    return [snapshot.get_run(ids[i], checked=False) for i in chosen]


def _newest(
    project: Any,
    store: Any,
    limit: int,
    damaged: dict[str, str] | None,
    counts: dict[str, int] | None,
) -> list[dict[str, Any]]:
    """`select_runs` with no filter and no sort: the newest `limit` runs, read from only
    the segments that hold them (the same cost with 100,000 runs as with 1,000)."""
    docs, total = store.newest(limit)
    if _refresh_if_active(project, docs) is not docs:  # states changed: read them again
        docs, total = store.newest(limit)
    if damaged is not None:
        damaged.update(store.damaged)
    if counts is not None:
        counts.update(total=total, matched=total)
    return docs


def _report_damaged(project: Any, damaged: dict[str, str]) -> None:
    """After listing the readable runs: the damaged ones are an error (exit 2)."""
    if damaged:
        more = f" (and {len(damaged) - 1} more run(s))" if len(damaged) > 1 else ""
        raise BadRunError(
            f"{next(iter(damaged.values()))}{more}; left out of the list",
            hint=f"fix the field by hand in {project.store_file}; `ctui doctor` lists them all",
        )


def runs(
    filter_text: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="e.g. 'status=failed metric.acc>0.9 job=train tag=x'"),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            "-s",
            help="Column to sort by; prefix '-' for descending "
            "(e.g. -metric.acc). Default: newest first.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="Show at most N runs (table default 50).")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            help="Columns to show whatever the width, comma separated: metric.acc,param.lr",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run documents as JSON.")
    ] = False,
) -> None:
    """List runs (newest first). `#` is the run's number: `ctui show 42` or `#42`."""
    project = common.project()
    damaged: dict[str, str] = {}
    if as_json:
        common.emit_json(select_runs(project, filter_text, sort, limit, damaged))
        _report_damaged(project, damaged)
        return
    from ctui.cli.runs_table import print_runs_table

    shown_limit = 50 if limit is None else limit
    counts: dict[str, int] = {}
    docs = select_runs(project, filter_text, sort, shown_limit, damaged, counts)
    total = counts.get("matched", len(docs))
    if docs:
        print_runs_table(docs, columns)
    elif counts.get("total") and (filter_text or "").strip():
        _say_no_match(filter_text or "", counts["total"], project)
    elif not counts.get("total") and not damaged:
        common.console().print("no runs yet — launch one with `ctui run JOB` or try `ctui demo`")
    if total > len(docs) and docs:
        from rich.text import Text

        common.console().print(
            Text(f"… {total - len(docs)} more (use --limit or --filter)", style="dim")
        )
    _report_damaged(project, damaged)


def _say_no_match(filter_text: str, total: int, project: Any) -> None:
    """A filter that parses but keeps nothing: say so on stderr (exit 0), with the metric or
    param names no run has (a typo?)."""
    from rich.text import Text

    from ctui.query import missing_keys, parse_filter
    from ctui.store import Store

    line = Text(f"no runs match {filter_text.strip()!r} ({total} run")
    line.append(f"{'s' if total != 1 else ''} in the store)")
    table = Store(project.store_file).columns()
    missing = [k for k in missing_keys(parse_filter(filter_text), ()) if not table.has(k)]
    if missing:
        line.append(f"; no run has {', '.join(missing)}")
    common.err_console().print(line, soft_wrap=True)


def tag(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
    tags: Annotated[list[str], typer.Argument(help="Tags to add (or remove with --remove).")],
    remove: Annotated[bool, typer.Option("--remove", "-r", help="Remove the tags.")] = False,
) -> None:
    """Add or remove tags on a run."""
    store = common.store()
    run_id = store.resolve(run)

    def change(doc: dict[str, Any]) -> None:
        current = list(doc.get("tags") or [])
        if remove:
            current = [t for t in current if t not in tags]
        else:
            current += [t for t in tags if t not in current]
        doc["tags"] = current

    doc = store.update_run(run_id, mutate=change)
    assert doc is not None
    common.console().print(f"{run_id}: tags = {', '.join(doc['tags']) or '(none)'}", markup=False)


def note(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
    text: Annotated[str, typer.Argument(help="The note ('-' reads it from stdin).")],
    append: Annotated[bool, typer.Option("--append", "-a", help="Append to the note.")] = False,
) -> None:
    """Set (or append to) a run's note."""
    store = common.store()
    run_id = store.resolve(run)
    if text == "-":
        text = sys.stdin.read().rstrip("\n")

    def change(doc: dict[str, Any]) -> None:
        doc["note"] = (doc.get("note", "") + "\n" + text).strip() if append else text

    store.update_run(run_id, mutate=change)
    common.console().print(f"{run_id}: note saved")


def rm(
    refs: Annotated[list[str], typer.Argument(help="Run ids or unique prefixes.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Also remove active runs.")] = False,
    keep_files: Annotated[bool, typer.Option("--keep-files", help="Keep run folders.")] = False,
) -> None:
    """Remove runs from the store (and their run folders)."""
    import shutil

    project = common.project()
    store = common.store()
    ids = list(dict.fromkeys(store.resolve(r) for r in refs))
    docs = [store.get_run(i, checked=False) for i in ids]  # a damaged run can go too
    active = [d["id"] for d in docs if d.get("status") in ("running", "queued")]
    if active and not force:
        raise CtuiError(
            f"run(s) still active: {', '.join(active)}",
            hint="stop them first (`ctui stop`), or pass --force",
        )
    if not yes:
        if not sys.stdin.isatty():
            raise CtuiError(f"refusing to remove {len(ids)} run(s) without --yes")
        if not typer.confirm(f"Remove {len(ids)} run(s)?"):
            raise typer.Exit(int(ExitCode.FAILED))
    n = store.remove_runs(ids)
    if not keep_files:
        for i in ids:
            shutil.rmtree(project.run_dir(i), ignore_errors=True)
    common.console().print(f"removed {n} run(s)")


def doctor(
    restore: Annotated[
        bool, typer.Option("--restore", help="Restore the last good copy of an unreadable store.")
    ] = False,
    clean: Annotated[
        bool,
        typer.Option("--clean", help="Remove temp files left by interrupted writes."),
    ] = False,
    reindex: Annotated[
        bool,
        typer.Option("--reindex", help="Make the segment indexes again from the segments."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the store's health: readable, schema, segments and their indexes, typed runs,
    objects, run folders, temp files, stale runs."""
    from ctui.doctor import check_store, clean_temp_files, restore_backup
    from ctui.doctor import reindex as remake

    project = common.project()
    said = [restore_backup(project)] if restore else []
    if reindex:
        said.append(remake(project))
    if clean:
        said.append(clean_temp_files(project))
    for message in said:
        (common.err_console() if as_json else common.console()).print(message, markup=False)
    report = check_store(project)
    if as_json:
        common.emit_json(report)
    else:
        from rich.text import Text

        for check in report["checks"]:
            mark = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "error": ("✗", "bold red")}
            sym, style = mark[check["level"]]
            line = Text(f"{sym} ", style=style)
            line.append(check["message"])
            common.console().print(line, soft_wrap=True)  # one line each: greppable
            if check.get("hint"):
                common.console().print(Text(f"  {check['hint']}", style="dim"), soft_wrap=True)
    if not report["healthy"]:
        raise typer.Exit(int(ExitCode.FAILED))
