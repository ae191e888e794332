"""`ctui watch` as a real process: SIGKILL between intent and launch, two watchers, SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from ctui.store import CAUSES, Store
from ctui.triggers.launching import CRASH_ENV, reconcile_intents
from tests.jobs_helpers import wait_for
from tests.test_triggers_helpers import (
    ENV,
    PY,
    QUICK,
    ctui,
    init_dvc,
    runs,
    track,
    wait_final,
    write_config,
)

pytestmark = pytest.mark.timeout(120)

CONFIG = f"""
[jobs.train]
command = "{QUICK}"

[triggers.new-data]
job = "train"
on = "data"
"""


def causes(project) -> dict:
    return Store(project.store_file).docs(CAUSES)


def test_sigkill_between_intent_and_launch_then_exactly_one_run(project) -> None:
    root = project.root
    init_dvc(root)  # real `dvc add`
    write_config(root, CONFIG)
    crashed = ctui(root, "watch", "--once", env={CRASH_ENV: "1"})
    assert crashed.returncode == -signal.SIGKILL
    (intent,) = causes(project).values()
    assert intent["state"] == "intent" and intent["trigger"] == "new-data"
    assert runs(root) == []  # decided, never launched

    restarted = ctui(root, "watch", "--once")
    assert restarted.returncode == 0, restarted.stderr
    assert "recovering new-data" in restarted.stdout
    (run,) = runs(root)
    assert run["cause_key"] == intent["cause_key"]
    (doc,) = causes(project).values()
    assert doc["state"] == "launched" and doc["run_id"] == run["id"]

    assert ctui(root, "watch", "--once").returncode == 0
    assert len(wait_final(root)) == 1


def test_crash_after_launch_before_confirm_is_confirmed_not_relaunched(project) -> None:
    """The other half of the window: the run exists but the intent was never confirmed."""
    from ctui.config import load_config
    from ctui.jobs.launch import launch_run

    root = project.root
    track(root, "data/train.csv", "a\n")
    write_config(root, CONFIG)
    assert ctui(root, "watch", "--once", env={CRASH_ENV: "1"}).returncode == -signal.SIGKILL
    (intent,) = causes(project).values()
    run = launch_run(
        project,
        "train",
        trigger="new-data",
        cause=intent["cause"],
        extra={"cause_key": intent["cause_key"]},
    )
    events = reconcile_intents(project, load_config(root))
    assert [e["event"] for e in events] == ["reconciled"]
    assert causes(project)[intent["cause_key"]]["run_id"] == run["id"]
    assert reconcile_intents(project, load_config(root)) == []
    assert ctui(root, "watch", "--once").returncode == 0
    assert [r["id"] for r in wait_final(root)] == [run["id"]]


def test_live_intent_of_another_process_is_left_alone(project) -> None:
    """An intent whose owner still lives (a `ctui triggers fire` mid-launch) is not taken."""
    from ctui.config import load_config
    from ctui.triggers.state import claim_cause

    root = project.root
    write_config(root, CONFIG)
    store = Store(project.store_file)
    claim_cause(
        store,
        "manual:new-data:1",
        {"trigger": "new-data", "job": "train", "cause": "manual", "params": {}},
        {},
    )
    assert reconcile_intents(project, load_config(root)) == []
    assert causes(project)["manual:new-data:1"]["state"] == "intent"
    assert runs(root) == []


def _start_watcher(root) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [PY, "-m", "ctui", "watch", "--interval", "0.3"],
        cwd=root,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "… watching <root> every 0.3s (pid N)"
    assert "watching" in line, line + proc.stderr.read() if proc.stderr else ""
    return proc


def test_second_watcher_refuses_and_sigterm_stops_the_first(project) -> None:
    root = project.root
    track(root, "data/train.csv", "a\n")
    write_config(root, CONFIG)
    first = _start_watcher(root)
    try:
        second = ctui(root, "watch", "--once")
        assert second.returncode == 2
        assert f"another `ctui watch` is running (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        # the running one launches the data cause once, however many cycles pass
        deadline = time.monotonic() + 30
        while not runs(root):
            assert time.monotonic() < deadline, "the watcher launched nothing"
            time.sleep(0.1)
        wait_final(root)
        track(root, "data/train.csv", "a\nb\n")
        while len(runs(root)) < 2:
            assert time.monotonic() < deadline + 30, "the watcher missed the new data"
            time.sleep(0.1)
        time.sleep(1.0)  # several more cycles
        assert len(runs(root)) == 2
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    lines = out.strip().splitlines()
    assert lines[-1].endswith(" stopped")
    fired = [ln for ln in lines if " fired new-data → run " in ln]
    assert len(fired) == 2
    assert fired[0][:4].isdigit() and "T" in fired[0].split()[0]  # timestamped lines
    wait_final(root)
    # the lock went with it: a new watcher may start
    assert ctui(root, "watch", "--once").returncode == 0


# -- a cause whose run never started is launched again ---------------------------------------

PATCHED_WATCHER = """
import os, signal, sys
from pathlib import Path
import ctui.jobs.launch as launch
import ctui.jobs.spawn as spawn
mode = sys.argv[2]
if mode == "kill":  # SIGKILL once the run is in the store, before its supervisor starts
    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    launch.start_supervisors = killed
