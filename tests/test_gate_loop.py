"""The continuous-training loop end to end: real git, real DVC, real MLflow (sqlite), the
watcher as a process. New data → `ctui watch --once` retrains → the gate rejects a worse
model (champion kept, verdict recorded, `rejected` notified) → more data → a better model is
promoted (`on_promote` runs with its run id, the registry's `champion` alias moves, the
`promoted` trigger launches the deploy job once) → `ctui promote` rolls back by hand →
`ctui champion train --history` lists it all. `on_promote` that hangs or fails is recorded
and the loop goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.store import Store
from tests.jobs_helpers import wait_for
from tests.test_triggers_helpers import PY, ctui, dvc, git, runs, wait_final, write_config

pytestmark = pytest.mark.timeout(180)

TRAIN = """\
import csv, mlflow
from sklearn.linear_model import LogisticRegression

rows = list(csv.reader(open("data/raw.csv")))[1:]
acc = float(rows[-1][1])  # the data says how good the model trained on it comes out
model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
with mlflow.start_run():
    mlflow.log_metric("acc", acc)
    mlflow.log_metric("rows", len(rows))
    mlflow.sklearn.log_model(model, name="model", pip_requirements=[])
print("trained on", len(rows), "rows: acc", acc)
"""

# what on_promote does, per promotion, is read from a file the test writes
ON_PROMOTE = """\
import json, os, sys, time
mode = open("on_promote.mode").read().strip()
with open("on_promote.jsonl", "a") as fh:
    fh.write(json.dumps({"run_id": os.environ["CTUI_RUN_ID"], "argv": sys.argv[1:],
                         "previous": os.environ["CTUI_PREVIOUS_RUN"], "mode": mode,
                         "model": os.environ.get("CTUI_MODEL_VERSION")}) + "\\n")
print("on_promote", mode, flush=True)
if mode == "hang":
    time.sleep(600)
sys.exit(1 if mode == "fail" else 0)
"""

NOTIFY = """\
import json, sys
with open("notify.jsonl", "a") as fh:
    fh.write(json.dumps({"argv": sys.argv[1:], "stdin": json.load(sys.stdin)}) + "\\n")
"""

DEPLOY = """\
import os, sys
with open("deploy.log", "a") as fh:
    fh.write(os.environ["CTUI_RUN_ID"] + " " + " ".join(sys.argv[1:]) + "\\n")
"""

CONFIG = f"""
[mlflow]
tracking_uri = "sqlite:///mlflow.db"
experiment = "loop"

[jobs.train]
command = "{PY} train.py"

[jobs.train.gate]
rules = ["metric.acc >= champion.acc - 0.005", "metric.acc > 0.2"]
on_promote = "{PY} on_promote.py {{run_id}} {{previous}}"
on_promote_timeout = "1s"
register = "clf"

[jobs.deploy]
command = "{PY} deploy.py {{model_run}} {{promotion}}"
params = {{ model_run = "", promotion = "" }}

[notify]
command = "{PY} notify.py {{event}} {{run_id}} {{champion}}"

[triggers.new-data]
job = "train"
on = "data"
debounce = "0s"

[triggers.ship]
job = "deploy"
on = "promoted"
after = "train"
params = {{ model_run = "{{upstream_run}}", promotion = "{{promotion}}" }}
"""


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _watch(root: Path) -> list[str]:
    """`ctui watch --once`: the ids of the runs it launched."""
    out = ctui(root, "watch", "--once", "--json")
    assert out.returncode == 0, out.stderr
    return [
        str(x["run"] if isinstance(x, dict) else x) for x in orjson.loads(out.stdout)["launched"]
    ]


def _new_data(root: Path, row: str) -> None:
    with open(root / "data" / "raw.csv", "a") as fh:
        fh.write(row + "\n")
    dvc(root, "add", "-q", "data/raw.csv")
    git(root, "add", "data/raw.csv.dvc")
    git(root, "commit", "-q", "-m", f"data: {row}")


def _promotions(root: Path) -> list[dict[str, Any]]:
    docs = Store(root / ".ctui" / "ctui.json").docs("promotions").values()
    return sorted(docs, key=lambda d: (d["at"], d["id"]))


def _followed(root: Path, n: int) -> list[dict[str, Any]]:
    """Wait until there are `n` promotions and what follows each (on_promote) is recorded."""

    def done() -> list[dict[str, Any]] | None:
        got = _promotions(root)
        return got if len(got) == n and all(p.get("on_promote") for p in got) else None

    result: list[dict[str, Any]] = wait_for(done, timeout=60)
    return result


def _run(root: Path, run_id: str) -> dict[str, Any]:
    return next(r for r in runs(root) if r["id"] == run_id)


def _champion(root: Path) -> dict[str, Any]:
    out = ctui(root, "champion", "train", "--history", "--json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = orjson.loads(out.stdout)
    return doc


def _alias(root: Path) -> tuple[str, str]:
    """(version, MLflow run id) the registry's `clf@champion` points at."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root}/mlflow.db"
    mv = MlflowClient(uri, registry_uri=uri).get_model_version_by_alias("clf", "champion")
    return str(mv.version), str(mv.run_id)


