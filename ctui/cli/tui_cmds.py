"""`ctui` (no command), `ctui tui` and `ctui demo`: the commands that open the terminal UI.

Textual is imported inside the functions, so every other command starts without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ctui.cli import common

if TYPE_CHECKING:
    from ctui.project import Project


def run_app(project: Project) -> None:
    from ctui.tui.app import CtuiApp

    CtuiApp(project).run()


def open_tui() -> None:
    """Open the TUI on the project found from the working directory (or --store/--project)."""
    run_app(common.project())


def register(app: typer.Typer) -> None:
    @app.command("tui")
    def tui() -> None:
        """Open the terminal UI (same as `ctui` with no command)."""
        open_tui()

    @app.command("demo")
    def demo(
        directory: Annotated[
            Path | None,
            typer.Argument(help="Where to build the demo project (default: a new temp folder)."),
        ] = None,
        no_open: Annotated[
            bool, typer.Option("--no-open", help="Build the demo without opening the TUI.")
        ] = False,
    ) -> None:
        """Build a small real demo project (git, DVC data, a tiny training job, a few runs)."""
        import tempfile

        from ctui.demo import build_demo

        target = directory if directory is not None else Path(tempfile.mkdtemp(prefix="ctui-demo-"))
        project = build_demo(target)
        common.err_console().print(f"demo project: {project.root}", highlight=False)
        if not no_open:
            run_app(project)
