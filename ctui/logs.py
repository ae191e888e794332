"""Reading run logs: the last lines from the end (never the whole file), and following."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_BLOCK = 64 * 1024


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def tail(path: str | os.PathLike[str], n: int = 20, *, end: int | None = None) -> list[str]:
    """The last `n` lines of the file (without newlines), read backwards in 64 KiB blocks.

    `end` reads as if the file ended at that byte offset (to continue with `follow` from
    there without missing or repeating a line). A missing file has no lines.
    """
    if n <= 0:
        return []
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return []
    with fh:
        size = os.fstat(fh.fileno()).st_size if end is None else end
        pos = size
        chunks: list[bytes] = []
        newlines = 0
        # a trailing newline ends the last line; it does not start a new (empty) one
        need = n + 1
        while pos > 0 and newlines < need:
            step = min(_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
        data = b"".join(reversed(chunks))
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data and pos == 0:
        return []
    lines = data.split(b"\n")
    return [_decode(x).rstrip("\r") for x in lines[-n:]]


def follow(
    path: str | os.PathLike[str],
    until: Callable[[], bool],
    *,
    offset: int = 0,
    poll: float = 0.1,
) -> Iterator[str]:
    """Yield lines appended to the file from byte `offset` on, until `until()` is true and
    everything written by then has been yielded. A last line without a newline is yielded at
    the end. Waits for the file to appear."""
    path = Path(path)
    pending = b""
    fh = None
    try:
        while True:
            if fh is None:
                try:
                    fh = open(path, "rb")  # noqa: SIM115 - closed below
                    fh.seek(offset)
                except FileNotFoundError:
                    if until():
                        return
                    time.sleep(poll)
                    continue
            finished = until()  # read after checking, so nothing written before the end is missed
            chunk = fh.read(1 << 20)
            while chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield _decode(line).rstrip("\r")
                chunk = fh.read(1 << 20)
            if finished:
                if pending:
                    yield _decode(pending).rstrip("\r")
                return
            time.sleep(poll)
    finally:
        if fh is not None:
            fh.close()
