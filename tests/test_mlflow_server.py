"""A shared MLflow tracking server: a real `mlflow server` on 127.0.0.1 with a sqlite backend.

The server is stopped while a real job runs and restarted on the same port and backend;
`ctui sync` then brings MLflow up to date: every metric point arrives exactly once. A URI
with `user:password@` (exported the ordinary way) reaches the job without its password ever
being written; import keeps live and nested runs as MLflow has them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.config import load_config
from ctui.ids import new_run_id
from ctui.integrations import mlflow_bridge as bridge
from ctui.integrations.mlflow_import import import_runs
from ctui.store import Store
from tests.test_mlflow_bridge import _no_user_mlflow_env  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.timeout(240)


REPO = Path(__file__).resolve().parent.parent
MLFLOW = Path(sys.executable).with_name("mlflow")
STEPS = 12


class Server:
    """`mlflow server` (one worker, no job execution: starts in seconds) that can be restarted."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.uri_db = f"sqlite:///{folder / 'server.db'}"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server owns it
        self.proc = subprocess.Popen(
            [
                str(MLFLOW),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                self.uri_db,
                "--workers",
                "1",
                "--artifacts-destination",
                str(self.folder / "artifacts"),
            ],
            cwd=self.folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not bridge.reachable(self.url, timeout=1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.folder / "server.log").read_text()[-3000:])
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        while bridge.reachable(self.url, timeout=1):
            time.sleep(0.1)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("mlflow-server"))
    srv.start()
    yield srv
    srv.stop()


JOB = textwrap.dedent(
    f"""
    import os, sys, time
    import mlflow
    from ctui import track

    mlflow.log_param("arch", "mlp")          # the job's own MLflow call, server up
    go = os.environ["GO_FILE"]
    for step in range({STEPS}):
        track.log_metric("loss", 1.0 / (step + 1), step=step)
        if step == 3:
            open(os.environ["HALF_FILE"], "w").close()
            while not os.path.exists(go):     # the test stops the server meanwhile
                time.sleep(0.05)
    print("done")
    """
)


