"""MLflow's own kinds of script, unchanged, under `ctui run --follow` (real mlflow, real sqlite
store, real supervisor): the quickstart (`set_experiment` + `start_run` + `log_model`), sklearn
autolog, nested runs, a job that dies inside a nested run, several top-level runs, a job that
never calls MLflow. Each ctui run ends linked both ways to exactly one top-level MLflow run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.integrations import mlflow_bridge as bridge
from ctui.store import Store
from tests.test_mlflow_bridge import (
    _no_user_mlflow_env,  # noqa: F401 - autouse fixture
    new_mlflow_store,
)

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return new_mlflow_store(tmp_path_factory, "mlflow-scripts")


def _setup(project: Any, script: str, uri: str | None, experiment: str = "ctui-exp") -> None:
    (project.root / "train.py").write_text(textwrap.dedent(script))
    where = f'tracking_uri = "{uri}"\n' if uri else ""
    (project.root / "ctui.toml").write_text(
        f'[jobs.train]\ncommand = "{sys.executable} train.py --lr {{lr}}"\n'
        f"params = {{ lr = 0.01 }}\n\n"
        f'[mlflow]\nenabled = true\n{where}experiment = "{experiment}"\n'
    )


def ctui(project: Any, *args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "ctui", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400", **(env or {})},
        timeout=150,
    )


def _follow(project: Any, env: dict[str, str] | None = None) -> tuple[dict[str, Any], Any]:
    """`ctui run train --follow`; the run document as the store holds it when ctui returned."""
    out = ctui(project, "run", "train", "--follow", env=env)
    returned = time.time()
    (doc,) = [r for r in Store(project.store_file).runs() if r.get("backend") == "local"][-1:]
    doc["_returned"] = returned
    return doc, out


def _tagged(uri: str, ctui_id: str) -> list[Any]:
    cl = bridge.client(uri)
    exps = [e.experiment_id for e in cl.search_experiments()]
    return list(cl.search_runs(exps, filter_string=f"tags.`{bridge.RUN_TAG}` = '{ctui_id}'"))


def _check_linked(uri: str, doc: dict[str, Any]) -> Any:
    """Both ways: the ctui run names the MLflow run and experiment; the MLflow run carries
    `ctui.run_id`; it is the only top-level MLflow run of the ctui run."""
    assert doc["status"] == "succeeded", (doc.get("error"), doc.get("log_tail"))
    ml = doc["mlflow"]
    assert ml["sync"] == "ok", ml  # --follow returned after the sync, not before
    tagged = _tagged(uri, doc["id"])
    tops = [r for r in tagged if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in tops] == [ml["run_id"]]
    got = bridge.client(uri).get_run(ml["run_id"])
    assert str(got.info.experiment_id) == ml["experiment_id"]
    assert got.data.tags[bridge.RUN_TAG] == doc["id"]
    assert got.info.status == "FINISHED"
    # MLflow's standard system tags, the manifest, ctui's params
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=doc["cwd"], capture_output=True, text=True
    ).stdout.strip()
    assert got.data.tags["mlflow.source.git.commit"] == commit
    assert got.data.tags["mlflow.source.name"].endswith("train.py")
    assert got.data.tags["mlflow.source.type"] == "LOCAL"
    assert got.data.tags["mlflow.user"]
    assert got.data.params["lr"] == "0.01"
    cl = bridge.client(uri)
    assert "manifest.json" in [a.path for a in cl.list_artifacts(ml["run_id"])]
    return got


QUICKSTART = """
    import mlflow, mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input

    mlflow.set_experiment("MLflow Quickstart")   # not ctui's experiment
    with mlflow.start_run():
        mlflow.log_params({"solver": "lbfgs", "max_iter": 100})
        for step in range(4):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("accuracy", 0.9)
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=["mlflow"])
    print("quickstart done")
