"""No job outlives its supervisor; the end is recorded on a full disk; a bounded log tail.

Real supervisors, real SIGKILLs, real process groups (a job with a grandchild), a real tmpfs
for the full disk (root only). Nothing here polls `refresh` unless the test says so: the
job's watchdog must record the end with nobody looking.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import psutil
import pytest
from jobs_helpers import PY, run_doc, wait_final, wait_for, write_config

from ctui.jobs.backends.local import group_alive
from ctui.jobs.finish import RESERVE_FILE
from ctui.jobs.launch import launch_run
from ctui.jobs.reconcile import refresh
from ctui.store import Store

pytestmark = pytest.mark.timeout(120)

GUARDED = """
import os, signal, subprocess, sys, time
mode = sys.argv[1]
me = os.environ["CTUI_RUN_ID"]
if mode == "check":  # which earlier job processes are still alive now that this one starts
    alive = []
    for name in os.listdir("."):
        if name.startswith("pids-"):
            for pid in open(name).read().split():
                try:
                    state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
                except OSError:
                    continue
                if state not in ("Z", "X"):
                    alive.append(int(pid))
    print("alive:", alive, flush=True)
    sys.exit(0)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild too
if mode == "polite":
    from ctui import track
    track.log_metric("loss", 0.5, step=0)
pids = [os.getpid()]
if mode != "alone":
    pids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]).pid)
with open(f"pids-{me}.tmp", "w") as fh:
    fh.write(" ".join(map(str, pids)))
os.rename(f"pids-{me}.tmp", f"pids-{me}")
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""

CONFIG = f"""
[jobs.guarded]
command = "{PY} guarded.py {{mode}}"
params = {{ mode = "polite" }}

[jobs.slot]
command = "{PY} guarded.py {{mode}}"
params = {{ mode = "stubborn" }}
max_concurrent = 1
"""


@pytest.fixture
def gp(project):
    write_config(project.root, CONFIG)
    (project.root / "guarded.py").write_text(GUARDED)
    return project


def _pids(project, run_id: str) -> list[int]:
    path = project.root / f"pids-{run_id}"
    wait_for(path.exists)
    return [int(p) for p in path.read_text().split()]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _started(project, run_id: str) -> dict:
    doc = wait_for(lambda: (d := run_doc(project, run_id)).get("pgid") and d)
    _pids(project, run_id)
    return doc


def _watchdog(supervisor_pid: int) -> psutil.Process:
    def find() -> psutil.Process | None:
        for child in psutil.Process(supervisor_pid).children():
            if "ctui.jobs.backends.local" in " ".join(child.cmdline()):
                return child
        return None

    found: psutil.Process = wait_for(find)
    return found


@pytest.fixture
def reaper():
    """Kill whatever a test left behind (only on failure is there anything)."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def test_sigkilled_supervisor_takes_its_whole_job_group_down_and_the_run_ends_lost(gp, reaper):
    doc = launch_run(gp, "guarded")
    running = _started(gp, doc["id"])
    reaper.append(running["pgid"])
    leader, grandchild = _pids(gp, doc["id"])
    os.kill(running["supervisor_pid"], signal.SIGKILL)
    # nobody calls refresh: the watchdog records the end
    lost = wait_for(lambda: (d := run_doc(gp, doc["id"]))["status"] == "lost" and d)
    assert lost["error"] == (
        f"the supervisor (pid {running['supervisor_pid']}) vanished; "
        f"its job (process group {running['pgid']}) was stopped"
    )
    assert not _alive(leader) and not _alive(grandchild)
    assert not group_alive(running["pgid"])
    assert not lost.get("orphan")
    assert lost["metrics"] == {"loss": 0.5} and lost["log_tail"] == ["ready"]
    assert lost["exit_code"] is None and lost["duration"] > 0
    assert not (gp.run_dir(doc["id"]) / RESERVE_FILE).exists()


def test_the_next_queued_run_waits_until_the_orphaned_group_is_gone(gp, reaper):
    first = launch_run(gp, "slot")
    second = launch_run(gp, "slot", {"mode": "check"})
    assert run_doc(gp, second["id"])["status"] == "queued"
    running = _started(gp, first["id"])
    reaper.append(running["pgid"])
    os.kill(running["supervisor_pid"], signal.SIGKILL)
    # a reader sees it lost at once, while the watchdog's SIGTERM is being ignored
    wait_for(lambda: first["id"] in refresh(gp))
    lost = run_doc(gp, first["id"])
    assert lost["status"] == "lost"
    assert lost["orphan"]["pgid"] == running["pgid"]
    assert "still running and holds its slot" in lost["error"]
    assert run_doc(gp, second["id"])["status"] == "queued"
    # the watchdog SIGKILLs the group after its grace and starts the queued run itself
    final = wait_final(gp, second["id"], timeout=60)
    assert final["status"] == "succeeded"
    assert (gp.run_dir(second["id"]) / "output.log").read_text() == "alive: []\n"
    after = run_doc(gp, first["id"])
    assert after["status"] == "lost" and not after.get("orphan")
    assert after["error"].endswith("was stopped")


def _kill_both_guards(doc: dict) -> None:
    """SIGKILL the watchdog, then the supervisor: only the kernel's death signal is left."""
    _watchdog(doc["supervisor_pid"]).kill()
    os.kill(doc["supervisor_pid"], signal.SIGKILL)


