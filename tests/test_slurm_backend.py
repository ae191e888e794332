"""The Slurm backend against a real single-node cluster (`bash tests/ci/slurm.sh up`).

Every test here skips, saying why, when no Slurm controller answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.jobs.backends import slurm as slurm_backend
from ctui.jobs.launch import launch_run
from ctui.jobs.reconcile import refresh
from ctui.jobs.stop import stop_run
from ctui.store import ACTIVE, Store

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(180)]

PY = sys.executable
CI_CONF = Path(os.environ.get("CTUI_SLURM_DIR", "/tmp/ctui-slurm")) / "slurm.conf"


def _slurm_up() -> str | None:
    """None when a controller answers, else why not."""
    if "SLURM_CONF" not in os.environ and CI_CONF.exists():
        os.environ["SLURM_CONF"] = str(CI_CONF)
    if shutil.which("sinfo") is None:
        return "Slurm is not installed (no sinfo); run `bash tests/ci/slurm.sh up`"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo does not answer; run `bash tests/ci/slurm.sh up`"
    if done.returncode != 0 or not done.stdout.strip():
        return (
            f"no Slurm controller answers sinfo ({done.stderr.decode().strip()}); "
            "run `bash tests/ci/slurm.sh up`"
        )
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    why = _slurm_up()
    if why:
        pytest.skip(why)


@pytest.fixture
def slurm_project(project: Any) -> Iterator[Any]:
    """A project with Slurm jobs; every job it submitted is cancelled afterwards."""
    (project.root / "job.py").write_text(
        "import sys\nfrom ctui import track\n"
        "track.log_metric('acc', 0.75, step=1)\nprint(sys.argv[1:])\n"
    )
    (project.root / "ctui.toml").write_text(
        textwrap.dedent(
            f"""
            [jobs.train]
            command = "{PY} job.py {{msg}}"
            params = {{ msg = "hello" }}
            backend = "slurm"
            slurm = {{ cpus = 1, time = "5", setup = ["echo setup-ran"] }}

            [jobs.fail]
            command = "sh -c 'echo about to fail; exit 3'"
            backend = "slurm"

            [jobs.sleep]
            command = "sleep {{secs}}"
            params = {{ secs = 120 }}
            backend = "slurm"
            slurm = {{ cpus = 2 }}

            [jobs.short]
            command = "sleep 300"
            backend = "slurm"
            slurm = {{ cpus = 1, time = "1" }}

            [jobs.held]
            command = "true"
            backend = "slurm"
            slurm = {{ sbatch_args = ["--hold"] }}

            [jobs.secret]
            command = "{PY} job_secret.py --password={{password}}"
            params = {{ password = "" }}
            env = {{ DB_PASSWORD = "env-s3cr3t-value" }}
            backend = "slurm"
            """
        )
    )
    yield project
    ids = [
        (r.get("slurm") or {}).get("job_id")
        for r in Store(project.store_file).runs()
        if r.get("slurm")
    ]
    ids = [i for i in ids if i]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def wait_for(project: Any, run_id: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        refresh(project)
        run = Store(project.store_file).get_run(run_id)
        if done(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run never reached the expected state: {run}")
        time.sleep(0.3)


def final(run: dict[str, Any]) -> bool:
    return run["status"] not in ACTIVE


def test_success_runs_on_the_node_with_its_log_and_metrics(slurm_project: Any) -> None:
    marker = slurm_project.root / "pwned"
    run = launch_run(slurm_project, "train", {"msg": f"x; touch {marker}"})
    assert run["backend"] == "slurm" and run["slurm"]["job_id"]
    done = wait_for(slurm_project, run["id"], final)

    assert done["status"] == "succeeded" and done["exit_code"] == 0
    assert done["metrics"] == {"acc": 0.75}
    assert done["slurm"]["state"] == "COMPLETED"
    assert done["slurm"]["nodes"] and done["slurm"]["partition"] == "debug"
    assert done["started"] and done["ended"] >= int(done["started"])
    log = (slurm_project.run_dir(run["id"]) / "output.log").read_text()
    assert "setup-ran" in log
    assert f"['x; touch {marker}']" in log  # one argv token, not a shell command
    assert not marker.exists()
    # the whole manifest was captured by the step on the node, as the job started
    assert {"code", "env", "compute"} <= set(done["manifest"])
    assert done["git"] and done.get("captured")
    script = (slurm_project.run_dir(run["id"]) / "slurm.sbatch").read_text()
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --time=5" in script
    assert "node-start" in script


def test_exit_code_3_is_failed_with_the_code_and_log_tail(slurm_project: Any) -> None:
    run = launch_run(slurm_project, "fail")
    done = wait_for(slurm_project, run["id"], final)
    assert done["status"] == "failed"
    assert done["exit_code"] == 3
    assert done["slurm"]["state"] == "FAILED"
    assert "about to fail" in done["log_tail"]


def test_stop_cancels_with_scancel_and_a_second_job_waits_for_cpus(slurm_project: Any) -> None:
    first = launch_run(slurm_project, "sleep")
    wait_for(slurm_project, first["id"], lambda r: r["status"] == "running")
    second = launch_run(slurm_project, "sleep")
    pending = wait_for(slurm_project, second["id"], lambda r: r["slurm"].get("reason"))
    assert pending["status"] == "queued"
    assert pending["slurm"]["state"] == "PENDING"
    # "Priority" until Slurm's scheduler looks at it again, then "Resources"
    assert pending["slurm"]["reason"] in ("Resources", "Priority")

    stopped = stop_run(slurm_project, first["id"])
    assert stopped["status"] == "cancelled"
    # the freed CPUs go to the second job
    wait_for(slurm_project, second["id"], lambda r: r["status"] == "running")
    gone = Store(slurm_project.store_file).get_run(first["id"])
    assert gone["status"] == "cancelled" and gone["slurm"]["state"] == "CANCELLED"
    stop_run(slurm_project, second["id"])
    states = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%T", "-j", second["slurm"]["job_id"]],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert states and states[0] in ("CANCELLED", "COMPLETING")


def test_extra_sbatch_args_hold_the_job_with_its_reason(slurm_project: Any) -> None:
    run = launch_run(slurm_project, "held")
    held = wait_for(slurm_project, run["id"], lambda r: r["slurm"].get("reason"))
    assert held["status"] == "queued"
    assert held["slurm"]["reason"] == "JobHeldUser"


def test_refresh_asks_squeue_once_for_all_runs(
    slurm_project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [launch_run(slurm_project, "held") for _ in range(3)]
    calls = tmp_path / "calls"
    shim = tmp_path / "bin"
    shim.mkdir()
    real = shutil.which("squeue")
    (shim / "squeue").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    (shim / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    refresh(slurm_project)
    lines = calls.read_text().splitlines()
    assert len(lines) == 1
    for r in runs:
        assert r["slurm"]["job_id"] in lines[0]


def test_a_job_slurm_forgot_is_decided_by_its_exit_record(slurm_project: Any) -> None:
    store = Store(slurm_project.store_file)
    for run_id, record in (
        ("forgotok0001", {"exit_code": 0, "ended": 1.0e9}),
        ("forgotnone01", None),
    ):
        store.insert_run(
            {
                "id": run_id,
                "job": "train",
                "status": "running",
                "backend": "slurm",
                "started": 1.0e9 - 5,
                "slurm": {"job_id": "987654321" if record else "987654322"},
            }
        )
        run_dir = slurm_project.run_dir(run_id)
        run_dir.mkdir(parents=True)
        if record:
            (run_dir / slurm_backend.EXIT_FILE).write_bytes(orjson.dumps(record))
    refresh(slurm_project)
    ok = store.get_run("forgotok0001")
    assert ok["status"] == "succeeded" and ok["exit_code"] == 0 and ok["duration"] == 5
    lost = store.get_run("forgotnone01")
    assert lost["status"] == "lost"
    assert "no exit record" in lost["error"]


def test_finished_jobs_come_from_sacct_or_else_scontrol(slurm_project: Any) -> None:
    run = launch_run(slurm_project, "fail")
    job_id = run["slurm"]["job_id"]
    wait_for(slurm_project, run["id"], final)
    info = slurm_backend.finished_jobs([job_id])
    assert info[job_id]["state"] == "FAILED"
    assert info[job_id]["exit_code"] == 3


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_time_limit_hit_is_timeout(slurm_project: Any) -> None:
    """Slurm's smallest limit is one minute, checked about every 30 s: this takes 60-100 s."""
    run = launch_run(slurm_project, "short")
    done = wait_for(slurm_project, run["id"], final, timeout=200)
    assert done["status"] == "timeout"
    assert done["slurm"]["state"] == "TIMEOUT"


