"""The store file itself (the small tables) and how a write of it and the segments stays
whole: reading and writing it checked, the journal of a multi-file write, and the move of a
one-file store's runs into segments. No locking here: the caller holds the store lock."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import orjson
from tinydb.storages import Storage

from ctui.atomic import atomic_write_bytes, identity
from ctui.errors import CtuiError, StoreCorruptError, os_error
from ctui.store_format import (
    META,
    RUNS,
    SCHEMA_VERSION,
    SEGMENTS,
    backup_path,
    dump_store,
    number_runs,
    parse_store_bytes,
)
from ctui.store_segments import FIRST, Identity, Segments

#: how long a writer waits for the store lock before giving up with exit 3 (busy)
LOCK_TIMEOUT = 30.0
LOCK_TIMEOUT_ENV = "CTUI_LOCK_TIMEOUT"
#: the store file written before segments, kept by the migration beside it
V1_BACKUP = ".v1-backup"


def lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None:
        return LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise CtuiError(
            f"{LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds",
            hint=f"e.g. {LOCK_TIMEOUT_ENV}=30 (0 = do not wait)",
        )
    return value


def identity_of(path: Path) -> Identity | None:
    try:
        return identity(os.stat(path))
    except FileNotFoundError:
        return None


def with_schema(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault(META, {}).setdefault("store", {})["schema"] = SCHEMA_VERSION
    return data


class OrjsonStorage(Storage):
    """TinyDB storage of the store file: orjson (≈2.5× faster than json), atomic writes,
    the last good copy kept, and never a write over a file that changed since it was read."""

    def __init__(self, path: str | os.PathLike[str], create: bool = True):
        self.path = Path(path)
        self.backup = backup_path(self.path)
        self.create = create

    def read(self) -> dict[str, Any] | None:
        return self.read_checked()[0]

    def read_checked(self) -> tuple[dict[str, Any] | None, Identity | None]:
        """The parsed file and which version of the file it was (None, None: no file)."""
        for attempt in range(3):
            try:
                with open(self.path, "rb") as fh:
                    before = identity(os.fstat(fh.fileno()))
                    raw = fh.read()
            except FileNotFoundError:
                return None, None
            try:
                return parse_store_bytes(self.path, raw), before
            except StoreCorruptError:
                # Unreadable *and* replaced while we read it: read the new file instead.
                # A file that is still the same one is really damaged.
                if attempt == 2 or before == identity_of(self.path):
                    raise
        raise AssertionError("unreachable")

    def write(self, data: dict[str, Any]) -> None:
        if not self.create and not self.path.exists():
            raise CtuiError(f"run store {self.path} does not exist", hint="run `ctui init`")
        number_runs(data)
        self.write_checked(data, self.read_checked()[1])

    def write_checked(self, data: dict[str, Any], seen: Identity | None) -> None:
        """Replace the file with `data`. `seen`: the version of it that was read and
        checked; only that one becomes `.bak`, and a file changed since is not written over."""
        raw = dump_store(with_schema(data))
        try:
            current = identity_of(self.path)
            if current is not None and current != seen:
                raise StoreCorruptError(
                    f"run store {self.path} was changed by another program while ctui "
                    "was updating it",
                    hint="nothing was changed; try again",
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keep = self.backup if current is not None else None
            atomic_write_bytes(self.path, raw, keep_previous=keep)
        except OSError as exc:
            raise os_error(exc, f"write the run store {self.path}") from None

    def close(self) -> None:
        pass


Plan = list[tuple[str, dict[str, dict[str, Any]], Identity | None]]


class Journal:
    """What a write of the store file and segments together will do, in one file beside
    the store: written before the write, removed after it; a writer that finds one (a crash
    came in between) does it again first."""

    def __init__(self, storage: OrjsonStorage, segments: Segments) -> None:
        real = Path(os.path.realpath(storage.path))
        self.path = real.with_name(real.name + ".journal")
        self.storage, self.segments = storage, segments

    def write(self, data: dict[str, Any], plan: Plan) -> None:
        entry = {
            "store": dump_store(with_schema(data)).decode(),
            "segments": [[lo, dump_store({RUNS: docs}).decode()] for lo, docs, _ in plan],
        }
        try:
            atomic_write_bytes(self.path, orjson.dumps(entry))
        except OSError as exc:
            raise os_error(exc, f"write the run store journal {self.path}") from None

    def done(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def replay(self) -> None:
        """Finish the write a crash interrupted."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise os_error(exc, f"read the run store journal {self.path}") from None
        try:
            entry = orjson.loads(raw)
            main = parse_store_bytes(self.storage.path, entry["store"].encode())
            steps = [
                (lo, parse_store_bytes(self.segments.path(lo), text.encode(), segment=True))
                for lo, text in entry["segments"]
            ]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, CtuiError):
            # Not a whole journal (atomic writes make this a hand edit): the write it
            # describes never began, so the files are as they were. Kept, not deleted.
            os.replace(self.path, self.path.with_name(self.path.name + ".unreadable"))
            return
        for lo, seg in steps:
            self.segments.write(lo, seg.get(RUNS, {}), self.segments.identity(lo))
        self.storage.write_checked(main, identity_of(self.storage.path))
        self.done()


def migrate(
    storage: OrjsonStorage, segments: Segments, data: dict[str, Any] | None, seen: Identity | None
) -> tuple[dict[str, Any], Identity | None]:
    """Move the runs of a one-file store into segments (a new store: one empty segment).

    The segments are written first, the store file last: a crash before that leaves the
    one-file store as it was (its runs read as ever; the next write migrates again, moving
    the unfinished segments aside, never deleting them). The old file is kept as
    `<store>.v1-backup`."""
    if segments.dir.exists():
        aside = segments.dir.with_name(
            f"{segments.dir.name}.unfinished-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        )
        try:
            os.replace(segments.dir, aside)
        except OSError as exc:
            raise os_error(exc, f"move aside {segments.dir}") from None
    fresh = data is None
    data = data if data is not None else {META: {"store": {"created": time.time()}}}
    old_runs = data.pop(RUNS, None) or {}
    for step in segments.plan(FIRST, old_runs, None):
        segments.write(*step)
    if not fresh and old_runs:
        real = Path(os.path.realpath(storage.path))
        keep = real.with_name(real.name + V1_BACKUP)
        try:  # a copy: a link would change the file's identity under the check
            atomic_write_bytes(keep, real.read_bytes())
        except OSError as exc:
            raise os_error(exc, f"keep {real} as {keep.name}") from None
    data[META].setdefault("store", {})[SEGMENTS] = segments.dir.name
    storage.write_checked(data, seen)
    return data, identity_of(storage.path)
