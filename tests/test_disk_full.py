"""A full disk and a read-only `.ctui` (issue 13, item 6): real tmpfs mounts (as root).

Every command that writes fails with one line and exit 2, the store stays the last good
version and no temp file is left; `ctui runs` still lists (its refresh is only a warning).
Temp files of interrupted writes are reported by `ctui doctor` and removed by `--clean`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ctui.atomic import is_temp_file
from ctui.errors import ExitCode
from ctui.store import Store
from tests.test_store_hardening import ctui, one_line_error

pytestmark = pytest.mark.timeout(180)

PY = shlex.quote(sys.executable)
CONFIG = f"""
[jobs.train]
command = "{PY} -c 'print(1)'"

[triggers.nightly]
job = "train"
on = "schedule"
every = "1h"
"""


def _mount(where: Path, options: str) -> None:
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A project whose `.ctui` is a 4 MB tmpfs, with three runs, one of them `running`
    under a supervisor that is gone (so `ctui runs` wants to write `lost`)."""
    if os.geteuid() != 0:
        pytest.skip(f"mounting a small tmpfs (a real full disk) needs root; uid {os.geteuid()}")
    state = tmp_path / ".ctui"
    state.mkdir()
    _mount(state, "size=4m,mode=755")
    try:
        (tmp_path / "ctui.toml").write_text(CONFIG)
        for d in ("objects", "runs", "cache"):
            (state / d).mkdir()
        store = Store(state / "ctui.json")
        store.initialise()
        gone = subprocess.Popen(["true"])
        gone.wait()
        store.put_runs(
            [
                {"id": "done1", "job": "train", "status": "succeeded", "tags": ["a"]},
                {"id": "done2", "job": "train", "status": "failed", "note": "n"},
                {
                    "id": "live1",
                    "job": "train",
                    "status": "running",
                    "backend": "local",
                    "host": os.uname().nodename,
                    "created": time.time() - 600,
                    "started": time.time() - 600,
                    "supervisor_pid": gone.pid,
                    "supervisor_ctime": 1.0,
                },
            ]
        )
        store.update_run("done1", {"note": "kept"})  # a .bak too
        yield tmp_path
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def _fill(state: Path) -> Path:
    """Write a filler file until the tmpfs says ENOSPC."""
    filler = state / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    # what is left is less than a chunk: fill it to the byte
    with open(filler, "ab", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0")
    return filler


def _temp_files(state: Path) -> list[Path]:
    return [Path(d) / n for d, _, ns in os.walk(state) for n in ns if is_temp_file(Path(n))]


def _every_writer_fails_cleanly(root: Path, needle: str) -> None:
    state = root / ".ctui"
    store_file = state / "ctui.json"
    before = store_file.read_bytes()
    backup = (state / "ctui.json.bak").read_bytes()
    for args in (["tag", "done1", "x"], ["note", "done2", "y"], ["note", "done2", "-a", "z"]):
        proc = ctui(root, *args)
        one_line_error(proc, ExitCode.BAD_INPUT, "could not", needle)
        assert "nothing was changed" in proc.stderr
    folders = sorted((state / "runs").iterdir())
    for args in (["run", "train"], ["watch", "--once"]):
        proc = ctui(root, *args)
        one_line_error(proc, ExitCode.BAD_INPUT, needle)
    assert sorted((state / "runs").iterdir()) == folders  # no run folder without its run

    listed = ctui(root, "runs", "--json")  # a read: it lists, the failed refresh is a warning
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    assert "warning: run states not refreshed" in listed.stderr and needle in listed.stderr
    assert {r["id"] for r in orjson.loads(listed.stdout)} == {"done1", "done2", "live1"}
    table = ctui(root, "runs")
    assert table.returncode == 0 and "live1" in table.stdout, table.stderr
    assert ctui(root, "show", "done1").returncode == 0

    doctor = ctui(root, "doctor")
    assert "Traceback" not in doctor.stderr and "is readable: 3 runs" in doctor.stdout

    assert store_file.read_bytes() == before  # the last good version, untouched
    assert (state / "ctui.json.bak").read_bytes() == backup
    assert _temp_files(state) == []


def test_a_full_disk_is_one_line_exit_2_and_loses_nothing(root: Path) -> None:
    filler = _fill(root / ".ctui")
    _every_writer_fails_cleanly(root, "No space left on device")
    filler.unlink()  # space again: the same commands work
    assert ctui(root, "tag", "done1", "x").returncode == 0
    store = Store(root / ".ctui" / "ctui.json")
    assert store.get_run("done1")["tags"] == ["a", "x"]
    assert store.get_run("done1")["note"] == "kept"
    listed = ctui(root, "runs", "--json")
    assert listed.returncode == 0 and "warning" not in listed.stderr
    assert store.get_run("live1")["status"] == "lost"


def test_a_read_only_state_folder_is_one_line_exit_2(root: Path) -> None:
    state = root / ".ctui"
    proc = subprocess.run(["mount", "-o", "remount,ro", str(state)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {proc.stderr.decode().strip()}")
    _every_writer_fails_cleanly(root, "Read-only file system")


STUCK_WRITER = """
import os, sys, time
from pathlib import Path
from ctui.atomic import atomic_write_bytes

def stuck(fd):
    print("writing", flush=True)
    time.sleep(600)

os.fsync = stuck  # the write stops half way, its temp file locked, until it is killed
atomic_write_bytes(Path(sys.argv[1]), b"x" * 1_000_000)
"""


def test_doctor_reports_and_cleans_temp_files_of_killed_writers(tmp_path: Path) -> None:
    state = tmp_path / ".ctui"
    state.mkdir()
    Store(state / "ctui.json").initialise()
    target = state / "runs" / "r1" / "plots.json"
    target.parent.mkdir(parents=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", STUCK_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        (temp,) = _temp_files(state)
        old = time.time() - 3600
        os.utime(temp, (old, old))  # old, but still being written: kept
        report = ctui(tmp_path, "doctor")
        assert "1 temp file(s) left by interrupted writes, 1.0 MB" in report.stdout, report.stdout
        assert "1 being written" in report.stdout
        cleaned = ctui(tmp_path, "doctor", "--clean")
        assert "removed 0 temp file(s)" in cleaned.stdout and "kept 1" in cleaned.stdout
        assert temp.exists()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    os.utime(temp, (old, old))
    assert not target.exists()  # the killed write left only its temp file
    report = ctui(tmp_path, "doctor", "--json")
    assert report.returncode == 0, report.stdout
    (check,) = [c for c in orjson.loads(report.stdout)["checks"] if "temp file" in c["message"]]
    assert check["level"] == "warn" and "1.0 MB" in check["message"]
    assert "being written" not in check["message"] and "--clean" in check["hint"]
    cleaned = ctui(tmp_path, "doctor", "--clean")
    assert cleaned.returncode == 0, cleaned.stdout
    assert "removed 1 temp file(s) left by interrupted writes (1.0 MB)" in cleaned.stdout
    assert not temp.exists()
    assert "no temp files left by interrupted writes" in cleaned.stdout
    assert Store(state / "ctui.json").runs() == []  # the store itself untouched
