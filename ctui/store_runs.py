"""The `runs` table of a segmented store as a mapping (`SegmentRuns`) that reads only the
segments it is asked about, and the cache of a reader that reads again and again
(`SegmentCache`). The files themselves: `ctui.store_segments`."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

from ctui.errors import CtuiError
from ctui.run_columns import RunColumns, block_within, compact, new_shared
from ctui.store_format import RUNS, dump_store, run_problem
from ctui.store_segments import FIRST, Identity, Segments, in_range, inside, is_live

T = TypeVar("T")


class SegmentCache:
    """For a reader that reads again and again (the TUI's poll): each segment as last read,
    reused while the file is that same one (a stat tells), so reading 100,000 runs again
    after one changed costs one segment's parse. Its documents are shared between reads:
    for reading only."""

    def __init__(self, segments: Segments) -> None:
        self.segments = segments
        self.files: dict[str, tuple[Identity, dict[str, dict[str, Any]]]] = {}
        #: per segment file: the run checks already made (id → problem or None)
        self.checked: dict[str, tuple[Identity, dict[str, str]]] = {}
        #: per segment: its index as last read
        self.indexes: dict[str, dict[str, Any]] = {}
        #: the last `columns`, where each segment's rows are in it, and its shared values
        self.table: RunColumns | None = None
        self.spans: dict[str, tuple[tuple[Identity, str | None], int, int]] = {}
        self.damaged: dict[str, dict[str, str]] = {}
        self.shared = new_shared()

    def index(self, lo: str) -> dict[str, Any]:
        """Segment `lo`'s index, parsed again only when the segment file changed."""
        now = self.segments.identity(lo)
        hit = self.indexes.get(lo)
        if hit is not None and now is not None and hit["segment"] == list(now):
            return hit
        entry = self.segments.index(lo)
        self.indexes[lo] = entry
        return entry

    def columns(self, names: list[str], hi: Callable[[str], str | None]) -> RunColumns:
        """The table fields of segments `names` as one `RunColumns`, the rows of those whose
        file and range did not change since the last call taken from the last table (only a
        changed segment's columns are read; a split narrows the range of a segment whose
        file stays the same)."""
        parts: list[dict[str, Any] | tuple[int, int]] = []
        spans: dict[str, tuple[tuple[Identity, str | None], int, int]] = {}
        damaged: dict[str, dict[str, str]] = {}
        start = 0
        for lo in names:
            now = self.segments.identity(lo)
            key = (now, hi(lo)) if now is not None else None
            span = self.spans.get(lo)
            if self.table is not None and span is not None and span[0] == key:
                parts.append((span[1], span[2]))
                n = span[2]
                damaged[lo] = self.damaged.get(lo, {})
            else:
                table = self.segments.columns(lo)
                part = compact(block_within(table, inside(lo, hi(lo))), self.shared)
                parts.append(part)
                n = part["n"]
                damaged[lo] = part["damaged"]
            if key is not None:
                spans[lo] = (key, start, n)
            start += n
        self.table = RunColumns.assemble(parts, self.table)
        self.table.damaged = {k: v for found in damaged.values() for k, v in found.items()}
        self.spans, self.damaged = spans, damaged
        return self.table

    def read(self, lo: str) -> tuple[dict[str, dict[str, Any]], Identity | None]:
        now = self.segments.identity(lo)
        hit = self.files.get(lo)
        if hit is not None and now is not None and hit[0] == now:
            return hit[1], now
        docs, seen = self.segments.read(lo)
        if seen is not None:
            self.files[lo] = (seen, docs)
        return docs, seen


class SegmentRuns(MutableMapping[str, dict[str, Any]]):
    """The `runs` table of a segmented store as a mapping that reads only the segments it
    is asked about (one for `runs[id]`, all of them to iterate), each once.

    For writers (under the store lock) it records which segments changed (`changed()`) and
    the documents set without a number (`unnumbered`), for `Store` to write. A reader that
    iterates gets one consistent listing: when a split happened meanwhile, it reads again.
    """

    def __init__(
        self, segments: Segments, *, writing: bool = False, cache: SegmentCache | None = None
    ) -> None:
        self.segments = segments
        #: under the store lock: keep each segment's bytes, to find the documents a caller
        #: changed in place (`changed()`)
        self.writing = writing
        #: a long-lived reader's segments as last read (see `SegmentCache`)
        self.cache = None if writing else cache
        self._reset()

    def _reset(self) -> None:
        self.names = self.segments.names() or [FIRST]
        self.loaded: dict[str, dict[str, dict[str, Any]]] = {}
        self.seen: dict[str, Identity | None] = {}
        self.dirty: set[str] = set()
        self.unnumbered: list[dict[str, Any]] = []
        self.raw: dict[str, bytes] = {}

    def segment_of(self, run_id: str) -> str:
        return self.names[max(0, bisect.bisect_right(self.names, run_id) - 1)]

    def _hi(self, lo: str) -> str | None:
        i = bisect.bisect_right(self.names, lo)
        return self.names[i] if i < len(self.names) else None

    def segment(self, lo: str) -> dict[str, dict[str, Any]]:
        docs = self.loaded.get(lo)
        if docs is None:
            if self.cache is not None:
                found, self.seen[lo] = self.cache.read(lo)
                raw = b""
            else:
                found, self.seen[lo], raw = self.segments.read_raw(lo)
            docs = self.loaded[lo] = dict(in_range(found, lo, self._hi(lo)))
            if self.writing:
                self.raw[lo] = raw if len(docs) == len(found) else b""
        return docs

    def problems(self, lo: str) -> dict[str, str]:
        """The runs of segment `lo` with wrongly typed fields: id → problem (remembered in
        the cache while the file is the same)."""
        docs, seen = self.segment(lo), self.seen.get(lo)
        hit = self.cache.checked.get(lo) if self.cache is not None else None
        if hit is not None and seen is not None and hit[0] == seen:
            return hit[1]
        found = {k: p for k, d in docs.items() if (p := run_problem(k, d)) is not None}
        if self.cache is not None and seen is not None:
            self.cache.checked[lo] = (seen, found)
        return found

    def changed(self) -> set[str]:
        """The segments to write: those given new documents, and those whose documents a
        caller changed in place (their bytes differ from the file's)."""
        return self.dirty | {
            lo
            for lo, docs in self.loaded.items()
            if lo not in self.dirty and dump_store({RUNS: docs}) != self.raw.get(lo)
        }

    def _consistent(self, read: Callable[[], T]) -> T:
        """`read()` over one listing of the segments; read again if a split changed the
        listing meanwhile (a writer holds the lock: nothing can change under it)."""
        for _ in range(10):
            result = read()
            if self.writing or (self.segments.names() or [FIRST]) == self.names:
                return result
            self._reset()
        raise CtuiError(f"the run store's segments in {self.segments.dir} keep changing")

    def load_all(self) -> None:
        """Every segment, from one listing."""

        def read() -> None:
            for lo in self.names:
                self.segment(lo)

        self._consistent(read)

    def index(self) -> tuple[list[str], dict[int, str]]:
        """(every id, sorted; run number → id) from the segment indexes."""

        def read() -> tuple[list[str], dict[int, str]]:
            ids: list[str] = []
            seqs: dict[int, str] = {}
            for lo in self.names:
                entry = self._index(lo)
                within = inside(lo, self._hi(lo))
                rows = list(zip(entry["ids"], entry["seq"], strict=True))
                if rows and not (within(rows[0][0]) and within(rows[-1][0])):
                    rows = [r for r in rows if within(r[0])]  # copies of an interrupted split
                ids += [r[0] for r in rows]
                for rid, seq in rows:
                    if type(seq) is int and seq not in seqs:
                        seqs[seq] = rid
            return ids, seqs

        return self._consistent(read)

    def _index(self, lo: str) -> dict[str, Any]:
        return self.cache.index(lo) if self.cache is not None else self.segments.index(lo)

    def columns(self) -> RunColumns:
        """Every run's table fields (`ctui.run_columns`), oldest first, from the segment
        indexes alone."""

        def read() -> RunColumns:
            if self.cache is not None:
                return self.cache.columns(self.names, self._hi)
            return RunColumns.join(
                [
                    block_within(self.segments.columns(lo), inside(lo, self._hi(lo)))
                    for lo in self.names
                ]
            )

        return self._consistent(read)

    def live(self) -> list[dict[str, Any]]:
        """The queued, running and orphaned lost runs (see `is_live`), oldest first, reading
        only the segments whose index lists some."""

        def read() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for lo in self.names:
                if lo not in self.loaded and not self._index(lo)["live"]:
                    continue
                docs = self.segment(lo)
                found += [docs[k] for k in sorted(docs) if is_live(docs[k])]
            return found

        return self._consistent(read)

    # -- the mapping ---------------------------------------------------------------------
    def __getitem__(self, run_id: str) -> dict[str, Any]:
        return self.segment(self.segment_of(run_id))[run_id]

    def __contains__(self, run_id: object) -> bool:
        return isinstance(run_id, str) and run_id in self.segment(self.segment_of(run_id))

    def __setitem__(self, run_id: str, doc: dict[str, Any]) -> None:
        lo = self.segment_of(run_id)
        self.segment(lo)[run_id] = doc
        self.dirty.add(lo)
        if doc.get("seq") is None:
            self.unnumbered.append(doc)

    def __delitem__(self, run_id: str) -> None:
        lo = self.segment_of(run_id)
        del self.segment(lo)[run_id]
        self.dirty.add(lo)

    def __iter__(self) -> Iterator[str]:
        self.load_all()
        for lo in self.names:
            yield from sorted(self.loaded[lo])

    def __len__(self) -> int:
        self.load_all()
        return sum(len(d) for d in self.loaded.values())

    def __repr__(self) -> str:
        return f"<runs in {len(self.names)} segments of {self.segments.dir}>"
