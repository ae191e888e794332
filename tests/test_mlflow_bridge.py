"""MLflow bridge against a real MLflow sqlite store (one per pytest session), with real jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.config import load_config
from ctui.ids import new_run_id
from ctui.integrations import mlflow_bridge as bridge
from ctui.integrations.mlflow_import import import_runs
from ctui.store import Store

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _no_user_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own MLflow variables must not steer these tests (their subprocesses too);
    credentials ctui moves into MLflow's variables are gone after each test."""
    for name in {*os.environ, "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}:
        if name.startswith("MLFLOW_"):
            monkeypatch.setenv(name, "")  # recorded, so it is restored (or unset) afterwards
            monkeypatch.delenv(name)


REPO = Path(__file__).resolve().parent.parent

JOB = textwrap.dedent(
    """
    import mlflow
    from ctui import track

    mlflow.log_param("optimizer", "sgd")
    for step in range(5):
        track.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metric("acc", 0.93)
    track.log_params(seed=7)
    print("trained")
    """
)


def new_mlflow_store(tmp_path_factory: pytest.TempPathFactory, name: str) -> str:
    """The URI of a fresh real MLflow sqlite store, its schema made."""
    db = tmp_path_factory.mktemp(name) / "mlflow.db"
    uri = f"sqlite:///{db}"
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments()  # creates the schema once
    return uri


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One real MLflow sqlite store for the whole session (creating one costs seconds)."""
    return new_mlflow_store(tmp_path_factory, "mlflow")


def _configure(project: Any, uri: str, experiment: str) -> Any:
    (project.root / "ctui.toml").write_text(
        textwrap.dedent(
            f"""
            [jobs.train]
            command = "python train.py --lr {{lr}}"
            params = {{ lr = 0.01 }}

            [mlflow]
            enabled = true
            tracking_uri = "{uri}"
            experiment = "{experiment}"
            """
        )
    )
    return load_config(project.root)


def _new_run(project: Any, **fields: Any) -> dict[str, Any]:
    from ctui import manifest
    from ctui.objects import ObjectStore

    hashes = manifest.save(
        ObjectStore(project.objects_dir), manifest.capture(project.root, sections=("code",))
    )
    run_id = new_run_id()
    doc = {
        "id": run_id,
        "job": "train",
        "status": "running",
        "created": 1_790_000_000.0,
        "started": 1_790_000_000.0,
        "params": {"lr": 0.01},
        "manifest": hashes,
        "backend": "local",
        **fields,
    }
    project.run_dir(run_id).mkdir(parents=True)
    Store(project.store_file).insert_run(doc)
    return doc


def _run_job(project: Any, run: dict[str, Any], env: dict[str, str], script: str = JOB) -> int:
    (project.root / "train.py").write_text(script)
    full = {
        **os.environ,
        **env,
        "CTUI_RUN_DIR": str(project.run_dir(run["id"])),
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=project.root, env=full, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.returncode


def _start(project: Any, config: Any, run: dict[str, Any]) -> dict[str, str]:
    """What the launcher and then the supervisor do before the job: its MLflow variables."""
    env = bridge.before_launch(project, config, run)
    run["mlflow"].update(bridge.before_job(project, env))
    return env


def _finish(project: Any, run: dict[str, Any], status: str = "succeeded", code: int = 0) -> None:
    run.update(status=status, exit_code=code, ended=1_790_000_060.0)
    Store(project.store_file).update_run(
        run["id"], {"status": status, "exit_code": code, "ended": 1_790_000_060.0}
    )


def test_job_logs_into_the_run_it_starts_and_ctui_adopts_it(project: Any, mlflow_uri: str) -> None:
    config = _configure(project, mlflow_uri, "bridge-basic")
    run = _new_run(project)
    env = bridge.before_launch(project, config, run)
    assert run["mlflow"]["sync"] == "pending"  # the launch asks MLflow nothing
    run["mlflow"].update(bridge.before_job(project, env))  # as the supervisor does

    assert env["MLFLOW_TRACKING_URI"] == mlflow_uri
    assert env["MLFLOW_EXPERIMENT_NAME"] == "bridge-basic"
    assert "MLFLOW_EXPERIMENT_ID" not in env  # the name finds it; a stale id would crash
    assert "MLFLOW_RUN_ID" not in env  # resuming it would crash a job's own set_experiment
    assert orjson.loads(env["MLFLOW_RUN_CONTEXT"])[bridge.RUN_TAG] == run["id"]
    assert run["mlflow"]["sync"] == "ok" and run["mlflow"]["run_id"] is None
    exp = bridge.client(mlflow_uri).get_experiment_by_name("bridge-basic")
    assert run["mlflow"]["experiment_id"] == exp.experiment_id
    assert exp.artifact_location.endswith("/mlartifacts")  # beside the database, not ./mlruns

    _run_job(project, run, env)
    _finish(project, run)
    final = bridge.after_run(project, config, run)

    assert final["acc"] == pytest.approx(0.93)  # the job's own mlflow.log_metric
    assert final["loss"] == pytest.approx(0.2)  # ctui.track's history, pushed by ctui
    cl = bridge.client(mlflow_uri)
    exp_id = run["mlflow"]["experiment_id"]
    tagged = cl.search_runs([exp_id], filter_string=f"tags.`{bridge.RUN_TAG}` = '{run['id']}'")
    assert [r.info.run_id for r in tagged] == [run["mlflow"]["run_id"]]  # exactly one
    assert run["mlflow"]["created_by"] == "job"
    got = cl.get_run(run["mlflow"]["run_id"])
    assert got.info.status == "FINISHED"
    assert got.data.tags[bridge.RUN_TAG] == run["id"]
    assert got.data.tags["ctui.manifest.code"] == run["manifest"]["code"]
    assert got.data.params == {"lr": "0.01", "optimizer": "sgd", "seed": "7"}
    history = cl.get_metric_history(got.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [
        (s, pytest.approx(1.0 / (s + 1))) for s in range(5)
    ]
    artifacts = [a.path for a in cl.list_artifacts(got.info.run_id)]
    assert "manifest.json" in artifacts
    stored = Store(project.store_file).get_run(run["id"])
    assert stored["mlflow"]["sync"] == "ok"
    assert stored["mlflow"]["run_id"] == got.info.run_id
    # the metric the job logged only to MLflow is in the run folder too (ctui plots it)
    points = bridge.read_metric_points(project.run_dir(run["id"]))
    assert [v for v, _, _ in points["acc"]] == [pytest.approx(0.93)]

    # again (a second `ctui sync`, a supervisor retry): nothing is logged twice
    bridge.after_run(project, config, run)
    assert len(cl.get_metric_history(got.info.run_id, "loss")) == 5
    assert len(cl.get_metric_history(got.info.run_id, "acc")) == 1
    synced = orjson.loads((project.run_dir(run["id"]) / bridge.SYNCED_FILE).read_bytes())
    assert synced["metrics"] == {"loss": 5, "acc": 1}
    assert len(bridge.read_metric_points(project.run_dir(run["id"]))["acc"]) == 1


def test_a_job_without_mlflow_gets_a_run_made_by_ctui_with_mlflows_system_tags(
    project: Any, mlflow_uri: str
) -> None:
    import getpass

    config = _configure(project, mlflow_uri, "bridge-made")
    run = _new_run(project, command=[sys.executable, "train.py", "--lr", "0.01"])
    env = _start(project, config, run)
    _run_job(project, run, env, "from ctui import track\ntrack.log_metric('loss', 0.5)\n")
    _finish(project, run)
    bridge.after_run(project, config, run)
    assert run["mlflow"]["created_by"] == "ctui"
    got = bridge.client(mlflow_uri).get_run(run["mlflow"]["run_id"])
    tags = got.data.tags
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True
    ).stdout.strip()
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.name"] == "train.py"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"] == getpass.getuser()
    assert got.info.run_name == run["id"]
    assert got.data.metrics == {"loss": 0.5}


def test_a_reproduction_names_the_original_mlflow_run(project: Any, mlflow_uri: str) -> None:
    config = _configure(project, mlflow_uri, "bridge-repro")
    original = _new_run(project)
    env = _start(project, config, original)
    _run_job(project, original, env)
    _finish(project, original)
    bridge.after_run(project, config, original)

    again = _new_run(project, reproduces=original["id"])
    env = _start(project, config, again)
    context = orjson.loads(env["MLFLOW_RUN_CONTEXT"])
    assert context["ctui.reproduces.mlflow_run_id"] == original["mlflow"]["run_id"]
    _run_job(project, again, env)
    _finish(project, again)
    bridge.after_run(project, config, again)
    tags = bridge.client(mlflow_uri).get_run(again["mlflow"]["run_id"]).data.tags
    assert tags["ctui.reproduces"] == original["id"]
    assert tags["ctui.reproduces.mlflow_run_id"] == original["mlflow"]["run_id"]


def test_lost_sync_record_does_not_duplicate(project: Any, mlflow_uri: str) -> None:
    """A push that reached MLflow but not the run folder's record is not pushed twice."""
    config = _configure(project, mlflow_uri, "bridge-record")
    run = _new_run(project)
    env = _start(project, config, run)
    _run_job(project, run, env)
    bridge.sync_run(project, run, mlflow_uri)  # while running: pushes what is there
    (project.run_dir(run["id"]) / bridge.SYNCED_FILE).unlink()
    _finish(project, run, "failed", 3)
    bridge.after_run(project, config, run)
    cl = bridge.client(mlflow_uri)
    assert len(cl.get_metric_history(run["mlflow"]["run_id"], "loss")) == 5
    assert cl.get_run(run["mlflow"]["run_id"]).info.status == "FAILED"


def test_unreachable_server_leaves_sync_pending(project: Any, free_port: int) -> None:
    secret = f"http://alice:s3cret@127.0.0.1:{free_port}"
    config = _configure(project, secret, "down")
    run = _new_run(project)
    env = _start(project, config, run)
    assert "MLFLOW_RUN_ID" not in env
    assert env["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{free_port}"
    assert run["mlflow"]["sync"] == "pending"
    assert "Connection refused" in run["mlflow"]["error"]
    assert "s3cret" not in orjson.dumps(run).decode()
    _finish(project, run)
    assert bridge.after_run(project, config, run) == {}
    stored = Store(project.store_file).get_run(run["id"])
    assert stored["mlflow"]["sync"] == "pending"
    result = bridge.sync_pending(project, config)
    assert result["pending"] == [run["id"]] and not result["synced"]
    assert "s3cret" not in project.store_file.read_text()


def test_disabled_bridge_does_nothing(project: Any) -> None:
    config = load_config(project.root)
    run = _new_run(project)
    assert bridge.before_launch(project, config, run) == {}
    assert "mlflow" not in run
    assert bridge.sync_pending(project) == {
        "synced": [],
        "pending": [],
        "updated": [],
        "errors": {},
    }


def test_default_uri_and_experiment(project: Any) -> None:
    config = load_config(project.root)
    assert bridge.tracking_uri(project, config) == (
        f"sqlite:///{project.state_dir.resolve()}/mlflow.db"
    )
    assert bridge.experiment_name(project, config) == project.root.name
    assert bridge.safe_uri("https://u:p@host:5000/x") == "https://host:5000/x"
    assert bridge.safe_uri("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_tracking_uri_precedence_is_mlflows(
    project: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--tracking-uri > [mlflow] tracking_uri > MLFLOW_TRACKING_URI > .ctui/mlflow.db."""
    from ctui.integrations import mlflow_uri as mu

    default = mu.resolve(project, load_config(project.root))
    assert default.source == mu.FROM_DEFAULT and default.uri.endswith("/.ctui/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")  # relative: to the cwd
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    got = mu.resolve(project, load_config(project.root))
    assert (got.source, got.uri) == (mu.FROM_ENV, f"sqlite:///{Path.cwd().resolve()}/env.db")
    assert "MLFLOW_TRACKING_URI" in got.why()
    assert bridge.experiment_name(project, load_config(project.root)) == "from-env"
    (project.root / "ctui.toml").write_text(
        '[mlflow]\nenabled = true\ntracking_uri = "sqlite:///cfg.db"\nexperiment = "cfg"\n'
    )
    config = load_config(project.root)
    got = mu.resolve(project, config)
    assert (got.source, got.uri) == (mu.FROM_CONFIG, f"sqlite:///{project.root.resolve()}/cfg.db")
    assert bridge.experiment_name(project, config) == "cfg"
    got = mu.resolve(project, config, cli=f"sqlite:///{tmp_path}/cli.db")
    assert (got.source, got.uri) == (mu.FROM_CLI, f"sqlite:///{tmp_path}/cli.db")


def test_credentials_move_to_mlflows_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from ctui.integrations import mlflow_uri as mu

    assert mu.split_credentials("http://al%40ice:s3cret@h:5000/p") == (
        "http://h:5000/p",
        "al@ice",
        "s3cret",
    )
    assert mu.use_credentials("http://alice:s3cret@h:5000") == "http://h:5000"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret"
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "theirs")  # the user's own setting wins
    mu.use_credentials("http://bob:other@h:5000")
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "theirs"


def test_config_rejects_a_misspelt_mlflow_key(project: Any) -> None:
    from ctui.errors import ConfigError

    (project.root / "ctui.toml").write_text('[mlflow]\nenabled = true\ntracking-uri = "x"\n')
    with pytest.raises(ConfigError, match="tracking-uri"):
        load_config(project.root)


def _mlflow_run(cl: Any, exp_id: str, status: str, loss: list[float], **tags: str) -> str:
    from mlflow.entities import Metric, Param

    run = cl.create_run(exp_id, start_time=1_780_000_000_000, tags=tags, run_name="old")
    rid = run.info.run_id
    cl.log_batch(
        rid,
        metrics=[Metric("loss", v, 1_780_000_000_000 + i, i) for i, v in enumerate(loss)],
        params=[Param("lr", "0.1"), Param("opt", "adam"), Param("layers", "3")],
    )
    cl.set_terminated(rid, status=status, end_time=1_780_000_100_000)
    return str(rid)


def test_import_runs_is_idempotent(project: Any, mlflow_uri: str) -> None:
    from mlflow.entities import Param

    cl = bridge.client(mlflow_uri)
    exp_id = cl.create_experiment("legacy-import")
    ok = _mlflow_run(cl, exp_id, "FINISHED", [0.9, 0.5, 0.3], team="vision")
    bad = _mlflow_run(cl, exp_id, "FAILED", [1.0])
    _mlflow_run(cl, exp_id, "FINISHED", [0.1], **{bridge.RUN_TAG: "ours"})
    store = Store(project.store_file)
    store.insert_run({"id": "ours", "job": "train", "status": "succeeded"})

    assert import_runs(project, "legacy-import", mlflow_uri).imported == 2
    by_mlflow = {r["mlflow"]["run_id"]: r for r in store.runs() if r.get("backend") == "mlflow"}
    assert set(by_mlflow) == {ok, bad}
    doc = by_mlflow[ok]
    assert doc["status"] == "succeeded" and by_mlflow[bad]["status"] == "failed"
    assert doc["params"] == {"lr": 0.1, "opt": "adam", "layers": 3}
    assert doc["metrics"] == {"loss": 0.3}
    assert doc["job"] == "legacy-import"
    assert "team=vision" in doc["tags"]
    assert doc["started"] == 1_780_000_000 and doc["duration"] == 100
    lines = (project.run_dir(doc["id"]) / "metrics.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["value"] for x in lines] == [0.9, 0.5, 0.3]

    store.update_run(doc["id"], {"note": "kept"})
    again = import_runs(project, "legacy-import", mlflow_uri)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 2)
    assert again.text() == "imported 0, updated 0 run(s) from MLflow"
    cl.log_batch(bad, params=[Param("late", "1")])  # MLflow has news about one run
    again = import_runs(project, "legacy-import", mlflow_uri)
    assert (again.imported, again.updated) == (0, 1)
    assert store.get_run(by_mlflow[bad]["id"])["params"]["late"] == 1
    again = [r for r in store.runs() if r.get("backend") == "mlflow"]
    assert len(again) == 2
    assert store.get_run(doc["id"])["note"] == "kept"


def test_imported_running_run_stays_live_without_a_growing_clock(
    project: Any, mlflow_uri: str
) -> None:
    from mlflow.entities import Metric

    from ctui import format as fmt
    from ctui.jobs.reconcile import refresh

    cl = bridge.client(mlflow_uri)
    exp_id = cl.create_experiment("still-running")
    t0 = 1_780_000_000_000
    live = cl.create_run(exp_id, start_time=t0).info.run_id
    cl.log_batch(live, metrics=[Metric("loss", 0.5, t0 + 30_000, 0)])
    assert import_runs(project, "still-running", mlflow_uri).imported == 1
    refresh(project)  # no ctui supervisor watches it: it must not be marked lost
    (doc,) = Store(project.store_file).runs()
    assert doc["status"] == "running" and doc["ended"] is None
    # how long it had run when MLflow last heard from it, not a clock that keeps going
    assert doc["duration"] == 30
    assert fmt.run_duration(doc, now=2_000_000_000) == 30

    cl.log_batch(live, metrics=[Metric("loss", 0.25, t0 + 90_000, 1)])
    result = bridge.sync_pending(project, load_config(project.root))  # `ctui sync` asks again
    assert result["updated"] == [doc["id"]] and not result["errors"]
    doc = Store(project.store_file).get_run(doc["id"])
    assert doc["duration"] == 90 and doc["metrics"] == {"loss": 0.25}
    assert bridge.sync_pending(project, load_config(project.root))["updated"] == []

    cl.set_terminated(live, "KILLED", end_time=t0 + 120_000)
    again = import_runs(project, "still-running", mlflow_uri)
    assert (again.imported, again.updated) == (0, 1)
    doc = Store(project.store_file).get_run(doc["id"])
    assert doc["status"] == "cancelled" and doc["duration"] == 120
    assert bridge.sync_pending(project, load_config(project.root))["updated"] == []


def test_import_keeps_nested_runs_under_their_parent(project: Any, mlflow_uri: str) -> None:
    cl = bridge.client(mlflow_uri)
    exp_id = cl.create_experiment("nested-import")
    parent = _mlflow_run(cl, exp_id, "FINISHED", [0.5])
    kids = [
        _mlflow_run(cl, exp_id, "FINISHED", [0.1 * i], **{"mlflow.parentRunId": parent})
        for i in range(2)
    ]
    assert import_runs(project, "nested-import", mlflow_uri).imported == 3
    by_mlflow = {r["mlflow"]["run_id"]: r for r in Store(project.store_file).runs()}
    assert by_mlflow[parent]["parent"] is None
    for kid in kids:
        assert by_mlflow[kid]["parent"] == by_mlflow[parent]["id"]
        assert by_mlflow[kid]["mlflow"]["parent_run_id"] == parent


def test_import_from_a_missing_sqlite_file_is_bad_input(project: Any, tmp_path: Path) -> None:
    from ctui.errors import ExitCode, UnavailableError

    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(UnavailableError) as err:
        import_runs(project, None, f"sqlite:///{missing}")
    assert err.value.code == ExitCode.BAD_INPUT
    assert str(missing) in err.value.message
    assert not missing.exists() and not missing.parent.exists()  # nothing created


def test_import_unknown_experiment_is_bad_input(project: Any, mlflow_uri: str) -> None:
    from ctui.errors import ExitCode, UnavailableError

    with pytest.raises(UnavailableError) as err:
        import_runs(project, "no-such-experiment", mlflow_uri)
    assert err.value.code == ExitCode.BAD_INPUT


def test_cli_sync_and_import(project: Any, mlflow_uri: str, free_port: int) -> None:
    cl = bridge.client(mlflow_uri)
    _mlflow_run(cl, cl.create_experiment("cli-import"), "KILLED", [0.4])

    def ctui(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ctui", *args],
            cwd=project.root,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )

    out = ctui(
        "import-mlflow", "--experiment", "cli-import", "--tracking-uri", mlflow_uri, "--json"
    )
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == {"imported": 1, "updated": 0, "unchanged": 0}
    out = ctui("import", "mlflow", "--experiment", "cli-import", "--tracking-uri", mlflow_uri)
    assert out.returncode == 0, out.stderr
    assert "imported 0, updated 0" in out.stdout
    out = ctui("sync", "--json")
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == {"synced": [], "pending": [], "updated": [], "errors": {}}

    config = _configure(project, f"http://127.0.0.1:{free_port}", "down")
    run = _new_run(project)
    bridge.before_launch(project, config, run)
    _finish(project, run)
    Store(project.store_file).update_run(run["id"], {"mlflow": run["mlflow"]})
    out = ctui("sync")
    assert out.returncode == 2  # the server is down: the README's "unreachable engine"
    assert f"still pending {run['id']}" in out.stdout
    out = ctui("import-mlflow", "--experiment", "nope", "--tracking-uri", mlflow_uri)
    assert out.returncode == 2
    assert "no MLflow experiment named 'nope'" in out.stderr
    assert "ctui import mlflow" in out.stderr  # the hint names a command that exists
    assert "Traceback" not in out.stderr
    missing = project.root / "missing.db"
    out = ctui("import", "mlflow", "--tracking-uri", f"sqlite:///{missing}")
    assert out.returncode == 2 and "no MLflow database" in out.stderr
    assert not missing.exists()


def test_launched_job_ends_in_mlflow_through_the_supervisor(project: Any, mlflow_uri: str) -> None:
    """The real launch path: launch_run → before_launch, the supervisor → after_run."""
    import time

    from ctui.jobs.launch import launch_run

    _configure(project, mlflow_uri, "bridge-launch")
    (project.root / "train.py").write_text(JOB)
    run = launch_run(project, "train", {"lr": 0.5})
    assert run["mlflow"]["sync"] == "pending"  # the supervisor makes sure of the experiment
    deadline = time.monotonic() + 90
    # The final status comes first; the MLflow sync follows it (sync pending → ok).
    while (doc := Store(project.store_file).get_run(run["id"]))["status"] in (
        "queued",
        "running",
    ) or doc["mlflow"]["sync"] == "pending":
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)
    assert doc["status"] == "succeeded", doc.get("error")
    log = project.run_dir(run["id"]) / "supervisor.log"
    assert doc["mlflow"]["sync"] == "ok", (doc["mlflow"], log.exists() and log.read_text())
    assert doc["mlflow"]["experiment_id"]
    assert doc["metrics"]["acc"] == pytest.approx(0.93)  # read back from MLflow
    assert doc["metrics"]["loss"] == pytest.approx(0.2)
    got = bridge.client(mlflow_uri).get_run(doc["mlflow"]["run_id"])
    assert got.info.status == "FINISHED"
    assert got.data.params["lr"] == "0.5"
    assert set(doc["manifest"]) <= {
        k.removeprefix("ctui.manifest.") for k in got.data.tags if k.startswith("ctui.manifest.")
    }


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