def test_the_kernel_stops_the_leader_even_without_the_watchdog(gp, reaper):
    doc = launch_run(gp, "guarded", {"mode": "alone"})
    running = _started(gp, doc["id"])
    reaper.append(running["pgid"])
    (leader,) = _pids(gp, doc["id"])
    _kill_both_guards(running)
    wait_for(lambda: not _alive(leader))  # PR_SET_PDEATHSIG: SIGTERM from the kernel
    assert refresh(gp) == [doc["id"]]
    lost = run_doc(gp, doc["id"])
    assert lost["status"] == "lost" and "vanished" in lost["error"]
    assert not lost.get("orphan")


def test_an_orphan_keeps_its_slot_until_ctui_stop_kills_its_group(gp, reaper):
    first = launch_run(gp, "slot")
    second = launch_run(gp, "slot", {"mode": "check"})
    running = _started(gp, first["id"])
    reaper.append(running["pgid"])
    pids = _pids(gp, first["id"])
    _kill_both_guards(running)  # the stubborn job ignores the kernel's SIGTERM
    wait_for(lambda: first["id"] in refresh(gp))
    lost = run_doc(gp, first["id"])
    assert lost["status"] == "lost" and lost["orphan"]["pgid"] == running["pgid"]
    for _ in range(3):  # every reader keeps the slot taken
        refresh(gp)
        assert run_doc(gp, second["id"])["status"] == "queued"
    assert all(_alive(p) for p in pids)
    third = launch_run(gp, "slot", {"mode": "check"})  # a new launch waits for it too
    assert third["status"] == "queued"

    out = subprocess.run(
        [sys.executable, "-m", "ctui", "stop", first["id"], "--grace", "0.5", "--json"],
        cwd=gp.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    stopped = orjson.loads(out.stdout)
    assert stopped["status"] == "cancelled" and not stopped.get("orphan")
    assert "stopped by user" in stopped["error"]
    assert not any(_alive(p) for p in pids)
    assert not group_alive(running["pgid"])
    refresh(gp)  # the freed slot goes to the queued run
    final = wait_final(gp, second["id"])
    assert final["status"] == "succeeded"
    assert wait_final(gp, third["id"], timeout=60)["status"] == "succeeded"
    assert (gp.run_dir(second["id"]) / "output.log").read_text() == "alive: []\n"


def test_the_watcher_marks_a_lost_run_within_seconds_whatever_its_interval(gp, reaper):
    watcher = subprocess.Popen(
        [sys.executable, "-m", "ctui", "watch", "--interval", "300"],
        cwd=gp.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert "watching" in watcher.stdout.readline()
        doc = launch_run(gp, "guarded", {"mode": "alone"})
        running = _started(gp, doc["id"])
        reaper.append(running["pgid"])
        _kill_both_guards(running)
        # only the watcher looks (its next cycle is 300 s away)
        lost = wait_for(lambda: (d := run_doc(gp, doc["id"]))["status"] == "lost" and d, 60)
        assert "vanished" in lost["error"]
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err


# -- a failed job's log tail ---------------------------------------------------------------

NOISY = r"""
import sys
out = sys.stdout
for i in range(200_000):  # tqdm-style: one 'line' of ~5 MB
    out.write(f"\r{i * 100 // 199_999:3d}%|{'#' * (i // 20_000)}| {i + 1}/200000")
out.write("\nUV_INDEX_URL=https://u:hunter2pw@pypi.example.com/simple\n")
out.write("y" * 100_000 + "\n")
out.write("Traceback: token=ghp_" + "a" * 36 + "\n")
sys.exit(3)
"""


def test_failed_runs_log_tail_is_bounded_and_redacted(gp):
    with open(gp.root / "ctui.toml", "a") as fh:
        fh.write(f'\n[jobs.noisy]\ncommand = "{PY} noisy.py"\n')
    (gp.root / "noisy.py").write_text(NOISY)
    doc = launch_run(gp, "noisy")
    final = wait_final(gp, doc["id"], timeout=60)
    assert final["status"] == "failed" and final["exit_code"] == 3
    tail = final["log_tail"]
    assert sum(len(line.encode()) + 1 for line in tail) <= 8 * 1024
    assert all(len(line) <= 500 for line in tail)
    progress, secret, long_line, token = tail[-4:]
    assert progress.endswith("100%|#########| 200000/200000")  # what the terminal showed last
    assert secret == "UV_INDEX_URL=https://<redacted>@pypi.example.com/simple"
    assert long_line.startswith("yyy") and " … " in long_line
    assert token == "Traceback: token=<redacted>"
    assert "hunter2pw" not in str(tail) and "ghp_aaaa" not in str(tail)
    assert (gp.root / ".ctui" / "ctui.json").stat().st_size < 64 * 1024


# -- a full disk -------------------------------------------------------------------------------

FILL = """
import os
try:
    with open("fill.bin", "wb") as fh:
        while True:
            fh.write(b"\\0" * 65536)
            fh.flush()
except OSError:
    pass
os._exit(0)
"""


@pytest.fixture
def tmpfs(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (a real full disk) needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_job_that_exits_0_on_a_full_disk_ends_succeeded(tmpfs, monkeypatch):
    from ctui.project import Project

    project = Project(root=tmpfs, state_dir=tmpfs / ".ctui").ensure()
    Store(project.store_file).initialise()
    write_config(tmpfs, f'[jobs.fill]\ncommand = "{PY} fill.py"\n')
    (tmpfs / "fill.py").write_text(FILL)
    monkeypatch.chdir(tmpfs)
    doc = launch_run(project, "fill")
    final = wait_final(project, doc["id"], timeout=90)
    assert os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize < 1 << 20  # really full
    assert final["status"] == "succeeded", final.get("error")
    assert final["exit_code"] == 0
    assert final["ended"] >= final["started"]
    # nothing half-written: the store parses, no temp files, the reserve is gone
    assert Store(project.store_file).get_run(doc["id"])["status"] == "succeeded"
    leftovers = [p.name for p in project.state_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not (project.run_dir(doc["id"]) / RESERVE_FILE).exists()
    (tmpfs / "fill.bin").unlink()


def test_a_reader_on_a_full_disk_changes_nothing_and_the_next_one_marks_the_run_lost(tmpfs):
    from ctui.errors import CtuiError
    from ctui.project import Project

    project = Project(root=tmpfs, state_dir=tmpfs / ".ctui").ensure()
    store = Store(project.store_file)
    store.initialise()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    import socket

    store.insert_run(
        {
            "id": "0123456789ab",
            "job": "x",
            "status": "running",
            "backend": "local",
            "host": socket.gethostname(),
            "supervisor_pid": gone.pid,
            "supervisor_ctime": 0.0,
        }
    )
    fill = tmpfs / "fill.bin"
    with open(fill, "wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    before = project.store_file.read_bytes()
    with pytest.raises(CtuiError) as failed:  # `ctui runs` shows it as a warning
        refresh(project)
    assert "No space left on device" in failed.value.message
    assert "\n" not in failed.value.message
    assert project.store_file.read_bytes() == before
    assert [p.name for p in project.state_dir.iterdir() if p.name.endswith(".tmp")] == []
    fill.unlink()
    assert refresh(project) == ["0123456789ab"]
    assert store.get_run("0123456789ab")["status"] == "lost"


SLOW_SAMPLES = f"""
[monitor]
interval = 60

[jobs.sleepy]
command = "{PY} -c 'import time; print(\\"ready\\", flush=True); time.sleep(600)'"

[jobs.quick]
command = "{PY} -c 'print(\\"done\\")'"
"""


def test_the_wait_for_the_job_wakes_on_its_exit_not_on_the_next_sample(project):
    """With samples a minute apart the supervisor sleeps until the job's leader exits (a
    pidfd on Linux): the end is recorded at once, not at the next sample."""
    write_config(project.root, SLOW_SAMPLES)
    doc = launch_run(project, "quick")
    final = wait_final(project, doc["id"], timeout=30)
    assert final["status"] == "succeeded"


def test_ctui_stop_wakes_the_supervisor_between_samples(project):
    """SIGTERM from `ctui stop` wakes the supervisor's wait (its wake pipe), a minute before
    the next sample is due; the job is stopped and the run ends cancelled."""
    from ctui.jobs.stop import stop_run

    write_config(project.root, SLOW_SAMPLES)
    doc = launch_run(project, "sleepy")
    run = wait_for(lambda: (d := run_doc(project, doc["id"])).get("pgid") and d)
    wait_for(lambda: b"ready" in (project.run_dir(doc["id"]) / "output.log").read_bytes())
    stop_run(project, doc["id"], grace=5)
    final = wait_final(project, doc["id"], timeout=30)
    assert final["status"] == "cancelled"
    assert not group_alive(run["pgid"])
