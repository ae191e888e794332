"""The code section tells the whole git truth: submodules (commit, dirty, patch), staged new
files and untracked source files — captured, and rebuilt by `ctui reproduce`. Real git, real
submodules, real runs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.errors import ExitCode
from ctui.manifest import capture
from ctui.manifest import code as code_mod
from ctui.reproduce.compare import code_differences
from tests.conftest import git
from tests.test_reproduce import cli, run_job, sections

pytestmark = [pytest.mark.timeout(180)]

# a token shape redact_bytes knows (an AWS key id)
SECRET = "AKIA" + "ABCDEFGHIJKLMNOP"

TRAIN = """\
from pathlib import Path
from ctui import track
from lib.mod import VALUE

nested = int(Path("lib/nest/n.txt").read_text())
track.log_metrics({"value": VALUE, "nested": nested})
"""


def sub_git(cwd: Path, *args: str) -> str:
    """git with local-path submodules allowed (modern git refuses file:// ones by default)."""
    return git(cwd, "-c", "protocol.file.allow=always", *args)


def new_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "commit.gpgsign", "false")
    for name, text in files.items():
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return path


@pytest.fixture
def libs(tmp_path: Path) -> Path:
    """`lib` (mod.py: VALUE = 1) holding the submodule `nest` (n.txt: 4), as upstreams."""
    up = tmp_path / "upstream"
    new_repo(up / "nest", {"n.txt": "4\n"})
    lib = new_repo(up / "lib", {"mod.py": "VALUE = 1\n"})
    sub_git(lib, "submodule", "add", "-q", str(up / "nest"), "nest")
    git(lib, "commit", "-q", "-m", "nest")
    return up


def add_lib(repo: Path, libs: Path) -> None:
    sub_git(repo, "submodule", "add", "-q", str(libs / "lib"), "lib")
    sub_git(repo, "submodule", "update", "--init", "--recursive", "-q")
    git(repo, "commit", "-q", "-m", "add lib")


def code_of(root: Path, **kwargs: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    m = capture(root, sections=["code"], **kwargs)
    return m["sections"]["code"], m["blobs"]


def count_git_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    calls: list[tuple[str, ...]] = []
    real = subprocess.run

    def counting(args: Any, *a: Any, **kw: Any) -> Any:
        calls.append(tuple(args))
        return real(args, *a, **kw)

    monkeypatch.setattr(code_mod.subprocess, "run", counting)
    return calls


# -- capture ---------------------------------------------------------------------------------


def test_submodules_clean_then_moved_then_dirty(git_repo: Path, libs: Path) -> None:
    add_lib(git_repo, libs)
    lib = git_repo / "lib"
    c1 = git(lib, "rev-parse", "HEAD")
    nest_c = git(lib / "nest", "rev-parse", "HEAD")

    code, _ = code_of(git_repo)
    assert code["dirty"] is False and code["patch"] is None
    assert code["submodules"] == {
        "lib": {"commit": c1, "recorded": c1, "dirty": False, "patch": None, "initialised": True},
        "lib/nest": {
            "commit": nest_c, "recorded": nest_c, "dirty": False, "patch": None,
            "initialised": True,
        },
    }  # fmt: skip

    # a new commit checked out in the submodule, not committed in the superproject
    (lib / "mod.py").write_text("VALUE = 2\n")
    git(lib, "commit", "-q", "-am", "two")
    c2 = git(lib, "rev-parse", "HEAD")
    moved, blobs = code_of(git_repo)
    assert moved["submodules"]["lib"] == {
        "commit": c2, "recorded": c1, "dirty": False, "patch": None, "initialised": True,
    }  # fmt: skip
    assert moved["dirty"] is True and moved["changed_files"] == ["lib"]
    assert f"+Subproject commit {c2}".encode() in blobs[moved["patch"]["id"]]

    # uncommitted changes in it: its own patch (redacted); the superproject's patch is the same
    (lib / "mod.py").write_text(f"VALUE = 3\nKEY = '{SECRET}'\n")
    dirty, blobs = code_of(git_repo)
    entry = dirty["submodules"]["lib"]
    assert entry["commit"] == c2 and entry["dirty"] is True and entry["initialised"] is True
    assert entry["patch"]["redactions"] == 1
    sub_patch = blobs[entry["patch"]["id"]]
    assert b"+VALUE = 3" in sub_patch and SECRET.encode() not in sub_patch
    assert hashlib.sha256(sub_patch).hexdigest() == entry["patch"]["id"]
    assert dirty["patch"]["id"] == moved["patch"]["id"], "no -dirty in the superproject's patch"
    assert dirty["submodules"]["lib/nest"]["dirty"] is False


def test_a_nested_submodule_change_and_one_not_checked_out(
    git_repo: Path, libs: Path, tmp_path: Path
) -> None:
    add_lib(git_repo, libs)
    (git_repo / "lib" / "nest" / "n.txt").write_text("5\n")
    code, blobs = code_of(git_repo)
    assert code["submodules"]["lib/nest"]["dirty"] is True
    assert b"+5" in blobs[code["submodules"]["lib/nest"]["patch"]["id"]]
    # the nested change makes lib dirty too, but lib's own patch holds no file of nest's
    assert code["submodules"]["lib"]["dirty"] is True
    assert code["submodules"]["lib"]["patch"] is None

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(git_repo), str(clone))  # submodules not initialised
    fresh, _ = code_of(clone)
    c1 = git(git_repo / "lib", "rev-parse", "HEAD")
    assert fresh["submodules"] == {
        "lib": {"commit": None, "recorded": c1, "dirty": False, "patch": None,
                "initialised": False},
    }  # fmt: skip


