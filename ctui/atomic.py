"""Atomic file writes and inter-process file locks (POSIX fcntl)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ctui.errors import BusyError

#: temp files of `atomic_write_bytes`: `.<name>.<random>.tmp`, and `<backup>.tmp` links
TEMP_SUFFIX = ".tmp"


def identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """Which version of a file this is: a rewrite or a replacement changes it."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def atomic_write_bytes(path: Path, data: bytes, *, keep_previous: Path | None = None) -> None:
    """Write `data` to `path` so a reader sees either the old or the new file, never half.

    temp file in the same directory → fsync → rename. With `keep_previous`, the file being
    replaced is hard-linked there first (a free "last good copy"). A symlink at `path` is
    written through: its target is replaced, the link stays. The temp file is flock'ed
    while it is written, so `ctui doctor --clean` can tell a crash's leftover from a write
    in progress. On any error nothing is replaced and the temp file is gone.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        if keep_previous is not None and path.exists():
            link_tmp = keep_previous.with_name(keep_previous.name + TEMP_SUFFIX)
            with contextlib.suppress(FileNotFoundError):
                link_tmp.unlink()
            os.link(path, link_tmp)
            os.replace(link_tmp, keep_previous)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # os.write/fsync name no file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    finally:
        os.close(fd)  # only now: the temp file stays locked until it is renamed
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def is_temp_file(path: Path) -> bool:
    """A file `atomic_write_bytes` writes on the way (by its name)."""
    name = path.name
    return name.endswith(TEMP_SUFFIX) and (name.startswith(".") or name.endswith(".bak.tmp"))


def temp_in_use(path: Path) -> bool:
    """Whether a live process is writing this temp file (it holds its flock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout: float | None = None) -> Iterator[int]:
    """Hold an flock on `path` (created if missing); yields its fd.

    `timeout=0` means try once; on a timeout, `BusyError` names the holder where the
    system says who it is (Linux `/proc/locks`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if timeout is None:
                fcntl.flock(fd, mode)
            elif timeout <= 0 or not _wait_for_lock(fd, mode, timeout):
                raise BusyError(
                    f"{path} is locked by {lock_holder(fd)} (waited {timeout:g} s)",
                    hint="try again when it is done; CTUI_LOCK_TIMEOUT sets the wait",
                ) from None
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _wait_for_lock(fd: int, mode: int, timeout: float) -> bool:
    """A blocking flock (fair, no polling) in a helper thread, given up after `timeout`.

    The helper takes the lock on its own descriptor of the same open file; if the wait was
    given up by the time it gets it, it lets go at once.
    """
    other = os.dup(fd)  # same open file description: its lock is ours
    got = threading.Event()
    state = {"abandoned": False}
    guard = threading.Lock()

    def wait() -> None:
        try:
            fcntl.flock(other, mode)
        except OSError:
            return
        with guard:
            if state["abandoned"]:
                fcntl.flock(other, fcntl.LOCK_UN)
            else:
                got.set()
        os.close(other)

    threading.Thread(target=wait, daemon=True, name="ctui-lock-wait").start()
    got.wait(timeout)
    with guard:
        if got.is_set():
            return True
        state["abandoned"] = True
        return False


def lock_holder(fd: int) -> str:
    """'pid 123 (ctui watch)' for the process holding an flock on this file, if known."""
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as fh:
            held = [ln.split() for ln in fh if " -> " not in ln]  # not the waiters
        pids = [f[4] for f in held if len(f) > 5 and f[1] == "FLOCK" and f[5] == dev]
    except OSError:
        pids = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        except OSError:
            return f"pid {pid}"
        return f"pid {pid} ({cmd.decode(errors='replace')[:80]})"
    return "another process"


def try_lock(path: Path) -> int | None:
    """Take an exclusive lock and keep it for the life of the process; None if held elsewhere."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def append_jsonl(path: Path, record: bytes) -> None:
    """Append one JSON line. O_APPEND writes of one line are not interleaved between writers."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, record.rstrip(b"\n") + b"\n")
    finally:
        os.close(fd)
