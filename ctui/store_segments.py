"""The segments of a run store: run documents in TinyDB files by id range, each with a
small index file beside it.

`<store>.segments/` (beside the store file, or its target when it is a symlink) holds
`<lo>.json` files: plain TinyDB files with one table, `runs`. A segment holds the runs whose
ids are ≥ its name and < the next segment's name (`0` is the first: every id is ≥ it), so the
segment of an id is known from the directory listing alone. Ids are time-sortable, so new
runs land in the last segment and the others stay as they are but for small edits (tags,
notes). A segment over `segment_runs()` runs splits: its upper part goes to new files first
(highest first), then the segment is rewritten with the rest — at every moment each id has
exactly one segment whose range holds it, and copies outside a segment's range are ignored
(and dropped by its next write).

`<lo>.idx` is that segment's index: the ids and numbers of its runs, which of them are live
(queued, running, orphaned), and the identity of the segment file it was made from. `<lo>.cols`
beside it holds the runs' table fields as columns (`ctui.run_columns.block`: what the TUI and
`ctui runs -f/-s` filter and sort by), stamped the same way; it is a file of its own so that
resolving an id reads only the small index. A
reader uses an index only while its segment is that same file; a stale or missing one is
made again from the segment. The indexes are a cache: deleting them loses nothing. No
locking here (see `ctui.store`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes, identity
from ctui.errors import CtuiError, StoreCorruptError, os_error
from ctui.run_columns import block, check_block
from ctui.store_format import RUNS, backup_path, dump_store, parse_store_bytes

#: the first segment's name: lower than every run id (ids start with a letter or digit)
FIRST = "0"
#: how many runs a segment holds before it splits (env: `CTUI_SEGMENT_RUNS`, for tests)
SEGMENT_RUNS = 1000
SEGMENT_RUNS_ENV = "CTUI_SEGMENT_RUNS"
INDEX_VERSION = 2  # 1: ids, seq, created; 2: ids, seq, live
COLUMNS_VERSION = 1  # the runs' table fields (`ctui.run_columns.block`)

Identity = tuple[int, int, int, int]


def segment_runs() -> int:
    raw = os.environ.get(SEGMENT_RUNS_ENV)
    if raw is None:
        return SEGMENT_RUNS
    if not raw.isdigit() or int(raw) < 2:
        raise CtuiError(f"{SEGMENT_RUNS_ENV}={raw!r} is not a whole number ≥ 2")
    return int(raw)


def segments_dir(store_path: Path) -> Path:
    """`.ctui/store.json` → `.ctui/store.segments` (a symlinked store: beside its target)."""
    real = Path(os.path.realpath(store_path))
    return real.with_name(real.stem + ".segments")


def _identity_of(path: Path) -> Identity | None:
    try:
        return identity(os.stat(path))
    except FileNotFoundError:
        return None


class Segments:
    """The segment files of one store: listing, reading, writing, splitting, indexes."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)

    def path(self, lo: str) -> Path:
        return self.dir / f"{lo}.json"

    def idx_path(self, lo: str) -> Path:
        return self.dir / f"{lo}.idx"

    def cols_path(self, lo: str) -> Path:
        return self.dir / f"{lo}.cols"

    def names(self) -> list[str]:
        """The segments' names (their lower bounds), sorted; [] when there is no directory."""
        try:
            entries = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise os_error(exc, f"list the run store's segments in {self.dir}") from None
        return sorted(n[:-5] for n in entries if n.endswith(".json") and not n.startswith("."))

    def stamp(self) -> tuple[tuple[str, int, int], ...]:
        """What changes when any segment is written (for polling readers)."""
        out = []
        for lo in self.names():
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(self.path(lo))
                out.append((lo, st.st_mtime_ns, st.st_size))
        return tuple(out)

    # -- reading -------------------------------------------------------------------------
    def read(self, lo: str) -> tuple[dict[str, dict[str, Any]], Identity | None]:
        """All documents in the file `lo` (in its range or not) and which file it was;
        ({}, None) when there is none. A file that does not parse is a StoreCorruptError
        naming it."""
        docs, seen, _ = self.read_raw(lo)
        return docs, seen

    def read_raw(self, lo: str) -> tuple[dict[str, dict[str, Any]], Identity | None, bytes]:
        """`read`, and the file's bytes."""
        path = self.path(lo)
        for attempt in range(3):
            try:
                with open(path, "rb") as fh:
                    before = identity(os.fstat(fh.fileno()))
                    raw = fh.read()
            except FileNotFoundError:
                return {}, None, b""
            except OSError as exc:
                raise os_error(exc, f"read the run store segment {path}") from None
            try:
                data = parse_store_bytes(path, raw, segment=True)
            except StoreCorruptError:
                if attempt == 2 or before == _identity_of(path):
                    raise  # really damaged, not replaced while it was read
                continue
            return data.get(RUNS, {}), before, raw
        raise AssertionError("unreachable")

    # -- writing (the caller holds the store lock) ---------------------------------------
    def write(self, lo: str, docs: dict[str, dict[str, Any]], seen: Identity | None) -> None:
        """Replace segment `lo` with `docs` (atomic; the old file becomes `<lo>.json.bak`).
        `seen`: the file that was read; a file changed since is not written over."""
        path = self.path(lo)
        current = _identity_of(path)
        if current != seen:
            raise StoreCorruptError(
                f"run store segment {path} was changed by another program while ctui was "
                "updating it",
                hint="nothing was changed; try again",
            )
        raw = dump_store({RUNS: docs})
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            keep = backup_path(path) if current is not None else None
            atomic_write_bytes(path, raw, keep_previous=keep)
        except OSError as exc:
            raise os_error(exc, f"write the run store segment {path}") from None
        self.write_index(lo, docs, _identity_of(path))

    def identity(self, lo: str) -> Identity | None:
        return _identity_of(self.path(lo))

    def plan(
        self, lo: str, docs: dict[str, dict[str, Any]], seen: Identity | None
    ) -> list[tuple[str, dict[str, dict[str, Any]], Identity | None]]:
        """The writes that store `docs` (the ids in segment `lo`'s range) as `lo`, split in
        pieces of at most `segment_runs()`: the new upper pieces first, highest first, then
        `lo` — so at every moment each id has one segment whose range holds it. A segment
        left empty stays (its range is its own, whatever an older file may still hold)."""
        limit = segment_runs()
        if len(docs) <= limit:
            return [(lo, docs, seen)]
        ids = sorted(docs)
        pieces = [ids[i : i + limit] for i in range(0, len(ids), limit)]
        steps = [(p[0], {k: docs[k] for k in p}, self.identity(p[0])) for p in pieces[1:]]
        return [*reversed(steps), (lo, {k: docs[k] for k in pieces[0]}, seen)]

    # -- the index -----------------------------------------------------------------------
    def write_index(
        self, lo: str, docs: dict[str, dict[str, Any]], ident: Identity | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Save (and return) the index and the columns of segment `lo` holding `docs`."""
        entry = index_entry(docs, ident)
        cols = columns_entry(docs, ident)
        for path, value in ((self.idx_path(lo), entry), (self.cols_path(lo), cols)):
            with contextlib.suppress(OSError):  # a cache: the next reader makes it again
                atomic_write_bytes(path, orjson.dumps(value))
        return entry, cols

    def index(self, lo: str) -> dict[str, Any]:
        """Segment `lo`'s index, made again (and saved) when it is missing, stale or of
        another version. An index file that does not parse is a StoreCorruptError naming it."""
        found = self._fresh(lo, self.idx_path(lo), parse_index, INDEX_VERSION)
        return found if found is not None else self._remake(lo)[0]

    def columns(self, lo: str) -> dict[str, Any]:
        """Segment `lo`'s runs' table fields (a `ctui.run_columns.block`), made again like
        its index; a columns file that does not parse is a StoreCorruptError naming it."""
        found = self._fresh(lo, self.cols_path(lo), parse_columns, COLUMNS_VERSION)
        return (found if found is not None else self._remake(lo)[1])["table"]

    def _fresh(
        self, lo: str, path: Path, parse: Callable[[Path, bytes], dict[str, Any]], version: int
    ) -> dict[str, Any] | None:
        """The index-like file at `path` if it is of `version` and made from the segment
        file there is now; else None."""
        now = _identity_of(self.path(lo))
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise os_error(exc, f"read the run store index {path}") from None
        entry = parse(path, raw)
        fresh = entry["version"] == version and entry["segment"] == (list(now) if now else None)
        return entry if fresh else None

    def _remake(self, lo: str) -> tuple[dict[str, Any], dict[str, Any]]:
        docs, seen = self.read(lo)
        return self.write_index(lo, docs, seen)


def is_live(doc: dict[str, Any]) -> bool:
    """A run that may hold a slot or need a look: queued, running, or a lost run whose
    job's processes may live on (`orphan`)."""
    status = doc.get("status")
    return status in ("queued", "running") or (
        status == "lost" and isinstance(doc.get("orphan"), dict)
    )


def index_entry(docs: dict[str, dict[str, Any]], ident: Identity | None) -> dict[str, Any]:
    """What the index of a segment holding `docs` says: its ids (sorted), their numbers
    and the ids of its live runs (see `is_live`)."""
    ids = sorted(docs)
    return {
        "version": INDEX_VERSION,
        "segment": list(ident) if ident else None,
        "ids": ids,
        "seq": [docs[k].get("seq") for k in ids],
        "live": [k for k in ids if is_live(docs[k])],
    }


def columns_entry(docs: dict[str, dict[str, Any]], ident: Identity | None) -> dict[str, Any]:
    """What the columns file of a segment holding `docs` says: their table fields."""
    return {
        "version": COLUMNS_VERSION,
        "segment": list(ident) if ident else None,
        "table": block((k, docs[k]) for k in sorted(docs)),
    }


def parse_index(path: Path, raw: bytes) -> dict[str, Any]:
    """A segment index file, checked; a damaged one is a StoreCorruptError naming it."""
    hint = "nothing was changed. `ctui doctor --reindex` makes the index again from the segments"
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StoreCorruptError(f"run store index {path} is unreadable: {exc}", hint=hint) from None
    if isinstance(entry, dict) and type(entry.get("version")) is int:
        if entry["version"] != INDEX_VERSION:
            return {"version": entry["version"], "segment": None}  # another ctui's: remake it
    else:
        entry = None
    ok = entry is not None
    lists = [entry.get(k) for k in ("ids", "seq")] if ok else []
    ok = ok and all(isinstance(x, list) for x in lists) and len({len(x) for x in lists}) == 1
    ok = ok and isinstance(entry.get("live"), list)
    ok = ok and all(type(i) is str for i in [*entry["ids"], *entry["live"]])
    ok = ok and (entry.get("segment") is None or isinstance(entry.get("segment"), list))
    if not ok:
        raise StoreCorruptError(
            f"run store index {path} is unreadable: not an index of this ctui", hint=hint
        )
    return entry


def parse_columns(path: Path, raw: bytes) -> dict[str, Any]:
    """A segment's columns file, checked; a damaged one is a StoreCorruptError naming it."""
    hint = "nothing was changed. `ctui doctor --reindex` makes it again from the segments"
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StoreCorruptError(
            f"run store columns {path} are unreadable: {exc}", hint=hint
        ) from None
    if isinstance(entry, dict) and type(entry.get("version")) is int:
        if entry["version"] != COLUMNS_VERSION:
            return {"version": entry["version"], "segment": None}  # another ctui's: remake it
        segment = entry.get("segment")
        if (segment is None or isinstance(segment, list)) and check_block(entry.get("table")):
            return entry
    raise StoreCorruptError(
        f"run store columns {path} are unreadable: not a columns file of this ctui", hint=hint
    )


def inside(lo: str, hi: str | None) -> Callable[[str], bool]:
    """Whether an id is in segment [lo, hi) (the first segment has no lower bound)."""
    low = None if lo == FIRST else lo
    return lambda k: (low is None or k >= low) and (hi is None or k < hi)


def in_range(docs: dict[str, Any], lo: str, hi: str | None) -> dict[str, Any]:
    """The documents of segment [lo, hi)."""
    within = inside(lo, hi)
    if all(within(k) for k in docs):
        return docs
    return {k: v for k, v in docs.items() if within(k)}
