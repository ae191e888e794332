"""The Docker backend against a real engine (tests/ci/docker.sh starts one; skipped without).

Jobs run in the `ctui-test-busybox` image (busybox only, no Python): they write metrics as
JSONL lines into $CTUI_RUN_DIR/metrics.jsonl, which is what `ctui.track` writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.errors import ExitCode

IMAGE = "ctui-test-busybox"


def _engine_problem() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed"
    try:
        c = docker.from_env(timeout=5)
        c.ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        return f"no Docker engine answers at {where} ({type(exc).__name__}); run tests/ci/docker.sh"
    try:
        c.images.get(IMAGE)
    except Exception:
        return f"image {IMAGE} missing; tests/ci/docker.sh builds it"
    finally:
        c.close()
    return None


_PROBLEM = _engine_problem()
_skip = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")


def needs_engine(test: Any) -> Any:
    """A test that runs real containers: marked `docker`, skipped when no engine answers."""
    return pytest.mark.docker(_skip(test))


pytestmark = [pytest.mark.timeout(120)]

CONFIG = f"""
[jobs.ok]
backend = "docker"
image = "{IMAGE}"
command = "sh ok.sh"

[jobs.fail]
backend = "docker"
image = "{IMAGE}"
command = "sh -c 'echo about to fail; exit 3'"

[jobs.sleepy]
backend = "docker"
image = "{IMAGE}"
command = "sh -c 'echo started; sleep 60; echo not reached'"

[jobs.echo]
backend = "docker"
image = "{IMAGE}"
command = "sh echo.sh {{msg}}"
params = {{ msg = "hello" }}
"""

# what `ctui.track.log_metric` writes, from a job that has no Python
OK_SH = """echo training
for i in 1 2 3; do
  echo "{\\"name\\": \\"loss\\", \\"value\\": $i, \\"step\\": $i}" >> "$CTUI_RUN_DIR/metrics.jsonl"
