"""Launch and supervision with real subprocesses and signals: status, exit codes, logs,
metrics, stop, lost supervisors, surviving the launcher's death, the queue."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from jobs_helpers import PY, run_doc, wait_final, wait_for, write_config

from ctui.errors import CtuiError
from ctui.jobs.launch import launch_run
from ctui.jobs.reconcile import refresh
from ctui.jobs.stop import stop_run
from ctui.store import open_store

pytestmark = pytest.mark.timeout(90)

CONFIG = f"""
[jobs.ok]
command = "{PY} job_ok.py --lr {{lr}} --name {{name}}"
params = {{ lr = 0.01, name = "base" }}
metrics = ["eval.json"]

[jobs.fail]
command = "{PY} -c 'import sys; [print(\\"line\\", i) for i in range(30)]; sys.exit(3)'"

[jobs.missing]
command = "no-such-command-ctui-test --flag"

[jobs.noexec]
command = "./not_executable.sh"

[jobs.sleepy]
command = "{PY} -c 'import time; print(\\"started\\", flush=True); time.sleep(60)'"

[jobs.stubborn]
command = "{PY} stubborn.py"

[jobs.echo]
command = "{PY} echo.py {{msg}}"
params = {{ msg = "hello" }}

[jobs.shellecho]
command = "echo {{msg}}"
shell = true
params = {{ msg = "hello" }}

[jobs.slot]
command = "{PY} slot.py"
max_concurrent = 1
"""

JOB_OK = """
import json, sys
from ctui import track
track.log_params(seed=7)
for step in range(3):
    track.log_metric("loss", 1.0 / (step + 1), step=step)
track.log_metrics({"acc": 0.91}, step=2)
json.dump({"eval": {"f1": 0.8, "auc": 0.75}, "note": "text is dropped"}, open("eval.json", "w"))
print("args", sys.argv[1:])
"""

STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""

ECHO = """
import os, sys
print(repr(sys.argv[1]))
print(os.environ["CTUI_PARAM_MSG"])
"""

SLOT = """
import os, time
with open("order.txt", "a") as fh:
    fh.write(os.environ["CTUI_RUN_ID"] + " start\\n")
time.sleep(0.3)
with open("order.txt", "a") as fh:
    fh.write(os.environ["CTUI_RUN_ID"] + " end\\n")
