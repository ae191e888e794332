"""`ctui demo`: a small real project with a handful of runs worth looking at.

A git repository with a DVC-tracked dataset and a tiny pure-Python training script that logs
through ctui's metrics API and MLflow. The runs differ in params, in data (a new dataset
version) and in code (a new commit), and one fails — so the runs table, the diff, the logs
and the plots all have something to show. Everything is real: git, dvc, MLflow (sqlite),
detached supervisors.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctui.errors import CtuiError
from ctui.project import Project

TRAIN_PY = '''\
"""Logistic regression by plain SGD: small, pure Python, deterministic for a given seed."""
import argparse
import csv
import math
import os
import random
import sys
import time

try:
    from ctui import track
except ImportError:  # running outside ctui's environment: metrics go nowhere
    track = None

ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float, default=0.1)
ap.add_argument("--epochs", type=int, default=8)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--data", default="data/train.csv")
args = ap.parse_args()
if args.epochs < 1:
    sys.exit(f"error: --epochs must be at least 1, got {args.epochs}")

with open(args.data) as fh:
    rows = [[float(x) for x in row] for row in csv.reader(fh)]
random.seed(args.seed)
random.shuffle(rows)
cut = int(len(rows) * 0.8)
train, valid = rows[:cut], rows[cut:]
n_features = len(rows[0]) - 1
w = [0.0] * n_features
b = 0.0
print(f"training on {len(train)} rows, validating on {len(valid)}, lr={args.lr}")
if track:
    track.log_params(lr=args.lr, epochs=args.epochs, seed=args.seed, rows=len(rows))


def predict(x):
    z = b + sum(wi * xi for wi, xi in zip(w, x))
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


def evaluate(data):
    loss = correct = 0.0
    for *x, y in data:
        p = predict(x)
        loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
        correct += (p > 0.5) == (y > 0.5)
    return loss / len(data), correct / len(data)


for epoch in range(1, args.epochs + 1):
    for *x, y in train:
        g = predict(x) - y
        w = [wi - args.lr * (g * xi + L2 * wi) for wi, xi in zip(w, x)]
        b -= args.lr * g
    train_loss, train_acc = evaluate(train)
    val_loss, val_acc = evaluate(valid)
    print(f"epoch {epoch:3d}  loss {train_loss:.4f}  val_loss {val_loss:.4f}  acc {val_acc:.3f}")
    if track:
        track.log_metrics({"loss": train_loss, "val_loss": val_loss, "acc": val_acc}, step=epoch)
    time.sleep(0.15)  # a real job takes a while; this keeps the live view interesting

if os.environ.get("MLFLOW_TRACKING_URI"):  # MLflow's own calls, as in its quickstart
    import mlflow

    with mlflow.start_run():
        mlflow.log_metrics({"final_acc": val_acc, "final_val_loss": val_loss})
print("done")
'''

CTUI_TOML = """\
# The demo project's jobs and triggers. `ctui run train -p lr=0.3` launches one by hand.

[jobs.train]
command = "{python} train.py --lr {lr} --epochs {epochs} --seed {seed} --data data/train.csv"
params = { lr = 0.1, epochs = 8, seed = 0 }
max_concurrent = 2

[jobs.evaluate]
command = "{python} -c \\"import os; print('evaluating after', os.environ['CTUI_JOB'])\\""

[triggers.new-data]
job = "train"
on = "data"
cooldown = "1m"

[triggers.nightly]
job = "train"
on = "schedule"
cron = "0 3 * * *"
enabled = false

[triggers.evaluate-after-train]
job = "evaluate"
on = "after"
after = "train"

