"""What follows a promotion, called directly: `on_promote` (real processes, a timeout that
kills the group), `[notify] command`, MLflow's Model Registry (a real sqlite store), and the
`promoted` trigger kind."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from ctui.config import load_config
from ctui.errors import ConfigError
from ctui.gate import actions
from ctui.store import CAUSES, Store
from ctui.triggers.base import FIRE, IDLE, Context
from ctui.triggers.evaluate import evaluate_trigger
from ctui.triggers.validate import validate_all
from tests.jobs_helpers import wait_for

pytestmark = pytest.mark.timeout(120)
PY = sys.executable

RECORD = """\
import json, os, sys
out = os.environ["RECORD_TO"]
with open(out, "a") as fh:
    fh.write(json.dumps({
        "argv": sys.argv[1:],
        "run_id": os.environ.get("CTUI_RUN_ID"),
        "job": os.environ.get("CTUI_JOB"),
        "previous": os.environ.get("CTUI_PREVIOUS_RUN"),
        "event": os.environ.get("CTUI_EVENT"),
        "param": os.environ.get("CTUI_PARAM_LR"),
        "stdin": sys.stdin.read() if not sys.stdin.isatty() else "",
        "cwd": os.getcwd(),
    }) + "\\n")
print("deploying; db_password = 'hunter2-is-secret'")
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""