"""


def test_quickstart_set_experiment_start_run_log_model(project: Any, store_uri: str) -> None:
    _setup(project, QUICKSTART, store_uri)
    doc, out = _follow(project)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "quickstart done" in out.stdout
    assert "Cannot start run" not in out.stdout + out.stderr
    doc["cwd"] = project.root
    got = _check_linked(store_uri, doc)
    assert doc["mlflow"]["experiment"] == "MLflow Quickstart"  # adopted where the job put it
    assert doc["mlflow"]["created_by"] == "job"
    assert got.data.params["solver"] == "lbfgs"
    history = bridge.client(store_uri).get_metric_history(got.info.run_id, "loss")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    assert all(m.timestamp > 0 for m in history)
    # the job's MLflow metrics are visible in ctui: final values and histories
    assert doc["metrics"]["accuracy"] == pytest.approx(0.9)
    assert doc["metrics"]["loss"] == pytest.approx(0.25)
    points = bridge.read_metric_points(project.run_dir(doc["id"]))
    assert [step for _, _, step in points["loss"]] == [0, 1, 2, 3]
    models = bridge.client(store_uri).search_logged_models(
        experiment_ids=[doc["mlflow"]["experiment_id"]]
    )
    assert got.info.run_id in {m.source_run_id for m in models}


AUTOLOG = """
    import mlflow
    import numpy as np
    from sklearn.linear_model import LinearRegression

    mlflow.autolog()
    X = np.arange(8, dtype=float).reshape(-1, 1)
    LinearRegression().fit(X, 2 * X[:, 0] + 1)
    print("autolog done")
"""


def test_sklearn_autolog(project: Any, store_uri: str) -> None:
    pytest.importorskip("sklearn")
    _setup(project, AUTOLOG, store_uri, experiment="autolog-exp")
    doc, out = _follow(project)
    assert out.returncode == 0, out.stdout + out.stderr
    doc["cwd"] = project.root
    got = _check_linked(store_uri, doc)
    assert doc["mlflow"]["experiment"] == "autolog-exp"  # the job set none: ctui's
    assert got.data.tags.get("mlflow.autologging") == "sklearn"
    assert got.data.params["fit_intercept"] == "True"
    assert doc["metrics"]["training_r2_score"] == pytest.approx(1.0)


NESTED = """
    import mlflow

    with mlflow.start_run(run_name="search"):
        for lr in (0.1, 0.01, 0.001):
            with mlflow.start_run(nested=True):
                mlflow.log_param("trial_lr", lr)
                mlflow.log_metric("val_loss", lr * 10)
        mlflow.log_metric("best_val_loss", 0.01)