else:  # a supervisor that dies before it takes its run (a broken install)
    spawn.supervisor_argv = lambda project, run_id: [sys.executable, "-c", "raise SystemExit(1)"]
from ctui.project import Project
from ctui.triggers.watch import watch_loop
root = Path(sys.argv[1])
watch_loop(Project(root, root / ".ctui"), once=True, log=lambda e: print(e["event"]))
"""


def _patched_watch(root, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-c", PATCHED_WATCHER, str(root), mode],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sigkill_after_the_run_is_inserted_before_its_supervisor_launches_it_again(project):
    root = project.root
    track(root, "data/train.csv", "a\n")
    write_config(root, CONFIG)
    crashed = _patched_watch(root, "kill")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    (stranded,) = runs(root)
    assert stranded["status"] == "running" and stranded["supervisor_pid"] is None
    (intent,) = causes(project).values()
    assert intent["state"] == "intent"

    restarted = ctui(root, "watch", "--once")
    assert restarted.returncode == 0, restarted.stderr
    assert "Traceback" not in restarted.stderr
    assert "recovering new-data" in restarted.stdout
    first, second = wait_final(root)
    assert first["id"] == stranded["id"] and first["status"] == "lost"
    assert "launch was interrupted" in first["error"]
    assert second["status"] == "succeeded" and second["cause_key"] == intent["cause_key"]
    (doc,) = causes(project).values()
    assert doc["state"] == "launched"
    assert doc["run_id"] == second["id"] and doc["retry_of"] == first["id"]
    # settled: exactly one run that started, however many cycles follow
    assert ctui(root, "watch", "--once").returncode == 0
    assert [r["id"] for r in wait_final(root)] == [first["id"], second["id"]]


def test_a_cause_whose_runs_never_start_is_given_up_after_max_attempts(project):
    from ctui.jobs.reconcile import refresh
    from ctui.triggers.state import MAX_ATTEMPTS

    root = project.root
    track(root, "data/train.csv", "a\n")
    write_config(root, CONFIG)
    for attempt in range(MAX_ATTEMPTS):
        done = _patched_watch(root, "broken")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split().count("fired") == 1, done.stdout
        assert len(runs(root)) == attempt + 1

        def lost() -> bool:
            refresh(project)
            return all(r["status"] == "lost" for r in runs(root))

        wait_for(lost)
    assert all("exited before it took the run" in r["error"] for r in runs(root))
    gave_up = ctui(root, "watch", "--once")
    assert gave_up.returncode == 0 and "Traceback" not in gave_up.stderr
    assert "FAILED to launch new-data" in gave_up.stdout
    (doc,) = causes(project).values()
    assert doc["state"] == "failed" and f"none of its {MAX_ATTEMPTS} runs started" in doc["error"]
    assert ctui(root, "watch", "--once").returncode == 0
    assert len(runs(root)) == MAX_ATTEMPTS  # settled: no more attempts