HANG = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(str(child.pid))
print("started", flush=True)
time.sleep(600)
"""


def _config(root: Path, gate: str = "", notify: str = "") -> Any:
    (root / "ctui.toml").write_text(
        f'[jobs.train]\ncommand = "true"\n\n[jobs.train.gate]\nrules = []\n{gate}\n{notify}'
    )
    return load_config(root)


def _promotion(run: str = "r-new", previous: str | None = "r-old") -> dict[str, Any]:
    return {"id": "p1", "job": "train", "run": run, "previous": previous, "by": "gate"}


@pytest.fixture
def scripts(project, monkeypatch: pytest.MonkeyPatch) -> Path:
    (project.root / "record.py").write_text(RECORD)
    (project.root / "hang.py").write_text(HANG)
    out = project.root / "record.jsonl"
    monkeypatch.setenv("RECORD_TO", str(out))
    return out


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_on_promote_runs_with_placeholders_env_and_a_redacted_log(
    project, scripts, monkeypatch
) -> None:
    monkeypatch.setenv("CTUI_PARAM_LR", "0.1")  # a job's variable in the caller's env
    config = _config(
        project.root, f'on_promote = "{PY} record.py --model {{run_dir}}/model.pkl {{previous}}"'
    )
    out = actions.after_promotion(project, config, _promotion())
    rec = out["on_promote"]
    assert rec["ok"] is True and rec["exit_code"] == 0 and rec["error"] is None
    run_dir = project.run_dir("r-new")
    assert rec["argv"] == [PY, "record.py", "--model", f"{run_dir}/model.pkl", "r-old"]
    assert out["registered"] is None
    (seen,) = _records(scripts)
    assert seen["run_id"] == "r-new" and seen["job"] == "train" and seen["previous"] == "r-old"
    assert Path(seen["cwd"]) == project.root and seen["param"] is None
    log = Path(rec["log"])
    assert log == run_dir / "on_promote.log"
    text = log.read_text()
    assert "deploying" in text and "hunter2-is-secret" not in text


def test_on_promote_that_fails_is_recorded(project, scripts, monkeypatch) -> None:
    monkeypatch.setenv("EXIT_WITH", "3")
    config = _config(project.root, f'on_promote = "{PY} record.py"')
    rec = actions.after_promotion(project, config, _promotion(previous=None))["on_promote"]
    assert rec["ok"] is False and rec["exit_code"] == 3 and rec["error"] == "exited 3"
    assert _records(scripts)[0]["previous"] == ""


def test_on_promote_that_hangs_is_killed_with_its_group(project, scripts) -> None:
    pidfile = project.root / "child.pid"
    config = _config(
        project.root, f'on_promote = "{PY} hang.py {pidfile}"\non_promote_timeout = "1s"'
    )
    rec = actions.after_promotion(project, config, _promotion())["on_promote"]
    assert rec["ok"] is False and rec["exit_code"] is None
    assert "timed out after 1 s" in rec["error"]
    assert "started" in Path(rec["log"]).read_text()
    child = int(pidfile.read_text())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"

    wait_for(gone, timeout=10)


def test_on_promote_that_cannot_start_is_recorded(project) -> None:
    config = _config(project.root, 'on_promote = "no-such-program-xyz {run_id}"')
    rec = actions.after_promotion(project, config, _promotion())["on_promote"]
    assert rec["ok"] is False and rec["error"] == "command not found: no-such-program-xyz"
    # a template that slipped past the config check is a recorded failure too, not a raise
    config.jobs["train"].gate.on_promote = "echo {model}"
    rec = actions.after_promotion(project, config, _promotion())["on_promote"]
    assert rec["ok"] is False and "unknown placeholder {model}" in rec["error"]


def test_no_gate_means_nothing_follows(project) -> None:
    (project.root / "ctui.toml").write_text('[jobs.train]\ncommand = "true"\n')
    out = actions.after_promotion(project, load_config(project.root), _promotion())
    assert out == {"on_promote": None, "registered": None}


def _notify_log(project) -> list[dict[str, Any]]:
    path = project.state_dir / "notify.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_notify_gets_placeholders_and_the_context_as_json(project, scripts) -> None:
    config = _config(
        project.root,
        notify=f'[notify]\ncommand = "{PY} record.py {{event}} {{job}} {{run_id}} {{verdict}} '
        f'{{champion}}"\non = ["rejected"]\n',
    )
    ctx = {"job": "train", "run_id": "r2", "verdict": "not promoted: x", "champion": "r1"}
    actions.notify(project, config, "promoted", ctx)  # not in `on`
    assert _records(scripts) == [] and _notify_log(project) == []
    actions.notify(project, config, "rejected", ctx)
    (seen,) = _records(scripts)
    assert seen["argv"] == ["rejected", "train", "r2", "not promoted: x", "r1"]
    assert seen["event"] == "rejected"
    assert json.loads(seen["stdin"]) == {**ctx, "event": "rejected"}
    (entry,) = _notify_log(project)
    assert entry["ok"] is True and entry["event"] == "rejected" and entry["run_id"] == "r2"
    assert "hunter2-is-secret" not in json.dumps(entry) and "deploying" in entry["output"]


def test_notify_failure_and_hang_are_logged_not_raised(project, scripts, monkeypatch) -> None:
    monkeypatch.setenv("EXIT_WITH", "7")
    config = _config(project.root, notify=f'[notify]\ncommand = "{PY} record.py"\n')
    actions.notify(project, config, "promoted", {"run_id": "r1"})
    pidfile = project.root / "child.pid"
    config = _config(
        project.root, notify=f'[notify]\ncommand = "{PY} hang.py {pidfile}"\ntimeout = "1s"\n'
    )
    actions.notify(project, config, "promoted", {"run_id": "r2"})
    failed, hung = _notify_log(project)
    assert failed["ok"] is False and failed["error"] == "exited 7"
    assert hung["ok"] is False and "timed out after 1 s" in hung["error"]
    assert not list(project.state_dir.glob("notify.*.out"))


# -- MLflow's Model Registry ------------------------------------------------------------------


def _mlflow_run(uri: str, with_model: bool = True) -> str:
    """A finished MLflow run holding `model/MLmodel` (what a job's `log_model` leaves); no
    global MLflow state set."""
    from mlflow.tracking import MlflowClient

    cl = MlflowClient(uri)
    exp = cl.get_experiment_by_name("gate") or cl.get_experiment(cl.create_experiment("gate"))
    run = cl.create_run(exp.experiment_id)
    if with_model:
        cl.log_text(run.info.run_id, "flavors: {}\n", "model/MLmodel")
    else:
        cl.log_text(run.info.run_id, "x", "other/file.txt")
    cl.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def test_register_moves_the_champion_alias_and_reuses_a_version_on_rollback(
    project, monkeypatch
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from ctui.integrations import mlflow_registry

    uri = f"sqlite:///{project.root}/models.db"  # not MLflow's default (./mlflow.db)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    config = _config(project.root, 'register = "clf"', f'[mlflow]\ntracking_uri = "{uri}"\n')
    store = Store(project.store_file)
    ids = {}
    for name in ("a", "b"):
        ids[name] = _mlflow_run(uri)
        store.insert_run({"id": name, "job": "train", "mlflow": {"run_id": ids[name]}})
    store.insert_run(
        {"id": "nomodel", "job": "train", "mlflow": {"run_id": _mlflow_run(uri, False)}}
    )
    store.insert_run({"id": "noml", "job": "train"})
    cl = MlflowClient(uri, registry_uri=uri)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()

    first = actions.after_promotion(project, config, _promotion("a", None))["registered"]
    assert first["ok"] is True and first["version"] == "1" and first["previous_version"] is None
    assert cl.get_model_version_by_alias("clf", "champion").run_id == ids["a"]
    second = mlflow_registry.register(project, config, "b", "clf")
    assert second["ok"] and second["version"] == "2" and second["previous_version"] == "1"
    assert str(cl.get_model_version_by_alias("clf", "champion").version) == "2"
    back = mlflow_registry.register(project, config, "a", "clf")
    assert back["ok"] and back["version"] == "1" and back["reused"] is True
    assert cl.get_model_version_by_alias("clf", "champion").run_id == ids["a"]
    assert len(cl.search_model_versions("name = 'clf'")) == 2
    # MLflow's global URIs are as they were (a TUI talks to other stores after)
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before != (uri, uri)
    assert "MLFLOW_TRACKING_URI" not in os.environ

    # a rollback after a failed on_promote puts the alias back without a new version
    rollback = {**_promotion("b", "a"), "by": "rollback"}
    assert actions.after_rollback(project, config, rollback)["registered"]["version"] == "2"
    assert str(cl.get_model_version_by_alias("clf", "champion").version) == "2"
    back = actions.after_rollback(project, config, {**rollback, "run": "a"})["registered"]
    assert back["ok"] and back["version"] == "1" and back["reused"] is True

    missing = mlflow_registry.register(project, config, "nomodel", "clf")
    assert missing["ok"] is False and "has no artifact 'model'" in missing["error"]
    none = mlflow_registry.register(project, config, "noml", "clf")
    assert none["ok"] is False and "has no MLflow run" in none["error"]
    assert cl.get_model_version_by_alias("clf", "champion").run_id == ids["a"]


# -- on = "promoted" --------------------------------------------------------------------------

PROMOTED = """
[jobs.train]
command = "true"

[jobs.deploy]
command = "true {run}"
params = { run = "" }

[triggers.ship]
job = "deploy"
on = "promoted"
after = "train"
params = { run = "{upstream_run}" }
"""


def test_promoted_trigger_fires_once_per_promotion_after_it_was_first_seen(project) -> None:
    (project.root / "ctui.toml").write_text(PROMOTED)
    config = load_config(project.root)
    tc = config.triggers["ship"]
    old = {"id": "p0", "job": "train", "run": "r0", "previous": None, "at": 100.0, "by": "gate"}
    data: dict[str, Any] = {"promotions": {"p0": old}, "triggers": {}}

    def look(now: float) -> Any:
        return evaluate_trigger(tc, Context(project=project, config=config, data=data, now=now))

    first = look(200.0)
    assert first.status == IDLE and first.causes == [] and first.memory == {"since": 200.0}
    data["triggers"] = {"ship": {"since": 200.0}}
    assert look(250.0).status == IDLE  # the promotion before it was first seen is history
    data["promotions"]["p1"] = {**old, "id": "p1", "run": "r1", "previous": "r0", "at": 300.0}
    data["promotions"]["px"] = {**old, "id": "px", "job": "other", "at": 300.0}
    fired = look(310.0)
    assert fired.status == FIRE
    (cause,) = fired.causes
    assert cause.key == "promoted:ship:p1"
    assert cause.context == {"upstream_run": "r1", "promotion": "p1", "previous": "r0"}
    data[CAUSES] = {cause.key: {}}
    assert look(320.0).causes == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('on = "promoted"', "triggers.t.after"),
        ('on = "promoted"\nafter = "nope"', "known: deploy, train"),
        ('on = "promoted"\nafter = "train"\nstatus = "failed"', "unknown key(s) status"),
        ('on = "promoted"\nafter = "train"\nparams = { run = "{commit}" }', "{commit}"),
    ],
)
def test_promoted_trigger_validation(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "ctui.toml").write_text(
        '[jobs.train]\ncommand = "true"\n\n[jobs.deploy]\ncommand = "true"\n'
        f'params = {{ run = "" }}\n\n[triggers.t]\njob = "deploy"\n{table}\n'
    )
    with pytest.raises(ConfigError) as err:
        validate_all(load_config(tmp_path))
    assert message in str(err.value)
