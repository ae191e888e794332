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


def run_app(
    project: Project, *, open_run: str | None = None, open_diff: list[str] | None = None
) -> None:
    from ctui.tui.app import CtuiApp

    CtuiApp(project, open_run=open_run, open_diff=open_diff).run()


def resolve_runs(refs: list[str]) -> list[str]:
    """Full ids of run refs (id, prefix, `#42`, `@last`), resolved before the TUI starts:
    an unknown ref is one line and exit 2 in the shell, not an error inside the UI."""
    store = common.store()
    return [store.resolve(ref) for ref in refs]


def open_tui(run: str | None = None) -> None:
    """Open the TUI on the project found from the working directory (or --store/--project);
    with `run`, on that run's details (esc goes back to the runs list)."""
    project = common.project()
    run_id = resolve_runs([run])[0] if run is not None else None
    run_app(project, open_run=run_id)


def open_diff(refs: list[str]) -> None:
    """`ctui diff A B --tui`: the TUI opened on the diff (or compare) screen of these runs."""
    project = common.project()
    run_app(project, open_diff=resolve_runs(refs))


def register(app: typer.Typer) -> None:
    @app.command("tui")
    def tui(
        run: Annotated[
            str | None,
            typer.Argument(help="Open on this run's details (an id, a prefix, #42, @last)."),
        ] = None,
    ) -> None:
        """Open the terminal UI (same as `ctui` with no command); with RUN, on that run."""
        open_tui(run)

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
