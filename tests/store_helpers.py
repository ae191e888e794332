"""Reading a segmented store's files as they are on disk (each must parse on its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctui.store import Store, parse_store_bytes
from ctui.store_runs import SegmentRuns
from ctui.store_segments import in_range


def stored_runs(store: Store) -> dict[str, dict[str, Any]]:
    """Every run in the segment files, each file parsed from its bytes (a half-written one
    fails here), copies outside a segment's range left out."""
    names = store.segments.names()
    out: dict[str, dict[str, Any]] = {}
    for i, lo in enumerate(names):
        path = store.segments.path(lo)
        docs = parse_store_bytes(path, path.read_bytes(), segment=True).get("runs", {})
        out.update(in_range(docs, lo, names[i + 1] if i + 1 < len(names) else None))
    return out


def segment_file(store: Store, run_id: str) -> Path:
    """The segment file that holds `run_id`."""
    return store.segments.path(SegmentRuns(store.segments).segment_of(run_id))