done
echo done
"""
ECHO_SH = """printf '%s\\n' "$1" > "$CTUI_RUN_DIR/arg.txt"
echo "env=$CTUI_PARAM_MSG"
"""


@pytest.fixture
def dproject(project: Any) -> Any:
    (project.root / "ctui.toml").write_text(CONFIG)
    (project.root / "ok.sh").write_text(OK_SH)
    (project.root / "echo.sh").write_text(ECHO_SH)
    return project


def _wait_final(project: Any, run_id: str, timeout: float = 60) -> dict[str, Any]:
    from ctui.store import FINAL, open_store

    store = open_store(project)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        if run["status"] in FINAL:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {store.get_run(run_id)}")


def _log(project: Any, run_id: str) -> str:
    return (project.run_dir(run_id) / "output.log").read_text()


def _no_container_left(run: dict[str, Any]) -> None:
    import docker

    c = docker.from_env()
    left = c.containers.list(all=True, filters={"label": f"org.ctui.run_id={run['id']}"})
    assert left == [], "the supervisor removes the container once it has ended"


@needs_engine
def test_metrics_logs_image_pinned_and_success(dproject: Any) -> None:
    import docker

    from ctui import manifest as mf
    from ctui.jobs.launch import launch_run
    from ctui.objects import ObjectStore

    run = launch_run(dproject, "ok")
    assert run["backend"] == "docker"
    run = _wait_final(dproject, run["id"])
    assert run["status"] == "succeeded", run
    assert run["exit_code"] == 0
    assert run["metrics"] == {"loss": 3}
    log = _log(dproject, run["id"])
    assert "training" in log and "done" in log
    image = docker.from_env().images.get(IMAGE)
    info = run["docker"]
    assert info["image"] == IMAGE
    assert info["image_id"] == image.id
    assert info["container_id"] and info["engine"]
    # the env manifest records the image the job ran in
    env = mf.load(ObjectStore(dproject.objects_dir), run["manifest"])["sections"]["env"]
    assert env["container"]["image_id"] == image.id
    _no_container_left(run)


@needs_engine
def test_exit_code_3_is_a_failed_run_with_the_log_tail(dproject: Any) -> None:
    from ctui.jobs.launch import launch_run

    run = _wait_final(dproject, launch_run(dproject, "fail")["id"])
    assert run["status"] == "failed"
    assert run["exit_code"] == 3
    assert any("about to fail" in line for line in run["log_tail"])
    _no_container_left(run)


@needs_engine
def test_stop_stops_the_container(dproject: Any) -> None:
    import docker

    from ctui.jobs.launch import launch_run
    from ctui.jobs.stop import stop_run
    from ctui.store import open_store

    run = launch_run(dproject, "sleepy")
    store = open_store(dproject)
    deadline = time.monotonic() + 30
    # the job's output can reach the log before its container id reaches the store
    while time.monotonic() < deadline and not (
        "started" in _log(dproject, run["id"]) and _container_id(store, run["id"])
    ):
        time.sleep(0.1)
    cid = store.get_run(run["id"])["docker"]["container_id"]
    assert docker.from_env().containers.get(cid).status == "running"
    # the container's processes are sampled through their host PIDs (psutil, not stats())
    samples = dproject.run_dir(run["id"]) / "resources.jsonl"
    sampled: list[dict[str, Any]] = []
    while not sampled and time.monotonic() < deadline:
        time.sleep(0.2)
        lines = samples.read_text().splitlines() if samples.exists() else []
        sampled = [s for s in map(orjson.loads, lines) if s.get("nprocs")]
    assert sampled and sampled[-1]["rss"] > 0 and sampled[-1]["nprocs"] >= 2  # init + sh
    stopped = stop_run(dproject, run["id"], grace=2)
    run = _wait_final(dproject, run["id"])
    assert stopped["status"] == run["status"] == "cancelled"
    assert run["exit_code"] in (143, 137)  # SIGTERM through the container's init, or the kill
    assert "not reached" not in _log(dproject, run["id"])
    with pytest.raises(docker.errors.NotFound):
        docker.from_env().containers.get(cid)


@needs_engine
def test_shell_metacharacters_in_a_param_stay_one_argument(dproject: Any, tmp_path: Path) -> None:
    from ctui.jobs.launch import launch_run

    canary = tmp_path / "pwned"
    evil = f"a; touch {canary}; $(touch {canary}) `touch {canary}` | & > {canary} 'q\" \\"
    run = _wait_final(dproject, launch_run(dproject, "echo", {"msg": evil})["id"])
    assert run["status"] == "succeeded", _log(dproject, run["id"])
    arg = (dproject.run_dir(run["id"]) / "arg.txt").read_text()
    assert arg == evil + "\n", "the value reached the job as one argv token, unchanged"
    assert f"env={evil}" in _log(dproject, run["id"])
    assert not canary.exists(), "nothing in the value was executed"


def test_no_engine_is_exit_2_and_creates_no_run(
    dproject: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Runs everywhere: an engine that cannot exist is unreachable with or without Docker."""
    pytest.importorskip("docker")
    from ctui.errors import UnavailableError
    from ctui.jobs.launch import launch_run
    from ctui.store import open_store

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nonexistent.sock")
    with pytest.raises(UnavailableError) as err:
        launch_run(dproject, "ok")
    assert err.value.code == ExitCode.BAD_INPUT
    assert "no Docker engine reachable" in err.value.message
    assert open_store(dproject).runs() == []
    assert list(dproject.runs_dir.iterdir()) == []


def test_no_engine_from_the_cli(dproject: Any, tmp_path: Path) -> None:
    pytest.importorskip("docker")
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nonexistent.sock"}
    proc = subprocess.run(
        [sys.executable, "-m", "ctui", "run", "ok"], capture_output=True, text=True,
        env=env, cwd=dproject.root,
    )  # fmt: skip
    if "No such command" in proc.stderr:
        pytest.skip("`ctui run` is not available in this build")
    assert proc.returncode == ExitCode.BAD_INPUT, proc.stderr
    assert "no Docker engine reachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    from ctui.store import open_store

    assert open_store(dproject).runs() == []


def test_device_requests_and_mounts() -> None:
    pytest.importorskip("docker")
    from ctui.jobs.backends.docker import device_requests, mount_paths, pinned_ref

    assert device_requests(None) == []
    (all_gpus,) = device_requests("all")
    assert all_gpus["Count"] == -1 and all_gpus["Capabilities"] == [["gpu"]]
    (some,) = device_requests([0, 2])
    assert some["DeviceIDs"] == ["0", "2"]
    assert mount_paths(["/p", "/p/.ctui/runs/x", "/p/.ctui/worktrees/y", "/q"]) == ["/p", "/q"]
    pinned = {"image": "a", "image_id": "sha256:1", "digest": "a@sha256:2"}
    assert pinned_ref(pinned) == "a@sha256:2"
    assert pinned_ref({**pinned, "digest": None}) == "sha256:1"


