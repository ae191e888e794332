"""Local backend: the job is a child of the supervisor, in its own process group.

The child writes stdout+stderr straight into the log file descriptor (no copying through
Python), so a job printing as fast as it can is not slowed down by ctui.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from typing import Any

from ctui.jobs.backends.base import Backend, Execution, LaunchSpec, StartError


class LocalExecution(Execution):
    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc = proc
        self.pgid = proc.pid  # start_new_session=True: the child leads its own group

    def info(self) -> dict[str, Any]:
        return {"pid": self.proc.pid, "pgid": self.pgid}

    def host_pids(self) -> list[int]:
        return [self.proc.pid]

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float) -> None:
        _signal_group(self.pgid, signal.SIGTERM)
        if self.wait(grace) is None:
            _signal_group(self.pgid, signal.SIGKILL)
        else:
            # the leader exited; stragglers in its group still get the kill
            _signal_group(self.pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _why_not_started(exc: OSError, argv0: str) -> str:
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return f"command not found: {argv0!r} (not on PATH and not a file)"
    if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
        return f"command not executable: {argv0!r} (permission denied)"
    if exc.errno == errno.ENOEXEC:
        return f"command {argv0!r} is not an executable program (exec format error)"
    return f"could not start {argv0!r}: {exc.strerror or exc}"


class LocalBackend(Backend):
    name = "local"
    supervised = True

    def start(self, spec: LaunchSpec) -> Execution:
        if not spec.argv:
            raise StartError("the job's command is empty")
        env = dict(os.environ)
        env.update(spec.env)
        fd = os.open(spec.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            proc = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except NotADirectoryError:
            raise StartError(f"working directory {spec.cwd!r} is not a folder") from None
        except OSError as exc:
            if not os.path.isdir(spec.cwd):
                raise StartError(f"working directory {spec.cwd!r} does not exist") from None
            raise StartError(
                _why_not_started(exc, spec.argv[0]),
                hint="check the job's `command` in ctui.toml",
            ) from None
        finally:
            os.close(fd)
        return LocalExecution(proc)


BACKEND = LocalBackend()
