"""The `ctui` command line: every feature as a typer subcommand (most with --json).

Each group of commands lives in its own module with a `register(app)` function; the root
group (`lazy_group.LazyGroup`) imports a module only when one of its commands is used, and
`ctui --help` lists them from `command_table`. Heavy libraries (textual, mlflow, dvc,
docker) are imported inside the commands that use them, so `ctui --help` and `ctui runs`
stay instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ctui.cli import common
from ctui.cli.lazy_group import LazyGroup
from ctui.errors import CtuiError, ExitCode, os_error

app = typer.Typer(
    name="ctui",
    cls=LazyGroup,  # a command's module is imported only when that command is used
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


def main() -> None:
    try:
        if len(sys.argv) == 1:
            # plain `ctui`: open the TUI at once; typer's dispatch (which imports pydantic)
            # would delay the first frame by ~0.2 s for nothing
            from ctui.cli.tui_cmds import open_tui

            open_tui()
        else:
            if "--help" in sys.argv or "-h" in sys.argv:
                from ctui.cli.rich_help import import_rich_utils

                import_rich_utils()  # before typer imports it with rich.markdown (~45 ms)
            app()
    except CtuiError as exc:
        common.print_error(exc)
        sys.exit(int(exc.code))
    except OSError as exc:  # a full disk, a read-only .ctui: one line, exit 2, no traceback
        common.print_error(os_error(exc))
        sys.exit(int(ExitCode.BAD_INPUT))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
