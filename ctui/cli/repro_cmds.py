"""`ctui reproduce RUN`: rebuild a run's ingredients, run it again, say whether it reproduced."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from ctui.cli import common
from ctui.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)


def reproduce(
    run: Annotated[str, typer.Argument(help="Run id (any unique prefix, or @last).")],
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="local | docker (default: the backend the run used)."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Refuse to launch when the environment differs (exit 1)."),
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance", min=0.0, help="Relative tolerance for float metrics (integers: exact)."
        ),
    ] = 1e-6,
    keep: Annotated[
        bool, typer.Option("--keep-worktree", help="Keep the rebuilt worktree for inspection.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Rebuild RUN's code, data and environment, run it again and compare.

    A DVC pipeline runs every stage again (dvc repro --force, or an own empty DVC cache), and
    its outputs are compared by hash: "reproduced (model.pkl bit-identical)", "metrics match,
    model.pkl differs", "diverged in: ...", or "not verified: ..." (e.g. a stage DVC still
    restored from its cache).

    Each set-up step (worktree, patch, data, env, launch) prints a line with its time on
    stderr as it ends; with --json nothing is printed there and the steps are in "setup",
    with "setup_s" (until the launch) and "start_s" (until the job started).

    Exit 0: reproduced. Exit 1: diverged, metrics match but an output differs, not verified
    (an ingredient could not be checked), or --strict found another environment.

    Exit 2: cannot be rebuilt (commit gone, data missing, engine unreachable).
    """
    from ctui.reproduce import reproduce_run

    out = common.err_console()
    result = reproduce_run(
        common.project(),
        run,
        backend=backend,
        strict=strict,
        rel_tol=tolerance,
        keep_worktree=keep,
        progress=None if as_json else _progress_printer(out),
    )
    if as_json:
        common.emit_json(
            {
                "run": result["run"]["id"],
                "original": result["original"]["id"],
                "verdict": result["verdict"],
                "reproduced": result["reproduced"],
                "outcome": result["outcome"],
                "differences": result["differences"],
                "unverified": result["unverified"],
                "outputs": result["outputs"],
                "rebuild": result["run"].get("rebuild"),
                "stages": result["stages"],
                "notes": result["notes"],
                "env_before": result["env_before"],
                "setup": result["setup"],
                "setup_s": result["setup_s"],
                "start_s": result["start_s"],
            }
        )
    else:
        from rich.text import Text

        for note in result["notes"]:
            out.print(Text(f"note: {note}", style="dim"), soft_wrap=True)
        for diff in result["differences"]:
            if len(diff["items"]) > 3:  # the verdict names three per section; list them all
                items = Text(", ".join(diff["items"]))
                out.print(Text(f"{diff['section']}: ", style="bold") + items, soft_wrap=True)
        style = {"reproduced": "bold green", "not verified": "bold yellow"}.get(
            result["outcome"], "bold red"
        )
        common.console().print(
            Text(f"{result['run']['id']} ", style="bold") + Text(result["verdict"], style=style),
            soft_wrap=True,
        )
    raise typer.Exit(0 if result["reproduced"] else int(ExitCode.FAILED))


def _progress_printer(out: Console) -> Callable[[str], None]:
    """Each step on its own line as it ends, a set-up step with its time:
    `· dvc checkout: 1 path(s) … 0.52 s`."""
    from rich.text import Text

    from ctui.reproduce.progress import Said, seconds_text

    def progress(message: str) -> None:
        line = Text("· ", style="dim") + Text(message)
        if isinstance(message, Said) and message.seconds is not None:
            line += Text(f" … {seconds_text(message.seconds)}", style="dim")
        out.print(line, soft_wrap=True)

    return progress
