"""Drive the real `ctui` binary in tmux at 80×24: start, navigate, open detail and help, quit."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_tui_fixtures import make_tui_project, run_docs

pytestmark = [
    # each step polls; on a loaded 2-core box the whole walk has taken over 120 s
    pytest.mark.timeout(400),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self) -> None:
        self.socket = f"ctui-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True
        ).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "main")

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen; it shows:\n{screen}")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "main", *keys)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux()
    yield t
    subprocess.run(["tmux", "-L", t.socket, "kill-server"], capture_output=True)


def test_real_binary_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    project = make_tui_project(tmp_path / "demo")
    ctui = Path(sys.executable).with_name("ctui")
    rc_file = tmp_path / "rc"
    command = (
        f"env CTUI_KEYMAP={shlex.quote(str(tmp_path / 'none.toml'))} "
        f"{shlex.quote(str(ctui))}; echo $? > {shlex.quote(str(rc_file))}"
    )
    tmux(
        "new-session", "-d", "-s", "main", "-x", "80", "-y", "24", "-c", str(project.root), command
    )
    newest = max(run_docs(), key=lambda d: d["started"])
    tmux.wait_for(newest["id"])
    screen = tmux.wait_for("Filter")  # the footer
    assert "10/10 runs" in screen
    assert len(screen.splitlines()) <= 24

    tmux.keys("Down", "Enter")
    tmux.wait_for("Overview")
    tmux.keys("2")
    tmux.wait_for("points")  # a metric chart's label
    tmux.keys("Escape")
    tmux.wait_for("10/10 runs")

    tmux.keys("/", "j", "o", "b", "=", "e", "v", "a", "l")  # all at once, as a fast typist
    tmux.keys("Enter")
    tmux.wait_for("2/10 runs")

    tmux.keys("?")
    tmux.wait_for("ctui — keys")
    tmux.keys("Escape")
    tmux.wait_for("2/10 runs")

    tmux.keys("q")
    deadline = time.monotonic() + 60
    while not rc_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rc_file.read_text().strip() == "0"
