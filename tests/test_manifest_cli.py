"""`ctui manifest`: JSON shape (golden file), human output, sections, roots, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ctui.cli import app, common

pytestmark = pytest.mark.timeout(60)

GOLDEN = Path(__file__).parent / "golden" / "manifest_json.json"
FIXED_GIT_ENV = {
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
}
DVC_FILE = (
    "outs:\n- md5: 53d025127ae99ab79e8502aae2d9bea6\n  size: 3893\n  hash: md5\n  path: raw.csv\n"
)
DVC_LOCK = """\
schema: '2.0'
stages:
  prepare:
    cmd: python prep.py
    deps:
    - path: data/raw.csv
      hash: md5
      md5: 53d025127ae99ab79e8502aae2d9bea6
      size: 3893
    params:
      params.yaml:
        prepare.split: 0.8
    outs:
    - path: data/prepared
      hash: md5
      md5: db4f59fcaabce4d846ec246a1babf4e7.dir
      size: 3891
      nfiles: 2
"""
#: fields whose value depends on the machine: the golden file holds their shape only
MACHINE_SHAPED = {"env", "compute"}
VARIES = {"container", "cuda", "gpus", "gpu_reason", "gpu_driver", "distro"}
FREE_FORM = {"packages", "variables"}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **FIXED_GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


@pytest.fixture(autouse=True)
def _fresh_cli_state() -> None:
    common.STATE.store = None
    common.STATE.project_dir = None


@pytest.fixture
def dvc_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ctui project in git with DVC files (content fixed, so the golden file is stable)."""
    repo = tmp_path / "proj"
    (repo / "data").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "tests@ctui.invalid")
    git(repo, "config", "user.name", "ctui tests")
    git(repo, "config", "commit.gpgsign", "false")
    (repo / "data" / "raw.csv.dvc").write_text(DVC_FILE)
    (repo / "dvc.lock").write_text(DVC_LOCK)
    (repo / "ctui.toml").write_text('[jobs.train]\ncommand = "python train.py"\ndata = ["extra"]\n')
    (repo / ".gitignore").write_text(".ctui/\nextra\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline")
    (repo / ".ctui" / "cache").mkdir(parents=True)
    (repo / "extra").write_text("declared data\n")
    monkeypatch.chdir(repo)
    return repo


def shape(obj: Any, key: str = "") -> Any:
    """Machine-specific values become their type names; maps of names collapse to one entry."""
    if key in VARIES:
        return "<varies by machine>"
    if isinstance(obj, dict):
        if key in FREE_FORM:
            return {"<name>": "str"} if obj else {}
        return {k: shape(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    return type(obj).__name__


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc, captured_at="<time>", root="<root>")
    sections = {}
    for name, section in doc["sections"].items():
        if name in MACHINE_SHAPED:
            section = dict(shape(section), status=section["status"], hash="<hash>")
        sections[name] = section
    doc["sections"] = sections
    return doc


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_manifest_json_matches_golden(dvc_project: Path) -> None:
    result = invoke("manifest", "--json")
    assert result.exit_code == 0, result.output
    got = normalise(orjson.loads(result.stdout))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_bytes(
            orjson.dumps(got, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    assert got == orjson.loads(GOLDEN.read_bytes())


def test_manifest_job_data_paths_and_cache(dvc_project: Path) -> None:
    result = invoke("manifest", "--json", "--section", "data", "--job", "train")
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert list(doc["sections"]) == ["data"]
    assert doc["sections"]["data"]["paths"]["extra"]["size"] == len("declared data\n")
    assert (dvc_project / ".ctui" / "cache" / "data-hashes.json").is_file()


def ctui(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line (exit codes come from `ctui.cli.main`)."""
    return subprocess.run([sys.executable, "-m", "ctui", *args], capture_output=True, text=True)


def test_manifest_unknown_job_is_bad_input(dvc_project: Path) -> None:
    proc = ctui("manifest", "--job", "nope")
    assert proc.returncode == 2
    assert "no such job" in proc.stderr and "Traceback" not in proc.stderr


def test_manifest_human_output(dvc_project: Path) -> None:
    result = invoke("manifest")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"manifest of {dvc_project}" in out.replace("\n", "")
    assert "data/prepared" in out and "db4f59fcaabc" in out
    assert git(dvc_project, "rev-parse", "HEAD") in out
    assert "packages" in out and "host" in out


def test_manifest_outside_a_project_uses_the_git_top_level(git_repo: Path, monkeypatch) -> None:
    (git_repo / "sub").mkdir()
    monkeypatch.chdir(git_repo / "sub")
    result = invoke("manifest", "--json", "--section", "code")
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["root"] == str(git_repo)
    assert doc["sections"]["code"]["status"] == "ok"
    assert not (git_repo / ".ctui").exists()  # looking never creates state


def test_manifest_outside_git_reports_absent_code(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("manifest", "--json")
    assert result.exit_code == 0, result.output
    sections = orjson.loads(result.stdout)["sections"]
    assert sections["code"]["status"] == "absent"
    assert sections["data"]["status"] == "absent"
    assert sections["env"]["status"] == "ok"


def test_manifest_bad_section_exits_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    proc = ctui("manifest", "--section", "gpu")
    assert proc.returncode == 2
    assert "unknown manifest section" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_human_compute_lines_for_a_recorded_h100() -> None:
    from ctui import format as fmt
    from ctui.cli.manifest_cmds import _section_lines

    section = orjson.loads((GOLDEN.parent / "manifest_compute_h100.json").read_bytes())
    lines = _section_lines("compute", section, fmt)
    assert "gpu0 NVIDIA H100 80GB HBM3 79.6GiB" in lines
    assert "driver 580.159.04  CUDA 13.0" in lines


def test_data_table_shows_odd_file_names_literally() -> None:
    from rich.console import Console

    from ctui import format as fmt
    from ctui.cli.manifest_cmds import _data_table

    odd = "data/[red]x[/red].csv"
    console = Console(width=120, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(_data_table({"paths": {odd: {"hash": "abc", "size": 10}}}, fmt))
    assert odd in console.export_text()
