"""Helpers shared by the job tests: a project with jobs, and polling without fixed sleeps."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PY = shlex.quote(sys.executable)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; return its value or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def write_config(root: Path, text: str) -> None:
    (root / "ctui.toml").write_text(text)


def run_doc(project: Any, run_id: str) -> dict[str, Any]:
    from ctui.store import open_store

    return open_store(project).get_run(run_id)


def wait_final(project: Any, run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    from ctui.store import FINAL

    def done() -> dict[str, Any] | None:
        doc = run_doc(project, run_id)
        return doc if doc["status"] in FINAL else None

    result: dict[str, Any] = wait_for(done, timeout)
    return result
