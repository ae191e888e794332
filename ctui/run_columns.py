"""Runs as columns: the fields a runs table shows, filters and sorts by, for 100,000 runs in
little memory.

Each segment's index carries its runs' table fields as a column block (`block`: one JSON
list per field, `metric.acc`, `param.lr`, …), so a reader that wants every run's cells (the
TUI) reads the indexes and never holds 100,000 run documents. `RunColumns` joins blocks into
one list per column, each repeated text kept once; `Row` is one run seen through them, a
read-only mapping with the fields of a run document a table uses (`metrics`, `params`,
`tags`, `gate` as `{"passed": …}`); `select` applies a filter of `ctui.query` over the
columns, and `order` sorts by a column as `ctui.query.sort_runs` does. The whole document
(manifest, command, …) is `Store.get_run(row["id"])`: one segment.

Nothing here imports textual.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ctui.query import ALIASES, FIELDS, Filter, sort_value, word_text
from ctui.store_format import run_problem

#: the nested fields kept as `prefix.NAME` columns, and the document field each comes from
NESTED = {"metric": "metrics", "param": "params", "slurm": "slurm"}
_DOC_NESTED = {field: prefix for prefix, field in NESTED.items()}
_PLAIN = frozenset(FIELDS)
#: the gate's outcome as a column: `{"passed": …}`, one shared object per outcome
_GATES = {True: {"passed": True}, False: {"passed": False}, None: {"passed": None}}
#: columns whose values are unique per run: not worth sharing
_UNIQUE = frozenset({"id", "seq", "created", "started", "ended", "duration"})

_SCALAR = (str, int, float, bool)
_SCALARS = frozenset(_SCALAR)


def _cell(value: Any) -> Any:
    """A value as a column holds it: text and numbers as they are, a list as a list of its
    scalars, anything else as its text."""
    if value is None or isinstance(value, _SCALAR):
        return value
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, _SCALAR)]
    return str(value)


def block(docs: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The column block of these (id, document) pairs, oldest first, as JSON can hold it:
    `{"n": rows, "cols": {key: [value per row]}, "damaged": {id: problem}}`. Runs with wrongly
    typed fields are left out (and named); a column no run has is left out."""
    sound: list[dict[str, Any]] = []
    damaged: dict[str, str] = {}
    for run_id, doc in docs:
        problem = run_problem(run_id, doc)
        if problem is None:
            sound.append(doc)
        else:
            damaged[run_id] = problem
    n = len(sound)
    cols: dict[str, list[Any]] = {}
    names: dict[str, dict[str, str]] = {field: {} for field in _DOC_NESTED}

    def column(key: str) -> list[Any]:
        col = cols.get(key)
        if col is None:
            col = cols[key] = [None] * n
        return col

    for i, doc in enumerate(sound):  # one pass over each document's fields
        for key, value in doc.items():
            if value is None:
                continue
            if key in _PLAIN:
                column(key)[i] = value if value.__class__ in _SCALARS else _cell(value)
            elif key in _DOC_NESTED:
                if isinstance(value, dict):
                    known = names[key]
                    for name, v in value.items():
                        if v is not None:
                            k = known.get(name) or known.setdefault(
                                name, f"{_DOC_NESTED[key]}.{name}"
                            )
                            column(k)[i] = v if v.__class__ in _SCALARS else _cell(v)
            elif key == "tags":
                if value:
                    column("tags")[i] = [str(t) for t in value]
            elif key == "gate" and isinstance(value, dict):
                passed = value.get("passed")
                column("gate")[i] = {"passed": passed if isinstance(passed, bool) else None}
    return {"n": n, "cols": cols, "damaged": damaged}


def check_block(value: Any) -> bool:
    """Whether `value` is a column block as `block` makes them."""
    if not isinstance(value, dict) or type(value.get("n")) is not int:
        return False
    cols, n = value.get("cols"), value["n"]
    return (
        isinstance(cols, dict)
        and all(isinstance(c, list) and len(c) == n for c in cols.values())
        and isinstance(value.get("damaged"), dict)
        and len(cols.get("id", ())) == n
    )


def block_within(b: dict[str, Any], within: Callable[[str], bool]) -> dict[str, Any]:
    """The rows of a block whose ids `within` holds (a segment's copies of an interrupted
    split are not its own)."""
    ids = b["cols"]["id"] if b["n"] else []
    if all(within(k) for k in ids[:1] + ids[-1:]):
        return b
    keep = [i for i, k in enumerate(ids) if within(k)]
    cols = {key: [col[i] for i in keep] for key, col in b["cols"].items()}
    return {"n": len(keep), "cols": cols, "damaged": b["damaged"]}


Shared = dict[type, dict[Any, Any]]


def new_shared() -> Shared:
    """Where `compact` keeps the one object of each value: per type (1, 1.0 and True are
    equal keys, but not the same value)."""
    return {str: {}, float: {}, int: {}, tuple: {}}


