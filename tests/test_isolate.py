"""`isolate = "worktree"`: DVC pipeline runs of one project side by side, each in its own git
worktree (HEAD + uncommitted changes) sharing the project's DVC cache; the project's workspace
is never touched, the worktrees are gone afterwards, and a worktree that cannot be made fails
the run with the reason in words."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from jobs_helpers import wait_final

from ctui.config import ConfigError, load_config
from ctui.jobs.launch import launch_run
from ctui.objects import ObjectStore
from tests.conftest import git
from tests.dvc_pipeline import pipeline, pipeline_template  # noqa: F401

pytestmark = [pytest.mark.timeout(240)]

#: sets train.n_est from the run's param, then waits until every run of the pair got here
TUNE = """\
import os, pathlib, sys, time, yaml
doc = yaml.safe_load(open("params.yaml"))
doc["train"]["n_est"] = int(os.environ["CTUI_PARAM_N"])
open("params.yaml", "w").write(yaml.safe_dump(doc, sort_keys=False))
barrier = pathlib.Path(os.environ["BARRIER"])
(barrier / os.environ["CTUI_PARAM_N"]).touch()
deadline = time.time() + 60
while len(list(barrier.iterdir())) < 2:
    if time.time() > deadline:
        sys.exit("the other run never came: the runs did not run at the same time")
    time.sleep(0.05)
"""


def porcelain(root: Path) -> str:
    proc = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout


def isolated_job(root: Path, barrier: Path, extra: str = "") -> None:
    (root / "ctui.toml").write_text(
        "[jobs.pipeline]\n"
        'command = "python tune.py && dvc repro"\n'
        "shell = true\n"
        'isolate = "worktree"\n'
        "max_concurrent = 2\n"
        "params = { n = 50 }\n"
        f'env = {{ BARRIER = "{barrier}" }}\n' + extra
    )


def test_two_isolated_pipeline_runs_go_side_by_side_and_leave_the_workspace_alone(
    pipeline: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    root = pipeline.root
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    isolated_job(root, barrier)
    (root / "tune.py").write_text(TUNE)
    git(root, "add", "ctui.toml", "tune.py")
    git(root, "commit", "-q", "-m", "isolated job")
    # an uncommitted change and an untracked source file travel into the worktrees
    (root / "src" / "train.py").write_text((root / "src" / "train.py").read_text() + "# edit\n")
    (root / "src" / "helper.py").write_text("X = 1\n")
    before, lock = porcelain(root), (root / "dvc.lock").read_text()
    assert load_config(root).job("pipeline").max_concurrent == 2

    runs = [launch_run(pipeline, "pipeline", {"n": n}) for n in (60, 70)]
    assert [r["status"] for r in runs] == ["running", "running"]
    done = [wait_final(pipeline, r["id"], timeout=180) for r in runs]
    for run in done:
        log = (pipeline.run_dir(run["id"]) / "output.log").read_text()
        assert run["status"] == "succeeded", log
    a, b = done
    assert a["started"] < b["ended"] and b["started"] < a["ended"]  # at the same time
    assert porcelain(root) == before
    assert (root / "dvc.lock").read_text() == lock
    objects = ObjectStore(pipeline.objects_dir)
    models = []
    for run, n in zip(done, (60, 70), strict=True):
        path = Path(run["isolated"])
        assert path == pipeline.state_dir / "worktrees" / f"run-{run['id']}"
        assert not path.exists()  # removed at the end
        assert run["params"]["train.n_est"] == n  # the params as the run left them
        assert run["dirty"] is True  # the uncommitted edit went with it
        data = dict(objects.get_json(run["manifest"]["data"]))
        model = data["paths"]["model.pkl"]
        assert model["role"] == "output"
        models.append(model["hash"])
        cached = root / ".dvc" / "cache" / "files" / "md5" / model["hash"][:2] / model["hash"][2:]
        assert cached.is_file()  # the output outlives its worktree in the shared cache
        assert run["metrics"]["avg_prec.test"] > 0
        code = dict(objects.get_json(run["manifest"]["code"]))
        assert "src/helper.py" in (code.get("untracked_files") or {})
    assert models[0] != models[1]
    listed = subprocess.run(
        ["git", "worktree", "list"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert "run-" not in listed


def test_keep_worktree_keeps_it(pipeline: Any, tmp_path: Path) -> None:  # noqa: F811
    root = pipeline.root
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    (barrier / "other").touch()  # a pair of one
    isolated_job(root, barrier, "keep_worktree = true\n")
    (root / "tune.py").write_text(TUNE)
    run = wait_final(pipeline, launch_run(pipeline, "pipeline")["id"], timeout=180)
    assert run["status"] == "succeeded", (pipeline.run_dir(run["id"]) / "output.log").read_text()
    kept = Path(run["isolated"])
    assert (kept / "model.pkl").is_file() and (kept / "tune.py").is_file()
    assert "n_est: 50" in (root / "params.yaml").read_text()  # untouched here


def test_a_worktree_that_cannot_be_made_fails_the_run_in_words(
    pipeline: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    root = pipeline.root
    isolated_job(root, tmp_path)
    (pipeline.state_dir / "worktrees").write_text("in the way\n")
    lock = (root / "dvc.lock").read_text()
    run = wait_final(pipeline, launch_run(pipeline, "pipeline")["id"], timeout=60)
    assert run["status"] == "failed"
    error = run["error"]
    assert "worktree" in error and "\n" not in error and "Traceback" not in error, error
    assert not run.get("started")  # never ran, not in the shared workspace either
    assert (root / "dvc.lock").read_text() == lock


def test_isolate_is_validated_and_lifts_the_dvc_default(tmp_path: Path) -> None:
    (tmp_path / "ctui.toml").write_text('[jobs.p]\ncommand = "dvc repro"\nisolate = "worktree"\n')
    job = load_config(tmp_path).job("p")
    assert job.isolate == "worktree" and job.max_concurrent is None and not job.keep_worktree
    (tmp_path / "ctui.toml").write_text('[jobs.p]\ncommand = "dvc repro"\nisolate = "copy"\n')
    with pytest.raises(ConfigError, match="isolate"):
        load_config(tmp_path)
