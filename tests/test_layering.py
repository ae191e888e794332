"""The core never imports textual (what each light command imports:
`test_startup_imports.py`)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import ctui

CORE = sorted(
    m.name
    for m in pkgutil.walk_packages(ctui.__path__, "ctui.")
    if not m.name.startswith(("ctui.tui", "ctui.__main__"))
)


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_textual(module: str) -> None:
    code = f"import sys, {module}; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", f"{module} pulls in textual"
