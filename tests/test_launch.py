"""Launching is instant and never leaves a run stuck: sweeps in bulk, MLflow off the launch's
path, and a launcher SIGKILLed at any point leaves no run `running` or `queued` for ever.

Real `ctui` processes, real supervisors, real signals; a slow tracking server is a real
socket that never answers. No timing assertions: the properties are causal (the job started
although MLflow never answered; the run is settled by the next reader, not after a grace).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from jobs_helpers import PY, wait_final, wait_for, write_config

from ctui.jobs.launch import launch_run
from ctui.jobs.reconcile import refresh
from ctui.jobs.sweep import launch_sweep
from ctui.store import ACTIVE, FINAL, open_store

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent
CTUI = Path(sys.executable).with_name("ctui")

CONFIG = f"""
[jobs.quick]
command = "{PY} -u -c \\"print('first line x={{x}}')\\""
params = {{ x = 0 }}

[jobs.pair]
command = "{PY} -u -c \\"print('pair x={{x}}')\\""
params = {{ x = 0 }}
max_concurrent = 2
"""


@pytest.fixture
def jobs(project: Any) -> Any:
    write_config(project.root, CONFIG)
    return project


def _log(project: Any, run_id: str) -> str:
    return (project.run_dir(run_id) / "output.log").read_text()


def test_a_sweep_is_inserted_at_once_and_every_run_gets_its_own_supervisor(jobs: Any) -> None:
    runs = launch_sweep(jobs, "quick", {"x": [str(i) for i in range(12)]})
    assert len({r["id"] for r in runs}) == 12
    assert {r["status"] for r in runs} == {"running"}
    spawner = {r["starter"]["pid"] for r in runs}
    assert len(spawner) == 1 and spawner != {os.getpid()}  # one helper started them all
    done = [wait_final(jobs, r["id"], timeout=90) for r in runs]
    assert {d["status"] for d in done} == {"succeeded"}
    assert len({d["supervisor_pid"] for d in done}) == 12
    for i, d in enumerate(done):
        assert _log(jobs, d["id"]) == f"first line x={i}\n"
        assert d["sweep"]["index"] == i and d["sweep"]["size"] == 12


def test_a_bulk_sweep_still_keeps_max_concurrent(jobs: Any) -> None:
    runs = launch_sweep(jobs, "pair", {"x": ["1", "2", "3", "4", "5"]})
    assert [r["status"] for r in runs] == ["running", "running", "queued", "queued", "queued"]
    done = [wait_final(jobs, r["id"], timeout=90) for r in runs]
    assert {d["status"] for d in done} == {"succeeded"}
    for later in done[2:]:  # each queued run started only once an earlier one had ended
        assert later["started"] >= min(d["ended"] for d in done[:2])


def _kill_self_at(hook: str, job: str, sweep: bool = False) -> subprocess.CompletedProcess[str]:
    """A real launcher (this repo's ctui, a fresh interpreter) that SIGKILLs itself at `hook`:
    the point of the launch where a user's ctrl+\\ or the OOM killer could strike."""
    call = (
        f"launch_sweep(project, {job!r}, {{'x': ['1', '2', '3']}})"
        if sweep
        else f"launch_run(project, {job!r})"
    )
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        import ctui.jobs.launch as launch
        import ctui.jobs.spawn as spawn
        from ctui.jobs.launch import launch_run
        from ctui.jobs.sweep import launch_sweep
        from ctui.project import Project

        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        target, name = {hook!r}.split(":")
        setattr({{"launch": launch, "spawn": spawn.Spawner}}[target], name, die)
        project = Project(root=Path.cwd(), state_dir=Path.cwd() / ".ctui")
        {call}
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("hook", "sweep"),
    [
        ("launch:start_supervisors", False),  # the run is in the store, no supervisor yet
        ("spawn:hand", True),  # the sweep is in the store, its helper was never told
    ],
)
def test_a_launcher_killed_half_way_leaves_nothing_running(
    jobs: Any, hook: str, sweep: bool
) -> None:
    proc = _kill_self_at(hook, "quick", sweep=sweep)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = open_store(jobs)
    runs = store.runs()
    assert runs and {r["status"] for r in runs} == {"running"}  # as the killed launcher left them

    def settled() -> bool:  # a reader (`ctui runs`, the TUI, the watcher) settles them as soon
        refresh(jobs)  # as the launcher (and the helper it had started) are gone
        return all(r["status"] in FINAL for r in store.runs())

    wait_for(settled, timeout=30)
    for run in store.runs():
        assert run["status"] == "lost", run
        assert "launch was interrupted" in run["error"]
        assert _log(jobs, run["id"]) == ""  # no job ever ran unsupervised
    # and a new launch is not held back by them
    fresh = launch_run(jobs, "quick", {"x": 9})
    assert wait_final(jobs, fresh["id"], timeout=60)["status"] == "succeeded"