def test_mlflow_run_is_finished_on_the_node_and_a_cancel_is_synced(project: Any) -> None:
    from ctui.integrations import mlflow_bridge as bridge

    (project.root / "job.py").write_text(
        "from ctui import track\ntrack.log_metric('loss', 0.25, step=0)\n"
    )
    (project.root / "ctui.toml").write_text(
        textwrap.dedent(
            f"""
            [jobs.train]
            command = "{PY} job.py"
            backend = "slurm"

            [jobs.sleep]
            command = "sleep 120"
            backend = "slurm"

            [mlflow]
            enabled = true
            """
        )
    )
    run = launch_run(project, "train")
    assert run["mlflow"]["sync"] == "pending"  # the launch asks MLflow nothing
    done = wait_for(project, run["id"], final, timeout=120)
    assert done["status"] == "succeeded"
    assert done["mlflow"]["sync"] == "ok"  # node-end closed the MLflow run
    uri = bridge.tracking_uri(project)
    cl = bridge.client(uri)
    got = cl.get_run(done["mlflow"]["run_id"])
    assert got.info.status == "FINISHED"
    assert [m.value for m in cl.get_metric_history(got.info.run_id, "loss")] == [0.25]

    sleeper = launch_run(project, "sleep")
    try:
        wait_for(project, sleeper["id"], lambda r: r["status"] == "running")
        stopped = stop_run(project, sleeper["id"])
    finally:
        subprocess.run(["scancel", sleeper["slurm"]["job_id"]], capture_output=True)
    assert stopped["status"] == "cancelled"
    assert Store(project.store_file).get_run(sleeper["id"])["mlflow"]["sync"] == "pending"
    assert bridge.sync_pending(project)["synced"] == [sleeper["id"]]
    mlflow_id = Store(project.store_file).get_run(sleeper["id"])["mlflow"]["run_id"]
    assert cl.get_run(mlflow_id).info.status == "KILLED"


