"""The `ctui` command line: every feature as a typer subcommand (most with --json).

Each group of commands lives in its own module with a `register(app)` function. Heavy
libraries (textual, mlflow, dvc, docker) are imported inside the commands that use them, so
`ctui --help` and `ctui runs` stay instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ctui.cli import common
from ctui.errors import CtuiError, ExitCode, os_error

app = typer.Typer(
    name="ctui",
    help="Continuous Training workbench: browse, diff, retrain and reproduce ML runs.\n\n"
    "Run `ctui` with no command to open the terminal UI.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            envvar="CTUI_STORE",
            help="The TinyDB store file to use "
            "(default: .ctui/ctui.json found by walking up from the project dir).",
        ),
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project", "-C", help="Run as if ctui was started in this folder."),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        from ctui import __version__

        print(f"ctui {__version__}")
        raise typer.Exit()
    common.STATE.store = store
    common.STATE.project_dir = project_dir
    if ctx.invoked_subcommand is None:
        from ctui.cli.tui_cmds import open_tui

        open_tui()


def _register_all() -> None:
    from ctui.cli import (
        gate_cmds,
        job_cmds,
        manifest_cmds,
        repro_cmds,
        store_cmds,
        sync_cmds,
        trigger_cmds,
        tui_cmds,
    )

    for module in (
        store_cmds,
        manifest_cmds,
        job_cmds,
        trigger_cmds,
        repro_cmds,
        gate_cmds,
        sync_cmds,
        tui_cmds,
    ):
        module.register(app)


_register_all()


def app_for(args: list[str]) -> typer.Typer:
    """The app to dispatch `args` with: when they start with a command name, an app holding
    only that command. Typer inspects every registered command's signature on each call
    (~2 ms each); `ctui runs` should not pay for the other thirty."""
    if not args or args[0].startswith("-"):
        return app
    commands = [c for c in app.registered_commands if _command_name(c) == args[0]]
    groups = [g for g in app.registered_groups if g.name == args[0]]
    if not commands and not groups:
        return app  # unknown: the full app says so, with the list of commands
    lean = typer.Typer(
        name="ctui", add_completion=False, pretty_exceptions_enable=False,
        rich_markup_mode="rich", context_settings={"help_option_names": ["-h", "--help"]},
    )  # fmt: skip
    lean.registered_callback = app.registered_callback
    lean.registered_commands = commands
    lean.registered_groups = groups
    return lean


def _command_name(info: typer.models.CommandInfo) -> str:
    if info.name:
        return info.name
    callback = info.callback
    return callback.__name__.lower().replace("_", "-") if callback else ""


def main() -> None:
    try:
        if len(sys.argv) == 1:
            # plain `ctui`: open the TUI at once; typer's dispatch (which imports pydantic)
            # would delay the first frame by ~0.2 s for nothing
            from ctui.cli.tui_cmds import open_tui

            open_tui()
        else:
            app_for(sys.argv[1:])()
    except CtuiError as exc:
        common.print_error(exc)
        sys.exit(int(exc.code))
    except OSError as exc:  # a full disk, a read-only .ctui: one line, exit 2, no traceback
        common.print_error(os_error(exc))
        sys.exit(int(ExitCode.BAD_INPUT))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
