"""The run store: TinyDB files per project, safe with many writer processes.

Only small documents live here (run summaries, trigger state, the schema version). The
store file holds the small tables (meta, triggers, causes, champions, …); the runs live in
segments beside it (`ctui.store_segments`), so a command reads only the segments it needs.
A store written before segments (schema 1: the runs in the file) reads as ever and is
migrated on its first write, the old file kept as `<store>.v1-backup`.

Every read-modify-write holds an flock on `<store>.lock` (waiting at most
`CTUI_LOCK_TIMEOUT` seconds, then exit 3) and reads the files it changes fresh; every write
is atomic (temp + fsync + rename) and keeps the previous file as `<file>.bak` — only a file
that parsed ever becomes `.bak`, and a file that does not parse is never written over. A
write that changes the store file and segments together goes through a journal, so a crash
leaves all of it or none (the next writer finishes it). A symlinked store is written
through: its target is replaced (lock, `.bak` and segments beside the target), the link
stays. Run documents are type-checked on read (`run_problem`). Chatty data (metrics,
samples, heartbeats) goes to per-run JSONL files, never here.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
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
    SEGMENTS,
    STATUSES,
    TRIGGERS,
    _age,
    backup_path,
    dump_store,
    number_runs,
    parse_store_bytes,
    run_problem,
)
from ctui.store_segments import FIRST, SegmentRuns, Segments, segments_dir

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


def _identity_of(path: Path) -> Identity | None:
    try:
        return identity(os.stat(path))
    except FileNotFoundError:
        return None


#: the store file written before segments, kept by the migration beside it
V1_BACKUP = ".v1-backup"


class Store:
    """Run summaries and small state. Every public write is one locked read-modify-write.

    `read_all()` gives the tables as a dict; its `runs` table reads the segments it is asked
    about (`SegmentRuns`), so `get_run`, `resolve` (from the segment indexes) and `tag`
    cost the same with 100,000 runs as with 1,000, and `runs()` reads each segment once.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        real = Path(os.path.realpath(self.path))
        self.lock_path = real.with_name(real.name + ".lock")
        self.journal_path = real.with_name(real.name + ".journal")
        self.segments = Segments(segments_dir(self.path))
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

    @staticmethod
    def segmented(data: dict[str, Any] | None) -> bool:
        """Whether this store file keeps its runs in segments (schema 2)."""
        return bool(((data or {}).get(META) or {}).get("store", {}).get(SEGMENTS))

    def read_all(self) -> dict[str, Any]:
        """The tables, fresh (no lock needed: files are replaced atomically). The `runs`
        table of a segmented store is a `SegmentRuns`: it reads what it is asked for."""
        data = self._storage.read() or {}
        if self.segmented(data):
            data[RUNS] = SegmentRuns(self.segments)
        return data

    def snapshot(self) -> Store:
        """This store as one read left it: `runs()`, `get_run`, the champions and the other
        readers answer from it (each segment read once), for reading only."""
        return _Snapshot(self.path, self.read_all())

    def stamp(self) -> tuple[Any, ...] | None:
        """A cheap change detector for polling readers: the file's and every segment's
        (mtime_ns, size)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, self.segments.stamp())

    def _check(self, run_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        problem = run_problem(run_id, doc)
        if problem is not None:
            where = self.path
            table = self.read_all().get(RUNS)
            if isinstance(table, SegmentRuns):
                where = self.segments.path(table.segment_of(run_id))
            raise BadRunError(
                f"run store {where}: {problem}",
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
        for k in table if isinstance(table, SegmentRuns) else sorted(table):
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
        `seq`), or `@last` / `@last~N` (see `ctui.ids.resolve_ref`); a segmented store
        answers from its segment indexes."""
        table = self.read_all().get(RUNS, {})
        if isinstance(table, SegmentRuns):
            ids, seqs, _ = table.index()
            return resolve_ref(ref, ids, seqs=seqs)
        return resolve_ref(ref, table)

    def run_index(self) -> tuple[list[str], dict[int, str], dict[str, Any]]:
        """(every id, sorted; run number → id; id → created), from the indexes alone."""
        table = self.read_all().get(RUNS, {})
        if isinstance(table, SegmentRuns):
            return table.index()
        ids = sorted(table)
        seqs = {d.get("seq"): k for k, d in table.items() if type(d.get("seq")) is int}
        return ids, seqs, {k: table[k].get("created") for k in ids}

    def insert_run(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Add one run; it gets the project's next number (`doc["seq"]`) in the same write."""
        doc.pop("seq", None)  # the store numbers runs, never the caller
        with self.locked():
            data, seen, runs = self._begin()
            if doc["id"] in runs:
                raise CtuiError(f"run id {doc['id']} already exists")
            runs[doc["id"]] = doc
            self._commit(data, seen, runs, main_changed=False)
        return doc

    def update_run(
        self,
        run_id: str,
        fields: dict[str, Any] | None = None,
        *,
        when: Callable[[dict[str, Any]], bool] | None = None,
        mutate: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any] | None:
        """Update one run under the lock, reading its segment fresh.

        `when` is checked against the current document first (compare-and-set: e.g. only
        finish a run that is still `running`); returns the new document or None if skipped.
        A `mutate` of a run with wrongly typed fields is refused (`BadRunError`); plain
        `fields` are still set on it.
        """
        with self.locked():
            data, seen, runs = self._begin()
            doc = runs.get(run_id)
            if doc is None:
                raise UnknownRunError(f"no run {run_id!r}")
            if mutate is not None:
                self._check(run_id, doc)
            if when is not None and not when(doc):
                return None
            if fields:
                doc.update(fields)
            if mutate is not None:
                mutate(doc)
            runs[run_id] = doc
            self._commit(data, seen, runs, main_changed=False)
            return doc

    def remove_runs(self, run_ids: Iterable[str]) -> int:
        ids = set(run_ids)
        with self.locked():
            data, seen, runs = self._begin()
            gone = [i for i in ids if i in runs]
            for i in gone:
                del runs[i]
            if gone:
                self._commit(data, seen, runs, main_changed=False)
        return len(gone)

    def put_runs(self, docs: Iterable[dict[str, Any]], *, replace: bool = False) -> int:
        """Insert many runs in one write (import, bench); existing ids kept unless `replace`.

        New runs get this project's next numbers (a `seq` they carry is not kept); a
        replaced run keeps its number."""
        with self.locked():
            data, seen, runs = self._begin()
            n = 0
            for doc in docs:
                old = runs.get(doc["id"])
                if replace or old is None:
                    new = {k: v for k, v in doc.items() if k != "seq"}
                    if old is not None and old.get("seq") is not None:
                        new["seq"] = old["seq"]
                    runs[doc["id"]] = new
                    n += 1
            # Numbers first, then the segments, highest first: a crash in between loses
            # only numbers (never given twice), never a run that was there before.
            self._commit(data, seen, runs, main_changed=False, journal=False)
        return n

    # -- generic keyed documents (triggers state, causes, meta) --------------------------
    def get_doc(self, table: str, key: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = (self._storage.read() or {}).get(table, {}).get(key)
        return doc

    def docs(self, table: str) -> dict[str, dict[str, Any]]:
        docs: dict[str, dict[str, Any]] = (self._storage.read() or {}).get(table, {})
        return docs

    def put_doc(self, table: str, key: str, doc: dict[str, Any]) -> None:
        with self.locked():
            data, seen, runs = self._begin()
            data.setdefault(table, {})[key] = doc
            self._commit(data, seen, runs)

    def transact(self, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """Run `fn(data)` on the fresh tables under the lock, then write what changed once
        (all of it or, after a crash, none: see the journal).

        `fn` mutates `data` in place (`data["runs"]` reads the segments it is asked for);
        what it returns is returned. Raise to write nothing.
        """
        with self.locked():
            data, seen, runs = self._begin()
            data[RUNS] = runs
            result = fn(data)
            table = data.pop(RUNS, None)
            if table is not runs:  # `fn` put a new runs table in place of the old one
                new = table or {}
                for k in [k for k in runs if k not in new]:
                    del runs[k]
                for k, doc in new.items():
                    runs[k] = doc
            self._commit(data, seen, runs)
            return result

    def initialise(self) -> None:
        """Create the store (schema 2, one empty segment) if it does not exist yet."""
        with self.locked():
            if not self.path.exists():
                data, seen, runs = self._begin()
                self._commit(data, seen, runs)

    # -- writing -------------------------------------------------------------------------
    def _begin(self) -> tuple[dict[str, Any], Identity | None, SegmentRuns]:
        """Under the lock: the store file's tables (a store without segments migrated
        first; a journal left by a crash finished first), which file they came from, and
        its runs table for writing."""
        self._replay_journal()
        data, seen = self._storage.read_checked()
        if data is None or not self.segmented(data):
            data, seen = self._migrate(data, seen)
        data.pop(RUNS, None)
        return data, seen, SegmentRuns(self.segments, writing=True)

    def _commit(
        self,
        data: dict[str, Any],
        seen: Identity | None,
        runs: SegmentRuns,
        *,
        main_changed: bool = True,
        journal: bool = True,
    ) -> None:
        """Write the segments `runs` changed and (when `main_changed`, or a new run got a
        number) the store file."""
        meta = data.setdefault(META, {}).setdefault("store", {})
        if runs.unnumbered:
            last = meta.get(LAST_SEQ)
            last = last if type(last) is int and last > 0 else 0
            for doc in sorted(runs.unnumbered, key=_age):
                if doc.get("seq") is None:
                    last += 1
                    doc["seq"] = last
            runs.unnumbered = []
            meta[LAST_SEQ] = last
            numbered = True
        else:
            numbered = False
        plan = [
            step
            for lo in sorted(runs.changed())
            for step in self.segments.plan(lo, runs.loaded[lo], runs.seen.get(lo))
        ]
        if journal and main_changed and plan:
            self._write_journal(data, plan)
        if main_changed or numbered:
            self._write_data(data, seen)
        for lo, docs, was in plan:
            self.segments.write(lo, docs, was)
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()
        runs.dirty.clear()

    def _write_journal(self, data: dict[str, Any], plan: list[Any]) -> None:
        """What this write will do, in one file: the next writer redoes it after a crash."""
        entry = {
            "store": dump_store(self._with_schema(data)).decode(),
            "segments": [[lo, dump_store({RUNS: docs}).decode()] for lo, docs, _ in plan],
        }
        try:
            atomic_write_bytes(self.journal_path, orjson.dumps(entry))
        except OSError as exc:
            raise os_error(exc, f"write the run store journal {self.journal_path}") from None

    def _replay_journal(self) -> None:
        """Finish the write a crash interrupted (under the lock)."""
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise os_error(exc, f"read the run store journal {self.journal_path}") from None
        try:
            entry = orjson.loads(raw)
            main = parse_store_bytes(self.path, entry["store"].encode())
            steps = [
                (lo, parse_store_bytes(self.segments.path(lo), text.encode(), segment=True))
                for lo, text in entry["segments"]
            ]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, CtuiError):
            # Torn before it was complete (atomic writes make this a hand edit): the write it
            # describes never began, so the files are as they were.
            kept = self.journal_path.with_name(self.journal_path.name + ".unreadable")
            os.replace(self.journal_path, kept)
            return
        for lo, seg in steps:
            self.segments.write(lo, seg.get(RUNS, {}), self.segments.identity(lo))
        self._write_data(main, _identity_of(self.path))
        self.journal_path.unlink()

    def _migrate(
        self, data: dict[str, Any] | None, seen: Identity | None
    ) -> tuple[dict[str, Any], Identity | None]:
        """Move the runs of a one-file store into segments (a new store: one empty one).

        The segments are written first, the store file last: a crash before that leaves
        the one-file store as it was (its runs read as ever; the next write migrates again,
        moving the unfinished segments aside). The old file is kept as `<store>.v1-backup`."""
        if self.segments.dir.exists():
            aside = self.segments.dir.with_name(
                f"{self.segments.dir.name}.unfinished-{time.strftime('%Y%m%d-%H%M%S')}"
            )
            try:
                os.replace(self.segments.dir, aside)
            except OSError as exc:
                raise os_error(exc, f"move aside {self.segments.dir}") from None
        fresh = data is None
        data = data if data is not None else {META: {"store": {"created": time.time()}}}
        old_runs = data.pop(RUNS, None) or {}
        for step in self.segments.plan(FIRST, old_runs, None):
            self.segments.write(*step)
        if not fresh and old_runs:
            real = Path(os.path.realpath(self.path))
            keep = real.with_name(real.name + V1_BACKUP)
            try:  # a copy: a link would change the file's identity under the check
                atomic_write_bytes(keep, real.read_bytes())
            except OSError as exc:
                raise os_error(exc, f"keep {real} as {keep.name}") from None
        data[META].setdefault("store", {})[SEGMENTS] = self.segments.dir.name
        self._write_data(data, seen)
        return data, _identity_of(self.path)

    @staticmethod
    def _with_schema(data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault(META, {}).setdefault("store", {})["schema"] = SCHEMA_VERSION
        return data

    def _write_data(self, data: dict[str, Any], seen: Identity | None) -> None:
        self._write(dump_store(self._with_schema(data)), seen)

    def _write(self, raw: bytes, seen: Identity | None) -> None:
        """Replace the store file under the lock. `seen`: the version of it that was read
        and checked; only that one becomes `.bak`, and a file changed since is not written
        over."""
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


class _Snapshot(Store):
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        super().__init__(path)
        self._data = data

    def read_all(self) -> dict[str, Any]:
        return self._data


def open_store(project: Any) -> Store:
    """The store of a `ctui.project.Project`."""
    return Store(project.store_file)
