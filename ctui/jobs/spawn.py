"""The detached supervisor process of a run: how it is started, found alive, reaped.

`start_supervisors` starts one per run in its own session; each claims its run in the store
(pid, start time). Until it has, `supervisor.pid` beside the run and the run's `starter` (the
launching process) tell a supervisor still starting from a launch that died half way.
`supervisor_alive` tells whether a run's supervisor still exists (pid and start time).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctui.errors import CtuiError, ExitCode
from ctui.store import RUNS, Store, open_store

if TYPE_CHECKING:
    from ctui.project import Project

SUPERVISOR_LOG = "supervisor.log"
#: the supervisor started for a run (pid, start time), until it claims the run in the store
PID_FILE = "supervisor.pid"


def supervisor_argv(project: Project, run_id: str) -> list[str]:
    return [sys.executable, "-m", "ctui.jobs.supervisor", *project_args(project), run_id]


def project_args(project: Project) -> list[str]:
    """The arguments that name the project to a helper (`project_from_args` reads them)."""
    return [str(project.state_dir), "--root", str(project.root), "--store", str(project.store_file)]


def project_from_args(state_dir: Path, root: Path | None, store: Path | None) -> Project:
    """The project a supervisor (or the spawner) was started for."""
    from ctui.project import Project, _StoreProject

    state = state_dir.resolve()
    store_file = store or state / "ctui.json"
    if store_file != state / "ctui.json":
        return _StoreProject(root=root or state.parent, state_dir=state, _store_file=store_file)
    return Project(root=root or state.parent, state_dir=state)


def supervisor_env() -> dict[str, str]:
    """The launcher's environment, plus the folder ctui is imported from on PYTHONPATH (so the
    supervisor finds ctui even when it runs from a source checkout); the supervisor restores
    the original PYTHONPATH before it starts the job."""
    import ctui

    env = dict(os.environ)
    original = env.get("PYTHONPATH")
    here = str(Path(ctui.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + original if original else "")
    env[_ORIG_PYTHONPATH] = original if original is not None else _UNSET
    return env


_ORIG_PYTHONPATH = "CTUI_ORIGINAL_PYTHONPATH"
_UNSET = "<unset>"


def restore_pythonpath() -> None:
    """In the supervisor: undo `supervisor_env`'s PYTHONPATH change for the job's sake."""
    original = os.environ.pop(_ORIG_PYTHONPATH, None)
    if original is None:
        return
    if original == _UNSET:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = original


def start_supervisor(project: Project, run_id: str, store: Store | None = None) -> int:
    """Start the detached supervisor of a `running` run; return its pid."""
    return start_supervisors(project, [run_id], store)[run_id]


def start_supervisors(
    project: Project, run_ids: list[str], store: Store | None = None
) -> dict[str, int]:
    """Start the detached supervisor of each `running` run; their pids.

    Own session (setsid), stdin from /dev/null and output to the run's `supervisor.log`, so a
    supervisor survives the launching terminal closing, SIGHUP and the TUI quitting. A run
    whose supervisor cannot be started ends `failed` (CtuiError, exit 1, once the others are
    recorded).
    """
    store = store or open_store(project)
    env = supervisor_env()
    started: dict[str, subprocess.Popen[bytes]] = {}
    failed: dict[str, str] = {}
    for run_id in run_ids:
        try:
            with open(project.run_dir(run_id) / SUPERVISOR_LOG, "ab") as err:
                started[run_id] = subprocess.Popen(
                    supervisor_argv(project, run_id),
                    cwd=str(project.root),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=err,
                    stderr=err,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as exc:
            failed[run_id] = f"supervisor failed: {exc}"
    _CHILDREN.extend(started.values())
    pids = {}
    for run_id, proc in started.items():
        pids[run_id] = proc.pid
        # beside the run, not in the store: 50 supervisors of a sweep start at once and each
        # takes the store's lock to claim its run; the launcher need not queue behind them.
        # No fsync: it only matters while this machine is up (a torn file reads as none).
        (project.run_dir(run_id) / PID_FILE).write_bytes(
            orjson.dumps({"pid": proc.pid, "ctime": _create_time(proc.pid)})
        )
    if failed:

        def record(data: dict[str, Any]) -> None:
            for run_id, error in failed.items():
                doc = data.get(RUNS, {}).get(run_id)
                if doc and doc["status"] == "running":
                    doc.update(status="failed", ended=time.time(), error=error)

        store.transact(record)
    reap_children()
    if failed:
        raise CtuiError(
            f"could not start the supervisor: {next(iter(failed.values()))}",
            code=ExitCode.FAILED,
        )
    return pids


class Spawner:
    """A detached helper that starts many supervisors (a sweep) off the launcher's path.

    Started before the runs are inserted, so they can name it as their `starter`; it reads
    their ids from its stdin once they are in the store (`hand`) and starts a supervisor for
    each. A launcher that dies first closes that pipe empty-handed and the helper just exits;
    runs it never got to are `lost` with the reason (`starter_gone`), never stuck.
    """

    def __init__(self, project: Project):
        log = project.state_dir / "spawner.log"
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ctui.jobs.spawn", *project_args(project)],
                cwd=str(project.root),
                env=supervisor_env(),
                stdin=subprocess.PIPE,
                stdout=err,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        _CHILDREN.append(self.proc)
        self.who = {
            "pid": self.proc.pid,
            "ctime": _create_time(self.proc.pid),
            "host": socket.gethostname(),
        }

    def hand(self, run_ids: list[str]) -> None:
        assert self.proc.stdin is not None
        with self.proc.stdin as pipe:
            pipe.write("".join(f"{run_id}\n" for run_id in run_ids).encode())


def starting_supervisor(project: Project, run: dict[str, Any]) -> bool | None:
    """For a `running` run its supervisor has not claimed yet: whether the supervisor that was
    started for it (`supervisor.pid` beside the run) is still alive; None when none was."""
    try:
        started = orjson.loads((project.run_dir(run["id"]) / PID_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return _same_process(int(started["pid"]), started.get("ctime"))


def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def starter() -> dict[str, Any]:
    """Who is starting a run (this process): kept on the run until its supervisor claims it,
    so a reader can tell a launch that was killed half way from one still under way."""
    return {"pid": os.getpid(), "ctime": _create_time(os.getpid()), "host": socket.gethostname()}


def starter_gone(run: dict[str, Any]) -> bool:
    """Whether the process that started this run (`starter`) is gone, seen from this host."""
    who = run.get("starter") or {}
    if not who.get("pid") or who.get("host") != socket.gethostname():
        return False
    return not _same_process(int(who["pid"]), who.get("ctime"))


def _same_process(pid: int, ctime: float | None) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return ctime is None or abs(proc.create_time() - ctime) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # exists but not ours to inspect: assume alive


#: supervisors started by this process: polled now and then so none stays a zombie
_CHILDREN: list[subprocess.Popen[bytes]] = []


def reap_children() -> None:
    _CHILDREN[:] = [p for p in _CHILDREN if p.poll() is None]


def supervisor_alive(run: dict[str, Any]) -> bool | None:
    """True/False whether the run's supervisor still exists (pid and start time match);
    None when it cannot be told from here (another host, no pid recorded yet)."""
    if run.get("host") not in (None, socket.gethostname()):
        return None
    pid = run.get("supervisor_pid")
    if not pid:
        return None
    reap_children()
    return _same_process(int(pid), run.get("supervisor_ctime"))


def main(argv: list[str] | None = None) -> int:
    """`python -m ctui.jobs.spawn STATE_DIR`: the `Spawner`; run ids on stdin."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ctui.jobs.spawn")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args(argv)
    restore_pythonpath()  # the supervisors get the launcher's environment, as from it
    project = project_from_args(args.state_dir, args.root, args.store)
    run_ids = [line.strip() for line in sys.stdin if line.strip()]
    if run_ids:
        start_supervisors(project, run_ids, Store(project.store_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
