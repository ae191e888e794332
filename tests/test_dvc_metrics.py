"""DVC metrics files → final run metrics (checked against `dvc metrics show` itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jobs_helpers import PY, wait_final, write_config

from ctui.integrations.dvc_metrics import declared_files, flatten, read_metrics

pytestmark = pytest.mark.timeout(120)

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