[mlflow]
enabled = true
experiment = "ctui-demo"
"""


def _dataset(rows: int, seed: int, shift: float) -> str:
    """Two noisy Gaussian blobs in 4 dimensions; `shift` moves them (a new data version)."""
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        y = i % 2
        centre = (1.0 + shift) if y else (-1.0 + shift / 2)
        x = [rng.gauss(centre * s, 1.2) for s in (1.0, 0.6, -0.4, 0.2)]
        lines.append(",".join(f"{v:.4f}" for v in x) + f",{y}")
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], cwd: Path) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise CtuiError(
            f"demo setup failed: {' '.join(cmd[:3])} … exited {proc.returncode}",
            hint=(proc.stderr or proc.stdout).strip()[-500:],
        )


def _git(root: Path, *args: str) -> None:
    _run(
        [
            "git",
            "-c",
            "user.name=ctui demo",
            "-c",
            "user.email=demo@ctui.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        root,
    )


def _dvc(root: Path, *args: str) -> None:
    _run([sys.executable, "-m", "dvc", *args], root)


def _wait(project: Project, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
    from ctui.jobs.reconcile import wait_for_end

    try:
        return wait_for_end(project, run_id, timeout=timeout)
    except TimeoutError:
        raise CtuiError(
            f"demo run {run_id} did not finish within {timeout:.0f} s",
            hint=f"see `ctui logs {run_id}`",
        ) from None


def build_demo(target: Path, *, say: Callable[[str], None] = print) -> Project:
    """Create the demo project in `target` (must be empty or missing) and run its runs."""
    from ctui.jobs.launch import launch_run
    from ctui.store import Store

    root = Path(target).resolve()
    if root.exists() and any(root.iterdir()):
        raise CtuiError(f"{root} is not empty", hint="pick a new folder for the demo")
    root.mkdir(parents=True, exist_ok=True)

    say(f"creating a git + DVC project in {root}")
    _git(root, "init", "-q", "-b", "main")
    (root / "data").mkdir()
    (root / "train.py").write_text(TRAIN_PY.replace("L2 * wi", "0.0 * wi"))
    (root / "ctui.toml").write_text(CTUI_TOML)
    (root / ".gitignore").write_text(".ctui/\n")
    (root / "data" / "train.csv").write_text(_dataset(400, seed=1, shift=0.0))
    _dvc(root, "init", "-q")
    _dvc(root, "add", "-q", "data/train.csv")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Logistic regression baseline on dataset v1")

    project = Project(root=root, state_dir=root / ".ctui").ensure()
    Store(project.store_file).initialise()

    def run_all(*variants: tuple[str, dict[str, Any]]) -> None:
        """Launch runs together (the job's max_concurrent queues the rest), wait for all."""
        docs = []
        for label, params in variants:
            docs.append(launch_run(project, "train", params or None, extra={"note": label}))
            say(f"  launched {docs[-1]['id']}: {label}")
        for doc in docs:
            done = _wait(project, doc["id"])
            acc = (done.get("metrics") or {}).get("acc")
            say(f"  {done['id']} {done['status']}" + (f", acc {acc:.3f}" if acc else ""))

    say("launching runs (the first also creates the MLflow store, ~10 s):")
    run_all(
        ("baseline, lr=0.1", {}),
        ("higher learning rate", {"lr": 0.5}),
        ("more epochs", {"epochs": 14}),
        ("a broken setting (fails on purpose)", {"epochs": 0}),
    )

    say("dataset v2: more rows, shifted distribution (dvc add + commit)")
    (root / "data" / "train.csv").write_text(_dataset(600, seed=2, shift=0.4))
    _dvc(root, "add", "-q", "data/train.csv")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Dataset v2: 600 rows from the new collection")
    run_all(("baseline on the new data", {}))

    say("code change: L2 regularisation (commit)")
    (root / "train.py").write_text(TRAIN_PY.replace("L2 * wi", "0.01 * wi"))
    _git(root, "commit", "-q", "-am", "Add L2 regularisation (0.01)")
    run_all(("baseline with L2", {}))
    Store(project.store_file).update_run(
        Store(project.store_file).runs()[0]["id"], {"tags": ["baseline"]}
    )
    say(f"done: {len(Store(project.store_file).runs())} runs in {project.store_file}")
    return project
