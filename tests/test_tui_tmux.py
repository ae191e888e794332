"""Drive the real `ctui` binary in tmux at 80×24: start, navigate, open detail and help, quit;
the navigation model (q goes back, never out of the app from a screen above home) and a bad
filter's error."""

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

    def wait_for_gone(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while text in screen:
            assert time.monotonic() < deadline, f"{text!r} still on screen:\n{screen}"
            time.sleep(0.1)
            screen = self.screen()
        return screen

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
    tmux.wait_for(newest["id"][-6:])  # the table shows #seq and the id's random tail
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
    tmux.wait_for("Keys: Runs")
    tmux.keys("Escape")
    tmux.wait_for("2/10 runs")

    tmux.keys("q")
    deadline = time.monotonic() + 60
    while not rc_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rc_file.read_text().strip() == "0"


def start(tmux: Tmux, tmp_path: Path, *args: str) -> tuple[Path, Path]:
    """`ctui ARGS` in a fresh 80×24 tmux session on the fixed project; (project root, rc file)."""
    project = make_tui_project(tmp_path / "demo")
    ctui = Path(sys.executable).with_name("ctui")
    rc_file = tmp_path / "rc"
    command = (
        f"env CTUI_KEYMAP={shlex.quote(str(tmp_path / 'none.toml'))} "
        f"{shlex.join([str(ctui), *args])}; echo $? > {shlex.quote(str(rc_file))}"
    )
    tmux(
        "new-session", "-d", "-s", "main", "-x", "80", "-y", "24", "-c", str(project.root), command
    )
    return project.root, rc_file


def wait_exit(rc_file: Path) -> str:
    deadline = time.monotonic() + 60
    while not rc_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return rc_file.read_text().strip()


def test_space_space_d_q_stays_in_the_app(tmux: Tmux, tmp_path: Path) -> None:
    _, rc_file = start(tmux, tmp_path)
    screen = tmux.wait_for("10/10 runs")
    assert screen.splitlines()[-1].rstrip().endswith("? help")  # the footer, whole

    tmux.keys("Space", "Space", "d")
    screen = tmux.wait_for(" vs ")  # the diff screen's title: A vs B
    assert screen.splitlines()[-1].rstrip().endswith("? help")
    tmux.keys("q")
    tmux.wait_for("10/10 runs")
    assert not rc_file.exists()  # still in the app

    tmux.keys(":", *"triggers", "Enter")  # all at once: no letter lost to the list below
    tmux.wait_for("no triggers declared")
    tmux.keys("q")
    tmux.wait_for("10/10 runs")
    assert not rc_file.exists()

    # a bad filter says why where it was typed (the runs list keeps what it showed)
    tmux.keys("/", *"metric.acc>abc", "Enter")
    screen = tmux.wait_for("not a number")
    assert "cannot compare metric.acc with 'abc'" in screen
    assert "10/10 runs" in screen  # the previous results stay
    tmux.keys("Escape")  # one at a time: two in one write read as alt+escape
    tmux.wait_for_gone("not a number")

    tmux.keys("Q")  # quits from anywhere
    assert wait_exit(rc_file) == "0"


def test_open_on_a_run_and_on_a_diff(tmux: Tmux, tmp_path: Path) -> None:
    newest = max(run_docs(), key=lambda d: d["started"])
    _, rc_file = start(tmux, tmp_path, "tui", newest["id"][:10])
    tmux.wait_for("Overview")
    tmux.keys("Escape")  # back to the runs list the detail was opened over
    tmux.wait_for("10/10 runs")
    tmux.keys("q")
    assert wait_exit(rc_file) == "0"


def test_diff_tui_opens_the_diff_screen(tmux: Tmux, tmp_path: Path) -> None:
    _, rc_file = start(tmux, tmp_path, "diff", "#9", "#7", "--tui")
    screen = tmux.wait_for("params  changed")  # the diff is loaded (the footer shows first)
    assert " vs " in screen and "Next change" in screen
    tmux.keys("q")  # back to the runs list, not out of the app
    tmux.wait_for("10/10 runs")
    assert not rc_file.exists()
    tmux.keys("q")
    assert wait_exit(rc_file) == "0"


def test_unknown_run_is_one_line_before_the_tui(tmp_path: Path) -> None:
    from cli_helpers import ctui

    project = make_tui_project(tmp_path / "demo")
    for args in (("tui", "nosuchrun"), ("diff", "nosuchrun", "#1", "--tui")):
        result = ctui(project.root, *args)
        assert result.returncode == 2
        assert "no run matches 'nosuchrun'" in result.stderr
        assert "Traceback" not in result.stderr
        assert "\x1b[?1049h" not in result.stdout  # the TUI never took the screen
