"""Helpers shared by the launch and live-view tests: a project with tiny real jobs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.screen import Screen
from textual.widgets import Static

PY = sys.executable

# Each job is a real process. `count` prints numbered lines and logs a metric per line;
# `sleeper` prints, then sleeps until stopped.
COUNT = (
    "import sys; from ctui import track; n = int(sys.argv[1]); "
    "[(print('count line', i, flush=True), track.log_metric('loss', 1.0 / (i + 1), i)) "
    "for i in range(n)]; print('done [ok]')"
)
SLEEP = "import time; print('sleeping', flush=True); time.sleep(60)"

CTUI_TOML = f"""
[jobs.count]
command = {json.dumps(f'{PY} -c "{COUNT}" {{n}}')}
params = {{ n = 5, lr = 0.1, name = "a b", fast = true }}

[jobs.sleeper]
command = {json.dumps(f'{PY} -c "{SLEEP}"')}

[jobs.cluster]
command = "train --lr {{lr}}"
backend = "slurm"
params = {{ lr = 0.01 }}
slurm = {{ partition = "gpu", time = "01:00:00", cpus = 4, mem = "16G" }}
"""


def write_config(root: Path) -> None:
    (root / "ctui.toml").write_text(CTUI_TOML)


class ScreenApp(App[None]):
    """A bare app that pushes one screen (the screens are self-contained)."""

    def __init__(self, make: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self.make = make

    def on_mount(self) -> None:
        self.push_screen(self.make())


def status_of(screen: Screen[Any]) -> str:
    """The live view's status line, as text."""
    return str(screen.query_one("#live-status", Static).render())


async def wait_for(pilot: Any, cond: Callable[[], Any], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


class LockHolder:
    """Another process holding a lock file (`with LockHolder(path):` … `.release()`): a real
    way to keep a launch waiting for the store, as a busy `ctui watch` would."""

    CODE = (
        "import sys; from pathlib import Path; from ctui.atomic import file_lock\n"
        "with file_lock(Path(sys.argv[1])):\n"
        "    print('locked', flush=True); sys.stdin.read()\n"
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> LockHolder:
        self.proc = subprocess.Popen(
            [PY, "-c", self.CODE, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "locked"
        return self

    def release(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.release()