"""


@pytest.fixture
def jp(project):
    """A project with the test jobs declared."""
    write_config(project.root, CONFIG)
    (project.root / "job_ok.py").write_text(JOB_OK)
    (project.root / "stubborn.py").write_text(STUBBORN)
    (project.root / "slot.py").write_text(SLOT)
    (project.root / "echo.py").write_text(ECHO)
    (project.root / "not_executable.sh").write_text("#!/bin/sh\necho hi\n")
    return project


def log_of(project, run_id: str) -> str:
    return (project.run_dir(run_id) / "output.log").read_text()


def test_run_succeeds_with_metrics_params_and_samples(jp):
    doc = launch_run(jp, "ok", {"lr": "0.5"})
    assert doc["status"] == "running"
    assert doc["trigger"] == "manual"
    assert doc["params"] == {"lr": 0.5, "name": "base"}
    final = wait_final(jp, doc["id"])
    # captured by the supervisor as the job started
    assert set(final["manifest"]) >= {"code", "env"}
    assert final["git"]
    assert final["status"] == "succeeded", final
    assert final["exit_code"] == 0
    assert final["ended"] >= final["started"] >= final["created"]
    assert final["duration"] >= 0
    # last value of each tracked metric, plus the job's metrics file flattened with dots
    assert final["metrics"] == {
        "loss": pytest.approx(1 / 3),
        "acc": 0.91,
        "eval.f1": 0.8,
        "eval.auc": 0.75,
    }
    assert "args ['--lr', '0.5', '--name', 'base']" in log_of(jp, doc["id"])
    run_dir = jp.run_dir(doc["id"])
    samples = [orjson.loads(x) for x in (run_dir / "resources.jsonl").read_bytes().splitlines()]
    assert any("rss" in s for s in samples)
    assert final["peaks"]["max_rss"] > 0
    assert (run_dir / "params.jsonl").read_text().count('"seed"') == 1
    assert (run_dir / "metrics.jsonl").read_text().count('"loss"') == 3


def test_param_injection_creates_nothing(jp):
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    evil = f"x; touch {marker}"
    doc = launch_run(jp, "echo", {"msg": evil})
    shell_doc = launch_run(jp, "shellecho", {"msg": f"$(touch {marker}) `touch {marker}` {evil}"})
    assert wait_final(jp, doc["id"])["status"] == "succeeded"
    assert wait_final(jp, shell_doc["id"])["status"] == "succeeded"
    assert not marker.exists()
    # the value arrives whole, as one argv token and as an env var
    assert log_of(jp, doc["id"]).splitlines() == [repr(evil), evil]
    assert f"touch {marker}" in log_of(jp, shell_doc["id"])


def test_failing_job_keeps_exit_code_and_log_tail(jp):
    final = wait_final(jp, launch_run(jp, "fail")["id"])
    assert final["status"] == "failed"
    assert final["exit_code"] == 3
    assert final["log_tail"][-1] == "line 29"
    assert len(final["log_tail"]) == 20
    assert "3" in final["error"]


def test_command_not_found_is_a_failed_run_with_a_reason(jp):
    final = wait_final(jp, launch_run(jp, "missing")["id"])
    assert final["status"] == "failed"
    assert "command not found" in final["error"]
    assert "no-such-command-ctui-test" in final["error"]
    assert "Traceback" not in log_of(jp, final["id"])


def test_not_executable_is_a_failed_run_with_a_reason(jp):
    final = wait_final(jp, launch_run(jp, "noexec")["id"])
    assert final["status"] == "failed"
    assert "not executable" in final["error"]


def test_unknown_param_and_bad_value_are_refused(jp):
    with pytest.raises(CtuiError, match=r"no param 'nope' \(known: lr, name\)"):
        launch_run(jp, "ok", {"nope": 1})
    with pytest.raises(CtuiError, match="expected float"):
        launch_run(jp, "ok", {"lr": "fast"})
    with pytest.raises(CtuiError, match="no such job"):
        launch_run(jp, "nojob")
    assert open_store(jp).runs() == []


def test_stop_cancels_the_run_and_its_process_group(jp):
    doc = launch_run(jp, "sleepy")
    running = wait_for(lambda: run_doc(jp, doc["id"]).get("pgid") and run_doc(jp, doc["id"]))
    wait_for(lambda: "started" in log_of(jp, doc["id"]))
    final = stop_run(jp, doc["id"], grace=5)
    assert final["status"] == "cancelled"
    wait_for(lambda: not _group_alive(running["pgid"]))


def test_stop_kills_a_job_that_ignores_sigterm_after_the_grace(jp):
    doc = launch_run(jp, "stubborn")
    wait_for(lambda: "ready" in log_of(jp, doc["id"]))
    final = stop_run(jp, doc["id"], grace=0.5)
    assert final["status"] == "cancelled"
    assert final["exit_code"] == 128 + signal.SIGKILL
    assert "ignoring SIGTERM" in log_of(jp, doc["id"])


def _group_alive(pgid: int) -> bool:
    from ctui.jobs.backends.local import group_alive

    return group_alive(pgid)  # a killed leader nobody reaps (its supervisor is gone) is over


def test_supervisor_killed_is_detected_as_lost(jp):
    """The job dies with its supervisor (see tests/test_supervision.py for the details)."""
    doc = launch_run(jp, "sleepy")
    running = wait_for(lambda: run_doc(jp, doc["id"]).get("pgid") and run_doc(jp, doc["id"]))
    os.kill(running["supervisor_pid"], signal.SIGKILL)
    try:
        lost = wait_for(lambda: (d := run_doc(jp, doc["id"]))["status"] == "lost" and d)
        assert "vanished" in lost["error"]
        wait_for(lambda: not _group_alive(running["pgid"]))
        wait_for(lambda: not run_doc(jp, doc["id"]).get("orphan"))
        assert refresh(jp) == []  # nothing active any more: no work
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running["pgid"], signal.SIGKILL)


def test_refresh_leaves_a_healthy_run_alone(jp):
    doc = launch_run(jp, "sleepy")
    wait_for(lambda: run_doc(jp, doc["id"]).get("pgid"))
    assert refresh(jp) == []
    assert run_doc(jp, doc["id"])["status"] == "running"
    stop_run(jp, doc["id"], grace=1)


LAUNCHER = """
import sys, time
from pathlib import Path
from ctui.project import Project
from ctui.jobs.launch import launch_run
root = Path(sys.argv[1])
run = launch_run(Project(root, root / ".ctui"), "brief")
print(run["id"], flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL])
def test_job_survives_its_launcher_being_killed(jp, sig):
    with open(jp.root / "ctui.toml", "a") as fh:
        fh.write(f"\n[jobs.brief]\ncommand = \"{PY} -c 'import time; time.sleep(1); print(1)'\"\n")
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(jp.root)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a "terminal session" of its own that we then hang up
    )
    assert launcher.stdout is not None
    run_id = launcher.stdout.readline().strip()
    os.killpg(launcher.pid, sig)
    launcher.wait(10)
    assert launcher.returncode == -sig
    final = wait_final(jp, run_id)
    assert final["status"] == "succeeded"
    assert final["exit_code"] == 0
    assert log_of(jp, run_id).strip() == "1"