"""


def test_nested_runs_one_parent_per_ctui_run(project: Any, store_uri: str) -> None:
    _setup(project, NESTED, store_uri, experiment="nested-exp")
    doc, out = _follow(project)
    assert out.returncode == 0, out.stdout + out.stderr
    doc["cwd"] = project.root
    got = _check_linked(store_uri, doc)
    assert got.info.run_name == "search"
    children = [r for r in _tagged(store_uri, doc["id"]) if r.info.run_id != got.info.run_id]
    assert len(children) == 3 and doc["mlflow"]["nested"] == 3
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {got.info.run_id}
    assert doc["metrics"]["best_val_loss"] == pytest.approx(0.01)


def test_a_job_dying_inside_a_nested_run_closes_both(project: Any, store_uri: str) -> None:
    script = """
        import os, mlflow
        with mlflow.start_run():
            with mlflow.start_run(nested=True):
                mlflow.log_metric("x", 1.0)
                os._exit(3)   # no end_run, no atexit: both MLflow runs are left RUNNING
    """
    _setup(project, script, store_uri, experiment="dying-exp")
    doc, out = _follow(project)
    assert out.returncode == 1 and doc["status"] == "failed"
    assert doc["mlflow"]["sync"] == "ok"
    runs = _tagged(store_uri, doc["id"])
    assert len(runs) == 2
    assert {r.info.status for r in runs} == {"FAILED"}


def test_several_top_level_runs_adopt_the_first(project: Any, store_uri: str) -> None:
    script = """
        import mlflow
        for i in range(2):
            with mlflow.start_run(run_name=f"part{i}"):
                mlflow.log_metric("i", i)
    """
    _setup(project, script, store_uri, experiment="several-exp")
    doc, out = _follow(project)
    assert out.returncode == 0, out.stderr
    got = bridge.client(store_uri).get_run(doc["mlflow"]["run_id"])
    assert got.info.run_name == "part0"
    assert len(doc["mlflow"]["other_runs"]) == 1


def test_mlflow_tracking_uri_from_the_environment(project: Any, tmp_path: Path) -> None:
    """No [mlflow] tracking_uri: the exported MLFLOW_TRACKING_URI is used, not .ctui/mlflow.db;
    ctui doctor and ctui show say so."""
    theirs = tmp_path / "theirs.db"
    _setup(project, "import mlflow\nmlflow.log_metric('m', 1.0)\n", None, experiment="env-exp")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{theirs}"}
    doc, out = _follow(project, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert doc["mlflow"]["tracking_uri"] == f"sqlite:///{theirs}"
    assert doc["mlflow"]["tracking_uri_from"] == "MLFLOW_TRACKING_URI"
    assert doc["mlflow"]["sync"] == "ok" and doc["metrics"]["m"] == 1.0
    assert not (project.state_dir / "mlflow.db").exists()
    assert bridge.client(f"sqlite:///{theirs}").get_run(doc["mlflow"]["run_id"])
    shown = ctui(project, "show", doc["id"], env=env)
    assert "set by MLFLOW_TRACKING_URI" in " ".join(shown.stdout.split()), shown.stdout
    doctor = ctui(project, "doctor", env=env)
    line = " ".join(doctor.stdout.split())
    assert f"MLflow runs go to sqlite:///{theirs}" in line and "set by MLFLOW_TRACKING_URI" in line
    # import reads the same store, and [mlflow] tracking_uri in ctui.toml wins over the variable
    imported = ctui(project, "import", "mlflow", "--experiment", "env-exp", env=env)
    assert imported.returncode == 0 and "imported 0, updated 0" in imported.stdout
    assert not (project.state_dir / "mlflow.db").exists()


def test_follow_with_the_server_down_says_sync_pending(project: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = "from ctui import track\ntrack.log_metric('loss', 0.5)\n"
    _setup(project, script, f"http://127.0.0.1:{port}", experiment="down")
    doc, out = _follow(project)
    assert out.returncode == 0, out.stderr
    assert "MLflow sync pending: ctui sync retries" in out.stderr
    assert doc["mlflow"]["sync"] == "pending" and doc["mlflow"]["tried"] >= doc["ended"]
    assert doc["_returned"] - doc["ended"] < 30  # the failed attempt ends the wait


def test_follow_json_prints_the_synced_run(project: Any, store_uri: str) -> None:
    _setup(project, "import mlflow\nmlflow.log_metric('acc', 0.75)\n", store_uri, "json-exp")
    out = ctui(project, "run", "train", "--follow", "--json")
    assert out.returncode == 0, out.stderr
    final = orjson.loads(out.stdout[out.stdout.index("{") :])
    assert final["mlflow"]["sync"] == "ok" and final["metrics"]["acc"] == 0.75


def test_mlflow_metrics_win_over_those_printed(project: Any, store_uri: str) -> None:
    """A script that logs to MLflow and also prints `acc=…`: the run's metrics are MLflow's;
    the numbers read from its output only stand in for a run that logged none."""
    script = """
    import mlflow
    mlflow.set_experiment("ctui-exp")
    with mlflow.start_run():
        print("epoch 1 acc=0.10 loss=2.5", flush=True)
        mlflow.log_metric("acc", 0.9)
    """
    _setup(project, script, store_uri)
    doc, out = _follow(project)
    doc["cwd"] = project.root
    _check_linked(store_uri, doc)
    assert doc["metrics"]["acc"] == 0.9, doc["metrics"]
    assert doc["metrics"].get("loss") is None, doc["metrics"]
    assert doc.get("metrics_from") is None
