"""The run store: one TinyDB file per project, safe with many writer processes.

Only small documents live here (run summaries, trigger state, the schema version).
Every read-modify-write holds an flock on `<store>.lock` and reads the file fresh; every
write is atomic (temp + fsync + rename) and keeps the previous file as `<store>.bak`.
Chatty data (metrics, samples, heartbeats) goes to per-run JSONL files, never here.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from ctui.atomic import atomic_write_bytes, file_lock
from ctui.errors import AmbiguousRunError, CtuiError, StoreCorruptError, UnknownRunError

SCHEMA_VERSION = 1

RUNS = "runs"
TRIGGERS = "triggers"
CAUSES = "causes"
META = "meta"

#: run states; the last five are final
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "lost", "timeout")
ACTIVE = frozenset({"queued", "running"})
FINAL = frozenset(STATUSES) - ACTIVE
#: the final states in their documented order, for messages
FINAL_STATUSES = tuple(s for s in STATUSES if s in FINAL)

# Migrations from version N to N+1 over the raw JSON dict. Version 1 is the first, so
# there is nothing to migrate yet; the mechanism is exercised by tests with a fake v0.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: lambda data: data,
}


def _corrupt(path: Path, problem: str) -> StoreCorruptError:
    backup = path.with_name(path.name + ".bak")
    hint = (
        f"nothing was changed. `ctui doctor` inspects it; `ctui doctor --restore` brings back "
        f"the last good copy ({backup.name})"
        if backup.exists()
        else "nothing was changed. Repair or move the file aside; `ctui doctor` inspects it"
    )
    return StoreCorruptError(f"run store {path} is unreadable: {problem}", hint=hint)


def parse_store_bytes(path: Path, raw: bytes) -> dict[str, Any]:
    """Parse and validate the raw file; migrate old schemas in memory."""
    if not raw.strip():
        raise _corrupt(path, "the file is empty (truncated?)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _corrupt(
            path, f"invalid JSON ({exc}; {len(raw)} bytes, starting {raw[:24]!r})"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
        raise _corrupt(path, "expected an object of tables, each an object of documents")
    version = data.get(META, {}).get("store", {}).get("schema", SCHEMA_VERSION)
    if not isinstance(version, int):
        raise _corrupt(path, f"schema version {version!r} is not a number")
    if version > SCHEMA_VERSION:
        raise CtuiError(
            f"run store {path} has schema version {version}; this ctui knows up to "
            f"{SCHEMA_VERSION}",
            hint="upgrade ctui (pip install -U ctui)",
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data.setdefault(META, {}).setdefault("store", {})["schema"] = version
    return data


def dump_store(data: dict[str, Any]) -> bytes:
    """The file's layout: plain JSON (TinyDB reads it as ever) with one document per line,
    so one run can be rewritten without parsing the 10,000 others (see `_RunLines`)."""
    tables = []
    for name, table in data.items():
        rows = b",\n".join(orjson.dumps(str(k)) + b":" + orjson.dumps(v) for k, v in table.items())
        tables.append(orjson.dumps(name) + (b":{\n" + rows + b"\n}" if rows else b":{}"))
    return b"{\n" + b",\n".join(tables) + b"\n}\n"


class _RunLines:
    """Where the `runs` table and one run's line are in a file written by `dump_store`.

    Anything unexpected (another layout, an old schema, a damaged line) makes `of` return
    None and the caller takes the full parse-everything path, which reports damage properly.
    """

    HEAD = b'\n"runs":{\n'

    def __init__(self, raw: bytes, body: int, end: int):
        self.raw, self.body, self.end = raw, body, end

    @classmethod
    def of(cls, raw: bytes) -> _RunLines | None:
        if not (raw.startswith(b"{\n") and raw.endswith(b"\n}\n")):
            return None
        version = b'"schema":' + str(SCHEMA_VERSION).encode()
        at = raw.find(version)
        if at < 0 or raw[at + len(version) : at + len(version) + 1].isdigit():
            return None
        start = raw.find(cls.HEAD)
        if start < 0:
            return None
        body = start + len(cls.HEAD)
        end = raw.find(b"\n}", body - 1)  # doc lines start with '"': this is the table's end
        return None if end < 0 else cls(raw, body, end)

    def find(self, run_id: str) -> tuple[int, int, bytes] | None:
        """(line start, line end, key) of a run, or None when it is not in the table."""
        key = orjson.dumps(run_id) + b":"
        i = self.raw.find(b"\n" + key, self.body - 1, self.end)
        if i < 0:
            return None
        return i + 1, self.raw.find(b"\n", i + 1), key

    def doc(self, line_start: int, line_end: int, key: bytes) -> dict[str, Any] | None:
        line = self.raw[line_start + len(key) : line_end].removesuffix(b",")
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class OrjsonStorage(Storage):
    """TinyDB storage: orjson (≈2.5× faster than json) + atomic writes + last-good backup."""

    def __init__(self, path: str | os.PathLike[str], create: bool = True):
        self.path = Path(path)
        self.backup = self.path.with_name(self.path.name + ".bak")
        self.create = create

    def read(self) -> dict[str, Any] | None:
        for attempt in range(3):
            try:
                before = os.stat(self.path)
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return None
            try:
                return parse_store_bytes(self.path, raw)
            except StoreCorruptError:
                # Unreadable *and* replaced while we read it: read the new file instead.
                # A file that is still the same one is really damaged.
                after = os.stat(self.path)
                if attempt == 2 or _identity(before) == _identity(after):
                    raise
        raise AssertionError("unreachable")

    def write(self, data: dict[str, Any]) -> None:
        if not self.create and not self.path.exists():
            raise CtuiError(f"run store {self.path} does not exist", hint="run `ctui init`")
        data.setdefault(META, {}).setdefault("store", {})["schema"] = SCHEMA_VERSION
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, dump_store(data), keep_previous=self.backup)

    def close(self) -> None:
        pass


class _StrIdTable(Table):
    """Documents keyed by their own string id (run id, trigger name) instead of ints."""

    document_id_class = str  # type: ignore[assignment]

    def _get_next_id(self) -> str:  # type: ignore[override]
        raise CtuiError("internal: documents in this table need an explicit id")


class _DB(TinyDB):
    table_class = _StrIdTable


class Store:
    """Run summaries and small state. Every public write is one locked read-modify-write."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._storage = OrjsonStorage(self.path)
        self._db = _DB(storage=lambda: self._storage)  # type: ignore[arg-type]

    # -- low level -----------------------------------------------------------------------
    def table(self, name: str) -> Table:
        return self._db.table(name, cache_size=0)  # no cache: other processes write too

    @contextlib.contextmanager
    def locked(self) -> Iterator[Store]:
        """Hold the store lock across several operations (a multi-step transaction)."""
        with file_lock(self.lock_path):
            yield self

    def read_all(self) -> dict[str, Any]:
        """The whole file as a dict, fresh (no lock needed: files are replaced atomically)."""
        return self._storage.read() or {}

    def stamp(self) -> tuple[int, int] | None:
        """A cheap change detector (mtime_ns, size) for polling readers."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    # -- runs ----------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        """All run summaries, oldest first (ids are time-sortable)."""
        table = self.read_all().get(RUNS, {})
        return [table[k] for k in sorted(table)]

    def get_run(self, run_id: str) -> dict[str, Any]:
        doc = self.read_all().get(RUNS, {}).get(run_id)
        if doc is None:
            raise UnknownRunError(f"no run {run_id!r}", hint="`ctui runs` lists the run ids")
        return doc

    def resolve(self, ref: str) -> str:
        """A full id, any unique prefix of one (like git), or `@last` / `@last~N`."""
        ids = sorted(self.read_all().get(RUNS, {}))
        return resolve_ref(ref, ids)

    def insert_run(self, doc: dict[str, Any]) -> dict[str, Any]:
        with self.locked():
            lines = self._run_lines()
            if lines is not None:  # append one line; the other runs are not parsed
                if lines.find(doc["id"]) is not None:
                    raise CtuiError(f"run id {doc['id']} already exists")
                line = orjson.dumps(doc["id"]) + b":" + orjson.dumps(doc)
                raw = lines.raw
                self._write_raw(raw[: lines.end] + b",\n" + line + raw[lines.end :])
                return doc
            data = self.read_all()
            runs = data.setdefault(RUNS, {})
            if doc["id"] in runs:
                raise CtuiError(f"run id {doc['id']} already exists")
            runs[doc["id"]] = doc
            self._storage.write(data)
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
        """
        with self.locked():
            lines = self._run_lines()
            found = lines.find(run_id) if lines is not None else None
            doc = lines.doc(*found) if lines is not None and found is not None else None
            if lines is not None and found is None:
                raise UnknownRunError(f"no run {run_id!r}")
            data: dict[str, Any] | None = None
            if doc is None:  # another layout or a damaged line: parse (and check) everything
                data = self.read_all()
                doc = data.get(RUNS, {}).get(run_id)
                if doc is None:
                    raise UnknownRunError(f"no run {run_id!r}")
            if when is not None and not when(doc):
                return None
            if fields:
                doc.update(fields)
            if mutate is not None:
                mutate(doc)
            if data is not None:
                self._storage.write(data)
            else:  # rewrite just this run's line
                assert lines is not None and found is not None
                start, end, key = found
                comma = b"," if lines.raw[start:end].endswith(b",") else b""
                line = key + orjson.dumps(doc) + comma
                self._write_raw(lines.raw[:start] + line + lines.raw[end:])
            return doc

    def _run_lines(self) -> _RunLines | None:
        try:
            return _RunLines.of(self.path.read_bytes())
        except FileNotFoundError:
            return None

    def _write_raw(self, raw: bytes) -> None:
        atomic_write_bytes(self.path, raw, keep_previous=self._storage.backup)

    def remove_runs(self, run_ids: Iterable[str]) -> int:
        ids = set(run_ids)
        with self.locked():
            data = self.read_all()
            runs = data.get(RUNS, {})
            gone = [i for i in ids if i in runs]
            for i in gone:
                del runs[i]
            if gone:
                self._storage.write(data)
        return len(gone)

    def put_runs(self, docs: Iterable[dict[str, Any]], *, replace: bool = False) -> int:
        """Insert many runs in one write (import, bench); existing ids kept unless `replace`."""
        with self.locked():
            data = self.read_all()
            runs = data.setdefault(RUNS, {})
            n = 0
            for doc in docs:
                if replace or doc["id"] not in runs:
                    runs[doc["id"]] = doc
                    n += 1
            self._storage.write(data)
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
            data = self.read_all()
            data.setdefault(table, {})[key] = doc
            self._storage.write(data)

    def transact(self, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """Run `fn(data)` on the fresh whole-file dict under the lock, then write it once.

        `fn` mutates `data` in place; what it returns is returned. Raise to write nothing.
        """
        with self.locked():
            data = self.read_all()
            result = fn(data)
            self._storage.write(data)
            return result

    def initialise(self) -> None:
        """Create the file with its schema version if it does not exist yet."""
        with self.locked():
            if not self.path.exists():
                self._storage.write(
                    {META: {"store": {"schema": SCHEMA_VERSION, "created": time.time()}}, RUNS: {}}
                )


def resolve_ref(ref: str, ids: list[str]) -> str:
    """Resolve a run reference against sorted ids (see `Store.resolve`)."""
    ref = ref.strip()
    if ref.startswith("@last"):
        back = 0
        if ref.startswith("@last~"):
            try:
                back = int(ref[6:])
            except ValueError:
                raise CtuiError(f"bad run reference {ref!r}", hint="use @last or @last~N") from None
        if back >= len(ids):
            raise UnknownRunError(f"{ref}: there are only {len(ids)} runs")
        return ids[-1 - back]
    if not ref:
        raise UnknownRunError("empty run id")
    # ids are sorted, so the matches for a prefix are one contiguous slice
    import bisect

    lo = bisect.bisect_left(ids, ref)
    matches = []
    for i in range(lo, len(ids)):
        if not ids[i].startswith(ref):
            break
        matches.append(ids[i])
    if ref in matches:
        return ref
    if not matches:
        raise UnknownRunError(f"no run matches {ref!r}", hint="`ctui runs` lists the run ids")
    if len(matches) > 1:
        raise AmbiguousRunError(ref, matches)
    return matches[0]


def open_store(project: Any) -> Store:
    """The store of a `ctui.project.Project`."""
    return Store(project.store_file)