def test_queued_runs_start_in_order_one_at_a_time(jp):
    ids = [launch_run(jp, "slot")["id"] for _ in range(3)]
    assert [run_doc(jp, i)["status"] for i in ids] == ["running", "queued", "queued"]
    finals = [wait_final(jp, i) for i in ids]
    assert [f["status"] for f in finals] == ["succeeded"] * 3
    events = (jp.root / "order.txt").read_text().split()
    expected = []
    for i in ids:
        expected += [i, "start", i, "end"]
    assert events == expected  # FIFO, and never two at once


def test_a_queued_run_can_be_cancelled(jp):
    first = launch_run(jp, "slot")
    second = launch_run(jp, "slot")
    assert second["status"] == "queued"
    assert stop_run(jp, second["id"])["status"] == "cancelled"
    assert wait_final(jp, first["id"])["status"] == "succeeded"
    assert run_doc(jp, second["id"])["status"] == "cancelled"
    assert "second" not in (jp.root / "order.txt").read_text()
    assert second["id"] not in (jp.root / "order.txt").read_text()


def test_trigger_cause_workdir_and_extra_are_recorded(jp, tmp_path):
    other = tmp_path / "checkout"
    other.mkdir()
    (other / "job_ok.py").write_text(JOB_OK)
    doc = launch_run(
        jp,
        "ok",
        trigger="new-data",
        cause="data/x 1→2",
        workdir=other,
        extra={"tags": ["t"]},
        reproduces="abc",
    )
    assert (doc["trigger"], doc["cause"], doc["tags"], doc["reproduces"]) == (
        "new-data",
        "data/x 1→2",
        ["t"],
        "abc",
    )
    assert wait_final(jp, doc["id"])["status"] == "succeeded"
    assert (other / "eval.json").exists()  # it ran in the other checkout
    assert not (jp.root / "eval.json").exists()


def test_spec_holds_no_shell_string(jp):
    doc = launch_run(jp, "echo", {"msg": "a b"})
    spec = orjson.loads((jp.run_dir(doc["id"]) / "spec.json").read_bytes())
    assert spec["argv"][-1] == "a b"
    assert spec["env"]["CTUI_RUN_ID"] == doc["id"]
    wait_final(jp, doc["id"])


def test_supervisor_module_runs_detached_from_the_launcher(jp):
    doc = launch_run(jp, "sleepy")
    running = wait_for(lambda: run_doc(jp, doc["id"]).get("pgid") and run_doc(jp, doc["id"]))
    sup = running["supervisor_pid"]
    assert os.getsid(sup) == sup  # its own session
    assert os.getpgid(running["pid"]) == running["pid"]  # the job leads its own group
    stop_run(jp, doc["id"], grace=1)


def test_the_job_sees_the_launchers_pythonpath_unchanged(jp, monkeypatch):
    with open(jp.root / "ctui.toml", "a") as fh:
        fh.write(
            f"\n[jobs.pp]\ncommand = \"{PY} -c 'import os; "
            f'print(os.environ.get(\\"PYTHONPATH\\", \\"<none>\\"))\'"\n'
        )
    monkeypatch.delenv("PYTHONPATH", raising=False)
    unset = wait_final(jp, launch_run(jp, "pp")["id"])
    monkeypatch.setenv("PYTHONPATH", "/some/where")
    mine = wait_final(jp, launch_run(jp, "pp")["id"])
    assert log_of(jp, unset["id"]).strip() == "<none>"
    assert log_of(jp, mine["id"]).strip() == "/some/where"


def test_stop_refuses_a_run_on_another_host(jp):
    doc = launch_run(jp, "sleepy")
    wait_for(lambda: run_doc(jp, doc["id"]).get("pgid"))
    store = open_store(jp)
    store.update_run(doc["id"], {"host": "elsewhere.invalid"})
    with pytest.raises(CtuiError, match="runs on host elsewhere.invalid"):
        stop_run(jp, doc["id"], grace=1)
    assert run_doc(jp, doc["id"])["status"] == "running"
    assert refresh(jp) == []  # not judged lost from here either
    store.update_run(doc["id"], {"host": socket.gethostname()})
    assert stop_run(jp, doc["id"], grace=1)["status"] == "cancelled"
