"""`ctui top` on a real terminal (a pty): `q` quits it, and the terminal is left as it was."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import termios
import time

import pytest

pytestmark = pytest.mark.timeout(60)


def _read_until(fd: int, needle: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} never came; screen so far: {seen[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
    return seen


@pytest.mark.parametrize("key", [b"q", b"\x1b"])
def test_q_quits_top_and_restores_the_terminal(project, key: bytes) -> None:
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTUI_")}
    env.update(COLUMNS="80", LINES="24", TERM="xterm-256color")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctui", "top", "--interval", "0.2"],
        cwd=project.root,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    try:
        _read_until(master, b"q quits")
        assert termios.tcgetattr(slave)[3] & termios.ICANON == 0  # keys come one by one
        os.write(master, key)
        assert proc.wait(timeout=20) == 0
        assert termios.tcgetattr(slave)[3] == before[3]  # echo and line mode back
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def test_top_with_piped_input_is_not_quit_by_it(project) -> None:
    # the screen is a terminal, stdin a pipe that says "q" and closes: only a person at
    # the terminal quits `top`, not a stray input (and a closed stdin does not spin it)
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctui", "top", "--interval", "0.1"],
        cwd=project.root,
        stdin=subprocess.PIPE,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "COLUMNS": "80", "TERM": "xterm-256color"},
        start_new_session=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"q\n")
        proc.stdin.close()
        for _ in range(4):  # frame after frame: it is still running
            _read_until(master, b"q quits")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)
