"""`ctui reproduce` end to end: a real git + DVC repository, real runs, real worktrees."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.errors import CtuiError, ExitCode
from tests.conftest import git
from tests.test_diff_cli import check_golden
from tests.test_docker_backend import IMAGE, needs_engine

pytestmark = [pytest.mark.timeout(180)]


TRAIN = """\
from pathlib import Path
from ctui import track

SCALE = {scale}
values = [int(x) for x in Path("data/train.csv").read_text().split()]
total = sum(values) * SCALE
track.log_metrics({{"total": total, "mean": total / len(values) / 3}})
print("total", total)
"""

# the same sum in busybox sh, for the Docker backend (the image has no Python)
TOTAL_SH = """\
total=0
for x in $(cat data/train.csv); do total=$((total + x)); done
echo "{\\"name\\": \\"total\\", \\"value\\": $total}" >> "$CTUI_RUN_DIR/metrics.jsonl"
echo "total $total"
"""

NOISY = """\
import os
from ctui import track

track.log_metric("score", int.from_bytes(os.urandom(4), "big") / 2**32)
"""


def dvc(cwd: Path, *args: str) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, check=True, capture_output=True
    )


def write_data(root: Path, numbers: str) -> None:
    (root / "data" / "train.csv").write_text(numbers + "\n")
    dvc(root, "add", "data/train.csv")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repository, built once (DVC start-up is slow) and copied by each test."""
    root = tmp_path_factory.mktemp("template") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "commit.gpgsign", "false")
    (root / ".gitignore").write_text(".ctui/\n")
    (root / "README.md").write_text("test repo\n")
    (root / "ctui.toml").write_text(
        f'[jobs.train]\ncommand = "{sys.executable} train.py"\n\n'
        f'[jobs.noisy]\ncommand = "{sys.executable} noisy.py"\n\n'
        f'[jobs.boxed]\nbackend = "docker"\nimage = "{IMAGE}"\ncommand = "sh total.sh"\n'
    )
    (root / "total.sh").write_text(TOTAL_SH)
    (root / "train.py").write_text(TRAIN.format(scale=1))
    (root / "noisy.py").write_text(NOISY)
    (root / "data").mkdir()
    dvc(root, "init", "-q")
    write_data(root, "1 2 3")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "train on data v1")
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A ctui project in a copy of the template repository: data/train.csv tracked by DVC."""
    from ctui.project import Project
    from ctui.store import Store

    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    project = Project(root=root, state_dir=root / ".ctui").ensure()
    Store(project.store_file).initialise()
    monkeypatch.chdir(root)
    # the CLI subprocesses see the same environment as the runs made in this process
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    return project


def run_job(project: Any, job: str = "train") -> dict[str, Any]:
    from ctui.jobs.launch import launch_run
    from ctui.store import FINAL, open_store

    run = launch_run(project, job)
    store = open_store(project)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = store.get_run(run["id"])
        if run["status"] in FINAL:
            assert run["status"] == "succeeded", (
                project.run_dir(run["id"]) / "output.log"
            ).read_text()
            return run
        time.sleep(0.1)
    raise AssertionError(f"run did not end: {run}")


def sections(project: Any, run: dict[str, Any]) -> dict[str, Any]:
    from ctui import manifest as mf
    from ctui.objects import ObjectStore

    return mf.load(ObjectStore(project.objects_dir), run["manifest"])["sections"]


def cli(project: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctui", *args], cwd=project.root, capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "400"}, timeout=120,
    )  # fmt: skip


def test_reproduces_an_older_run_after_code_and_data_changed(repo: Any) -> None:
    from ctui.reproduce import reproduce_run

    first = run_job(repo)
    assert first["metrics"] == {"total": 6, "mean": 6 / 3 / 3}
    (repo.root / "train.py").write_text(TRAIN.format(scale=10))
    write_data(repo.root, "4 5 6 7")
    git(repo.root, "commit", "-q", "-am", "more data, new scale")
    second = run_job(repo)
    assert second["metrics"]["total"] == 220

    steps: list[str] = []
    result = reproduce_run(repo, first["id"], progress=steps.append)
    new = result["run"]
    assert result["verdict"] == "reproduced", result
    assert result["reproduced"] is True and result["differences"] == []
    assert new["reproduces"] == first["id"] and new["verdict"] == "reproduced"
    assert new["metrics"] == first["metrics"], "the old code ran on the old data"
    old_s, new_s = sections(repo, first), sections(repo, new)
    assert new_s["data"]["hash"] == old_s["data"]["hash"], "identical data section"
    assert new_s["code"]["commit"] == old_s["code"]["commit"]
    assert new_s["code"]["patch"] is None and new_s["code"]["dirty"] is False
    assert any(s.startswith("worktree at " + old_s["code"]["commit"][:7]) for s in steps)
    assert "dvc checkout: 1 path(s)" in steps
    # the project itself is untouched, and the worktree is gone
    assert (repo.root / "data" / "train.csv").read_text() == "4 5 6 7\n"
    assert "SCALE = 10" in (repo.root / "train.py").read_text()
    assert list((repo.state_dir / "worktrees").iterdir()) == []
    assert git(repo.root, "worktree", "list").count("\n") == 0


def test_reproduces_a_run_made_with_uncommitted_changes(repo: Any) -> None:
    from ctui.reproduce import reproduce_run

    (repo.root / "train.py").write_text(TRAIN.format(scale=7))  # not committed
    first = run_job(repo)
    assert first["metrics"]["total"] == 42
    code = sections(repo, first)["code"]
    assert code["dirty"] and code["patch"]
    git(repo.root, "checkout", "--", "train.py")
    (repo.root / "README.md").write_text("a later commit\n")
    git(repo.root, "commit", "-q", "-am", "later")

    result = reproduce_run(repo, first["id"])
    assert result["verdict"] == "reproduced", result
    assert result["run"]["metrics"] == first["metrics"], "the stored patch was applied"
    new_code = sections(repo, result["run"])["code"]
    assert new_code["commit"] == code["commit"]
    assert new_code["patch"]["id"] == code["patch"]["id"]


def _plant_env(project: Any, run: dict[str, Any], **packages: str) -> None:
    """Edit the stored env section of `run` as if it had been made with other packages."""
    from ctui.objects import ObjectStore
    from ctui.store import open_store

    objects = ObjectStore(project.objects_dir)
    env = objects.get_json(run["manifest"]["env"])
    env["packages"] = {**env["packages"], **packages}
    oid = objects.put_json(env)
    open_store(project).update_run(run["id"], mutate=lambda d: d["manifest"].update(env=oid))


def test_a_planted_env_difference_is_reported_and_strict_refuses(repo: Any) -> None:
    from ctui.reproduce import reproduce_run
    from ctui.store import open_store

    first = run_job(repo)
    _plant_env(repo, first, orjson="2.3.0")  # as if made with another version of a package

    proc = cli(repo, "reproduce", first["id"][:8], "--strict")
    assert proc.returncode == ExitCode.FAILED, proc.stderr
    assert f"orjson 2.3.0→{orjson.__version__}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(open_store(repo).runs()) == 1, "--strict launched nothing"

    steps: list[str] = []
    result = reproduce_run(repo, first["id"], progress=steps.append)
    assert any(s.startswith("env: 1 difference: orjson 2.3.0→") for s in steps), steps
    assert result["reproduced"] is False
    assert result["verdict"] == f"diverged in: env (orjson 2.3.0→{orjson.__version__})"
    assert result["run"]["metrics"] == first["metrics"]


def test_a_non_deterministic_job_diverges_in_metrics_with_the_numbers(repo: Any) -> None:
    first = run_job(repo, "noisy")
    proc = cli(repo, "reproduce", first["id"], "--json")
    assert proc.returncode == ExitCode.FAILED, proc.stderr

    out = orjson.loads(proc.stdout)
    assert out["reproduced"] is False
    from ctui.store import open_store

    new = open_store(repo).get_run(out["run"])
    old_score, new_score = first["metrics"]["score"], new["metrics"]["score"]
    assert out["verdict"] == f"diverged in: metrics (score {old_score!r}→{new_score!r})"
    assert new["verdict"] == out["verdict"] and new["reproduces"] == first["id"]
    assert "·" not in proc.stderr, "--json prints no progress"
    assert [s["step"] for s in out["setup"]] == ["worktree", "data", "env", "launch"]


SECONDS = r" … \d+\.\d\d s"


def test_set_up_steps_print_in_order_with_their_time(repo: Any) -> None:
    (repo.root / "train.py").write_text(TRAIN.format(scale=1) + "# tuned\n")  # uncommitted
    (repo.root / "helper.py").write_text("VALUE = 1\n")  # untracked, captured
    first = run_job(repo)
    commit = sections(repo, first)["code"]["commit"]

    proc = cli(repo, "reproduce", first["id"])
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("· ")]
    new = orjson.loads(cli(repo, "runs", "--json").stdout)[0]["id"]
    expected = [
        rf"· worktree at {commit[:7]}{SECONDS}",
        rf"· patch applied \(1 file\){SECONDS}",
        rf"· restored 1 untracked file\(s\) of the original{SECONDS}",
        rf"· dvc checkout: 1 path\(s\){SECONDS}",
        rf"· env: same Python and packages as the original{SECONDS}",
        rf"· launched {new} \(local\){SECONDS}",
        rf"· set up in \d+\.\d\d s; waiting for run {new}…",
        rf"· run {new} succeeded",
    ]
    assert len(lines) == len(expected), proc.stderr
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert proc.stdout.strip() == f"{new} reproduced"


def test_json_carries_the_set_up_steps_and_prints_no_progress(repo: Any) -> None:
    (repo.root / "train.py").write_text(TRAIN.format(scale=1) + "# tuned\n")  # uncommitted
    (repo.root / "notes.txt").write_text("not code\n")  # untracked, not captured
    first = run_job(repo)

    proc = cli(repo, "reproduce", first["id"], "--json")
    assert proc.returncode == ExitCode.FAILED, proc.stderr  # notes.txt: not verified
    assert "·" not in proc.stderr and "worktree at" not in proc.stderr, proc.stderr
    out = orjson.loads(proc.stdout)
    steps = out["setup"]
    assert [s["step"] for s in steps] == ["worktree", "patch", "note", "data", "env", "launch"]
    assert steps[1]["detail"] == "patch applied (1 file)"
    assert steps[2] == {
        "step": "note",
        "seconds": None,
        "detail": "note: 1 untracked file(s) of the original were not captured and not "
        "rebuilt: notes.txt",
    }
    timed = [s["seconds"] for s in steps if s["step"] != "note"]
    assert all(isinstance(t, float) and t >= 0 for t in timed)
    assert isinstance(out["setup_s"], float) and out["setup_s"] >= max(timed)
    assert isinstance(out["start_s"], float) and out["start_s"] > 0
    check_golden("reproduce_json.json", _shape(out, repo, first))


def _shape(out: dict[str, Any], project: Any, first: dict[str, Any]) -> Any:
    """The JSON with what differs from one test run to the next (ids, commit, seconds)
    replaced by placeholders."""
    commit = sections(project, first)["code"]["commit"]
    text = orjson.dumps(out).decode()
    for value, name in ((out["run"], "<new>"), (first["id"], "<original>"), (commit[:7], "<c>")):
        text = text.replace(value, name)
    doc = orjson.loads(text)
    for step in doc["setup"]:
        if step["seconds"] is not None:
            step["seconds"] = "<s>"
    doc["setup_s"] = doc["start_s"] = "<s>"
    return doc


def test_a_commit_rebased_away_is_a_clear_error(repo: Any) -> None:
    (repo.root / "train.py").write_text(TRAIN.format(scale=5))
    git(repo.root, "commit", "-q", "-am", "to be rebased away")
    gone = git(repo.root, "rev-parse", "HEAD")
    first = run_job(repo)
    git(repo.root, "reset", "-q", "--hard", "HEAD~1")
    git(repo.root, "reflog", "expire", "--expire=now", "--all")
    git(repo.root, "gc", "-q", "--prune=now")

    proc = cli(repo, "reproduce", first["id"])
    assert proc.returncode == ExitCode.BAD_INPUT
    assert f"commit {gone[:10]}" in proc.stderr and "no longer in the repository" in proc.stderr
    assert "Traceback" not in proc.stderr
    from ctui.store import open_store

    assert len(open_store(repo).runs()) == 1


def test_data_missing_from_the_cache_is_named(repo: Any) -> None:
    from ctui.reproduce import reproduce_run
    from ctui.store import open_store

    first = run_job(repo)
    write_data(repo.root, "9 9")
    git(repo.root, "commit", "-q", "-am", "new data")
    shutil.rmtree(repo.root / ".dvc" / "cache")
    with pytest.raises(CtuiError) as err:
        reproduce_run(repo, first["id"])
    assert err.value.code == ExitCode.BAD_INPUT
    assert "missing from the DVC cache: data/train.csv" in err.value.message
    assert len(open_store(repo).runs()) == 1
    assert list((repo.state_dir / "worktrees").iterdir()) == []


@needs_engine
def test_reproduces_a_docker_run_in_the_recorded_image(repo: Any) -> None:
    from ctui.reproduce import reproduce_run

    first = run_job(repo, "boxed")
    assert first["metrics"] == {"total": 6}
    image_id = first["docker"]["image_id"]
    write_data(repo.root, "10 20")
    git(repo.root, "commit", "-q", "-am", "new data")
    assert run_job(repo, "boxed")["metrics"] == {"total": 30}

    result = reproduce_run(repo, first["id"])
    assert result["verdict"] == "reproduced", result
    new = result["run"]
    assert new["backend"] == "docker" and new["metrics"] == {"total": 6}
    assert new["docker"]["image_id"] == image_id, "the recorded image ran, pinned by id"
    assert sections(repo, new)["env"]["container"]["image_id"] == image_id


def test_a_docker_run_with_no_engine_is_exit_2_before_anything_is_built(
    repo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("docker")
    from ctui.reproduce import reproduce_run
    from ctui.store import open_store

    first = run_job(repo)  # a local run, reproduced in Docker
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nonexistent.sock")
    with pytest.raises(CtuiError) as err:
        reproduce_run(repo, first["id"], backend="docker")
    assert err.value.code == ExitCode.BAD_INPUT
    assert "no Docker engine reachable" in err.value.message
    assert len(open_store(repo).runs()) == 1
    assert not (repo.state_dir / "worktrees").exists()


def test_a_project_in_a_sub_folder_of_the_repository(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctui.project import Project
    from ctui.reproduce import reproduce_run

    top = tmp_path / "repo"
    shutil.copytree(template, top, symlinks=True)
    sub = top / "ml"
    sub.mkdir()
    (sub / "ctui.toml").write_text(f'[jobs.train]\ncommand = "{sys.executable} train.py"\n')
    (sub / "train.py").write_text(TRAIN.format(scale=1).replace('"data/', '"../data/'))
    git(top, "add", "ml")
    git(top, "commit", "-q", "-m", "project in a sub-folder")
    project = Project(root=sub, state_dir=sub / ".ctui").ensure()
    monkeypatch.chdir(sub)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    first = run_job(project)
    write_data(top, "5 5")
    git(top, "commit", "-q", "-am", "new data")

    result = reproduce_run(project, first["id"])
    assert result["verdict"] == "reproduced", result
    assert result["run"]["metrics"] == first["metrics"] == {"total": 6, "mean": 6 / 3 / 3}
    assert result["run"]["workdir"].endswith("/ml")


def test_metric_tolerance_and_verdict_wording() -> None:
    from ctui.reproduce import metric_differences, metric_equal, verdict

    assert metric_equal(3, 3) and not metric_equal(3, 4)
    assert metric_equal(0.1, 0.1 * (1 + 1e-7)) and not metric_equal(0.1, 0.1 * (1 + 1e-5))
    assert metric_equal(0.1, 0.10001, rel_tol=1e-3)
    assert metric_equal(float("nan"), float("nan"))
    assert metric_differences({"acc": 0.91, "n": 1}, {"acc": 0.89, "n": 1}) == ["acc 0.91→0.89"]
    assert metric_differences({"a": 1}, {"b": 2}) == ["a 1→missing", "b missing→2"]
    diffs = [
        {"section": "env", "items": ["numpy 2.3→2.4"]},
        {"section": "metrics", "items": ["acc 0.91→0.89", "b 1→2", "c 1→2", "d 1→2"]},
    ]
    assert verdict(diffs) == (
        "diverged in: env (numpy 2.3→2.4), metrics (acc 0.91→0.89, b 1→2, c 1→2, +1 more)"
    )
    assert verdict([]) == "reproduced"


def test_checkout_failures_are_parsed_and_stage_outputs_need_no_cache() -> None:
    from ctui.reproduce import _checkout_failures, _is_input

    out = (
        "WARNING: stray line\nERROR: Checkout failed for following targets:\n"
        "a.txt\ndata/dir/\nIs your cache up to date?\n"
    )
    assert _checkout_failures(out) == ["a.txt", "data/dir"]
    assert _is_input({"sources": ["data/train.csv.dvc"]})
    assert _is_input({"sources": ["dvc.lock:prep:out", "dvc.lock:train:dep"]})
    assert not _is_input({"sources": ["dvc.lock:train:out"]})