def test_sbatch_refusal_fails_the_run_with_its_message(slurm_project: Any) -> None:
    from ctui.errors import CtuiError

    toml = slurm_project.root / "ctui.toml"
    toml.write_text(
        toml.read_text() + '\n[jobs.nowhere]\ncommand = "true"\nbackend = "slurm"\n'
        'slurm = { partition = "no-such-partition" }\n'
    )
    with pytest.raises(CtuiError) as err:
        launch_run(slurm_project, "nowhere")
    assert "sbatch refused the job" in err.value.message
    (run,) = [r for r in Store(slurm_project.store_file).runs() if r["job"] == "nowhere"]
    assert run["status"] == "failed"
    assert "partition" in run["error"].lower()


def test_stopping_a_pending_job_cancels_it_in_slurm(slurm_project: Any) -> None:
    run = launch_run(slurm_project, "held")
    wait_for(slurm_project, run["id"], lambda r: r["slurm"].get("reason"))
    stopped = stop_run(slurm_project, run["id"])
    assert stopped["status"] == "cancelled"
    state = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%T", "-j", run["slurm"]["job_id"]],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert state == "CANCELLED"


def test_a_sweep_is_one_job_array_with_one_run_per_element(slurm_project: Any) -> None:
    from ctui.jobs.sweep import launch_sweep, parse_sweep

    runs = launch_sweep(slurm_project, "train", parse_sweep(["msg=a,b b,c;d"]))
    assert [r["params"]["msg"] for r in runs] == ["a", "b b", "c;d"]
    job_ids = [r["slurm"]["job_id"] for r in runs]
    array = job_ids[0].split("_")[0]
    assert job_ids == [f"{array}_{i}" for i in range(3)]
    for r in runs:
        done = wait_for(slurm_project, r["id"], final)
        assert done["status"] == "succeeded", done
        assert done["sweep"]["size"] == 3
        log = (slurm_project.run_dir(r["id"]) / "output.log").read_text()
        assert f"[{r['params']['msg']!r}]" in log


SECRET_JOB = """
import hashlib, os, sys
digest = lambda text: hashlib.sha256(text.encode()).hexdigest()[:12]
print("arg", digest(sys.argv[1]), "env", digest(os.environ["DB_PASSWORD"]))
print("leftover", sorted(k for k in os.environ if k.startswith("CTUI_SECRET_")))
"""


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _files_holding(root: Path, *secrets: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


def test_secret_params_reach_the_node_but_no_file_ctui_writes(slurm_project: Any) -> None:
    from ctui.jobs.sweep import launch_sweep

    (slurm_project.root / "job_secret.py").write_text(SECRET_JOB)
    one = launch_run(slurm_project, "secret", {"password": "hunter2-single"})
    sweep = launch_sweep(slurm_project, "secret", {"password": ["pw-one-aa", "pw-two-bb"]})
    for run, pw in zip([one, *sweep], ["hunter2-single", "pw-one-aa", "pw-two-bb"], strict=True):
        done = wait_for(slurm_project, run["id"], final)
        assert done["status"] == "succeeded", done
        log = (slurm_project.run_dir(run["id"]) / "output.log").read_text()
        assert f"arg {_digest('--password=' + pw)} env {_digest('env-s3cr3t-value')}" in log
        assert "leftover []" in log  # the job's environment holds only what it is meant to
        script = (slurm_project.run_dir(run["id"]) / "slurm.sbatch").read_text()
        assert '"$ctui_a' in script and '"$ctui_e' in script  # named by reference only
    state = slurm_project.state_dir
    assert not _files_holding(state, "hunter2-single", "pw-one-aa", "pw-two-bb", "env-s3cr3t")


def test_cli_run_sweep_submits_one_array(slurm_project: Any) -> None:
    done = subprocess.run(
        [PY, "-m", "ctui", "run", "train", "--sweep", "msg=x,y", "--json"],
        cwd=slurm_project.root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    docs = orjson.loads(done.stdout)
    assert [d["params"]["msg"] for d in docs] == ["x", "y"]
    arrays = {d["slurm"]["job_id"].split("_")[0] for d in docs}
    assert len(arrays) == 1
    for d in docs:
        assert wait_for(slurm_project, d["id"], final)["status"] == "succeeded"