def compact(b: dict[str, Any], shared: Shared) -> dict[str, Any]:
    """The block with each repeated value (a list as a tuple) one object from `shared`, and
    the gate's outcomes the shared `{"passed": …}`: what a reader keeps in memory."""
    if b.get("compact"):
        return b
    cols: dict[str, list[Any]] = {}
    for key, values in b["cols"].items():
        if key == "gate":
            cols[key] = [_GATES.get(v.get("passed")) if v else None for v in values]
        elif key in _UNIQUE:
            cols[key] = values
        else:
            cols[key] = _shared_values(values, shared)
    return {"n": b["n"], "cols": cols, "damaged": b["damaged"], "compact": True}


def _shared_values(values: list[Any], shared: Shared) -> list[Any]:
    out: list[Any] = []
    append = out.append
    tuples = shared[tuple]
    for v in values:
        same = shared.get(v.__class__)
        if same is not None:
            append(same.setdefault(v, v))
        elif v.__class__ is list:
            t = tuple(v)
            append(tuples.setdefault(t, t))
        else:
            append(v)
    return out


def column_key(key: str) -> str:
    """A query key as a column's name: `metrics.acc` → `metric.acc`, `tag` → `tags`, …"""
    head, dot, name = key.partition(".")
    if dot and head.rstrip("s") in NESTED:
        return f"{head.rstrip('s')}.{name}"
    if key == "tag":
        return "tags"
    return ALIASES.get(key, key)


