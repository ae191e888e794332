"""The run store: one TinyDB file per project, safe with many writer processes.

Only small documents live here (run summaries, trigger state, the schema version).
Every read-modify-write holds an flock on `<store>.lock` (waiting at most
`CTUI_LOCK_TIMEOUT` seconds, then exit 3) and reads the file fresh; every write is atomic
(temp + fsync + rename) and keeps the previous file as `<store>.bak` — only a file that
parsed ever becomes `.bak`, and a file that does not parse is never written over. A
symlinked store is written through: its target is replaced (lock and `.bak` beside the
target), the link stays. Run documents are type-checked on read (`run_problem`).
Chatty data (metrics, samples, heartbeats) goes to per-run JSONL files, never here.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from tinydb.storages import Storage

from ctui.atomic import atomic_write_bytes, file_lock, identity
from ctui.errors import (
    BadRunError,
    CtuiError,
    StoreCorruptError,
    UnknownRunError,
    os_error,
)
from ctui.ids import resolve_ref
from ctui.store_format import (
    ACTIVE,
    CAUSES,
    FINAL,
    FINAL_STATUSES,
    LAST_SEQ,
    META,
    MIGRATIONS,
    RUNS,
    SCHEMA_VERSION,
    STATUSES,
    TRIGGERS,
    _RunLines,
    backup_path,
    dump_store,
    number_runs,
    parse_store_bytes,
    run_problem,
)

__all__ = [
    "ACTIVE",
    "CAUSES",
    "FINAL",
    "FINAL_STATUSES",
    "META",
    "MIGRATIONS",
    "RUNS",
    "SCHEMA_VERSION",
    "STATUSES",
    "TRIGGERS",
    "OrjsonStorage",
    "Store",
    "backup_path",
    "dump_store",
    "open_store",
    "parse_store_bytes",
    "resolve_ref",
    "run_problem",
]

#: how long a writer waits for the store lock before giving up with exit 3 (busy)
LOCK_TIMEOUT = 30.0
LOCK_TIMEOUT_ENV = "CTUI_LOCK_TIMEOUT"


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


Identity = tuple[int, int, int, int]


class OrjsonStorage(Storage):
    """TinyDB storage: orjson (≈2.5× faster than json) + atomic writes + last-good backup."""

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
                if attempt == 2 or before == _identity_of(self.path):
                    raise
        raise AssertionError("unreachable")

    def write(self, data: dict[str, Any]) -> None:
        if not self.create and not self.path.exists():
            raise CtuiError(f"run store {self.path} does not exist", hint="run `ctui init`")
        data.setdefault(META, {}).setdefault("store", {})["schema"] = SCHEMA_VERSION
        number_runs(data)
        self.read_checked()  # a file that does not parse is neither written over nor kept
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, dump_store(data), keep_previous=self.backup)

    def close(self) -> None:
        pass


def _stamp(raw: bytes, ident: Identity) -> bytes:
    """What the lock file says about the file the last writer wrote (see `Store`)."""
    return b"%d %d %d %d %d %d\n" % (zlib.crc32(raw), SCHEMA_VERSION, *ident)


def _identity_of(path: Path) -> Identity | None:
    try:
        return identity(os.stat(path))
    except FileNotFoundError:
        return None


class Store:
    """Run summaries and small state. Every public write is one locked read-modify-write.

    The lock file also holds the identity and CRC-32 of the file the last writer wrote (and
    so had checked): while the file is still that one, byte for byte, a one-run update
    rewrites its line without parsing the others; any other file is parsed in full first,
    and is never written over (nor rotated into `.bak`) when it does not parse.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        real = Path(os.path.realpath(self.path))
        self.lock_path = real.with_name(real.name + ".lock")
        self._storage = OrjsonStorage(self.path)
        self._held = threading.local()  # the lock fd while this thread holds the lock
        #: runs with wrongly typed fields left out by the last `runs()`: id → problem
        self.damaged: dict[str, str] = {}

    # -- low level -----------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[Store]:
        """Hold the store lock across several operations (a multi-step transaction).

        Waits at most `CTUI_LOCK_TIMEOUT` seconds (default 30), then `BusyError` (exit 3).
        """
        if getattr(self._held, "fd", None) is not None:
            yield self  # this thread holds it already
            return
        with contextlib.ExitStack() as stack:
            try:
                self._held.fd = stack.enter_context(
                    file_lock(self.lock_path, timeout=lock_timeout())
                )
            except OSError as exc:
                raise os_error(exc, f"lock the run store {self.path}") from None
            try:
                yield self
            finally:
                self._held.fd = None

    def read_all(self) -> dict[str, Any]:
        """The whole file as a dict, fresh (no lock needed: files are replaced atomically)."""
        return self._storage.read() or {}

    def snapshot(self) -> Store:
        """This store as one read of its file left it: `runs()`, `get_run`, the champions and
        the other readers answer from that one parse (a screen that needs the runs *and* the
        champions reads a 10,000-run file once, not twice). For reading only."""
        return _Snapshot(self.path, self.read_all())

    def stamp(self) -> tuple[int, int] | None:
        """A cheap change detector (mtime_ns, size) for polling readers."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _check(self, run_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        problem = run_problem(run_id, doc)
        if problem is not None:
            raise BadRunError(
                f"run store {self.path}: {problem}",
                hint="fix the field by hand in that file (`ctui doctor` lists every damaged "
                "run); nothing was changed",
            )
        return doc

    # -- runs ----------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        """All run summaries, oldest first (ids are time-sortable); runs with wrongly typed
        fields are left out and named in `self.damaged`."""
        table = self.read_all().get(RUNS, {})
        docs, self.damaged = [], {}
        for k in sorted(table):
            problem = run_problem(k, table[k])
            if problem is None:
                docs.append(table[k])
            else:
                self.damaged[k] = problem
        return docs

    def get_run(self, run_id: str, *, checked: bool = True) -> dict[str, Any]:
        """One run; a wrongly typed one is a `BadRunError` unless `checked=False`."""
        doc = self.read_all().get(RUNS, {}).get(run_id)
        if doc is None:
            raise UnknownRunError(f"no run {run_id!r}", hint="`ctui runs` lists the run ids")
        return self._check(run_id, doc) if checked else doc

    def resolve(self, ref: str) -> str:
        """A full id, any unique prefix of one (like git), `#42` / `42` (the run's number,
        `seq`), or `@last` / `@last~N` (see `ctui.ids.resolve_ref`)."""
        return resolve_ref(ref, self.read_all().get(RUNS, {}))

    def insert_run(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Add one run; it gets the project's next number (`doc["seq"]`) in the same write."""
        doc.pop("seq", None)  # the store numbers runs, never the caller
        with self.locked():
            lines = self._known_good()
            last = lines.meta.get(LAST_SEQ) if lines is not None else None
            if lines is not None and type(last) is int:  # one line in; the others not parsed
                if lines.find(doc["id"]) is not None:
                    raise CtuiError(f"run id {doc['id']} already exists")
                doc["seq"] = last + 1
                line = orjson.dumps(doc["id"]) + b":" + orjson.dumps(doc)
                meta = {**lines.meta, LAST_SEQ: last + 1}
                self._write(lines.with_new_run(line, meta), self._good)
                return doc
            data, seen = self._storage.read_checked()
            runs = (data := data or {}).setdefault(RUNS, {})
            if doc["id"] in runs:
                raise CtuiError(f"run id {doc['id']} already exists")
            runs[doc["id"]] = doc
            self._write_data(data, seen)
        return doc

    def update_run(
        self,
        run_id: str,
        fields: dict[str, Any] | None = None,
        *,
        when: Callable[[dict[str, Any]], bool] | None = None,
        mutate: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any] | None:
        """Update one run under the lock, reading it fresh.

        `when` is checked against the current document first (compare-and-set: e.g. only
        finish a run that is still `running`); returns the new document or None if skipped.
        A `mutate` of a run with wrongly typed fields is refused (`BadRunError`); plain
        `fields` are still set on it.
        """
        with self.locked():
            lines = self._known_good()
            found = lines.find(run_id) if lines is not None else None
            doc = lines.doc(*found) if lines is not None and found is not None else None
            if lines is not None and found is None:
                raise UnknownRunError(f"no run {run_id!r}")
            data: dict[str, Any] | None = None
            seen = self._good
            if doc is None:  # another layout or a damaged line: parse (and check) everything
                data, seen = self._storage.read_checked()
                doc = (data or {}).get(RUNS, {}).get(run_id)
                if data is None or doc is None:
                    raise UnknownRunError(f"no run {run_id!r}")
            if mutate is not None:
                self._check(run_id, doc)
            if when is not None and not when(doc):
                return None
            if fields:
                doc.update(fields)
            if mutate is not None:
                mutate(doc)
            if data is not None:
                self._write_data(data, seen)
            else:  # rewrite just this run's line
                assert lines is not None and found is not None
                start, end, key = found
                comma = b"," if lines.raw[start:end].endswith(b",") else b""
                line = key + orjson.dumps(doc) + comma
                self._write(lines.raw[:start] + line + lines.raw[end:], seen)
            return doc

    # -- writing -------------------------------------------------------------------------
    _good: Identity | None = None  # the identity `_known_good` vouched for

    def _known_good(self) -> _RunLines | None:
        """The file's layout when it is, byte for byte, the file a ctui writer last wrote
        (per the stamp in the lock file: identity and CRC-32); None means: parse in full."""
        self._good = None
        fd = getattr(self._held, "fd", None)
        try:
            with open(self.path, "rb") as fh:
                now = identity(os.fstat(fh.fileno()))
                stamp = os.pread(fd, 200, 0) if fd is not None else b""
                if not stamp.endswith(_stamp(b"", now).partition(b" ")[2]):
                    return None  # another file (or none stamped): no need to read it here
                raw = fh.read()
        except OSError:
            return None
        if stamp != _stamp(raw, now):
            return None
        lines = _RunLines.of(raw)
        if lines is not None:
            self._good = now
        return lines

    def _write_data(self, data: dict[str, Any], seen: Identity | None) -> None:
        data.setdefault(META, {}).setdefault("store", {})["schema"] = SCHEMA_VERSION
        number_runs(data)  # a run inserted by this write (any path) gets its number here
        self._write(dump_store(data), seen)

    def _write(self, raw: bytes, seen: Identity | None) -> None:
        """Replace the file under the lock. `seen`: the version of it that was read and
        checked; only that one becomes `.bak`, and a file changed since is not written over."""
        try:
            current = _identity_of(self.path)
            if current is not None and current != seen:
                raise StoreCorruptError(
                    f"run store {self.path} was changed by another program while ctui "
                    "was updating it",
                    hint="nothing was changed; try again",
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keep = self._storage.backup if current is not None else None
            atomic_write_bytes(self.path, raw, keep_previous=keep)
        except OSError as exc:
            raise os_error(exc, f"write the run store {self.path}") from None
        fd = getattr(self._held, "fd", None)
        new = _identity_of(self.path)
        if fd is not None and new is not None:
            with contextlib.suppress(OSError):  # no stamp: the next writer parses in full
                os.ftruncate(fd, 0)
                os.pwrite(fd, _stamp(raw, new), 0)

    def remove_runs(self, run_ids: Iterable[str]) -> int:
        ids = set(run_ids)
        with self.locked():
            data, seen = self._storage.read_checked()
            runs = (data or {}).get(RUNS, {})
            gone = [i for i in ids if i in runs]
            for i in gone:
                del runs[i]
            if gone and data is not None:
                self._write_data(data, seen)
        return len(gone)

    def put_runs(self, docs: Iterable[dict[str, Any]], *, replace: bool = False) -> int:
        """Insert many runs in one write (import, bench); existing ids kept unless `replace`.

        New runs get this project's next numbers (a `seq` they carry is not kept); a
        replaced run keeps its number."""
        with self.locked():
            data, seen = self._storage.read_checked()
            runs = (data := data or {}).setdefault(RUNS, {})
            n = 0
            for doc in docs:
                old = runs.get(doc["id"])
                if replace or old is None:
                    new = {k: v for k, v in doc.items() if k != "seq"}
                    if old is not None and old.get("seq") is not None:
                        new["seq"] = old["seq"]
                    runs[doc["id"]] = new
                    n += 1
            self._write_data(data, seen)
        return n

    # -- generic keyed documents (triggers state, causes, meta) --------------------------
    def get_doc(self, table: str, key: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = self.read_all().get(table, {}).get(key)
        return doc

    def docs(self, table: str) -> dict[str, dict[str, Any]]:
        docs: dict[str, dict[str, Any]] = self.read_all().get(table, {})
        return docs

    def put_doc(self, table: str, key: str, doc: dict[str, Any]) -> None:
        with self.locked():
            data, seen = self._storage.read_checked()
            (data := data or {}).setdefault(table, {})[key] = doc
            self._write_data(data, seen)

    def transact(self, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """Run `fn(data)` on the fresh whole-file dict under the lock, then write it once.

        `fn` mutates `data` in place; what it returns is returned. Raise to write nothing.
        """
        with self.locked():
            data, seen = self._storage.read_checked()
            result = fn(data := data or {})
            self._write_data(data, seen)
            return result

    def initialise(self) -> None:
        """Create the file with its schema version if it does not exist yet."""
        with self.locked():
            if not self.path.exists():
                created = {"schema": SCHEMA_VERSION, "created": time.time()}
                self._write_data({META: {"store": created}, RUNS: {}}, None)


class _Snapshot(Store):
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        super().__init__(path)
        self._data = data

    def read_all(self) -> dict[str, Any]:
        return self._data


def open_store(project: Any) -> Store:
    """The store of a `ctui.project.Project`."""
    return Store(project.store_file)