def test_without_gitmodules_no_submodule_key_and_no_extra_git_call(
    git_repo: Path, libs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_git_calls(monkeypatch)
    code, _ = code_of(git_repo)
    assert "submodules" not in code
    assert len(calls) == 2, calls  # status, remotes: nothing for submodules
    add_lib(git_repo, libs)
    calls.clear()
    code, _ = code_of(git_repo)
    assert set(code["submodules"]) == {"lib", "lib/nest"}
    # + the submodule paths and their recorded commits for each repository holding
    # submodules, and one status of lib (it holds nest); the clean leaf costs nothing
    assert len(calls) == 2 + 2 + 1 + 2, calls


def test_untracked_files_captured_by_pattern_skipped_with_the_reason(git_repo: Path) -> None:
    (git_repo / "helper.py").write_text(f"TOKEN = '{SECRET}'\n")
    (git_repo / "pkg").mkdir()
    (git_repo / "pkg" / "util.py").write_text("X = 1\n")  # inside an untracked folder
    (git_repo / "big.py").write_text("#" * (1024 * 1024) + "\n")
    (git_repo / "blob.py").write_bytes(b"x = 1\0\1\2")
    (git_repo / "notes.txt").write_text("not source\n")
    (git_repo / "run.sh").write_text("#!/bin/sh\n")
    (git_repo / "run.sh").chmod(0o755)

    code, blobs = code_of(git_repo)  # default: *.py, 256 KiB
    assert code["untracked"] == ["big.py", "blob.py", "helper.py", "notes.txt", "pkg/util.py",
                                 "run.sh"]  # fmt: skip
    files = code["untracked_files"]
    assert sorted(files) == ["helper.py", "pkg/util.py"]
    helper = blobs[files["helper.py"]["id"]]
    assert SECRET.encode() not in helper and b"TOKEN" in helper
    assert files["helper.py"]["redactions"] == 1
    assert files["pkg/util.py"] == {"id": hashlib.sha256(b"X = 1\n").hexdigest(), "size": 6}
    assert code["untracked_skipped"] == {"big.py": "too big", "blob.py": "binary"}
    assert code["dirty"] is False and code["patch"] is None, "untracked files are not a patch"

    # patterns match the path from the top or the file name; the size limit is the caller's
    code, _ = code_of(git_repo, options=_manifest_options(["run.*", "pkg/*"], 2 * 1024 * 1024))
    assert sorted(code["untracked_files"]) == ["pkg/util.py", "run.sh"]
    assert code["untracked_files"]["run.sh"]["exec"] is True
    assert "untracked_skipped" not in code
    code, _ = code_of(git_repo, options=_manifest_options([], 1))
    assert "untracked_files" not in code and "untracked_skipped" not in code


def _manifest_options(patterns: list[str], max_bytes: int) -> Any:
    from ctui.config import ManifestConfig

    return ManifestConfig(untracked=patterns, untracked_max_bytes=max_bytes)


def test_two_captures_of_the_same_tree_hash_equal(git_repo: Path, libs: Path) -> None:
    add_lib(git_repo, libs)
    (git_repo / "lib" / "mod.py").write_text("VALUE = 7\n")
    (git_repo / "staged.py").write_text("S = 1\n")
    git(git_repo, "add", "staged.py")
    (git_repo / "README.md").write_text("unstaged\n")
    (git_repo / "helper.py").write_text("H = 1\n")
    first, b1 = code_of(git_repo)
    second, b2 = code_of(git_repo)
    assert first["hash"] == second["hash"] and b1 == b2
    assert first["submodules"]["lib"]["patch"] and first["untracked_files"]
    (git_repo / "helper.py").write_text("H = 2\n")
    assert code_of(git_repo)[0]["hash"] != first["hash"], "the captured content is in the hash"


def test_code_differences_name_submodules_and_untracked_files() -> None:
    def sec(**kw: Any) -> dict[str, Any]:
        return {"status": "ok", "commit": "c" * 40, "patch": None, **kw}

    sub = {"commit": "a" * 40, "patch": None, "initialised": True}
    old = sec(submodules={"lib": sub, "gone": sub}, untracked_files={"h.py": {"id": "1" * 64}})
    new = sec(
        submodules={"lib": {**sub, "commit": "b" * 40, "patch": {"id": "9" * 64}},
                    "gone": {**sub, "initialised": False}},
        untracked_files={"h.py": {"id": "2" * 64}, "n.py": {"id": "3" * 64}},
    )  # fmt: skip
    assert code_differences(old, new) == [
        "submodule gone checked out→not checked out",
        "submodule lib aaaaaaa→bbbbbbb",
        "submodule lib patch none→99999999",
        "untracked h.py 11111111→22222222",
        "+untracked n.py",
    ]
    assert code_differences(old, old) == []
    assert code_differences(sec(), sec(submodules={"lib": sub})) == ["+submodule lib"]


# -- reproduce -------------------------------------------------------------------------------


def make_project(project: Any, train: str, *, extra_toml: str = "") -> None:
    (project.root / "ctui.toml").write_text(
        f'[jobs.train]\ncommand = "{sys.executable} train.py"\n{extra_toml}'
    )
    (project.root / "train.py").write_text(train)
    git(project.root, "add", "ctui.toml", "train.py", ".gitignore")
    git(project.root, "commit", "-q", "-m", "job")


def assert_clean_after(project: Any, config_before: bytes) -> None:
    assert list((project.state_dir / "worktrees").iterdir()) == []
    assert git(project.root, "worktree", "list").count("\n") == 0
    assert (project.root / ".git" / "config").read_bytes() == config_before


def test_reproduces_a_run_whose_job_imports_from_a_moved_dirty_submodule(
    project: Any, libs: Path
) -> None:
    from ctui.reproduce import reproduce_run

    make_project(project, TRAIN)
    add_lib(project.root, libs)
    lib = project.root / "lib"
    (lib / "mod.py").write_text("VALUE = 2\n")
    git(lib, "commit", "-q", "-am", "two")  # checked out, not committed in the superproject
    (lib / "mod.py").write_text("VALUE = 5\n")  # and dirty
    (lib / "nest" / "n.txt").write_text("6\n")
    first = run_job(project)
    assert first["metrics"] == {"value": 5, "nested": 6}
    recorded = sections(project, first)["code"]["submodules"]
    assert recorded["lib"]["dirty"] and recorded["lib/nest"]["dirty"]

    # the user moves on: the submodules change again
    git(lib / "nest", "checkout", "-q", "--", "n.txt")
    (lib / "mod.py").write_text("VALUE = 9\n")
    git(lib, "commit", "-q", "-am", "nine")
    git(project.root, "commit", "-q", "-am", "lib at nine")
    config_before = (project.root / ".git" / "config").read_bytes()

    steps: list[str] = []
    result = reproduce_run(project, first["id"], progress=steps.append)
    assert result["verdict"] == "reproduced", (result, steps)
    assert result["run"]["metrics"] == first["metrics"], "the recorded submodule state ran"
    again = sections(project, result["run"])["code"]["submodules"]
    assert again == recorded
    assert "2 submodule(s) at their recorded commits: lib, lib/nest" in steps
    assert_clean_after(project, config_before)
    assert (lib / "mod.py").read_text() == "VALUE = 9\n", "the user's checkout is untouched"


def test_a_submodule_commit_that_is_gone_is_a_clear_error(project: Any, libs: Path) -> None:
    make_project(project, TRAIN)
    add_lib(project.root, libs)
    lib = project.root / "lib"
    (lib / "mod.py").write_text("VALUE = 2\n")
    git(lib, "commit", "-q", "-am", "to be thrown away")
    gone = git(lib, "rev-parse", "HEAD")
    first = run_job(project)
    git(lib, "reset", "-q", "--hard", "HEAD~1")
    git(lib, "reflog", "expire", "--expire=now", "--all")
    git(lib, "gc", "-q", "--prune=now")
    config_before = (project.root / ".git" / "config").read_bytes()

    proc = cli(project, "reproduce", first["id"])
    assert proc.returncode == ExitCode.BAD_INPUT, proc.stderr
    assert f"commit {gone[:10]} of submodule lib" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_clean_after(project, config_before)


def test_a_staged_new_file_reproduces_with_the_same_patch(project: Any) -> None:
    from ctui.reproduce import reproduce_run

    make_project(project, "from ctui import track\ntrack.log_metrics({'value': 1})\n")
    (project.root / "newmod.py").write_text("VALUE = 11\n")
    git(project.root, "add", "newmod.py")  # staged, never committed
    (project.root / "train.py").write_text(
        "from ctui import track\nfrom newmod import VALUE\ntrack.log_metrics({'value': VALUE})\n"
    )  # and an unstaged change beside it
    first = run_job(project)
    assert first["metrics"] == {"value": 11}
    code = sections(project, first)["code"]
    patch = (project.objects_dir / code["patch"]["id"][:2] / code["patch"]["id"][2:]).read_bytes()
    assert b"b/newmod.py" in patch and b"new file mode" in patch
    assert code["untracked"] == []
    git(project.root, "reset", "-q", "--hard")
    assert not (project.root / "newmod.py").exists()

    result = reproduce_run(project, first["id"])
    assert result["verdict"] == "reproduced", result
    new_code = sections(project, result["run"])["code"]
    assert new_code["patch"]["id"] == code["patch"]["id"]
    assert new_code["untracked"] == []


def test_an_untracked_helper_is_restored_and_the_rest_named(project: Any) -> None:
    from ctui.reproduce import reproduce_run

    make_project(
        project,
        "from ctui import track\nfrom helper import VALUE\ntrack.log_metrics({'value': VALUE})\n",
    )
    (project.root / "helper.py").write_text("VALUE = 13\n")  # never added to git
    first = run_job(project)
    code = sections(project, first)["code"]
    assert list(code["untracked_files"]) == ["helper.py"]
    (project.root / "helper.py").write_text("VALUE = 99\n")  # changed since

    steps: list[str] = []
    result = reproduce_run(project, first["id"], progress=steps.append)
    assert result["verdict"] == "reproduced", (result, steps)
    assert result["run"]["metrics"] == {"value": 13}
    again = sections(project, result["run"])["code"]
    assert again["untracked_files"] == code["untracked_files"]
    assert "restored 1 untracked file(s) of the original" in steps
    assert not any("not rebuilt" in s for s in steps), steps

    # files not captured are still listed, with why, and named by reproduce
    (project.root / "weights.py").write_text("#" * (1024 * 1024))
    (project.root / "table.py").write_bytes(b"\0" * 16)
    second = run_job(project)
    code = sections(project, second)["code"]
    assert {"helper.py", "weights.py", "table.py"} <= set(code["untracked"])
    assert list(code["untracked_files"]) == ["helper.py"]
    assert code["untracked_skipped"] == {"table.py": "binary", "weights.py": "too big"}
    steps.clear()
    result = reproduce_run(project, second["id"], progress=steps.append)
    assert result["differences"] == [], result
    assert result["run"]["metrics"] == {"value": 99}
    assert (
        "note: 2 untracked file(s) of the original were not captured and not rebuilt: "
        "table.py (binary), weights.py (too big)"
    ) in steps


def test_show_and_manifest_commands_with_the_new_keys(project: Any, libs: Path) -> None:
    make_project(project, TRAIN)
    add_lib(project.root, libs)
    (project.root / "lib" / "mod.py").write_text("VALUE = 4\n")
    (project.root / "helper.py").write_text("H = 1\n")
    run = run_job(project)
    shown = cli(project, "show", run["id"])
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    proc = cli(project, "manifest", "--json")
    assert proc.returncode == 0, proc.stderr
    code = orjson.loads(proc.stdout)["sections"]["code"]
    assert code["submodules"]["lib"]["dirty"] is True
    assert list(code["untracked_files"]) == ["helper.py"]
    tree = cli(project, "manifest")
    assert tree.returncode == 0 and "Traceback" not in tree.stderr, tree.stderr


def test_an_unignored_venv_is_neither_listed_nor_captured(git_repo: Path) -> None:
    from ctui.manifest import capture

    site = git_repo / "venv" / "lib" / "python3.11" / "site-packages" / "pip"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("VERSION = 1\n")
    (git_repo / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (git_repo / "helper.py").write_text("X = 1\n")
    code = capture(git_repo, sections=["code"])["sections"]["code"]
    assert code["untracked"] == ["helper.py"]
    assert list(code["untracked_files"]) == ["helper.py"]
