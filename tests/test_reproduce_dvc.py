"""Reproducing a DVC pipeline rebuilds it: every stage runs again (never skipped as unchanged,
never restored from DVC's cache or run-cache), and the outputs are compared by DVC's hashes.
Real dvc, the real four-stage pipeline (tests/dvc_pipeline.py), real runs and worktrees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from jobs_helpers import wait_final

from ctui.errors import ExitCode
from ctui.jobs.launch import launch_run
from ctui.objects import ObjectStore
from ctui.store import open_store
from tests.conftest import git
from tests.dvc_pipeline import TRAIN, dvc, pipeline, pipeline_template, set_param, words  # noqa: F401
from tests.test_dvc_pipeline import data_of, run_pipeline

pytestmark = [pytest.mark.timeout(300)]

STAGES = ("prepare", "featurize", "train", "evaluate")
#: every output of the fixture, as the verdict names them: the model first, metrics last
ALL_SAME = "reproduced (5 outputs bit-identical: model.pkl, data/features, data/prepared, +2 more)"


def cli(project: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctui", *args], cwd=project.root, capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "400"}, timeout=240,
    )  # fmt: skip


def log_of(project: Any, run: dict[str, Any]) -> str:
    return (project.run_dir(run["id"]) / "output.log").read_text()


def commit(root: Path, message: str, *paths: str) -> None:
    git(root, "add", *paths)
    git(root, "commit", "-q", "-m", message)


def new_train_step(project: Any, train_py: str) -> None:
    """A variant of the fixture: another src/train.py, its pipeline run and committed."""
    (project.root / "src" / "train.py").write_text(train_py)
    dvc(project.root, "repro", "-q")
    commit(project.root, "another train step", "-A")


def test_reproducing_after_param_data_and_code_changes_rebuilds_every_stage(pipeline: Any) -> None:  # noqa: F811
    from ctui.reproduce import reproduce_run

    root = pipeline.root
    first = run_pipeline(pipeline)
    assert "didn't change, skipping" in log_of(pipeline, first)  # the fixture had run it
    model = data_of(pipeline, first)["paths"]["model.pkl"]["hash"]
    # since then: a param, the raw data and the code changed, each committed
    set_param(root, "train", "n_est", 60)
    commit(root, "more estimators", "params.yaml")
    (root / "data" / "data.xml").write_text(words(500, seed=2))
    dvc(root, "add", "-q", "data/data.xml")
    commit(root, "new data", "data/data.xml.dvc")
    (root / "src" / "train.py").write_text(TRAIN.replace("* (c + 1)", "* (c + 2)"))
    commit(root, "new model", "src/train.py")
    later = run_pipeline(pipeline)
    assert data_of(pipeline, later)["paths"]["model.pkl"]["hash"] != model

    steps: list[str] = []
    result = reproduce_run(pipeline, first["id"], progress=steps.append)
    new = result["run"]
    log = log_of(pipeline, new)
    for stage in STAGES:
        assert f"{stage}: ran" in log, log  # each stage's own script ran, none was skipped
    assert "skipping" not in log and "is cached" not in log, log
    assert result["verdict"] == ALL_SAME, result
    assert result["outcome"] == "reproduced" and result["reproduced"] is True
    assert new["verdict"] == ALL_SAME and new["reproduces"] == first["id"]
    # how it was forced: recorded on the run, said as a progress line, on the command line
    assert new["rebuild"] == "dvc repro --force"
    assert any(s.startswith("rebuild: dvc repro --force") for s in steps), steps
    assert "dvc ran 4 stages: prepare, featurize, train, evaluate" in steps
    assert new["command"][-2:] == ["repro", "--force"]
    assert result["stages"] == {"ran": list(STAGES), "skipped": []}
    # the old model, bit for bit, from the old code, params and data
    assert data_of(pipeline, new)["paths"]["model.pkl"]["hash"] == model
    assert new["metrics"] == first["metrics"] != later["metrics"]
    assert new["params"]["train.n_est"] == 50
    by_path = {o["path"]: o for o in result["outputs"]}
    assert by_path["model.pkl"] == {"path": "model.pkl", "old": model, "new": model,
                                    "identical": True}  # fmt: skip
    assert set(by_path) == {"model.pkl", "data/features", "data/prepared", "eval/metrics.json",
                            "eval/plots/roc.json"}  # fmt: skip
    # the project itself is untouched
    assert "n_est: 60" in (root / "params.yaml").read_text()
    assert "* (c + 2)" in (root / "src" / "train.py").read_text()
    assert data_of(pipeline, later)["paths"]["model.pkl"]["hash"] != model


def test_a_script_that_runs_dvc_repro_gets_its_own_empty_cache(pipeline: Any) -> None:  # noqa: F811
    """`sh run.sh` is out of reach of --force: the worktree's own DVC cache (the raw input
    linked in, no outputs, no run-cache) and the outputs removed make every stage run."""
    from ctui.reproduce import reproduce_run

    root = pipeline.root
    (root / "run.sh").write_text("set -e\necho pipeline starts\ndvc repro\n")
    with (root / "ctui.toml").open("a") as fh:
        fh.write('\n[jobs.script]\ncommand = "sh run.sh"\n')
    commit(root, "a script job", "run.sh", "ctui.toml")
    first = wait_final(pipeline, launch_run(pipeline, "script")["id"], timeout=120)
    assert first["status"] == "succeeded" and "didn't change, skipping" in log_of(pipeline, first)
    (root / "data" / "data.xml").write_text(words(300, seed=3))
    dvc(root, "add", "-q", "data/data.xml")
    commit(root, "new data", "data/data.xml.dvc")
    cache_objects = sorted((root / ".dvc" / "cache").rglob("*"))

    steps: list[str] = []
    result = reproduce_run(pipeline, first["id"], progress=steps.append)
    log = log_of(pipeline, result["run"])
    for stage in STAGES:
        assert f"Running stage '{stage}'" in log and f"{stage}: ran" in log, log
    assert "Stage '" not in log and "is cached" not in log, log  # no stage skipped
    assert result["stages"]["skipped"] == []
    # the raw input was in the worktree's own cache already (linked, not copied by DVC)
    assert "'data/data.xml.dvc' didn't change, skipping" in log
    assert result["verdict"] == ALL_SAME, result
    assert result["run"]["rebuild"] == "own DVC cache, outputs removed"
    said = next(s for s in steps if s.startswith("rebuild: "))
    assert "own DVC cache (1 raw input object(s) linked in" in said, said
    assert "5 stage output(s) were removed" in said and "`sh run.sh`" in said, said
    # the project's DVC cache got nothing from the reproduction
    assert sorted((root / ".dvc" / "cache").rglob("*")) == cache_objects


def test_a_dvc_exp_run_job_is_rebuilt_with_force(pipeline: Any) -> None:  # noqa: F811
    from ctui.reproduce import reproduce_run

    root = pipeline.root
    with (root / "ctui.toml").open("a") as fh:
        fh.write('\n[jobs.exp]\ncommand = "dvc exp run"\n')
    commit(root, "an experiment job", "ctui.toml")
    first = wait_final(pipeline, launch_run(pipeline, "exp")["id"], timeout=120)
    assert first["status"] == "succeeded" and "Stage 'train' didn't change" in log_of(
        pipeline, first
    )
    result = reproduce_run(pipeline, first["id"])
    log = log_of(pipeline, result["run"])
    assert all(f"{stage}: ran" in log for stage in STAGES), log
    assert result["run"]["rebuild"] == "dvc exp run --force"
    assert result["run"]["command"][-3:] == ["exp", "run", "--force"]
    assert result["verdict"] == ALL_SAME, result


def test_a_nondeterministic_train_step_diverges_with_the_model_named(pipeline: Any) -> None:  # noqa: F811
    new_train_step(pipeline, TRAIN.replace('random.Random(p["seed"])', "random.Random()"))
    first = run_pipeline(pipeline)

    proc = cli(pipeline, "reproduce", first["id"], "--json")
    assert proc.returncode == ExitCode.FAILED, proc.stderr
    out = orjson.loads(proc.stdout)
    assert out["outcome"] == "diverged" and out["reproduced"] is False
    assert out["verdict"].startswith("diverged in: metrics ("), out["verdict"]
    assert "outputs (model.pkl " in out["verdict"], out["verdict"]
    outputs = {o["path"]: o for o in out["outputs"]}
    assert outputs["model.pkl"]["identical"] is False
    assert outputs["model.pkl"]["old"] == data_of(pipeline, first)["paths"]["model.pkl"]["hash"]
    assert outputs["data/prepared"]["identical"] is True  # upstream of the noise: the same
    sections = [d["section"] for d in out["differences"]]
    assert sections == ["metrics", "outputs"], out["differences"]
    assert "data" not in sections, "the inputs were the same; outputs are their own section"
    assert out["rebuild"] == "dvc repro --force"
    assert out["stages"]["ran"] == list(STAGES)
    rebuild = next(s for s in out["setup"] if s["step"] == "rebuild")
    assert rebuild["detail"].startswith("rebuild: dvc repro --force"), out["setup"]
    assert "·" not in proc.stderr, "--json prints no progress"


def test_an_output_that_differs_while_the_metrics_match(pipeline: Any) -> None:  # noqa: F811
    from ctui.reproduce import reproduce_run

    # the same model, then a random trailer that pickle.load never reads: only the bytes vary
    noisy = TRAIN.replace(
        'pickle.dump(model, open("model.pkl", "wb"), protocol=4)',
        'fh = open("model.pkl", "wb")\npickle.dump(model, fh, protocol=4)\n'
        "pickle.dump(random.random(), fh)\nfh.close()",
    )
    assert noisy != TRAIN
    new_train_step(pipeline, noisy)
    first = run_pipeline(pipeline)

    result = reproduce_run(pipeline, first["id"])
    assert result["verdict"] == "metrics match, model.pkl differs", result
    assert result["outcome"] == "diverged" and result["reproduced"] is False
    assert result["run"]["metrics"] == first["metrics"]
    assert [d["section"] for d in result["differences"]] == ["outputs"]
    assert result["differences"][0]["items"][0].startswith("model.pkl ")


def test_a_stage_restored_from_dvcs_cache_is_not_verified(pipeline: Any) -> None:  # noqa: F811
    """A run where DVC kept its run-cache: the model came back from the cache, not from
    train.py. Equal hashes prove nothing then."""
    from ctui.reproduce import compare_runs

    first = run_pipeline(pipeline)
    (pipeline.root / "model.pkl").unlink()
    again = run_pipeline(pipeline)
    log = log_of(pipeline, again)
    assert "Stage 'train' is cached - skipping run" in log and "train: ran" not in log, log

    result = compare_runs(first, again, ObjectStore(pipeline.objects_dir), log=log)
    assert result["outcome"] == "not verified" and result["reproduced"] is False
    assert result["differences"] == [], "the same hashes: only the log tells"
    assert result["verdict"] == (
        "not verified: outputs (stage 'train' came from DVC's cache), "
        "outputs (stages 'prepare', 'featurize', 'evaluate' were skipped as unchanged)"
    )
    assert {"stage": "train", "why": "came from DVC's cache"} in result["stages"]["skipped"]
    # the same comparison with no log to read claims what the hashes show
    assert compare_runs(first, again, ObjectStore(pipeline.objects_dir))["outcome"] == "reproduced"


def test_a_broken_dvc_yaml_at_the_recorded_commit_is_exit_2(pipeline: Any) -> None:  # noqa: F811
    root = pipeline.root
    good = (root / "dvc.yaml").read_text()
    (root / "dvc.yaml").write_text(good.replace("  train:\n", "  train: [oops\n", 1))
    commit(root, "a broken pipeline", "dvc.yaml")
    broken = git(root, "rev-parse", "HEAD")
    first = wait_final(pipeline, launch_run(pipeline, "pipeline")["id"], timeout=120)
    assert first["status"] == "failed"
    (root / "dvc.yaml").write_text(good)
    commit(root, "fixed", "dvc.yaml")

    proc = cli(pipeline, "reproduce", first["id"])
    assert proc.returncode == ExitCode.BAD_INPUT, proc.stderr
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(error) == 1, proc.stderr
    assert error[0].startswith(f"error: dvc.yaml at {broken[:7]} cannot be read: "), error
    assert "line " in error[0], error
    assert "Traceback" not in proc.stderr
    assert len(open_store(pipeline).runs()) == 1, "nothing was launched"


def test_data_missing_from_the_dvc_cache_is_exit_2(pipeline: Any) -> None:  # noqa: F811
    import shutil

    root = pipeline.root
    first = run_pipeline(pipeline)
    (root / "data" / "data.xml").write_text(words(100, seed=4))
    dvc(root, "add", "-q", "data/data.xml")
    commit(root, "new data", "data/data.xml.dvc")
    shutil.rmtree(root / ".dvc" / "cache")

    proc = cli(pipeline, "reproduce", first["id"], "--json")
    assert proc.returncode == ExitCode.BAD_INPUT, proc.stderr
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert error == ["error: data recorded by the run is missing from the DVC cache: "
                     "data/data.xml"], proc.stderr  # fmt: skip
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(open_store(pipeline).runs()) == 1
    assert list((pipeline.state_dir / "worktrees").iterdir()) == []


# -- the parts, alone ------------------------------------------------------------------------


def test_the_commands_that_get_force_and_those_that_cannot() -> None:
    from ctui.reproduce.rebuild import force_command

    assert force_command("dvc repro") == ("dvc repro --force", "dvc repro --force")
    assert force_command("python -m dvc repro train") == (
        "python -m dvc repro --force train", "dvc repro --force",
    )  # fmt: skip
    assert force_command("uv run dvc -q repro") == ("uv run dvc -q repro --force",
                                                    "dvc repro --force")  # fmt: skip
    assert force_command("dvc --cd ml repro")[0] == "dvc --cd ml repro --force"  # type: ignore[index]
    assert force_command("dvc exp run -S train.n_est={n}") == (
        "dvc exp run --force -S 'train.n_est={n}'", "dvc exp run --force",
    )  # fmt: skip
    assert force_command("/venv/bin/dvc repro -f")[0] == "/venv/bin/dvc repro -f"  # type: ignore[index]
    assert force_command("dvc pull") is None
    assert force_command('sh -c "dvc pull && dvc repro"') is None
    assert force_command("python train.py") is None


def test_a_script_is_recognised_by_what_it_runs(tmp_path: Path) -> None:
    from ctui.reproduce.rebuild import runs_pipeline

    (tmp_path / "run.sh").write_text("#!/bin/sh\nset -e\n  python -m dvc exp run -S a=1\n")
    (tmp_path / "train.sh").write_text("python train.py\ndvc push\n")
    assert runs_pipeline("sh run.sh", tmp_path) and runs_pipeline("./run.sh", tmp_path)
    assert runs_pipeline('sh -c "dvc pull && dvc repro"', tmp_path)
    assert not runs_pipeline("sh train.sh", tmp_path)
    assert not runs_pipeline("python train.py", tmp_path)


def test_the_log_shows_which_stages_dvc_ran() -> None:
    from ctui.reproduce import dvc_stages

    log = [
        "Verifying data sources in stage: 'data/data.xml.dvc'",
        "'data/data.xml.dvc' didn't change, skipping",  # a data source, not a stage
        "\x1b[33mStage 'prepare' didn't change, skipping\x1b[0m",
        "Running stage 'featurize':",
        "> python src/featurize.py",
        "Stage 'train' is cached - skipping run, checking out outputs",
        "Pulling data for stage: 'evaluate'",
        "Unable to pull data for stage: 'evaluate'",
        "Running stage 'evaluate':",
        "Verifying outputs in frozen stage: 'sub/dvc.yaml:deploy'",
    ]
    assert dvc_stages(log) == {
        "ran": ["featurize", "evaluate"],
        "skipped": [
            {"stage": "prepare", "why": "was skipped as unchanged"},
            {"stage": "train", "why": "came from DVC's cache"},
            {"stage": "sub/dvc.yaml:deploy", "why": "is frozen, never run"},
        ],
    }
    assert dvc_stages(["prepare: ran", "Use `dvc push` to send your updates"]) == {
        "ran": [], "skipped": [],
    }  # fmt: skip


def test_verdict_wording_with_outputs() -> None:
    from ctui.reproduce import verdict

    def out(path: str, same: bool = True) -> dict[str, Any]:
        return {"path": path, "old": "aa", "new": "aa" if same else "bb", "identical": same}

    assert verdict([], [], [out("model.pkl")]) == "reproduced (model.pkl bit-identical)"
    three = [out("model.pkl"), out("data/features"), out("data/prepared")]
    assert verdict([], [], three) == (
        "reproduced (3 outputs bit-identical: model.pkl, data/features, data/prepared)"
    )
    assert verdict([], [], [*three, out("a"), out("b")]).endswith(", +2 more)")
    assert verdict([], [], []) == "reproduced"
    one = [{"section": "outputs", "items": ["model.pkl aa→bb"]}]
    assert verdict(one, [], [out("model.pkl", False), out("x")]) == (
        "metrics match, model.pkl differs"
    )
    two = [{"section": "outputs", "items": ["model.pkl aa→bb", "x aa→bb"]}]
    assert verdict(two, [], [out("model.pkl", False), out("x", False)]) == (
        "metrics match, model.pkl, x differ"
    )
    # with no metrics to match, it is not said that they do
    no_metrics = [{"section": "results", "reason": "neither run recorded metrics"}]
    assert verdict(one, no_metrics, [out("model.pkl", False)]) == (
        "diverged in: outputs (model.pkl aa→bb)"
    )
    both = [{"section": "metrics", "items": ["acc 0.9→0.8"]}, *one]
    assert verdict(both, [], [out("model.pkl", False)]) == (
        "diverged in: metrics (acc 0.9→0.8), outputs (model.pkl aa→bb)"
    )