def test_a_launcher_killed_as_it_returns_leaves_every_run_settled(jobs: Any) -> None:
    """SIGKILL of `ctui run --sweep` as soon as its runs exist, wherever it then was."""
    proc = subprocess.Popen(
        [str(CTUI), "run", "quick", "--detach", "--sweep", "x=1,2,3,4,5,6"],
        cwd=jobs.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = open_store(jobs)
    wait_for(lambda: store.runs() or proc.poll() is not None, timeout=60, interval=0.002)
    proc.kill()
    proc.wait()

    def settled() -> bool:
        refresh(jobs)
        return all(r["status"] in FINAL for r in store.runs())

    wait_for(settled, timeout=90, interval=0.1)
    for run in store.runs():
        assert run["status"] in ("succeeded", "lost"), run
        if run["status"] == "lost":
            assert _log(jobs, run["id"]) == ""
    assert not [r for r in store.runs() if r["status"] in ACTIVE]


@pytest.fixture
def silent_server() -> Any:
    """A tracking server that accepts connections and never answers (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_hung_tracking_server_does_not_hold_the_job_back(jobs: Any, silent_server: str) -> None:
    write_config(
        jobs.root,
        CONFIG + f'\n[mlflow]\nenabled = true\ntracking_uri = "{silent_server}"\n',
    )
    run = launch_run(jobs, "quick", {"x": 1})
    assert run["status"] == "running" and run["mlflow"]["sync"] == "pending"
    spec = orjson.loads((jobs.run_dir(run["id"]) / "spec.json").read_bytes())
    assert spec["env"]["MLFLOW_TRACKING_URI"] == silent_server
    # it ran although MLflow never answered (`print` under -u writes the text, then "\n")
    wait_for(lambda: _log(jobs, run["id"]).endswith("\n"), timeout=60)
    assert _log(jobs, run["id"]) == "first line x=1\n"
    assert wait_final(jobs, run["id"], timeout=90)["status"] == "succeeded"
    # nothing lost: the sync after the run gives up on the server and waits for `ctui sync`
    wait_for(lambda: open_store(jobs).get_run(run["id"])["mlflow"].get("tried"), timeout=90)
    ml = open_store(jobs).get_run(run["id"])["mlflow"]
    assert ml["sync"] == "pending" and "not reachable" in ml["error"]


def test_init_sets_up_the_mlflow_store_so_the_first_run_does_not_wait(
    jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    write_config(jobs.root, CONFIG + '\n[mlflow]\nenabled = true\nexperiment = "first"\n')
    db = jobs.state_dir / "mlflow.db"
    assert not db.exists()
    done = subprocess.run([str(CTUI), "init"], cwd=jobs.root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "setting up the MLflow store" in done.stdout and db.is_file()

    run = launch_run(jobs, "quick", {"x": 1})
    doc = wait_final(jobs, run["id"], timeout=90)
    assert doc["status"] == "succeeded"
    assert "setting up the MLflow store" not in _log(jobs, run["id"])  # nothing left to set up
    from ctui.integrations.mlflow_experiment import _sqlite_lookup

    assert doc["mlflow"]["experiment_id"] == _sqlite_lookup(f"sqlite:///{db}", "first")
