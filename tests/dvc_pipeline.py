"""A real four-stage DVC pipeline, the way users build one: a `dvc add`ed raw dataset,
`params.yaml`, `dvc.yaml` stages prepare → featurize → train → evaluate (a seeded,
deterministic train step), metrics in `eval/metrics.json` and a ROC plot declared in
`dvc.yaml`. Built once per test module with the real `dvc` and copied per test.

    from tests.dvc_pipeline import pipeline_template, pipeline  # fixtures
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git

PREPARE = """\
import random, sys, yaml
p = yaml.safe_load(open("params.yaml"))["prepare"]
rows = [r for r in open("data/data.xml").read().split("\\n") if r.strip()]
random.Random(p["seed"]).shuffle(rows)
cut = int(len(rows) * p["split"])
import os
os.makedirs("data/prepared", exist_ok=True)
open("data/prepared/train.tsv", "w").write("\\n".join(rows[:cut]) + "\\n")
open("data/prepared/test.tsv", "w").write("\\n".join(rows[cut:]) + "\\n")
print("prepare: ran", len(rows))
"""

FEATURIZE = """\
import collections, json, os, yaml
p = yaml.safe_load(open("params.yaml"))["featurize"]
os.makedirs("data/features", exist_ok=True)
train = open("data/prepared/train.tsv").read().split()
vocab = [w for w, _ in collections.Counter(train).most_common(p["max_features"])]
for part in ("train", "test"):
    words = open(f"data/prepared/{part}.tsv").read().split()
    counts = collections.Counter(w for w in words if w in vocab)
    json.dump({w: counts[w] for w in sorted(vocab)}, open(f"data/features/{part}.json", "w"),
              sort_keys=True)
print("featurize: ran", len(vocab))
"""

TRAIN = """\
import json, pickle, random, yaml
p = yaml.safe_load(open("params.yaml"))["train"]
feats = json.load(open("data/features/train.json"))
rng = random.Random(p["seed"])
model = {w: round(sum(rng.random() for _ in range(p["n_est"])) * (c + 1), 6)
         for w, c in sorted(feats.items())}
pickle.dump(model, open("model.pkl", "wb"), protocol=4)
print("train: ran", len(model))
"""

EVALUATE = """\
import json, os, pickle
model = pickle.load(open("model.pkl", "rb"))
test = json.load(open("data/features/test.json"))
score = sum(model.get(w, 0) * c for w, c in test.items())
total = sum(model.values()) or 1.0
avg_prec = round((score % total) / total, 6)
os.makedirs("eval/plots", exist_ok=True)
json.dump({"avg_prec": {"test": avg_prec}, "roc_auc": round(1 - avg_prec / 2, 6)},
          open("eval/metrics.json", "w"))
roc = [{"fpr": i / 4, "tpr": min(1.0, (i / 4) ** 0.5 + avg_prec / 10)} for i in range(5)]
json.dump({"roc": roc}, open("eval/plots/roc.json", "w"))
print("evaluate: ran", avg_prec)
"""

PARAMS = """\
prepare:
  split: 0.75
  seed: 20170428
featurize:
  max_features: 200
train:
  seed: 7
  n_est: 50
"""

DVC_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py
    deps:
    - src/prepare.py
    - data/data.xml
    params:
    - prepare.split
    - prepare.seed
    outs:
    - data/prepared
  featurize:
    cmd: python src/featurize.py
    deps:
    - src/featurize.py
    - data/prepared
    params:
    - featurize.max_features
    outs:
    - data/features
  train:
    cmd: python src/train.py
    deps:
    - src/train.py
    - data/features
    params:
    - train
    outs:
    - model.pkl
  evaluate:
    cmd: python src/evaluate.py
    deps:
    - src/evaluate.py
    - model.pkl
    - data/features
    metrics:
    - eval/metrics.json:
        cache: false
    plots:
    - eval/plots/roc.json:
        cache: false
        x: fpr
        y: tpr
"""

CTUI_TOML = """\
[jobs.pipeline]
command = "dvc repro"
"""


def words(n: int, seed: int = 1) -> str:
    """A deterministic "dataset": n lines of words."""
    import random

    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)]
    return "\n".join(" ".join(rng.choice(vocab) for _ in range(8)) for _ in range(n)) + "\n"


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed: {proc.stdout}\n{proc.stderr}")
    return proc


def build(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "commit.gpgsign", "false")
    (root / ".gitignore").write_text(".ctui/\n")
    (root / "src").mkdir()
    for name, text in (("prepare", PREPARE), ("featurize", FEATURIZE), ("train", TRAIN),
                       ("evaluate", EVALUATE)):  # fmt: skip
        (root / "src" / f"{name}.py").write_text(text)
    (root / "params.yaml").write_text(PARAMS)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "ctui.toml").write_text(CTUI_TOML)
    (root / "data").mkdir()
    (root / "data" / "data.xml").write_text(words(400))
    dvc(root, "init", "-q")
    dvc(root, "add", "-q", "data/data.xml")
    dvc(root, "repro", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "pipeline")
    return root


@pytest.fixture(scope="module")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("pipeline") / "repo")


@pytest.fixture
def pipeline(pipeline_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A ctui project in a copy of the pipeline (its DVC cache included); `dvc` and the
    stages' `python` resolve to this interpreter's environment, as in an activated venv."""
    from ctui.project import Project
    from ctui.store import Store

    root = tmp_path / "repo"
    shutil.copytree(pipeline_template, root, symlinks=True)
    project = Project(root=root, state_dir=root / ".ctui").ensure()
    Store(project.store_file).initialise()
    monkeypatch.chdir(root)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return project


def set_param(root: Path, section: str, key: str, value: Any) -> None:
    import yaml

    doc = yaml.safe_load((root / "params.yaml").read_text())
    doc[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