def _wait_file(path: Path, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_server_down_mid_run_then_sync_exactly_once(project: Any, server: Server) -> None:
    (project.root / "ctui.toml").write_text(
        f'[mlflow]\nenabled = true\ntracking_uri = "{server.url}"\nexperiment = "shared"\n'
    )
    config = load_config(project.root)
    run_id = new_run_id()
    run: dict[str, Any] = {
        "id": run_id,
        "job": "train",
        "status": "running",
        "started": time.time(),
        "params": {"lr": 0.1},
        "backend": "local",
    }
    project.run_dir(run_id).mkdir(parents=True)
    Store(project.store_file).insert_run(run)
    env = bridge.before_launch(project, config, run)
    run["mlflow"].update(bridge.before_job(project, env))  # over REST, as the supervisor does
    Store(project.store_file).update_run(run_id, {"mlflow": run["mlflow"]})
    assert run["mlflow"]["sync"] == "ok" and "MLFLOW_RUN_ID" not in env
    assert (
        run["mlflow"]["experiment_id"]
        == bridge.client(server.url).get_experiment_by_name("shared").experiment_id
    )
    assert env["MLFLOW_TRACKING_URI"] == server.url

    (project.root / "train.py").write_text(JOB)
    half, go = project.root / "half", project.root / "go"
    proc = subprocess.Popen(
        [sys.executable, "train.py"],
        cwd=project.root,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={
            **os.environ,
            **env,
            "CTUI_RUN_DIR": str(project.run_dir(run_id)),
            "PYTHONPATH": str(REPO),
            "HALF_FILE": str(half),
            "GO_FILE": str(go),
            # the job's own MLflow client would retry the dead server for minutes at exit
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
        },
    )
    _wait_file(half, proc)
    bridge.sync_run(project, run, server.url)  # a partial push while running (as `ctui watch`)
    assert run["mlflow"]["created_by"] == "job"  # the job's own run, adopted while it runs
    server.stop()
    go.touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err

    run.update(status="succeeded", exit_code=0, ended=time.time())
    Store(project.store_file).update_run(
        run_id, {"status": "succeeded", "exit_code": 0, "ended": run["ended"]}
    )
    assert bridge.after_run(project, config, run) == {}  # server down: nothing lost, pending
    assert Store(project.store_file).get_run(run_id)["mlflow"]["sync"] == "pending"

    server.start()  # same port, same backend store
    done = subprocess.run(
        [sys.executable, "-m", "ctui", "sync", "--json"],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["synced"] == [run_id], done.stdout

    cl = bridge.client(server.url)
    mlflow_id = run["mlflow"]["run_id"]
    history = cl.get_metric_history(mlflow_id, "loss")
    assert sorted(m.step for m in history) == list(range(STEPS))  # each point exactly once
    got = cl.get_run(mlflow_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"lr": "0.1", "arch": "mlp"}
    assert Store(project.store_file).get_run(run_id)["mlflow"]["sync"] == "ok"
    # a second sync has nothing to do
    assert bridge.sync_pending(project, config)["synced"] == []
    assert len(cl.get_metric_history(mlflow_id, "loss")) == STEPS


def test_import_from_the_server(project: Any, server: Server) -> None:
    from mlflow.entities import Metric

    cl = bridge.client(server.url)
    exp_id = cl.create_experiment("team-history")
    made = cl.create_run(exp_id, run_name="baseline")
    cl.log_batch(made.info.run_id, metrics=[Metric("auc", 0.8, 1_780_000_000_000, 0)])
    cl.set_terminated(made.info.run_id, "FINISHED")
    child = cl.create_run(exp_id, tags={"mlflow.parentRunId": made.info.run_id})
    live = cl.create_run(exp_id, run_name="still-training")
    result = import_runs(project, "team-history", server.url)
    assert (result.imported, result.updated) == (3, 0)
    assert import_runs(project, "team-history", server.url).imported == 0
    by_mlflow = {r["mlflow"]["run_id"]: r for r in Store(project.store_file).runs()}
    doc = by_mlflow[made.info.run_id]
    assert doc["metrics"] == {"auc": 0.8} and doc["status"] == "succeeded"
    assert doc["mlflow"]["tracking_uri"] == server.url
    assert by_mlflow[child.info.run_id]["parent"] == doc["id"]
    assert by_mlflow[live.info.run_id]["status"] == "running"
    assert by_mlflow[live.info.run_id]["duration"] is not None  # no clock of its own

    cl.set_terminated(live.info.run_id, "FAILED")
    cl.set_terminated(child.info.run_id, "FINISHED")
    synced = bridge.sync_pending(project)  # `ctui sync`: the live ones are asked again
    assert sorted(synced["updated"]) == sorted(
        [by_mlflow[live.info.run_id]["id"], by_mlflow[child.info.run_id]["id"]]
    )
    assert Store(project.store_file).get_run(by_mlflow[live.info.run_id]["id"])["status"] == (
        "failed"
    )


def _ctui(project: Any, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctui", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400", **env},
        timeout=150,
    )


def test_credentials_in_mlflow_tracking_uri_are_never_written(project: Any, server: Server) -> None:
    """MLFLOW_TRACKING_URI=http://user:pw@host exported, the ordinary way: the job logs to the
    server with the credentials in MLflow's variables; no file under .ctui, no log line and no
    output of ctui holds the password, MLflow's own "View run at" line included."""
    secret = "s3cr3t-pw"
    with_creds = server.url.replace("http://", f"http://alice:{secret}@")
    (project.root / "train.py").write_text(
        textwrap.dedent(
            """
            import os, mlflow
            print("user", os.environ.get("MLFLOW_TRACKING_USERNAME"))
            print("password set", bool(os.environ.get("MLFLOW_TRACKING_PASSWORD")))
            with mlflow.start_run():
                mlflow.log_metric("loss", 0.5)
            """
        )
    )
    (project.root / "ctui.toml").write_text(
        f'[jobs.train]\ncommand = "{sys.executable} train.py"\n\n'
        '[mlflow]\nenabled = true\nexperiment = "creds"\n'
    )
    env = {"MLFLOW_TRACKING_URI": with_creds}
    out = _ctui(project, "run", "train", "--follow", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    (doc,) = Store(project.store_file).runs()
    assert doc["mlflow"]["sync"] == "ok", doc["mlflow"]
    assert doc["mlflow"]["tracking_uri"] == server.url
    log = (project.run_dir(doc["id"]) / "output.log").read_text()
    assert "user alice" in log and "password set True" in log  # MLflow's variables
    assert "View run" in log and server.url in log  # MLflow's own line, without them
    got = bridge.client(server.url).get_run(doc["mlflow"]["run_id"])
    assert got.data.metrics == {"loss": 0.5}
    said = [out.stdout, out.stderr]
    for args in (("show", doc["id"]), ("show", doc["id"], "--json"), ("doctor",), ("sync",)):
        said.append(_ctui(project, *args, env=env).stdout)
    assert all(secret not in text for text in said)
    for path in project.state_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_import_from_an_unreachable_server_names_it_without_credentials(project: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _ctui(
        project,
        "import",
        "mlflow",
        "--tracking-uri",
        f"http://alice:pw-123@127.0.0.1:{port}",
        env={},
    )
    assert out.returncode == 2
    assert f"http://127.0.0.1:{port}" in out.stderr and "not reachable" in out.stderr
    assert "pw-123" not in out.stderr + out.stdout
