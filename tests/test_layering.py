"""The core never imports textual; `ctui --help` and `ctui runs` import no heavy library."""

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


PROBE = """
import sys
sys.argv = ["ctui", *sys.argv[1:]]
from ctui.cli import main
try:
    main()
except SystemExit:
    pass
heavy = [m for m in ("textual", "mlflow", "dvc", "docker", "pynvml") if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["runs"], ["runs", "--json"]])
def test_light_commands_import_no_heavy_library(project, args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=project.root,
    )
    heavy = out.stderr.strip().splitlines()[-1]
    assert heavy == "HEAVY=", heavy
