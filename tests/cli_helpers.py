"""Helpers for tests that run the real `ctui` CLI in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ctui.errors import ExitCode


def ctui(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m ctui ARGS` in `cwd` (`stdin` as its input), wide output, none of the user's
    CTUI_/MLFLOW_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTUI_", "MLFLOW_"))}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "ctui", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=60,
    )


def one_line_error(out: subprocess.CompletedProcess[str], code: ExitCode, *words: str) -> str:
    """The command failed with `code` and a clear error (no traceback) holding `words`."""
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("error: "), out.stderr
    for word in words:
        assert word in first, (word, first)
    return first
