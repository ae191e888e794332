"""Continuous training commands: `ctui watch` and `ctui triggers [fire|enable|disable]`."""

from __future__ import annotations

import datetime as _dt
import sys
from typing import Annotated, Any

import typer

from ctui.cli import common

triggers_app = typer.Typer(
    help="List triggers with their state; fire, enable or disable one.",
    no_args_is_help=False,
    add_completion=False,
)


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
    app.add_typer(triggers_app, name="triggers")


# -- ctui watch ------------------------------------------------------------------------------


def _log_line(event: dict[str, Any]) -> str:
    """One timestamped, greppable line per event (systemd/journald friendly)."""
    kind = event.get("event")
    name = event.get("trigger")
    if kind == "fired":
        text = (
            f"fired {name} → run {event['run_id']} of {event['job']} "
            f"({event.get('status')}): {event.get('cause')}"
        )
    elif kind == "duplicate":
        text = f"skip {name}: already acted on {event.get('cause_key')}"
    elif kind == "launch-failed":
        text = f"FAILED to launch {name} ({event.get('cause')}): {event.get('error')}"
    elif kind == "reconciled":
        text = f"reconciled {name}: run {event.get('run_id')} was launched for {event['cause_key']}"
    elif kind == "relaunching":
        text = f"recovering {name}: intent without a run, launching for {event['cause_key']}"
    elif kind == "trigger":
        note = event.get("note") or ""
        text = f"{name}: {event.get('status')}" + (f" — {note}" if note else "")
    elif kind == "error":
        text = f"ERROR in {event.get('where')}: {event.get('error')}"
    elif kind == "started":
        text = f"watching {event['root']} every {event['interval']:g}s (pid {event['pid']})"
    elif kind == "mlflow-synced":
        text = f"MLflow sync done for run(s) {', '.join(event['runs'])}"
    elif kind == "no-triggers":
        text = "no triggers declared (add [triggers.NAME] to ctui.toml)"
    elif kind == "stopped":
        text = "stopped"
    else:
        text = str(event)
    stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"{stamp} {text}"


def watch(
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate every trigger once and exit (cron/CI).")
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.1, help="Seconds between evaluations (foreground)."),
    ] = 30.0,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="--once: print the cycle as JSON; else one JSON event a line."),
    ] = False,
) -> None:
    """Evaluate triggers and launch the runs they call for — each cause exactly once.

    Without --once it runs in the foreground until SIGTERM/SIGINT (it stops after the current
    step). A second watcher on the same project refuses to start (exit 2).
    """
    import orjson

    from ctui.triggers.watch import watch_loop

    project = common.project()
    project.ensure()

    def log(event: dict[str, Any]) -> None:
        if as_json and once:
            return  # the cycle is printed as one document at the end
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS) + b"\n")
            sys.stdout.flush()
        else:
            print(_log_line(event), flush=True)

    results = watch_loop(project, interval=interval, once=once, log=log)
    if as_json and once and results:
        common.emit_json(results[0].to_dict())


# -- ctui triggers ---------------------------------------------------------------------------


@triggers_app.callback(invoke_without_command=True)
def triggers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List triggers: kind, job, enabled, last fired, last cause, next check."""
    if ctx.invoked_subcommand is not None:
        return
    from ctui.triggers.listing import list_triggers

    rows = list_triggers(common.project())
    if as_json:
        common.emit_json(rows)
        return
    _print_table(rows)


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ctui.format import timestamp

    if not rows:
        common.console().print("no triggers declared (add \\[triggers.NAME] to ctui.toml)")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in (
        "TRIGGER",
        "ON",
        "JOB",
        "ENABLED",
        "LAST FIRED",
        "LAST CAUSE",
        "NEXT CHECK",
        "STATE",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        enabled = Text("✓ yes", style="green") if r["enabled"] else Text("✗ no", style="dim")
        if r["overridden"]:
            enabled.append(" (set)", style="dim")
        table.add_row(
            Text(r["name"]),
            Text(r["rule"]),
            Text(r["job"]),
            enabled,
            timestamp(r["last_fired"]),
            Text(r["last_cause"] or "—"),
            timestamp(r["next_check"]),
            Text(r["status"] or "not checked yet"),
        )
    common.console().print(table)


@triggers_app.command("fire")
def fire(
    name: Annotated[str, typer.Argument(help="Trigger name from ctui.toml.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the event as JSON.")] = False,
) -> None:
    """Fire a trigger by hand now (cause `manual <time>`), even when disabled."""
    from ctui.errors import ExitCode
    from ctui.triggers.launching import fire_manually

    event = fire_manually(common.project(), name)
    if as_json:
        common.emit_json(event)
    elif event["event"] == "fired":
        common.console().print(
            f"{event.get('status')} run [bold]{event['run_id']}[/bold] of job {event['job']} "
            f"(trigger {name}, {event['cause']})"
        )
    else:
        common.err_console().print(f"not launched: {event.get('error') or event['event']}")
    if event["event"] != "fired":
        raise typer.Exit(int(ExitCode.FAILED))


def _set(name: str, enabled: bool, as_json: bool) -> None:
    from ctui.triggers.listing import set_trigger_enabled

    row = set_trigger_enabled(common.project(), name, enabled)
    if as_json:
        common.emit_json(row)
    else:
        common.console().print(f"trigger {name} {'enabled' if enabled else 'disabled'}")


@triggers_app.command("enable")
def enable(
    name: Annotated[str, typer.Argument(help="Trigger name from ctui.toml.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the trigger row as JSON.")] = False,
) -> None:
    """Enable a trigger (stored in the project; overrides `enabled` in ctui.toml)."""
    _set(name, True, as_json)


@triggers_app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="Trigger name from ctui.toml.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the trigger row as JSON.")] = False,
) -> None:
    """Disable a trigger (stored in the project; overrides `enabled` in ctui.toml)."""
    _set(name, False, as_json)
