"""DVC metrics files → final run metrics (checked against `dvc metrics show` itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobs_helpers import PY, wait_final, write_config

from ctui.integrations.dvc_metrics import declared_files, flatten, read_metrics, vouched_by_lock
from tests.conftest import git
from tests.dvc_pipeline import dvc, pipeline, pipeline_template, set_param, words  # noqa: F401

pytestmark = pytest.mark.timeout(240)

DVC_YAML = """
metrics:
  - top.json
stages:
  train:
    cmd: python train.py
    metrics:
      - eval/scores.yaml:
          cache: false
"""


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [2, {"d": 3.5}]}, "s": "x", "t": True}) == {
        "a.b": 1,
        "a.c.0": 2,
        "a.c.1.d": 3.5,
        "t": 1,
    }


def test_declared_files_and_reading(tmp_path):
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "top.json").write_text(json.dumps({"acc": 0.9, "nested": {"loss": 0.1}}))
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "scores.yaml").write_text("f1: 0.7\nper_class:\n  cat: 0.6\n")
    (tmp_path / "extra.json").write_text('{"acc": 0.95}')
    assert declared_files(tmp_path) == ["top.json", "eval/scores.yaml"]
    assert read_metrics(tmp_path) == {
        "acc": 0.9,
        "nested.loss": 0.1,
        "f1": 0.7,
        "per_class.cat": 0.6,
    }
    # the job's own files come last and win
    assert read_metrics(tmp_path, ["extra.json", "missing.json"])["acc"] == 0.95


def test_broken_files_are_skipped(tmp_path):
    (tmp_path / "dvc.yaml").write_text("metrics: [bad.json, bad.yaml]\n")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    assert read_metrics(tmp_path) == {}
    (tmp_path / "dvc.yaml").write_text(": : :\n")
    assert declared_files(tmp_path) == []


def _dvc(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def test_a_run_picks_up_the_metrics_dvc_reports(project):
    """A real DVC repo: the job writes its dvc.yaml metrics; the run's final metrics match
    what `dvc metrics show` reads from the same files."""
    _dvc(project.root, "init", "-q")
    (project.root / "dvc.yaml").write_text(DVC_YAML)
    (project.root / "train.py").write_text(
        "import json, os\n"
        "os.makedirs('eval', exist_ok=True)\n"
        "json.dump({'acc': 0.875, 'nested': {'loss': 0.25}}, open('top.json', 'w'))\n"
        "open('eval/scores.yaml', 'w').write('f1: 0.5\\n')\n"
    )
    write_config(project.root, f'[jobs.train]\ncommand = "{PY} train.py"\n')
    from ctui.jobs.launch import launch_run

    final = wait_final(project, launch_run(project, "train")["id"])
    assert final["status"] == "succeeded"
    assert final["metrics"] == {"acc": 0.875, "nested.loss": 0.25, "f1": 0.5}
    shown = json.loads(_dvc(project.root, "metrics", "show", "--json"))
    theirs: dict[str, float] = {}
    for rev in shown.values():
        for data in rev["data"].values():
            theirs.update(flatten(data["data"]))
    assert theirs == final["metrics"]


def test_a_metrics_file_older_than_the_run_is_not_its_metrics(tmp_path) -> None:
    import os
    import time

    from ctui.integrations.dvc_metrics import read_metrics

    stale = tmp_path / "metrics.json"
    stale.write_text('{"acc": 0.9}')
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert read_metrics(tmp_path, ["metrics.json"]) == {"acc": 0.9}
    assert read_metrics(tmp_path, ["metrics.json"], since=time.time() - 60) == {}
    stale.write_text('{"acc": 0.7}')  # written by this run
    assert read_metrics(tmp_path, ["metrics.json"], since=time.time() - 60) == {"acc": 0.7}


# -- a real pipeline: metrics DVC did not rewrite are still the run's -------------------------


def run_pipeline(project: Any, status: str = "succeeded") -> dict[str, Any]:
    from ctui.jobs.launch import launch_run

    run = wait_final(project, launch_run(project, "pipeline")["id"], timeout=120)
    assert run["status"] == status, log_of(project, run)
    return run


def log_of(project: Any, run: dict[str, Any]) -> str:
    return (project.run_dir(run["id"]) / "output.log").read_text()


def an_hour_ago(root: Path, *rels: str) -> None:
    """As if the last run had been an hour ago (no sleeping for mtimes to age)."""
    import os
    import time

    old = time.time() - 3600
    for rel in rels:
        os.utime(root / rel, (old, old))


def older_than_the_run(project: Any, run: dict[str, Any], rel: str = "eval/metrics.json") -> bool:
    return (project.root / rel).stat().st_mtime < run["started"] - 1.0


def test_a_run_where_dvc_skipped_every_stage_keeps_the_pipelines_metrics(pipeline: Any) -> None:  # noqa: F811
    set_param(pipeline.root, "train", "seed", 11)
    first = run_pipeline(pipeline)
    assert "Running stage 'evaluate'" in log_of(pipeline, first)
    assert first["metrics"]["avg_prec.test"] > 0
    an_hour_ago(pipeline.root, "eval/metrics.json", "eval/plots/roc.json")
    again = run_pipeline(pipeline)
    log = log_of(pipeline, again)
    for stage in ("prepare", "featurize", "train", "evaluate"):
        assert f"Stage '{stage}' didn't change, skipping" in log
    assert older_than_the_run(pipeline, again)  # the mtime rule alone would drop them
    assert again["metrics"] == first["metrics"]


@pytest.mark.parametrize("cache_type", ["copy", "hardlink"])
def test_a_stage_restored_from_the_run_cache_has_the_restored_metrics(
    pipeline: Any,  # noqa: F811
    cache_type: str,
) -> None:
    """n_est 50 → 60 → 50: the last run restores train and evaluate from DVC's run-cache.
    With hardlinks (and cached metrics) the restored file is the old cache object, mtime and
    all."""
    root = pipeline.root
    if cache_type == "hardlink":
        text = (root / "dvc.yaml").read_text()
        (root / "dvc.yaml").write_text(
            text.replace("- eval/metrics.json:\n        cache: false\n", "- eval/metrics.json\n")
        )
        git(root, "rm", "-q", "--cached", "eval/metrics.json")
        dvc(root, "config", "cache.type", "hardlink")
        dvc(root, "repro", "-q", "--force", "evaluate")  # metrics into the cache, git-ignored
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "metrics in the DVC cache, hardlinked")
    at_50 = run_pipeline(pipeline)
    set_param(root, "train", "n_est", 60)
    at_60 = run_pipeline(pipeline)
    assert at_60["metrics"] != at_50["metrics"]
    set_param(root, "train", "n_est", 50)
    back = run_pipeline(pipeline)
    log = log_of(pipeline, back)
    assert "Stage 'train' is cached - skipping run" in log
    assert "Stage 'evaluate' is cached - skipping run" in log
    if cache_type == "hardlink":
        assert older_than_the_run(pipeline, back)
    assert back["metrics"] == at_50["metrics"] and back["metrics"]["avg_prec.test"] > 0
    assert back["params"]["train.n_est"] == 50


def test_a_pipeline_that_failed_before_evaluate_records_no_stale_metrics(pipeline: Any) -> None:  # noqa: F811
    root = pipeline.root
    lock = (root / "dvc.lock").read_text()
    good = run_pipeline(pipeline)
    assert good["metrics"]
    (root / "src" / "train.py").write_text("def broken(:\n")
    set_param(root, "train", "n_est", 70)
    failed = run_pipeline(pipeline, status="failed")
    assert "SyntaxError" in log_of(pipeline, failed)
    # DVC left the lock as the last good run wrote it, and the metrics file it vouches for:
    # only the broken dep and the new param tell that file is not this run's
    assert (root / "dvc.lock").read_text() == lock
    assert failed["metrics"] == {}
    assert not (pipeline.run_dir(failed["id"]) / "plots.json").exists()


def test_the_lock_vouches_only_for_an_up_to_date_pipeline(pipeline: Any) -> None:  # noqa: F811
    root = pipeline.root
    files = ["eval/metrics.json", "model.pkl", "data/features/train.json", "params.yaml"]
    everything = {"eval/metrics.json", "model.pkl", "data/features/train.json"}
    assert vouched_by_lock(root, files) == everything

    def after(change: Callable[[], None]) -> set[str]:
        saved = {
            p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".dvc" not in p.parts
        }
        change()
        try:
            return vouched_by_lock(root, files)
        finally:
            for p, data in saved.items():
                p.write_bytes(data)

    features = {"data/features/train.json"}
    # code, params, the cmd, a declared dep the lock lacks: that stage and all below it
    assert after(lambda: _append(root / "src" / "train.py", "# tweak\n")) == features
    assert after(lambda: set_param(root, "train", "n_est", 51)) == features
    assert after(
        lambda: _sub(root / "dvc.yaml", "python src/evaluate.py", "python -O src/evaluate.py")
    ) == {"model.pkl", *features}
    assert (
        after(
            lambda: _sub(
                root / "dvc.yaml", "    - src/train.py\n", "    - src/train.py\n    - README\n"
            )
        )
        == features
    )
    # an out changed by hand, a metrics file rewritten with other numbers
    assert after(lambda: (root / "model.pkl").write_bytes(b"other")) == features
    assert after(lambda: (root / "eval/metrics.json").write_text('{"avg_prec": {"test": 1}}')) == {
        "model.pkl",
        *features,
    }
    # upstream of everything: the raw data
    assert after(lambda: (root / "data/data.xml").write_text(words(10))) == set()
    assert vouched_by_lock(root, files) == everything
    # no lock, a broken lock: nothing is vouched for
    (root / "dvc.lock").rename(root / "dvc.lock.bak")
    assert vouched_by_lock(root, files) == set()
    (root / "dvc.lock").write_text("stages: [unclosed\n")
    assert vouched_by_lock(root, files) == set()


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _sub(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
