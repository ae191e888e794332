"""The store file's format: tables, schema and migrations, its one-document-per-line layout,
and the type check of run documents. No locking and no I/O here (see `ctui.store`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ctui.errors import CtuiError, StoreCorruptError
from ctui.ids import FIELD_TYPES, STR_LISTS, check_run_doc, is_run_id

#: 1: one file; 2: runs in segments beside it (`ctui.store_segments`), migrated on first write
SCHEMA_VERSION = 2

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

# Migrations from version N to N+1 over the raw JSON dict (the documents keep their shape
# from 0 to 2; 1 → 2 moves the runs into segments, which `ctui.store` does on the first
# write: a version-1 file reads as ever until then). Exercised by tests with a fake v0.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: lambda data: data,
    1: lambda data: data,
}

#: the `meta.store` field naming the segments directory (absent: the runs are in the file)
SEGMENTS = "segments"

#: the `meta.store` field holding the last run number given (`seq`; numbers are never reused)
LAST_SEQ = "last_seq"


def number_runs(data: dict[str, Any]) -> None:
    """Give every run without a number (`seq`: #1, #2, … per project) the next ones, in
    `created` order, and keep `meta.store.last_seq` the highest number ever given.

    Called on every parse (so an old store, written before runs had numbers, reads as
    numbered) and before every full write (so the numbers are kept, and a new run gets
    its number in the write that inserts it). A number two runs share (a copied document)
    stays with the older run; the other gets a new one. A wrongly typed `seq` is left for
    `run_problem` to report.
    """
    runs = data.get(RUNS)
    if not isinstance(runs, dict):
        return
    meta = data.setdefault(META, {}).setdefault("store", {})
    last = meta.get(LAST_SEQ)
    last = last if type(last) is int and last > 0 else 0
    seqs = [doc.get("seq") for doc in runs.values()]
    if None not in seqs and all(type(n) is int for n in seqs) and len(set(seqs)) == len(seqs):
        meta[LAST_SEQ] = max([last, *seqs])  # the common case: every run numbered once
        return
    todo: list[dict[str, Any]] = []
    taken: set[int] = set()
    shared = False
    for doc in runs.values():
        seq = doc.get("seq")
        if seq is None:
            todo.append(doc)
        elif type(seq) is int and seq > 0:
            shared = shared or seq in taken
            taken.add(seq)
            last = max(last, seq)
    if shared:  # rare: decide who keeps a number by age, not by where it sits in the file
        owners: set[int] = set()
        for doc in sorted(runs.values(), key=_age):
            seq = doc.get("seq")
            if type(seq) is int and seq > 0:
                if seq in owners:
                    todo.append(doc)
                owners.add(seq)
    for doc in sorted(todo, key=_age):
        last += 1
        doc["seq"] = last
    meta[LAST_SEQ] = last


def _age(doc: dict[str, Any]) -> tuple[float, str]:
    created = doc.get("created")
    if isinstance(created, int | float) and not isinstance(created, bool):
        return (float(created), str(doc.get("id")))
    return (0.0, str(doc.get("id")))


def backup_path(path: Path) -> Path:
    """The last good copy: beside the real file (a symlinked store keeps it by its target)."""
    real = Path(os.path.realpath(path))
    return real.with_name(real.name + ".bak")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    return "null" if value is None else names.get(type(value), "a number")


def _corrupt(path: Path, problem: str) -> StoreCorruptError:
    backup = backup_path(path)
    hint = (
        f"nothing was changed. `ctui doctor` inspects it; `ctui doctor --restore` brings back "
        f"the last good copy ({backup.name})"
        if backup.exists()
        else "nothing was changed. Repair or move the file aside; `ctui doctor` inspects it"
    )
    return StoreCorruptError(f"run store {path} is unreadable: {problem}", hint=hint)


def parse_store_bytes(path: Path, raw: bytes, *, segment: bool = False) -> dict[str, Any]:
    """Parse and validate the raw file; migrate old schemas in memory. A `segment` (one
    `runs` table, see `ctui.store_segments`) has no schema and no numbering of its own."""
    if not raw.strip():
        raise _corrupt(path, "the file is empty (truncated?)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _corrupt(
            path, f"invalid JSON ({exc}; {len(raw)} bytes, starting {raw[:24]!r})"
        ) from None
    if not isinstance(data, dict):
        raise _corrupt(path, f"the top level is {_kind(data)}, expected an object of tables")
    for name, table in data.items():
        if not isinstance(table, dict):
            raise _corrupt(path, f"table {name!r} is {_kind(table)}, expected an object")
        for key, doc in table.items():
            if not isinstance(doc, dict):
                raise _corrupt(path, f"{name}[{key!r}] is {_kind(doc)}, expected an object")
    if segment:
        if set(data) - {RUNS}:
            raise _corrupt(path, f"a segment holds only a {RUNS!r} table, not {sorted(data)}")
        return data
    version = data.get(META, {}).get("store", {}).get("schema", SCHEMA_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
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
    number_runs(data)
    return data


def dump_store(data: dict[str, Any]) -> bytes:
    """The file's layout: plain JSON (TinyDB reads it as ever) with one document per line
    (a diff or a hand edit touches one line)."""
    tables = []
    for name, table in data.items():
        rows = b",\n".join(orjson.dumps(str(k)) + b":" + orjson.dumps(v) for k, v in table.items())
        tables.append(orjson.dumps(name) + (b":{\n" + rows + b"\n}" if rows else b":{}"))
    return b"{\n" + b",\n".join(tables) + b"\n}\n"


_NONE = type(None)
#: the exact JSON types each known run field may hold (ctui.ids' table, for a fast check)
_EXACT = {name: frozenset((*types, _NONE)) for name, (types, _) in FIELD_TYPES.items()}


def run_problem(key: str, doc: dict[str, Any]) -> str | None:
    """What is wrong with a stored run document's types, in words; None when it is fine.

    A fast exact-type pass (10k runs in ~20 ms); only a doubtful document gets the full
    check of `ctui.ids.check_run_doc`, for its message.
    """
    ok = doc.get("id") == key and is_run_id(key)
    ok = ok and all(type(v) in _EXACT.get(k, (type(v),)) for k, v in doc.items())
    ok = ok and all(type(x) is str for f in STR_LISTS for x in doc.get(f) or ())
    ok = ok and all(type(x) in (int, float, _NONE) for x in (doc.get("metrics") or {}).values())
    if ok:
        return None
    if doc.get("id") != key:
        return f"run {key}: its id field is {doc.get('id')!r}, not its key"
    try:
        check_run_doc(doc)
    except CtuiError as exc:
        return exc.message
    return None