class RunColumns:
    """Many runs (oldest first) as one list per column; `rows()` sees them as `Row`s."""

    def __init__(self, cols: dict[str, list[Any]], n: int) -> None:
        self.cols = cols
        self.n = n
        #: the runs left out for wrongly typed fields: id → problem
        self.damaged: dict[str, str] = {}
        self._none: list[None] | None = None
        self._rows: list[Row] | None = None
        self._words: list[str] | None = None
        #: per nested prefix: the names of its columns
        self.names: dict[str, list[str]] = {p: [] for p in NESTED}
        for key in cols:
            head, dot, name = key.partition(".")
            if dot and head in NESTED:
                self.names[head].append(name)
        #: (key, descending) → the row indices in that order
        self._orders: dict[tuple[str, bool], array[int]] = {}
        self._numbers: dict[str, bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def join(cls, blocks: Sequence[dict[str, Any]]) -> RunColumns:
        """One table of these blocks, in their order."""
        shared = new_shared()
        table = cls.assemble([compact(b, shared) for b in blocks])
        table.damaged = {k: v for b in blocks for k, v in b["damaged"].items()}
        return table

    @classmethod
    def assemble(
        cls, parts: Sequence[dict[str, Any] | tuple[int, int]], prev: RunColumns | None = None
    ) -> RunColumns:
        """One table of `compact`ed blocks and (start, n) spans of `prev`'s rows, in their
        order (a reader that reads again keeps the rows of the segments that did not
        change). A column no row has a value in is left out."""
        blocks = [p for p in parts if isinstance(p, dict)]
        old_keys = prev.cols if prev else {}
        keys = dict.fromkeys([*old_keys, *(k for b in blocks for k in b["cols"])])
        cols: dict[str, list[Any]] = {}
        n = 0
        for key in keys:
            out: list[Any] = []
            old = prev.cols.get(key) if prev else None
            for p in parts:
                if isinstance(p, dict):
                    values = p["cols"].get(key)
                    out += [None] * p["n"] if values is None else values
                else:
                    out += [None] * p[1] if old is None else old[p[0] : p[0] + p[1]]
            n = len(out)
            if out.count(None) < n:
                cols[key] = out
        if not cols:
            n = sum(p["n"] if isinstance(p, dict) else p[1] for p in parts)
        return cls(cols, n)

    @classmethod
    def from_runs(cls, runs: Iterable[Mapping[str, Any]]) -> RunColumns:
        """From run documents (oldest first; wrongly typed ones are left out)."""
        docs = (r if isinstance(r, dict) else dict(r) for r in runs)
        return cls.join([block((str(d.get("id")), d) for d in docs)])

    def __len__(self) -> int:
        return self.n

    def column(self, key: str) -> list[Any]:
        """Every row's value of a query key (`status`, `metric.acc`, `tag`, …); None where
        a run has none."""
        col = self.cols.get(column_key(key))
        if col is not None:
            return col
        if self._none is None:
            self._none = [None] * self.n
        return self._none

    def has(self, key: str) -> bool:
        """Whether some run has a value for this key."""
        return column_key(key) in self.cols

    def count(self, key: str, last: int | None = None) -> int:
        """How many runs (of the `last` ones) have a value for this key."""
        col = self.cols.get(column_key(key), ())
        part = col[-last:] if last else col
        return len(part) - part.count(None)

    def rows(self) -> list[Row]:
        """Every run as a `Row`, oldest first (made once)."""
        if self._rows is None:
            self._rows = [Row(self, i) for i in range(self.n)]
        return self._rows

    # -- filter and sort -----------------------------------------------------------------
    def words(self) -> list[str]:
        """Each row's text a bare filter word is looked for in (`ctui.query.word_text`)."""
        if self._words is None:
            c = self.column
            self._words = [
                word_text(*parts)
                for parts in zip(c("id"), c("job"), c("trigger"), c("note"), c("tags"), strict=True)
            ]
        return self._words

    def select(self, flt: Filter) -> list[int]:
        """The indices of the rows `flt` matches, in order. Each term is judged once per
        distinct value; numbers compared with a number need no judging at all."""
        chosen: Iterable[int] = range(self.n)
        if flt.words:
            words = self.words()
            for word in flt.words:
                chosen = [i for i in chosen if word in words[i]]
        for term in flt.terms:
            col = self.column(term.key)
            fast = _compare(term.op, term.values)
            if fast is not None and self._numeric(term.key):
                chosen = [i for i in chosen if (v := col[i]) is not None and fast(v)]
                continue
            judged: dict[Any, bool] = {}
            out = []
            for i in chosen:
                v = col[i]
                hit = judged.get(v)
                if hit is None:
                    hit = judged[v] = term.matches_value(v)
                if hit:
                    out.append(i)
            chosen = out
        return list(chosen)

    def _numeric(self, key: str) -> bool:
        """Whether every value of this column is a number (not a bool); found once per key."""
        known = self._numbers.get(key)
        if known is None:
            col = self.cols.get(column_key(key), ())
            known = bool(col) and all(
                v is None or v.__class__ is float or v.__class__ is int for v in col
            )
            self._numbers[key] = known
        return known

    def order(self, key: str, descending: bool) -> array[int]:
        """The row indices sorted by `key` (`ctui.query.sort_value`: numbers before text),
        the rows missing it last; ties keep the store's order. Kept per (key, direction)."""
        found = self._orders.get((key, descending))
        if found is not None:
            return found
        col = self.column(key)
        keys = [sort_value(v) for v in col]
        present = [i for i, k in enumerate(keys) if k[0] != 2]
        present.sort(key=keys.__getitem__, reverse=descending)
        missing = [i for i, k in enumerate(keys) if k[0] == 2]
        order = array("i", present + missing)
        with self._lock:
            return self._orders.setdefault((key, descending), order)

    def ordered(self, key: str) -> bool:
        """Whether both orders of `key` are made already."""
        return (key, True) in self._orders and (key, False) in self._orders


def _compare(op: str, values: tuple[str, ...]) -> Any:
    """A comparison of a number against the term's number, or None when the term is not
    one (`~`, several values, a value that is not a number)."""
    if op == "~" or len(values) != 1:
        return None
    try:
        x = float(values[0])
    except ValueError:
        return None
    return {
        "=": lambda v: v == x,
        "!=": None,  # a run without the value matches `!=`: judged per value
        ">": lambda v: v > x,
        ">=": lambda v: v >= x,
        "<": lambda v: v < x,
        "<=": lambda v: v <= x,
    }[op]


class Row(Mapping[str, Any]):
    """One run of a `RunColumns`: a read-only mapping with the fields of its document a
    table uses. `value(key)` is a query key's value without building `metrics`/`params`."""

    __slots__ = ("i", "table")

    def __init__(self, table: RunColumns, i: int) -> None:
        self.table = table
        self.i = i

    def value(self, key: str) -> Any:
        return self.table.column(key)[self.i]

    def _nested(self, prefix: str) -> dict[str, Any] | None:
        cols, i = self.table.cols, self.i
        out = {}
        for name in self.table.names[prefix]:
            v = cols[f"{prefix}.{name}"][i]
            if v is not None:
                out[name] = list(v) if v.__class__ is tuple else v
        return out

    def get(self, key: str, default: Any = None) -> Any:
        prefix = _DOC_NESTED.get(key)
        if prefix is not None:
            nested = self._nested(prefix)
            return nested if nested or key != "slurm" else default
        col = self.table.cols.get(key)
        if col is None:
            return default
        v = col[self.i]
        if v is None:
            return default
        return list(v) if v.__class__ is tuple else v

    def __getitem__(self, key: str) -> Any:
        """A table field (`FIELDS`) a run lacks is None; any other key it lacks, a KeyError."""
        v = self.get(key, _MISSING)
        if v is _MISSING:
            if key in _PLAIN:
                return None
            raise KeyError(key)
        return v

    def __iter__(self) -> Iterator[str]:
        for key, col in self.table.cols.items():
            if "." not in key and col[self.i] is not None:
                yield key
        yield from ("metrics", "params")
        if self.get("slurm") is not None:
            yield "slurm"

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<run {self.get('id')} of {self.table.n}>"


_MISSING = object()
