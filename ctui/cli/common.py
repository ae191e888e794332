"""Shared plumbing for the CLI: the project/store in use, JSON and table output, errors."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctui.errors import CtuiError
from ctui.status import STATUS_LOOK

if TYPE_CHECKING:
    from rich.console import Console

    from ctui.project import Project
    from ctui.store import Store


@dataclass
class _State:
    store: Path | None = None
    project_dir: Path | None = None


STATE = _State()


def project() -> Project:
    from ctui.project import find_project

    return find_project(STATE.project_dir, STATE.store)


def store() -> Store:
    from ctui.store import Store

    return Store(project().store_file)


def emit_json(obj: Any) -> None:
    """Stable machine output: sorted keys, UTF-8, one trailing newline."""
    sys.stdout.buffer.write(
        orjson.dumps(
            obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        )
    )
    sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()


_console: Console | None = None
_err_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False)
    return _console


def err_console() -> Console:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False)
    return _err_console


def print_error(exc: CtuiError) -> None:
    from rich.text import Text

    text = Text("error: ", style="bold red")
    text.append(exc.message)
    if exc.hint:
        text.append("\n  hint: ", style="dim")
        text.append(exc.hint)
    err_console().print(text, soft_wrap=True)  # one line per message: greppable, copyable


def print_warning(message: str) -> None:
    from rich.text import Text

    text = Text("warning: ", style="bold yellow")
    text.append(message)
    err_console().print(text, soft_wrap=True)


def status_text(status: str) -> Any:
    """A status with colour *and* a symbol, so it reads without colour too."""
    from rich.text import Text

    symbol, style = STATUS_LOOK.get(status, ("?", ""))
    return Text(f"{symbol} {status}", style=style)
