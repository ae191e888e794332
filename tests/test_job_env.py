"""The env section records the job's interpreter, not ctui's; launcher noise is not an env
change; a queued run records the tree it ran on. Real venvs (made here with `uv venv`),
packages installed into them with `uv pip install` from wheels built here, real runs."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from jobs_helpers import wait_final, wait_for, write_config
from typer.testing import CliRunner

from ctui.cli import app
from ctui.jobs.launch import launch_run
from ctui.manifest import Absent, interpreter
from ctui.objects import ObjectStore
from tests.conftest import git

pytestmark = pytest.mark.timeout(120)

UV = shutil.which("uv")
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not installed (it makes the venvs)")

TRAIN = """
import labpkg
print("labpkg", labpkg.VERSION)
"""


def make_wheel(where: Path, version: str) -> Path:
    """A real, minimal wheel of `labpkg` (pip/uv install it like any other)."""
    name = f"labpkg-{version}-py3-none-any.whl"
    files = {
        "labpkg/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"labpkg-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: labpkg\nVersion: {version}\n"
        ).encode(),
        f"labpkg-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: ctui-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"labpkg-{version}.dist-info/RECORD,,")
    files[f"labpkg-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = where / name
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def make_venv(path: Path) -> Path:
    subprocess.run(
        [str(UV), "venv", "-q", "--python", sys.executable, str(path)],
        check=True, capture_output=True, env={**os.environ, "UV_OFFLINE": "1"},
    )  # fmt: skip
    return path / "bin" / "python"


def install(python: Path, wheel: Path) -> None:
    subprocess.run(
        [str(UV), "pip", "install", "-q", "--offline", "--python", str(python), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip


def env_of(project: Any, run: dict[str, Any]) -> dict[str, Any]:
    return dict(ObjectStore(project.objects_dir).get_json(run["manifest"]["env"]))


def cli(project: Any, *args: str) -> Any:
    return CliRunner().invoke(app, ["--project", str(project.root), *args])


@pytest.fixture
def venv_project(project: Any, tmp_path: Path) -> Any:
    """A project whose job runs `python train.py` in its own venv (not ctui's)."""
    py = make_venv(project.root / "venv")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    install(py, make_wheel(wheels, "1.0"))
    (project.root / ".gitignore").write_text(".ctui/\nvenv/\n")
    (project.root / "train.py").write_text(TRAIN)
    write_config(
        project.root,
        '[jobs.train]\ncommand = "python train.py"\n\n'
        '[jobs.pinned]\ncommand = "{python} train.py"\npython = "venv/bin/python"\n',
    )
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "train job")
    return SimpleNamespace(p=project, py=py, wheels=wheels)


