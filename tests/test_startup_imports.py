"""Each light command imports only what it uses, and `ctui --help` lists every command
without importing one.

Every command runs in a fresh interpreter (`python -m ctui ...`) in a project made by
`ctui init`, and the modules it left in `sys.modules` are checked. No timing here: the
figures are `bench/bench_startup.py`'s.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from ctui.cli.command_table import COMMANDS
from ctui.cli.lazy_group import build_command
from ctui.errors import ExitCode

#: what no light command may import: the TUI, the engines, the samplers, config parsing,
#: the core layers a listing or a lookup has no use for, typer's Markdown and traceback extras
HEAVY = (
    "textual",
    "textual_plotext",
    "plotext",
    "mlflow",
    "dvc",
    "docker",
    "psutil",
    "pynvml",
    "croniter",
    "yaml",
    "pydantic",
    "sqlalchemy",
    "requests",
    "markdown_it",
    "pygments",
    "rich.markdown",
    "rich.traceback",
    "tomllib",
    "ctui.config",
    "ctui.tui",
    "ctui.jobs",
    "ctui.manifest",
    "ctui.monitor",
    "ctui.integrations",
    "ctui.gate",
    "ctui.triggers",
    "ctui.reproduce",
)

#: the command modules under ctui/cli (each registers some commands)
COMMAND_MODULES = sorted({module for module, _ in COMMANDS.values()})

#: argv → (exit code on an empty store, the command modules it may import, also forbidden)
CASES: dict[tuple[str, ...], tuple[int, set[str], tuple[str, ...]]] = {
    ("--help",): (0, set(), ("ctui.store", "ctui.project")),
    ("--version",): (0, set(), ("ctui.store", "rich")),
    ("runs",): (0, {"ctui.cli.store_cmds"}, ()),
    ("runs", "--json"): (0, {"ctui.cli.store_cmds"}, ("rich",)),
    ("runs", "--help"): (0, {"ctui.cli.store_cmds"}, ("ctui.store",)),
    ("show", "nosuchrun"): (ExitCode.BAD_INPUT, {"ctui.cli.show_cmd"}, ()),
    ("tag", "nosuchrun", "x"): (ExitCode.BAD_INPUT, {"ctui.cli.store_cmds"}, ()),
    ("logs", "-n", "5", "nosuchrun"): (ExitCode.BAD_INPUT, {"ctui.cli.log_cmds"}, ()),
}

#: runs `python -m ctui ARGS` and writes the names in sys.modules at exit to $PROBE_OUT
PROBE = """
import atexit, json, os, runpy, sys

def _report():
    with open(os.environ["PROBE_OUT"], "w") as fh:
        json.dump(sorted(sys.modules), fh)

atexit.register(_report)
sys.argv = ["ctui", *sys.argv[1:]]
runpy.run_module("ctui", run_name="__main__", alter_sys=True)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTUI_", "MLFLOW_"))}
    env.update(COLUMNS="100", **extra)
    return env


@pytest.fixture(scope="module")
def empty_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("startup")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    out = subprocess.run(
        [sys.executable, "-m", "ctui", "init"],
        cwd=root,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return root


def _modules_after(root: Path, args: tuple[str, ...]) -> tuple[int, set[str], str]:
    report = root / ".probe.json"
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=_env(PROBE_OUT=str(report)),
        timeout=60,
    )
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, set(json.loads(report.read_text())), out.stderr


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("args", list(CASES), ids=" ".join)
def test_light_command_imports_only_what_it_uses(empty_project: Path, args: tuple[str, ...]):
    code, allowed, also_forbidden = CASES[args]
    rc, modules, stderr = _modules_after(empty_project, args)
    assert rc == code, stderr
    assert allowed <= modules, "the probe did not see the command's own module"
    heavy = [name for name in (*HEAVY, *also_forbidden) if _loaded(modules, name)]
    assert not heavy, f"`ctui {' '.join(args)}` imported {heavy}"
    others = [m for m in COMMAND_MODULES if m in modules and m not in allowed]
    assert not others, f"`ctui {' '.join(args)}` imported other commands' modules: {others}"


def _help(mode: str) -> str:
    """`ctui --help` in a fresh interpreter: `lazy` as shipped, `eager` with every command
    built first (so it is listed from its own docstring)."""
    code = (
        "import sys, typer.main\n"
        "from ctui.cli import app\n"
        "group = typer.main.get_command(app)\n"
        "if sys.argv[1] == 'eager':\n"
        "    for name in group.list_commands(None):\n"
        "        assert group.commands[name].name == name\n"
        "group.main(['--help'], prog_name='ctui')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, mode], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_help_reads_the_same_as_from_the_commands_themselves() -> None:
    lazy = _help("lazy")
    assert lazy == _help("eager")
    for name in COMMANDS:
        assert f"│ {name} " in lazy, name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_table_line_is_the_commands_own_help(name: str) -> None:
    command = build_command(name, rich_markup_mode="rich")
    assert command is not None and command.name == name
    own = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0].strip()
    assert COMMANDS[name][1] == own, f"command_table.COMMANDS[{name!r}] drifted from its help"


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_every_registered_command_is_in_the_table(module: str) -> None:
    import importlib

    scratch = typer.Typer()
    importlib.import_module(module).register(scratch)
    names = [
        info.name or typer.main.get_command_name(info.callback.__name__)
        for info in scratch.registered_commands
        if info.callback
    ] + [group.name for group in scratch.registered_groups]
    for name in names:
        assert COMMANDS.get(name, ("",))[0] == module, f"{module} adds {name!r}: not in the table"


def test_no_command_module_is_left_out_of_the_table() -> None:
    cli = Path(__file__).resolve().parent.parent / "ctui" / "cli"
    with_register = sorted(
        f"ctui.cli.{p.stem}" for p in cli.glob("*.py") if "\ndef register(" in p.read_text()
    )
    assert with_register == COMMAND_MODULES


def test_rich_stand_ins_leave_the_real_modules_importable() -> None:
    code = (
        "import sys\n"
        "from ctui.cli.rich_help import import_rich_utils\n"
        "import_rich_utils()\n"
        "assert 'rich.markdown' not in sys.modules and 'rich.traceback' not in sys.modules\n"
        "import typer.rich_utils as ru\n"
        "from rich.markdown import Markdown\n"
        "assert type(ru.Markdown('*x*')) is Markdown\n"
        "from rich.traceback import Traceback\n"
        "assert ru.Traceback.from_exception.__self__ is Traceback\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
