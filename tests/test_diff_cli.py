"""`ctui diff`: runs from the store, manifest files, several runs, golden JSON, exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ctui.cli import app, common
from ctui.manifest import finish_section, save
from ctui.objects import ObjectStore
from ctui.project import Project
from ctui.store import Store

pytestmark = pytest.mark.timeout(60)

GOLDEN = Path(__file__).parent / "golden"
FIXED_GIT_ENV = {
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **FIXED_GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def sections(raw_hash: str, commit: str, numpy: str = "2.1.0", patch: str | None = None) -> dict:
    return {
        "data": finish_section(
            {
                "paths": {
                    "data/raw.csv": {"hash": raw_hash, "size": 3893, "sources": ["raw.csv.dvc"]},
                    "data/prepared": {"hash": "db4f.dir", "size": 3891, "nfiles": 2},
                },
                "params": {},
                "sources": ["data/raw.csv.dvc", "dvc.lock"],
                "problems": [],
            }
        ),
        "code": finish_section(
            {
                "commit": commit,
                "branch": "main",
                "dirty": patch is not None,
                "changed_files": ["train.py"] if patch else [],
                "patch": {"id": patch, "size": 10, "redactions": 0} if patch else None,
            }
        ),
        "env": finish_section({"python": {"version": "3.11.7"}, "packages": {"numpy": numpy}}),
        "compute": finish_section({"host": "box-1", "cpu": {"model": "Test CPU"}, "gpus": []}),
    }


def run_doc(run_id: str, manifest: dict[str, str], **extra: Any) -> dict[str, Any]:
    doc = {
        "id": run_id,
        "job": "train",
        "status": "succeeded",
        "created": 1_790_000_000.0,
        "params": {"lr": 0.1, "epochs": 3},
        "metrics": {"acc": 0.9, "loss": 0.3},
        "tags": [],
        "manifest": manifest,
    }
    doc.update(extra)
    return doc


@pytest.fixture(autouse=True)
def _fresh_cli_state() -> None:
    common.STATE.store = None
    common.STATE.project_dir = None


@pytest.fixture
def runs_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Runs: B = A with new data; C = A with other params and metrics; D = new commit,
    new numpy and an uncommitted patch; E = exactly A."""
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "tests@ctui.invalid")
    git(root, "config", "user.name", "ctui tests")
    (root / "train.py").write_text("lr = 0.1\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    first = git(root, "rev-parse", "HEAD")
    (root / "train.py").write_text("lr = 0.1\nepochs = 5\n")
    git(root, "commit", "-q", "-am", "more epochs")
    second = git(root, "rev-parse", "HEAD")
    proj = Project(root=root, state_dir=root / ".ctui").ensure()
    store = Store(proj.store_file)
    store.initialise()
    objects = ObjectStore(proj.objects_dir)
    patch_id = objects.put_bytes(b"diff --git a/train.py b/train.py\n+print('debug')\n")
    m_a = save(objects, {"sections": sections("a" * 32, first)})
    m_b = save(objects, {"sections": sections("b" * 32, first)})
    m_d = save(objects, {"sections": sections("a" * 32, second, "2.2.0", patch_id)})
    store.insert_run(run_doc("0aaaaaaaaaaa", m_a))
    store.insert_run(run_doc("0bbbbbbbbbbb", m_b))
    store.insert_run(
        run_doc("0ccccccccccc", m_a, params={"lr": 0.01, "epochs": 3}, metrics={"acc": 0.8})
    )
    store.insert_run(run_doc("0ddddddddddd", m_d))
    store.insert_run(run_doc("0eeeeeeeeeee", m_a))
    monkeypatch.chdir(root)
    return {"root": root, "first": first, "second": second, "objects": objects}


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def ctui(capsys: pytest.CaptureFixture[str]) -> Any:
    """`ctui ARGS` through the real entry point `ctui.cli.main` (which maps errors to exit
    codes), in this process: a new interpreter per call costs seconds on a busy machine."""
    from ctui.cli import main

    def run(*args: str, cwd: Path) -> Ran:
        old_argv, old_cwd = sys.argv, Path.cwd()
        sys.argv = ["ctui", *args]
        os.chdir(cwd)
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            sys.argv = old_argv
            os.chdir(old_cwd)
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def check_golden(name: str, got: Any) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(
            orjson.dumps(got, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    assert got == orjson.loads(path.read_bytes())


def test_diff_json_matches_golden(runs_project: dict[str, Any]) -> None:
    result = invoke("diff", "0aaa", "0ccc", "--json")
    assert result.exit_code == 0
    check_golden("diff_params_metrics.json", orjson.loads(result.stdout))


def test_diff_data_only_run(runs_project: dict[str, Any]) -> None:
    doc = orjson.loads(invoke("diff", "0aaa", "0bbb", "--json").stdout)
    assert doc["verdict"] == "only data changed: data/raw.csv"
    assert doc["sections"]["data"]["changed"]["data/raw.csv"]["new"]["hash"] == "b" * 32
    assert doc["sections"]["code"] == {
        "status": "identical",
        "hash": doc["sections"]["code"]["hash"],
        "added": {},
        "removed": {},
        "changed": {},
    }


def test_diff_code_shows_commit_stat_patch_and_uncommitted(runs_project: dict[str, Any]) -> None:
    doc = orjson.loads(invoke("diff", "0aaa", "0ddd", "--json", "--section", "code").stdout)
    code = doc["sections"]["code"]
    assert code["changed"]["commit"] == {
        "old": runs_project["first"],
        "new": runs_project["second"],
    }
    assert "train.py | 1 +" in code["stat"]
    assert "+epochs = 5" in code["patch"]
    assert code["uncommitted"] == {
        "a": None,
        "b": "diff --git a/train.py b/train.py\n+print('debug')\n",
    }
    assert list(doc["sections"]) == ["code"]
    human = invoke("diff", "0aaa", "0ddd").stdout
    assert human.splitlines()[0] == "code and env changed"
    assert "train.py | 1 +" in human and "uncommitted patch in b: 2 lines" in human


def test_diff_commits_missing_from_repo_are_noted(
    runs_project: dict[str, Any], tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    git(other, "init", "-q")
    from ctui.diff import commits_diff

    note = commits_diff(other, runs_project["first"], runs_project["second"])
    assert note["stat"] is None and "commits not in" in note["commits_note"]


def test_identical_runs_and_exit_code(runs_project: dict[str, Any], ctui: Any) -> None:
    root = runs_project["root"]
    same = ctui("diff", "0aaa", "0eee", "--exit-code", cwd=root)
    assert same.returncode == 0, same.stderr
    assert same.stdout.splitlines()[0] == "identical"
    differ = ctui("diff", "0aaa", "0bbb", "--exit-code", cwd=root)
    assert differ.returncode == 1
    assert differ.stdout.splitlines()[0] == "only data changed: data/raw.csv"
    assert ctui("diff", "0aaa", "0bbb", cwd=root).returncode == 0  # like git diff


def test_exit_code_in_a_real_process(runs_project: dict[str, Any]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ctui", "diff", "0aaa", "0bbb", "--exit-code", "--json"],
        cwd=runs_project["root"],
        capture_output=True,
    )
    assert proc.returncode == 1
    assert orjson.loads(proc.stdout)["verdict"] == "only data changed: data/raw.csv"


def test_only_changed_leaves_identical_sections_out(runs_project: dict[str, Any]) -> None:
    doc = orjson.loads(invoke("diff", "0aaa", "0bbb", "--json", "--only-changed").stdout)
    assert list(doc["sections"]) == ["data"]
    human = invoke("diff", "0aaa", "0bbb", "--only-changed").stdout
    assert "env:" not in human and "data: changed" in human
    assert "data/raw.csv" in human


def test_unknown_run_and_bad_section_exit_2(runs_project: dict[str, Any], ctui: Any) -> None:
    root = runs_project["root"]
    unknown = ctui("diff", "0aaa", "zzzz", cwd=root)
    assert unknown.returncode == 2 and "zzzz" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad = ctui("diff", "0aaa", "0bbb", "--section", "gpu", cwd=root)
    assert bad.returncode == 2 and "unknown section" in bad.stderr
    one = ctui("diff", "0aaa", cwd=root)
    assert one.returncode == 2


def test_compare_many_runs(runs_project: dict[str, Any]) -> None:
    result = invoke("diff", "0aaa", "0bbb", "0ccc", "--json")
    assert result.exit_code == 0
    check_golden("diff_compare.json", orjson.loads(result.stdout))
    human = invoke("diff", "0aaa", "0bbb", "0ccc").stdout
    assert "lr" in human and "acc" in human and "0bbbbbbbbbbb" in human
    only_params = orjson.loads(
        invoke("diff", "0aaa", "0bbb", "0ccc", "-s", "params", "--json").stdout
    )
    assert {r["kind"] for r in only_params["rows"]} == {"param"}


def test_diff_manifest_files_from_ctui_manifest(
    git_repo: Path, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(git_repo)
    a = tmp_path / "a.json"
    a.write_bytes(invoke("manifest", "--json").stdout_bytes)
    (git_repo / "README.md").write_text("edited\n")
    b = tmp_path / "b.json"
    b.write_bytes(invoke("manifest", "--json").stdout_bytes)
    doc = orjson.loads(invoke("diff", str(a), str(b), "--json").stdout)
    assert doc["changed"] == ["code"]
    code = doc["sections"]["code"]
    assert code["changed"]["dirty"] == {"old": False, "new": True}
    assert code["uncommitted"]["a"] is None
    assert "+edited" in code["uncommitted"]["b"]
    assert "params" not in doc["sections"]  # manifests carry no params or metrics


def test_diff_file_against_run(runs_project: dict[str, Any], tmp_path: Path) -> None:
    objects = runs_project["objects"]
    from ctui.manifest import load, to_json

    doc = Store(runs_project["root"] / ".ctui" / "ctui.json").get_run("0bbbbbbbbbbb")
    f = tmp_path / "b.json"
    f.write_bytes(orjson.dumps(to_json(load(objects, doc["manifest"]))))
    result = orjson.loads(invoke("diff", "0aaa", str(f), "--json").stdout)
    # the file has no params/metrics, the run has: those differ, the data differs
    assert result["changed"] == ["data", "params", "metrics"]


def test_broken_manifest_file_is_bad_input(
    runs_project: dict[str, Any], tmp_path: Path, ctui: Any
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = ctui("diff", str(bad), "0aaa", cwd=runs_project["root"])
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"runs": []}')
    proc = ctui("diff", str(wrong), "0aaa", cwd=runs_project["root"])
    assert proc.returncode == 2 and "not a ctui manifest" in proc.stderr


def test_names_from_the_outside_world_are_not_markup(tmp_path: Path, monkeypatch) -> None:
    from ctui.manifest import to_json

    odd = "data/[bold]odd[/bold].csv"
    files = []
    for i, h in enumerate(("a" * 32, "b" * 32)):
        data = finish_section({"paths": {odd: {"hash": h, "size": 1}}, "params": {}})
        f = tmp_path / f"m{i}.json"
        f.write_bytes(orjson.dumps(to_json({"sections": {"data": data}})))
        files.append(str(f))
    monkeypatch.chdir(tmp_path)
    out = invoke("diff", *files).stdout
    assert out.splitlines()[0] == f"only data changed: {odd}"
    assert odd in out.split("\n", 1)[1]


# -- tolerance, number formatting, unchanged counts, patches -----------------------------------


def add_run(project: dict[str, Any], run_id: str, **extra: Any) -> None:
    """A run with A's manifest and the given params/metrics."""
    store = Store(project["root"] / ".ctui" / "ctui.json")
    store.insert_run(run_doc(run_id, store.get_run("0aaaaaaaaaaa")["manifest"], **extra))


def test_float_noise_in_metrics_is_not_a_change(runs_project: dict[str, Any], ctui: Any) -> None:
    add_run(runs_project, "0fffffffffff", metrics={"acc": 0.9 + 1e-14, "loss": 0.3})
    same = ctui("diff", "0aaa", "0fff", "--exit-code", cwd=runs_project["root"])
    assert same.returncode == 0, same.stdout
    assert same.stdout.splitlines()[0] == "identical"
    doc = orjson.loads(invoke("diff", "0aaa", "0fff", "--json").stdout)
    assert doc["identical"] is True and doc["sections"]["metrics"]["changed"] == {}
    # --tolerance 0: every bit counts, and the delta shows as the noise it is
    exact = ctui(
        "diff", "0aaa", "0fff", "--tolerance", "0", "--exit-code", cwd=runs_project["root"]
    )
    assert exact.returncode == 1
    assert exact.stdout.splitlines()[0] == "only metrics changed: acc"
    acc = next(line for line in exact.stdout.splitlines() if "acc" in line and "~" in line)
    assert acc.split()[1:] == ["acc", "0.9", "0.9", "+9.99201e-15"]


def test_a_real_metric_change_and_a_tolerance_that_swallows_it(
    runs_project: dict[str, Any], ctui: Any
) -> None:
    add_run(runs_project, "0fffffffffff", metrics={"acc": 0.901, "loss": 0.3})
    root = runs_project["root"]
    changed = ctui("diff", "0aaa", "0fff", "--exit-code", cwd=root)
    assert changed.returncode == 1
    assert changed.stdout.splitlines()[0] == "only metrics changed: acc"
    acc = next(line for line in changed.stdout.splitlines() if " acc " in line)
    assert acc.split()[1:] == ["acc", "0.9", "0.901", "+0.001"]  # not 0.0010000000000000009
    assert "1 metric unchanged" in changed.stdout  # loss
    loose = ctui("diff", "0aaa", "0fff", "--tolerance", "0.01", "--exit-code", cwd=root)
    assert loose.returncode == 0
    assert loose.stdout.splitlines()[0] == "identical"
    doc = orjson.loads(invoke("diff", "0aaa", "0fff", "--json").stdout)
    assert doc["sections"]["metrics"]["changed"]["acc"] == {
        "old": 0.9,
        "new": 0.901,
        "delta": 0.901 - 0.9,  # --json keeps the raw numbers
    }
    bad = ctui("diff", "0aaa", "0fff", "--tolerance", "-1", cwd=root)
    assert bad.returncode == 2


def test_integer_metrics_are_compared_exactly(runs_project: dict[str, Any]) -> None:
    add_run(runs_project, "0fffffffffff", params={"lr": 0.1, "epochs": 4})
    doc = orjson.loads(invoke("diff", "0aaa", "0fff", "--json", "--tolerance", "0.5").stdout)
    assert doc["sections"]["params"]["changed"] == {"epochs": {"old": 3, "new": 4, "delta": 1}}
    human = invoke("diff", "0aaa", "0fff", "--tolerance", "0.5").stdout
    epochs = next(line for line in human.splitlines() if " epochs " in line)
    assert epochs.split()[1:] == ["epochs", "3", "4", "+1"]


def test_compare_many_honours_the_tolerance(runs_project: dict[str, Any]) -> None:
    add_run(runs_project, "0fffffffffff", metrics={"acc": 0.9 + 1e-12, "loss": 0.3})
    add_run(runs_project, "0111111111ff", metrics={"acc": 0.9 - 1e-12, "loss": 0.3})
    table = orjson.loads(invoke("diff", "0aaa", "0fff", "0111", "--json").stdout)
    assert table["rows"] == []
    exact = orjson.loads(
        invoke("diff", "0aaa", "0fff", "0111", "--json", "--tolerance", "0").stdout
    )
    assert [r["key"] for r in exact["rows"]] == ["acc"]


def env_manifest_file(path: Path, packages: dict[str, str]) -> str:
    from ctui.manifest import to_json

    env = finish_section({"python": {"version": "3.11.7"}, "packages": packages})
    path.write_bytes(orjson.dumps(to_json({"sections": {"env": env}})))
    return str(path)


def test_env_diff_lists_the_changed_package_and_counts_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packages = {f"pkg{i:03d}": f"1.{i}.0" for i in range(312)}
    a = env_manifest_file(tmp_path / "a.json", {**packages, "numpy": "2.1.0"})
    b = env_manifest_file(tmp_path / "b.json", {**packages, "numpy": "2.2.0"})
    monkeypatch.chdir(tmp_path)
    out = invoke("diff", a, b).stdout
    lines = out.splitlines()
    assert lines[0] == "only env changed: packages.numpy"
    assert [line.split()[:2] for line in lines if "packages." in line and "~" in line] == [
        ["~", "packages.numpy"]
    ]
    assert "pkg001" not in out  # the unchanged packages are not listed one per line
    assert "312 packages and 1 other key unchanged" in out  # python.version
    everything = invoke("diff", a, b, "--all").stdout
    assert "packages.pkg001" in everything and "python.version" in everything
    assert "unchanged" not in everything
    assert len(everything.splitlines()) > 312


def test_patch_prints_the_commit_patch_and_the_uncommitted_one(
    runs_project: dict[str, Any],
) -> None:
    out = invoke("diff", "0aaa", "0ddd", "--patch").stdout
    first, second = runs_project["first"], runs_project["second"]
    assert f"patch a..b (git diff {first[:12]} {second[:12]}):" in out
    commit_patch = out.split("patch a..b", 1)[1]
    assert "diff --git a/train.py b/train.py" in commit_patch
    assert "+epochs = 5" in commit_patch
    assert "uncommitted changes in b (0ddddddddddd):" in out
    tail = out.split("uncommitted changes in b (0ddddddddddd):\n", 1)[1]
    assert tail == "diff --git a/train.py b/train.py\n+print('debug')\n"
    assert "\x1b[" not in out  # no colour off a terminal
    # the same patch as git's own, byte for byte
    git_patch = git(runs_project["root"], "diff", first, second)
    assert git_patch in commit_patch


def test_no_patch_off_a_terminal_unless_asked(runs_project: dict[str, Any]) -> None:
    out = invoke("diff", "0aaa", "0ddd").stdout  # CliRunner: stdout is not a terminal
    assert "diff --git" not in out and "train.py | 1 +" in out  # the stat is still there
    assert "diff --git" not in invoke("diff", "0aaa", "0ddd", "--no-patch").stdout


def test_patch_text_is_not_markup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ctui.manifest import to_json

    # markup-like text, a tab and trailing spaces: all must come out as they are
    patch = "diff --git a/t.py b/t.py\n@@ -1 +1 @@\n-x = '[red]'\n+x = '[/bold]\t[link]'  \n"
    files = []
    for i, (oid, blob) in enumerate((("", None), ("p" * 64, patch))):
        code = finish_section(
            {"commit": "c" * 40, "dirty": bool(blob),
             "patch": {"id": oid, "size": 1} if blob else None}
        )  # fmt: skip
        m = {"sections": {"code": code}, "blobs": {oid: patch.encode()} if blob else {}}
        f = tmp_path / f"m{i}.json"
        f.write_bytes(orjson.dumps(to_json(m)))
        files.append(str(f))
    monkeypatch.chdir(tmp_path)
    out = invoke("diff", *files, "--patch").stdout
    assert out.endswith("uncommitted changes in b (" + files[1] + "):\n" + patch)


# -- on a terminal: patch by default, in colour, paged when long --------------------------------


def in_terminal(args: list[str], cwd: Path, rows: int = 200, **env: str) -> tuple[int, str]:
    """Run `ctui ARGS` with a pseudo-terminal of `rows` rows as stdin, stdout and stderr."""
    import fcntl
    import pty
    import struct
    import termios

    unset = ("LINES", "COLUMNS", "NO_COLOR", "FORCE_COLOR", "PAGER", "CTUI_PAGER")
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    environ.update({"TERM": "xterm-256color", **env})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctui", *args],
        cwd=cwd, env=environ, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def test_on_a_terminal_the_patch_shows_by_default_in_colour(runs_project: dict[str, Any]) -> None:
    code, out = in_terminal(["diff", "0aaa", "0ddd"], runs_project["root"], CTUI_PAGER="cat")
    assert code == 0, out
    assert "\x1b[32m+epochs = 5" in out  # green
    assert "\x1b[36m@@ " in out  # cyan
    assert "\x1b[32m+print('debug')" in out  # the uncommitted patch of b
    code, out = in_terminal(["diff", "0aaa", "0ddd", "--no-patch"], runs_project["root"])
    assert code == 0 and "diff --git" not in out and "epochs = 5" not in out


def test_long_output_goes_through_the_pager(runs_project: dict[str, Any], tmp_path: Path) -> None:
    paged = tmp_path / "paged.txt"
    pager = f"sh -c 'echo LESS=$LESS > {paged}; cat >> {paged}'"
    root = runs_project["root"]
    code, out = in_terminal(["diff", "0aaa", "0ddd"], root, rows=10, PAGER=pager)
    assert code == 0
    text = paged.read_text()
    assert "\x1b[32m+epochs = 5" in text  # in colour: less -R shows it
    plain = re.sub("\x1b\\[[0-9;]*m", "", text)
    assert plain.startswith("LESS=FRX\ncode and env changed")  # git's default for less
    assert "diff --git" not in out
    paged.unlink()
    # short enough for the terminal, --no-pager, CTUI_PAGER=cat: printed as it is
    for args, env in (
        (["diff", "0aaa", "0ddd"], {"PAGER": pager, "LINES": "500"}),
        (["diff", "0aaa", "0ddd", "--no-pager"], {"PAGER": pager}),
        (["diff", "0aaa", "0ddd"], {"PAGER": pager, "CTUI_PAGER": "cat"}),
        (["diff", "0aaa", "0ddd"], {"PAGER": "no-such-pager-here"}),
    ):
        code, out = in_terminal(args, root, rows=10, **env)
        assert code == 0 and "+epochs = 5" in out, (args, env, out)
        assert not paged.exists(), (args, env)
