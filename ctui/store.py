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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.atomic import file_lock
from ctui.errors import (
    BadRunError,
    CtuiError,
    UnknownRunError,
    os_error,
)
from ctui.ids import resolve_ref
from ctui.store_file import (
    Journal,
    OrjsonStorage,
    lock_timeout,
    migrate,
)
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
    parse_store_bytes,
    run_problem,
)
from ctui.store_runs import SegmentCache, SegmentRuns
from ctui.store_segments import (
    Identity,
    Segments,
    is_live,
    segments_dir,
)

if TYPE_CHECKING:
    from ctui.run_columns import RunColumns

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


class Store:
    """Run summaries and small state. Every public write is one locked read-modify-write.

    `read_all()` gives the tables as a dict; its `runs` table reads the segments it is asked
    about (`SegmentRuns`), so `get_run`, `resolve` (from the segment indexes) and `tag`
    cost the same with 100,000 runs as with 1,000, and `runs()` reads each segment once.
    """

    def __init__(self, path: Path, *, cache: bool = False):
        """`cache`: for a reader that reads again and again (the TUI), reuse the segments
        that did not change since its last read (`SegmentCache`; read-only documents)."""
        self.path = Path(path)
        real = Path(os.path.realpath(self.path))
        self.lock_path = real.with_name(real.name + ".lock")
        self.segments = Segments(segments_dir(self.path))
        self._storage = OrjsonStorage(self.path)
        self._journal = Journal(self._storage, self.segments)
        self._cache = SegmentCache(self.segments) if cache else None
        self.journal_path = self._journal.path
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
            data[RUNS] = SegmentRuns(self.segments, cache=self._cache)
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
        self.damaged = {}
        if not isinstance(table, SegmentRuns):
            return self._sound((k, table[k]) for k in sorted(table))
        table.load_all()
        docs: list[dict[str, Any]] = []
        for lo in table.names:  # each segment's checks made once while its file is the same
            seg = table.loaded[lo]
            docs += self._sound(((k, seg[k]) for k in sorted(seg)), table.problems(lo))
        return docs

    def _sound(
        self,
        pairs: Iterable[tuple[str, dict[str, Any]]],
        problems: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """The documents without wrongly typed fields; the others go to `self.damaged`
        (`problems`: the checks already made, id → problem)."""
        docs = []
        for k, doc in pairs:
            problem = problems.get(k) if problems is not None else run_problem(k, doc)
            if problem is None:
                docs.append(doc)
            else:
                self.damaged[k] = problem
        return docs

    def columns(self) -> RunColumns:
        """Every run's table fields as columns (`ctui.run_columns`), oldest first, from the
        segment indexes: no run document is read (but those of a stale index's segment)."""
        from ctui.run_columns import RunColumns

        table = self.read_all().get(RUNS, {})
        if isinstance(table, SegmentRuns):
            return table.columns()
        return RunColumns.from_runs(self.runs())

    def live_runs(self) -> list[dict[str, Any]]:
        """The queued, running and orphaned lost runs, oldest first (see `live_runs`)."""
        return live_runs(self.read_all().get(RUNS, {}))

    def newest(self, n: int) -> tuple[list[dict[str, Any]], int]:
        """The `n` newest runs (by id, newest first: `runs()` reversed) and how many runs
        the store holds, reading only the segments that hold those `n` (the indexes say
        which); wrongly typed ones are left out and named in `self.damaged`."""
        table = self.read_all().get(RUNS, {})
        if not isinstance(table, SegmentRuns):
            docs = self.runs()
            return docs[::-1][: max(n, 0)], len(docs) + len(self.damaged)
        ids = table.index()[0]
        self.damaged = {}
        newest = reversed(ids[-n:] if n > 0 else [])
        docs = self._sound((k, doc) for k in newest if (doc := table.get(k)) is not None)
        return docs, len(ids)

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
        ids, seqs = self.run_index()
        return resolve_ref(ref, ids, seqs=seqs)

    def run_index(self) -> tuple[list[str], dict[int, str]]:
        """(every id, sorted; run number → id), from the segment indexes alone."""
        table = self.read_all().get(RUNS, {})
        if isinstance(table, SegmentRuns):
            return table.index()
        ids = sorted(table)
        return ids, {d["seq"]: k for k, d in table.items() if type(d.get("seq")) is int}

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
        self._journal.replay()
        data, seen = self._storage.read_checked()
        if data is None or not self.segmented(data):
            data, seen = migrate(self._storage, self.segments, data, seen)
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
        numbered = bool(runs.unnumbered)
        if numbered:
            last = meta.get(LAST_SEQ)
            last = last if type(last) is int and last > 0 else 0
            for doc in sorted(runs.unnumbered, key=_age):
                if doc.get("seq") is None:
                    last += 1
                    doc["seq"] = last
            meta[LAST_SEQ] = last
        plan = [
            step
            for lo in sorted(runs.changed())
            for step in self.segments.plan(lo, runs.loaded[lo], runs.seen.get(lo))
        ]
        if journal and main_changed and plan:
            self._journal.write(data, plan)
        if main_changed or numbered:
            self._storage.write_checked(data, seen)
        for lo, docs, was in plan:
            self.segments.write(lo, docs, was)
        self._journal.done()


class _Snapshot(Store):
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        super().__init__(path)
        self._data = data

    def read_all(self) -> dict[str, Any]:
        return self._data


def live_runs(table: Any) -> list[dict[str, Any]]:
    """The queued, running and orphaned lost runs of a runs table (`read_all()`'s or the one
    `transact` hands over), oldest first; a segmented one reads only the segments whose
    index lists some. Runs with wrongly typed fields are left out."""
    if isinstance(table, SegmentRuns):
        docs = table.live()
    else:
        docs = [table[k] for k in sorted(table) if is_live(table[k])]
    return [d for d in docs if run_problem(str(d.get("id")), d) is None]


def open_store(project: Any) -> Store:
    """The store of a `ctui.project.Project`."""
    return Store(project.store_file)
