"""The commands that open the TUI: clean errors outside a project, demo's options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CTUI = [str(Path(sys.executable).with_name("ctui"))]


@pytest.mark.parametrize("argv", [[], ["tui"]], ids=["ctui", "ctui tui"])
def test_outside_a_project_is_a_clean_error(tmp_path: Path, argv: list[str]) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "dumb"}
    proc = subprocess.run(
        CTUI + argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 2
    assert "not a ctui project" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_help_lists_no_open() -> None:
    proc = subprocess.run(CTUI + ["demo", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "--no-open" in proc.stdout


def test_tui_modules_keep_the_core_free_of_textual() -> None:
    # the TUI's data helpers are imported by the bench without textual or the CLI
    code = (
        "import sys, ctui.tui.data, ctui.status; "
        "assert 'textual' not in sys.modules and 'typer' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine\n")
    proc = subprocess.run(
        CTUI + ["demo", str(tmp_path), "--no-open"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "not empty" in " ".join(proc.stderr.split())  # rich may wrap long paths
    assert (tmp_path / "keep.txt").read_text() == "mine\n"
