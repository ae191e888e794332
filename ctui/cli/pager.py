"""Long human output through a pager, the way git does it.

Only when stdout is a terminal and the text is taller than it. The pager is `$CTUI_PAGER`,
else `$PAGER`, else `less -FRX` (with `LESS=FRX` unless the user set `LESS`); an empty value
or `cat` means none, and a pager that does not exist means plain printing.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys

DEFAULT = "less -FRX"


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def pager_command() -> list[str] | None:
    """The pager's argv, or None when paging is off (`CTUI_PAGER=cat`, empty) or impossible."""
    cmd = os.environ.get("CTUI_PAGER")
    if cmd is None:
        cmd = os.environ.get("PAGER", DEFAULT)
    try:
        argv = shlex.split(cmd)
    except ValueError:
        return None
    if not argv or argv == ["cat"] or shutil.which(argv[0]) is None:
        return None
    return argv


def show(text: str, *, page: bool = True) -> None:
    """Write `text` to stdout, through the pager when `page` and it is taller than the terminal."""
    if page and stdout_is_terminal() and text.count("\n") > shutil.get_terminal_size().lines:
        argv = pager_command()
        if argv is not None and _run_pager(argv, text):
            return
    sys.stdout.write(text)
    sys.stdout.flush()


def _run_pager(argv: list[str], text: str) -> bool:
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    sys.stdout.flush()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env)
    except OSError:
        return False
    assert proc.stdin is not None
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        proc.stdin.write(text.encode(encoding, errors="replace"))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the user quit the pager before the end
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    while True:
        try:
            proc.wait()
            break
        except KeyboardInterrupt:  # Ctrl-C belongs to the pager (less stays open on it)
            continue
    return True