@needs_uv
def test_the_env_is_the_jobs_venv_and_an_upgrade_there_shows_in_the_diff(
    venv_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    vp = venv_project
    p = vp.p
    # an activated venv: its bin first on PATH, as `source venv/bin/activate` does
    monkeypatch.setenv("PATH", f"{vp.py.parent}{os.pathsep}{os.environ['PATH']}")
    first = wait_final(p, launch_run(p, "train")["id"])
    assert first["status"] == "succeeded", first
    env = env_of(p, first)
    assert env["python"]["executable"] == str(vp.py)
    assert env["python"]["prefix"] == str(p.root / "venv")
    assert env["python"]["how"] == "the command's interpreter"
    assert env["packages"]["labpkg"] == "1.0"
    assert "typer" not in env["packages"]  # ctui's own packages are not the job's

    install(vp.py, make_wheel(vp.wheels, "2.0"))  # upgraded in the project venv only
    second = wait_final(p, launch_run(p, "train")["id"])
    assert env_of(p, second)["packages"]["labpkg"] == "2.0"
    result = cli(p, "diff", first["id"], second["id"], "--json")
    assert result.exit_code == 0, result.output
    diff = orjson.loads(result.stdout)
    assert diff["sections"]["env"]["status"] == "changed"
    assert diff["sections"]["env"]["changed"]["packages.labpkg"]["new"] == "2.0"
    assert diff["sections"]["code"]["status"] == "identical"


@needs_uv
def test_the_jobs_python_setting_names_the_venv(venv_project: Any) -> None:
    vp = venv_project
    p = vp.p
    run = wait_final(p, launch_run(p, "pinned")["id"])
    assert run["status"] == "succeeded", run
    assert run["command"][0] == str(p.root / "venv/bin/python")  # {python} is the job's
    env = env_of(p, run)
    assert env["python"]["how"] == "the job's python setting"
    assert env["packages"]["labpkg"] == "1.0"


@needs_uv
def test_launched_from_uv_run_or_a_plain_shell_the_env_is_identical(
    venv_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    vp = venv_project
    p = vp.p
    plain = wait_final(p, launch_run(p, "pinned")["id"])
    # what `uv run ctui …` and an activated venv add to the launcher's environment
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")
    monkeypatch.setenv("VIRTUAL_ENV", str(Path(sys.executable).parent.parent))
    monkeypatch.setenv("UV", str(UV))
    monkeypatch.setenv("CONDA_SHLVL", "1")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/home/me/.terraformrc")  # Terraform, not TF
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    noisy = wait_final(p, launch_run(p, "pinned")["id"])
    result = cli(p, "diff", plain["id"], noisy["id"], "--json")
    diff = orjson.loads(result.stdout)
    assert diff["sections"]["env"]["status"] == "identical", diff["sections"]["env"]
    assert diff["verdict"] == "identical"


def test_a_queued_run_records_the_tree_it_ran_on(project: Any) -> None:
    write_config(
        project.root,
        f'[jobs.slot]\ncommand = "{sys.executable} slot.py"\nmax_concurrent = 1\n',
    )
    (project.root / "slot.py").write_text(
        "import os, pathlib, time\n"
        "me = os.environ['CTUI_RUN_ID']\n"
        "pathlib.Path(me + '.started').touch()\n"
        "while not pathlib.Path('release').exists():\n"
        "    time.sleep(0.02)\n"
    )
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "slot job")
    first = launch_run(project, "slot")
    second = launch_run(project, "slot")
    assert second["status"] == "queued"
    wait_for(lambda: (project.root / f"{first['id']}.started").exists())
    # an edit while the second run waits in the queue
    (project.root / "slot.py").write_text((project.root / "slot.py").read_text() + "# edited\n")
    (project.root / "release").touch()
    a = wait_final(project, first["id"])
    b = wait_final(project, second["id"])
    assert a["status"] == b["status"] == "succeeded"
    objects = ObjectStore(project.objects_dir)
    code_a = objects.get_json(a["manifest"]["code"])
    code_b = objects.get_json(b["manifest"]["code"])
    assert not code_a["dirty"]
    assert code_b["dirty"] and code_b["changed_files"] == ["slot.py"]
    assert b"# edited" in objects.get_bytes(code_b["patch"]["id"])
    result = cli(project, "diff", a["id"], b["id"], "--json")
    assert orjson.loads(result.stdout)["sections"]["code"]["status"] == "changed"


def test_an_interpreter_that_is_missing_or_not_python_is_absent_and_the_run_still_runs(
    project: Any,
) -> None:
    (project.root / "fake-python").write_text("#!/bin/sh\necho 'I am not Python'\n")
    (project.root / "fake-python").chmod(0o755)
    write_config(
        project.root,
        f'[jobs.missing]\ncommand = "{sys.executable} -c pass"\npython = "nope/bin/python"\n\n'
        f'[jobs.fake]\ncommand = "{sys.executable} -c pass"\npython = "./fake-python"\n',
    )
    for job, why in (("missing", "does not exist"), ("fake", "is not a Python interpreter")):
        run = wait_final(project, launch_run(project, job)["id"])
        assert run["status"] == "succeeded", run
        env = env_of(project, run)
        assert env["status"] == "absent" and why in env["reason"], env
        assert set(run["manifest"]) >= {"code", "compute"}


def test_resolution_rules(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    (bindir / "dvc").write_text("#!/bin/sh\n")
    env = {"PATH": str(bindir)}
    assert interpreter.resolve(["python3", "t.py"], env, tmp_path).how == (
        "the command's interpreter"
    )
    dvc = interpreter.resolve(["dvc", "repro"], env, tmp_path)
    assert dvc.argv == [str(bindir / "python3")]
    assert dvc.how == "python3 on the job's PATH (the command 'dvc' is not Python)"
    shell = interpreter.resolve(["/bin/sh", "-c", "OMP=1 python3 t.py"], env, tmp_path, shell=True)
    assert shell.how == "the command's interpreter"
    (tmp_path / "run.py").write_text("#!/usr/bin/env python3\n")
    assert interpreter.resolve(["./run.py"], env, tmp_path).how == "the #! line of run.py"
    with pytest.raises(Absent, match="not on the job's PATH"):
        interpreter.resolve(["python3.99", "t.py"], env, tmp_path)


def test_the_probe_is_cached_until_the_site_packages_change(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    site = tmp_path / "site"
    site.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    interp = interpreter.resolve([sys.executable], env, tmp_path)
    first = interpreter.probe(interp, env, tmp_path, cache_dir=cache)
    assert "labpkg" not in first["packages"]
    calls: list[list[str]] = []

    def counting(argv: list[str]) -> tuple[int, bytes, bytes]:
        calls.append(argv)
        proc = subprocess.run(argv, env=env, capture_output=True)
        return proc.returncode, proc.stdout, proc.stderr

    assert interpreter.probe(interp, env, tmp_path, cache_dir=cache, run=counting) == first
    assert calls == []  # unchanged: answered from the cache
    (site / "labpkg-3.1.dist-info").mkdir()  # an install changes the folder's mtime
    again = interpreter.probe(interp, env, tmp_path, cache_dir=cache, run=counting)
    assert len(calls) == 1 and again["packages"]["labpkg"] == "3.1"


def test_cli_manifest_describes_the_named_interpreter(project: Any) -> None:
    result = cli(project, "manifest", "--section", "env", "--python", sys.executable, "--json")
    assert result.exit_code == 0, result.output
    env = orjson.loads(result.stdout)["sections"]["env"]
    assert env["python"]["executable"] == sys.executable
    assert env["python"]["how"] == "given with --python"
    bad = cli(project, "manifest", "--section", "env", "--python", "/nonexistent/python")
    assert bad.exit_code == 0
    assert "does not exist" in " ".join(bad.output.split())


def test_a_non_python_command_with_no_python_keeps_the_rest_of_the_env(tmp_path: Path) -> None:
    from ctui.manifest.env import capture_env

    bindir = tmp_path / "bin"
    bindir.mkdir()
    env = {"PATH": str(bindir), "OMP_NUM_THREADS": "2", "CTUI_IMAGE_ID": "sha256:ab"}
    describe = lambda: interpreter.describe(["sh", "total.sh"], env, tmp_path)  # noqa: E731
    section = capture_env(env, python=describe)
    assert "no python3 is on its PATH" in section["python"]["absent"]
    assert section["packages"] == {}
    assert section["container"]["image_id"] == "sha256:ab"
    assert section["variables"] == {"OMP_NUM_THREADS": "2"}
