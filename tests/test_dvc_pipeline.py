"""A `dvc repro` job on a real four-stage pipeline: each run records the params it used and the
outputs it produced; a changed param shows in the diff with the model's hash; new raw data
behind a stale dvc.lock fires the data trigger exactly once and outputs never do; two runs
launched together never collide."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from jobs_helpers import wait_final
from typer.testing import CliRunner

from ctui.cli import app
from ctui.jobs.launch import launch_run
from ctui.objects import ObjectStore
from ctui.store import open_store
from tests.conftest import git
from tests.dvc_pipeline import dvc, pipeline, pipeline_template, set_param, words  # noqa: F401

pytestmark = [pytest.mark.timeout(240)]


def data_of(project: Any, run: dict[str, Any]) -> dict[str, Any]:
    return dict(ObjectStore(project.objects_dir).get_json(run["manifest"]["data"]))


def cli(project: Any, *args: str) -> Any:
    return CliRunner().invoke(app, ["--project", str(project.root), *args])


def run_pipeline(project: Any) -> dict[str, Any]:
    run = wait_final(project, launch_run(project, "pipeline")["id"], timeout=120)
    log = (project.run_dir(run["id"]) / "output.log").read_text()
    assert run["status"] == "succeeded", log
    return run


def test_a_run_records_the_params_it_used_and_the_outputs_it_made(pipeline: Any) -> None:  # noqa: F811
    root = pipeline.root
    set_param(root, "featurize", "max_features", 100)  # 200 → 100, not committed
    run = run_pipeline(pipeline)
    assert run["params"]["featurize.max_features"] == 100
    assert run["params"]["train.n_est"] == 50 and run["params"]["prepare.split"] == 0.75
    assert "featurize.max_features" in run["dvc_params"]
    data = data_of(pipeline, run)
    model = data["paths"]["model.pkl"]
    assert model["role"] == "output"
    lock = (root / "dvc.lock").read_text()
    assert model["hash"] in lock  # the model the run made, as the final dvc.lock has it
    assert data["params"]["params.yaml"]["featurize.max_features"] == 100
    assert data["paths"]["data/data.xml"]["role"] == "input"
    assert data["stale"] == []
    assert "src/train.py" in data["code_deps"]
    assert run["metrics"]["avg_prec.test"] > 0
    # filterable like any param
    hit = cli(pipeline, "runs", "--filter", "param.featurize.max_features<150", "--json")
    assert [r["id"] for r in orjson.loads(hit.stdout)] == [run["id"]]


def test_a_changed_param_shows_in_the_diff_with_the_models_hash(pipeline: Any) -> None:  # noqa: F811
    first = run_pipeline(pipeline)
    set_param(pipeline.root, "train", "n_est", 60)
    second = run_pipeline(pipeline)
    result = cli(pipeline, "diff", first["id"], second["id"], "--json")
    diff = orjson.loads(result.stdout)
    assert diff["sections"]["params"]["changed"]["train.n_est"] == {
        "old": 50,
        "new": 60,
        "delta": 10,
    }
    data = diff["sections"]["data"]
    assert "model.pkl" in data["changed"]
    assert "data/data.xml" not in data["changed"]  # the same raw input
    assert "data/features" not in data["changed"]  # n_est is a train param
    # the same pipeline again: nothing changed, and the diff says so
    third = run_pipeline(pipeline)
    again = orjson.loads(cli(pipeline, "diff", second["id"], third["id"], "--json").stdout)
    assert again["sections"]["data"]["status"] == "identical"
    assert again["sections"]["params"]["status"] == "identical"


def test_two_runs_launched_together_never_collide(pipeline: Any) -> None:  # noqa: F811
    from ctui.config import load_config

    assert load_config(pipeline.root).job("pipeline").max_concurrent == 1  # dvc job default
    set_param(pipeline.root, "train", "seed", 8)
    a = launch_run(pipeline, "pipeline")
    b = launch_run(pipeline, "pipeline")
    assert b["status"] == "queued"
    done = [wait_final(pipeline, r["id"], timeout=120) for r in (a, b)]
    assert [d["status"] for d in done] == ["succeeded", "succeeded"]


def watch_once(root: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "ctui", "watch", "--once", "--json"], cwd=root,
        capture_output=True, text=True, env={**os.environ}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return dict(orjson.loads(proc.stdout))


def test_new_raw_data_behind_a_stale_lock_fires_once_and_outputs_never(pipeline: Any) -> None:  # noqa: F811
    root = pipeline.root
    with (root / "ctui.toml").open("a") as fh:
        fh.write('\n[triggers.new-data]\njob = "pipeline"\non = "data"\n')
    git(root, "add", "ctui.toml")
    git(root, "commit", "-q", "-m", "trigger")
    first = run_pipeline(pipeline)
    assert watch_once(root)["launched"] == []  # the run used this data
    # new raw data, `dvc add`ed and committed; dvc.lock still has the old hash
    (root / "data" / "data.xml").write_text(words(500, seed=2))
    dvc(root, "add", "-q", "data/data.xml")
    git(root, "add", "data/data.xml.dvc")
    git(root, "commit", "-q", "-m", "new data")
    cycle = watch_once(root)
    assert len(cycle["launched"]) == 1, cycle
    store = open_store(pipeline)
    runs = [r for r in store.runs() if r["id"] != first["id"]]
    assert [r["id"] for r in runs] == cycle["launched"]
    new = wait_final(pipeline, runs[0]["id"], timeout=120)
    assert new["status"] == "succeeded"
    assert "data/data.xml" in new["cause"]
    # the retrain rewrote every intermediate and the model: none of that is new data
    assert watch_once(root)["launched"] == []
    assert watch_once(root)["launched"] == []
    assert len(store.runs()) == 2


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("dvc.yaml", "stages: [unclosed\n", "dvc.yaml: "),
        ("dvc.lock", "stages:\n  train: {deps: [oops\n", "dvc.lock: "),
        ("params.yaml", "train: {n_est: [1, 2\n", "params.yaml: not readable as params"),
    ],
)
def test_broken_dvc_files_are_recorded_and_the_run_still_starts(
    pipeline: Any,  # noqa: F811
    name: str,
    text: str,
    said: str,
) -> None:
    (pipeline.root / name).write_text(text)
    run = wait_final(pipeline, launch_run(pipeline, "pipeline")["id"], timeout=120)
    assert run["started"], run  # it ran (dvc itself may well fail on the broken file)
    data = data_of(pipeline, run)
    assert data["status"] == "ok"
    assert any(p.startswith(said) for p in data["problems"]), data["problems"]
    assert not run.get("manifest_error")


def test_a_job_that_does_not_run_dvc_never_inherits_the_pipelines_metrics(pipeline: Any) -> None:  # noqa: F811
    # the pipeline is up to date, so dvc.lock would vouch for eval/metrics.json — but this job
    # never ran DVC: the file is not its result
    with (pipeline.root / "ctui.toml").open("a") as fh:
        fh.write(f'\n[jobs.other]\ncommand = "{sys.executable} -c pass"\n')
    for made in ("eval/metrics.json", "eval/plots/roc.json"):  # written long before the run
        os.utime(pipeline.root / made, (1e9, 1e9))
    run = wait_final(pipeline, launch_run(pipeline, "other")["id"], timeout=60)
    assert run["status"] == "succeeded"
    assert run["metrics"] == {}
    assert not (pipeline.run_dir(run["id"]) / "plots.json").exists()
