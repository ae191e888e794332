"""Helpers shared by the trigger and watch tests: a real git + DVC project, ctui as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ctui.store import Store

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
ENV.pop("CTUI_STORE", None)
PY = sys.executable


def sh(cwd: Path, *argv: str) -> str:
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True, env=ENV).stdout


def git(cwd: Path, *args: str) -> str:
    return sh(cwd, "git", *args).strip()


def dvc(cwd: Path, *args: str) -> str:
    return sh(cwd, PY, "-m", "dvc", *args)


def ctui(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "ctui", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**ENV, **(env or {})},
        timeout=timeout,
    )


def write_config(root: Path, body: str) -> None:
    (root / "ctui.toml").write_text(body)


def runs(root: Path) -> list[dict[str, Any]]:
    return Store(root / ".ctui" / "ctui.json").runs()


def wait_final(root: Path, timeout: float = 90) -> list[dict[str, Any]]:
    """Wait until no run is queued or running; return all runs."""
    deadline = time.monotonic() + timeout
    while True:
        current = runs(root)
        if all(r["status"] not in ("queued", "running") for r in current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"runs still active: {[(r['id'], r['status']) for r in current]}")
        time.sleep(0.1)


def init_dvc(root: Path) -> None:
    """`dvc init` plus one tracked file, committed."""
    dvc(root, "init", "-q")
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "train.csv").write_text("x,y\n1,2\n")
    dvc(root, "add", "-q", "data/train.csv")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "track data with dvc")


def change_data(root: Path, line: str) -> None:
    with open(root / "data" / "train.csv", "a") as fh:
        fh.write(line + "\n")
    dvc(root, "add", "-q", "data/train.csv")


QUICK = f"{PY} -c 'print(1)'"


def track(root: Path, rel: str, content: str) -> None:
    """Write a data file and its `.dvc` file as `dvc add` would (md5, size, hash: md5).

    The real `dvc add` costs seconds per call; the tests about DVC itself use it, the others
    write the same file format directly."""
    import hashlib

    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    md5 = hashlib.md5(content.encode()).hexdigest()
    (root / f"{rel}.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {len(content.encode())}\n  hash: md5\n  path: {path.name}\n"
    )
