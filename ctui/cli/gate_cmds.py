"""The gate and the champion: `ctui champion [JOB]`, `ctui promote RUN`, `ctui gate RUN`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctui.cli import common
from ctui.errors import CtuiError, ExitCode

if TYPE_CHECKING:
    from rich.text import Text

    from ctui.config import Config
    from ctui.store import Store


# Help texts: one line per paragraph, so the terminal wraps them (a docstring's line breaks
# would stay in the help).
CHAMPION_HELP = (
    "Show the run whose model is the one in use for JOB (its champion); with no JOB, "
    "every job's champion.\n\n"
    "The first run of a job with a gate that passes becomes its champion; a later run that "
    "passes the gate replaces it; `ctui promote RUN` puts any succeeded run back by hand.\n\n"
    '--history answers "which model was serving last Tuesday": every promotion and '
    "rollback, oldest first, with when, by whom (gate, manual, rollback), from which run to "
    "which, and why."
)
PROMOTE_HELP = (
    "Make RUN its job's champion by hand (how a rollback is done).\n\n"
    "Any succeeded run can be promoted, whatever its gate said; a failed or unfinished run "
    "is refused (exit 2). The job's on_promote, registry alias and notification follow as "
    "for a promotion by the gate.\n\n"
    'Exit 1 when on_promote failed and the gate (on_promote_failure = "rollback") put the '
    "previous champion back."
)
GATE_HELP = (
    "Evaluate RUN against its job's gate and champion now, and explain; promotes "
    "nothing.\n\n"
    "Each rule is shown with the values it used. The champion itself is compared against "
    "the champion it replaced; rules naming champion. are skipped when there is none.\n\n"
    "Exit 0: the gate passes. Exit 1: it fails. Exit 2: unknown run, or the job has no gate."
)


def register(app: typer.Typer) -> None:
    app.command("champion", help=CHAMPION_HELP)(champion)
    app.command("promote", help=PROMOTE_HELP)(promote)
    app.command("gate", help=GATE_HELP)(gate)


# -- ctui champion ---------------------------------------------------------------------------


def champion(
    job: Annotated[
        str | None, typer.Argument(help="The job (default: every job's champion).")
    ] = None,
    show_history: Annotated[
        bool,
        typer.Option("--history", help="List every promotion and rollback, oldest first."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """`ctui champion [JOB] [--history]` (help: CHAMPION_HELP)."""
    from ctui.config import load_config
    from ctui.gate.champion import champion_doc, champions, history

    project = common.project()
    config = load_config(project.root)
    store = common.store()
    if job is None:
        rows = _all_champions(config, store, champions(store), history(store))
        if as_json:
            common.emit_json(
                rows if not show_history else {"champions": rows, "history": history(store)}
            )
            return
        _print_all(rows)
        if show_history:
            _print_history(history(store), None)
        return
    past = history(store, job)
    row = champion_doc(store, job)
    if job not in config.jobs and row is None and not past:
        known = ", ".join(sorted(config.jobs)) or "none"
        raise CtuiError(f"unknown job {job!r}", hint=f"jobs in ctui.toml: {known}")
    doc = _champion_row(config, store, job, row, past)
    if as_json:
        common.emit_json({**doc, "history": past} if show_history else doc)
        return
    _print_one(doc)
    if show_history:
        _print_history(past, job)


def _champion_row(
    config: Config,
    store: Store,
    job: str,
    row: dict[str, Any] | None,
    past: list[dict[str, Any]],
) -> dict[str, Any]:
    jc = config.jobs.get(job)
    gate = jc.gate if jc is not None else None
    out: dict[str, Any] = {
        "job": job,
        "id": row["run"] if row else None,
        "since": row.get("since") if row else None,
        "gate": gate.rules if gate is not None else None,
    }
    last = next((p for p in reversed(past) if row and p.get("id") == row.get("promotion")), None)
    out["promotion"] = last
    if row:
        try:
            run = store.get_run(row["run"], checked=False)
        except CtuiError:
            run = {}
        out["exists"] = bool(run)
        out["status"] = run.get("status")
        out["metrics"] = run.get("metrics") or {}
    return out


def _all_champions(
    config: Config, store: Store, table: dict[str, str], past: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    from ctui.gate.champion import champion_doc

    jobs = sorted(set(table) | {j for j, jc in config.jobs.items() if jc.gate is not None})
    return [
        _champion_row(
            config, store, j, champion_doc(store, j), [p for p in past if p.get("job") == j]
        )
        for j in jobs
    ]


def _print_one(doc: dict[str, Any]) -> None:
    from rich.text import Text

    from ctui import format as fmt

    con = common.console()
    if doc["id"] is None:
        why = "no run has passed its gate yet" if doc.get("gate") is not None else "no gate"
        con.print(Text(f"{doc['job']}: no champion ({why})"))
        return
    line = Text(f"{doc['job']}: champion ", style="bold")
    line.append(doc["id"], style="bold green")
    line.append(f"  since {_when(doc.get('since'))}")
    promotion = doc.get("promotion") or {}
    if promotion.get("by"):
        line.append(f"  by {promotion['by']}", style="dim")
    con.print(line)
    if doc.get("exists") is False:
        con.print(Text("  the run is no longer in the store", style="yellow"))
    metrics = doc.get("metrics") or {}
    if metrics:
        shown = "  ".join(f"{k} {fmt.number(v)}" for k, v in sorted(metrics.items())[:8])
        con.print(Text(f"  {shown}"))
    if promotion.get("reason"):
        con.print(Text(f"  {promotion['reason']}", style="dim"))
    for note in _after_notes(promotion):
        con.print(Text(f"  {note}"))


def _print_all(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ctui import format as fmt

    con = common.console()
    if not rows:
        con.print(
            "no champions yet — add [jobs.NAME.gate] rules = [...] to ctui.toml", markup=False
        )
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("job", "champion", "since", "by"):
        table.add_column(name, no_wrap=True)
    for r in rows:
        promotion = r.get("promotion") or {}
        table.add_row(
            Text(r["job"]),
            Text(r["id"] or "—"),
            Text(fmt.timestamp(r.get("since")) if r.get("since") else "—"),
            Text(str(promotion.get("by") or "")),
        )
    con.print(table)


def _print_history(past: list[dict[str, Any]], job: str | None) -> None:
    from rich.text import Text

    con = common.console()
    if not past:
        con.print(Text(f"no promotions{f' of {job}' if job else ''} yet", style="dim"))
        return
    con.print(Text("history (oldest first):", style="bold"))
    for p in past:
        line = Text(f"  {_when(p.get('at'))}  ")
        line.append(f"{p.get('by', '?'):<8}", style=_BY_STYLE.get(str(p.get("by")), ""))
        if job is None:
            line.append(f" {p.get('job')}")
        line.append(f" {p.get('previous') or '(none)'} → {p.get('run')}")
        con.print(line)
        if p.get("reason"):
            con.print(Text(f"      {p['reason']}", style="dim"))
        for note in _after_notes(p):
            con.print(Text(f"      {note}"))


def _when(t: Any) -> str:
    """Local time, to the second: `2026-12-02 02:32:24`."""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "—"


_BY_STYLE = {"gate": "green", "manual": "cyan", "rollback": "yellow"}


def _after_notes(promotion: dict[str, Any]) -> list[str]:
    """What followed a promotion: `on_promote`, the registry, a rollback."""
    notes = []
    hook = promotion.get("on_promote")
    if isinstance(hook, dict):
        if hook.get("ok"):
            notes.append("on_promote: ok")
        else:
            why = hook.get("error") or (
                f"exit {hook['exit_code']}" if hook.get("exit_code") is not None else "failed"
            )
            notes.append(f"on_promote: FAILED ({why})")
    reg = promotion.get("registered")
    if isinstance(reg, dict):
        if reg.get("ok") is False or reg.get("error"):
            notes.append(f"registry: FAILED ({reg.get('error') or 'unknown error'})")
        else:
            where = " ".join(
                str(x)
                for x in (reg.get("name"), f"v{reg['version']}" if reg.get("version") else None)
                if x
            )
            notes.append(f"registry: {where or 'registered'}, alias champion")
    if promotion.get("rolled_back"):
        notes.append(f"rolled back (promotion {promotion['rolled_back']})")
    return notes


# -- ctui promote ----------------------------------------------------------------------------


def promote(
    run: Annotated[str, typer.Argument(help="Run id (any unique prefix, or @last).")],
    reason: Annotated[
        str | None, typer.Option("--reason", "-m", help="Why, for the history.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the promotion as JSON.")] = False,
) -> None:
    """`ctui promote RUN` (help: PROMOTE_HELP)."""
    from ctui.gate import champion as ch

    project = common.project()
    store = common.store()
    run_id = store.resolve(run)
    record = ch.promote(
        project, store, run_id, by="manual", reason=reason or "by hand (ctui promote)"
    )
    rolled_back = bool(record.get("rolled_back"))
    if as_json:
        common.emit_json(record)
    else:
        from rich.text import Text

        con = common.console()
        if record.get("unchanged"):
            con.print(Text(f"{run_id} already is the champion of {record.get('job')}"))
        else:
            was = record.get("previous") or "none"
            con.print(Text(f"promoted {run_id} to champion of {record['job']} (was {was})"))
            for note in _after_notes(record):
                con.print(Text(f"  {note}"))
            if rolled_back:
                con.print(Text(f"  the champion is {was} again", style="yellow"))
    if rolled_back:
        raise typer.Exit(int(ExitCode.FAILED))


# -- ctui gate -------------------------------------------------------------------------------


def gate(
    run: Annotated[str, typer.Argument(help="Run id (any unique prefix, or @last).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """`ctui gate RUN` (help: GATE_HELP)."""
    from ctui.gate.champion import check

    project = common.project()
    store = common.store()
    run_id = store.resolve(run)
    result = check(project, store, run_id)
    recorded = store.get_run(run_id, checked=False).get("gate")
    if as_json:
        common.emit_json({**result, "run": run_id, "recorded": recorded})
    else:
        _print_gate(run_id, result, recorded)
    if not result["passed"]:
        raise typer.Exit(int(ExitCode.FAILED))


def _print_gate(run_id: str, result: dict[str, Any], recorded: Any) -> None:
    from rich.text import Text

    con = common.console()
    head = Text(f"run {run_id} of {result['job']}: ", style="bold")
    head.append(result["verdict"], style="green" if result["passed"] else "red")
    con.print(head)
    champion = result.get("champion")
    con.print(
        Text(f"against champion {champion}" if champion else "no champion to compare", style="dim")
    )
    for rule in result["rules"]:
        con.print(_rule_line(rule))
    if isinstance(recorded, dict) and recorded.get("verdict"):
        con.print(Text(f"recorded at its end: {recorded['verdict']}", style="dim"))


def _rule_line(rule: dict[str, Any]) -> Text:
    from rich.text import Text

    skipped = str(rule.get("detail", "")).startswith("skipped")
    mark, style = ("–", "dim") if skipped else ("✓", "green") if rule["passed"] else ("✗", "red")
    line = Text(f"  {mark} ", style=style)
    line.append(str(rule.get("detail") or rule.get("rule")))
    return line