def test_local_or_remote_engine_and_digest_choice() -> None:
    from ctui.jobs.backends.docker import _pick_digest, is_local_engine

    assert is_local_engine("unix:///var/run/docker.sock")
    assert is_local_engine("http+unix://%2Ftmp%2Fd.sock")
    assert is_local_engine("tcp://127.0.0.1:2375")
    assert not is_local_engine("tcp://gpu-box:2376")
    assert not is_local_engine("ssh://me@gpu-box")
    digests = ["other/x@sha256:1", "registry:5000/team/train@sha256:2"]
    assert _pick_digest("registry:5000/team/train:v3", digests) == digests[1]
    assert _pick_digest("unrelated", digests) == digests[0]
    assert _pick_digest("local-only", []) is None


class _TcpToUnix:
    """A TCP front for the engine's unix socket: DOCKER_HOST=tcp://… as for a remote engine."""

    def __init__(self, sock_path: str, host: str = "127.0.0.2"):
        import socket
        import threading

        self.sock_path = sock_path
        self.server = socket.create_server((host, 0))
        self.url = f"tcp://{host}:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.sock_path)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: Any, dst: Any) -> None:
        import contextlib
        import socket

        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


@needs_engine
def test_an_engine_over_tcp_elsewhere(dproject: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST=tcp://… at an address that is not taken for this host: the run works, the
    log and metrics come back, the engine's host is recorded, no local PIDs are sampled."""
    import docker

    from ctui.jobs.backends.docker import is_local_engine
    from ctui.jobs.launch import launch_run

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip("needs the engine on a unix socket to put a TCP front on it")
    proxy = _TcpToUnix(host[len("unix://") :])
    try:
        monkeypatch.setenv("DOCKER_HOST", proxy.url)
        assert not is_local_engine()
        run = _wait_final(dproject, launch_run(dproject, "ok")["id"])
        assert run["status"] == "succeeded", _log(dproject, run["id"])
        assert run["metrics"] == {"loss": 3} and "done" in _log(dproject, run["id"])
        assert run["docker"]["engine"] == docker.from_env().info()["Name"]
        assert run["docker"]["engine_url"] == proxy.url
        assert not run["peaks"].get("max_rss"), "no local processes to sample"
    finally:
        proxy.close()


def _container_id(store: Any, run_id: str) -> str | None:
    return (store.get_run(run_id).get("docker") or {}).get("container_id")


def _started_container(project: Any, job: str) -> dict[str, Any]:
    from ctui.jobs.launch import launch_run
    from ctui.store import open_store

    run = launch_run(project, job)
    store = open_store(project)
    deadline = time.monotonic() + 30
    # the job's output can reach the log before its container id reaches the store
    while time.monotonic() < deadline and not (
        "started" in _log(project, run["id"]) and _container_id(store, run["id"])
    ):
        time.sleep(0.1)
    return store.get_run(run["id"])


def _watchdog_of(run: dict[str, Any]) -> Any:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "ctui.jobs.backends.local" in cmd and run["id"] in cmd:
            return proc
    raise AssertionError(f"no watchdog for {run['id']}")


def _gone(cid: str) -> bool:
    import docker

    try:
        docker.from_env().containers.get(cid)
    except docker.errors.NotFound:
        return True
    return False


@needs_engine
def test_a_container_never_outlives_its_supervisor(dproject: Any) -> None:
    import signal

    run = _started_container(dproject, "sleepy")
    cid = run["docker"]["container_id"]
    assert _watchdog_of(run).is_running()
    os.kill(run["supervisor_pid"], signal.SIGKILL)  # the engine runs the container, not us
    done = _wait_final(dproject, run["id"], timeout=90)  # nobody polls: the watchdog records it
    assert done["status"] == "lost"
    assert f"its container {cid[:12]} was stopped" in done["error"]
    deadline = time.monotonic() + 30
    while not _gone(cid):
        assert time.monotonic() < deadline, "the watchdog removes the container"
        time.sleep(0.1)
    assert "not reached" not in _log(dproject, run["id"])


@needs_engine
def test_stop_when_the_supervisor_and_its_watchdog_are_gone_stops_the_container(
    dproject: Any,
) -> None:
    import signal

    import docker

    from ctui.jobs.stop import stop_run

    run = _started_container(dproject, "sleepy")
    cid = run["docker"]["container_id"]
    _watchdog_of(run).kill()
    os.kill(run["supervisor_pid"], signal.SIGKILL)  # the container runs on without either
    assert docker.from_env().containers.get(cid).status == "running"
    stopped = stop_run(dproject, run["id"], grace=1)
    assert stopped["status"] == "cancelled"
    with pytest.raises(docker.errors.NotFound):
        docker.from_env().containers.get(cid)