def test_retrain_gate_promote_deploy_and_roll_back(project) -> None:
    root = project.root
    for name, text in {
        "train.py": TRAIN,
        "on_promote.py": ON_PROMOTE,
        "notify.py": NOTIFY,
        "deploy.py": DEPLOY,
    }.items():
        (root / name).write_text(text)
    (root / ".gitignore").write_text(
        ".ctui/\nmlflow.db\nmlruns/\nmlartifacts/\n*.jsonl\n*.mode\ndeploy.log\n"
    )
    write_config(root, CONFIG)
    dvc(root, "init", "-q")
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("x,acc\n1,0.50\n")
    dvc(root, "add", "-q", "data/raw.csv")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a training project with DVC data")

    # 1. the first run on this data: champion (no champion to beat); on_promote hangs
    (root / "on_promote.mode").write_text("hang")
    (first,) = _watch(root)
    wait_final(root)
    (p1,) = _followed(root, 1)
    assert p1["run"] == first and p1["by"] == "gate" and p1["previous"] is None
    assert p1["on_promote"]["ok"] is False and "timed out after 1 s" in p1["on_promote"]["error"]
    assert "on_promote hang" in Path(p1["on_promote"]["log"]).read_text()
    assert p1["registered"]["ok"] is True and p1["registered"]["version"] == "1"
    assert wait_for(lambda: (_run(root, first).get("gate") or {}).get("promoted"), timeout=30)
    mlflow_first = _run(root, first)["mlflow"]["run_id"]
    assert _alias(root) == ("1", mlflow_first)

    # 2. new data, a worse model: rejected, the champion stays; the first promotion deploys
    (root / "on_promote.mode").write_text("ok")
    _new_data(root, "2,0.40")
    launched = _watch(root)
    assert len(launched) == 2  # the retrain, and the deploy of the first promotion
    wait_final(root)
    worse = next(i for i in launched if _run(root, i)["job"] == "train")
    gate = wait_for(lambda: _run(root, worse).get("gate"), timeout=60)
    assert gate["passed"] is False and gate["promoted"] is False
    assert gate["verdict"].startswith("not promoted: metric.acc 0.4 >= champion.acc 0.5")
    assert gate["champion"] == first
    assert _champion(root)["id"] == first
    rejected = wait_for(lambda: _lines(root / "notify.jsonl")[1:] or None, timeout=30)
    assert [n["argv"] for n in _lines(root / "notify.jsonl")] == [
        ["promoted", first, first],
        ["rejected", worse, first],
    ]
    assert rejected[0]["stdin"]["verdict"] == gate["verdict"]
    assert len(_promotions(root)) == 1

    # 3. more data, a better model: promoted, on_promote with its run id, the alias moves
    _new_data(root, "3,0.70")
    (better,) = _watch(root)
    wait_final(root)
    _, p2 = _followed(root, 2)
    assert p2["run"] == better and p2["previous"] == first and p2["by"] == "gate"
    assert p2["on_promote"]["ok"] is True and p2["on_promote"]["exit_code"] == 0
    assert _lines(root / "on_promote.jsonl")[-1] == {
        "run_id": better,
        "argv": [better, first],
        "previous": first,
        "mode": "ok",
        "model": p2["registered"]["version"],
    }
    assert p2["registered"]["ok"] is True and p2["registered"]["previous_version"] == "1"
    assert _alias(root) == (p2["registered"]["version"], _run(root, better)["mlflow"]["run_id"])
    assert _champion(root)["id"] == better
    assert wait_for(lambda: (_run(root, better).get("gate") or {}).get("promoted"), timeout=30)

    # the promoted trigger deploys it once; a second look launches nothing more
    (deploy,) = _watch(root)
    wait_final(root)
    assert _watch(root) == []
    deploys = [r for r in runs(root) if r["job"] == "deploy"]
    assert [r["params"] for r in deploys] == [
        {"model_run": first, "promotion": p1["id"]},
        {"model_run": better, "promotion": p2["id"]},
    ]
    assert deploys[-1]["id"] == deploy and all(r["status"] == "succeeded" for r in deploys)
    assert (root / "deploy.log").read_text().splitlines()[-1] == f"{deploy} {better} {p2['id']}"

    # 4. roll back by hand; on_promote fails this time: recorded, the promotion stands
    (root / "on_promote.mode").write_text("fail")
    out = ctui(root, "promote", first, "--json")
    assert out.returncode == 0, out.stderr
    back = orjson.loads(out.stdout)
    assert back["run"] == first and back["previous"] == better and back["by"] == "manual"
    assert back["on_promote"]["ok"] is False and back["on_promote"]["exit_code"] == 1
    assert back["registered"]["version"] == "1" and back["registered"]["reused"] is True
    assert _alias(root) == ("1", mlflow_first)
    doc = _champion(root)
    assert doc["id"] == first
    assert [(h["run"], h["previous"], h["by"]) for h in doc["history"]] == [
        (first, None, "gate"),
        (better, first, "gate"),
        (first, better, "manual"),
    ]
    text = ctui(root, "champion", "train", "--history")
    assert text.returncode == 0, text.stderr
    for word in (first, better, "gate", "manual"):
        assert word in text.stdout

    # the watcher goes on: the rollback is a promotion too, deployed once
    (redeploy,) = _watch(root)
    wait_final(root)
    assert _run(root, redeploy)["params"] == {"model_run": first, "promotion": back["id"]}
    assert _watch(root) == []
    assert len(_lines(root / "on_promote.jsonl")) == 3
