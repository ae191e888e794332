"""The run filter language, shared by `ctui runs --filter` and the TUI's `/`.

    status=failed metric.acc>0.9 job=train tag=baseline param.lr<=0.01 note~"new data"

Terms are separated by spaces and all must hold. Operators: `=` `!=` `>` `>=` `<` `<=`
and `~` (contains, case-insensitive). `a=x,y` means any of x, y. A bare word matches runs
whose id, job, tags, trigger or note contain it; `#42` is the run numbered 42. Numbers
compare as numbers; a field that only holds numbers (metrics, times, `seq`) compared with a
word is an error, not a silent "nothing matches" (`check_filter`). `check_sort` refuses a
sort key that names nothing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ctui.errors import CtuiError
from ctui.numbers import as_number

_NUMBER = re.compile(r"#(\d+)")
_TERM = re.compile(r"^(?P<key>[A-Za-z_][\w.\-/]*)\s*(?P<op>!=|>=|<=|=|>|<|~)(?P<value>.*)$")

#: plain fields of a run document a filter or sort may name
FIELDS = (
    "id",
    "seq",
    "job",
    "status",
    "created",
    "started",
    "ended",
    "duration",
    "exit_code",
    "trigger",
    "cause",
    "backend",
    "git",
    "data_hash",
    "host",
    "note",
    "reproduces",
    "verdict",
)
ALIASES = {"tag": "tags", "sha": "git", "commit": "git", "data": "data_hash", "exit": "exit_code"}
#: fields that only ever hold numbers: comparing one with a word is a mistake
NUMERIC = frozenset({"seq", "created", "started", "ended", "duration", "exit_code"})
_PREFIXES = ("metric", "metrics", "param", "params", "slurm")


_NESTED: tuple[tuple[tuple[str, ...], str], ...] = (
    (("metric.", "metrics."), "metrics"),
    (("param.", "params."), "params"),
    (("slurm.",), "slurm"),
)


def getter(key: str) -> Callable[[Mapping[str, Any]], Any]:
    """`value_of` for one key, its prefix worked out once (for a sort over 100,000 runs)."""
    for prefixes, field in _NESTED:
        if key.startswith(prefixes):
            name = key.split(".", 1)[1]
            return lambda run: (run.get(field) or {}).get(name)
    name = ALIASES.get(key, key)
    return lambda run: run.get(name)


def value_of(run: Mapping[str, Any], key: str) -> Any:
    """The value a filter or sort column means: `metric.acc`, `param.lr`, `status`, …"""
    return getter(key)(run)


@dataclass(frozen=True)
class Term:
    key: str
    op: str
    values: tuple[str, ...]

    def matches(self, run: dict[str, Any]) -> bool:
        return self.matches_value(value_of(run, self.key))

    def matches_value(self, actual: Any) -> bool:
        """Whether a run whose `key` holds `actual` matches (a list or tuple: its elements)."""
        if isinstance(actual, list | tuple):  # tags: any element may match; != means none does
            positive = Term(self.key, "=", self.values) if self.op == "!=" else self
            hit = any(positive._one(a) for a in actual)
            return (not hit) if self.op == "!=" else hit
        return self._one(actual)

    def _one(self, actual: Any) -> bool:
        op = self.op
        if actual is None:
            return op == "!=" or (op == "=" and "" in self.values)
        if op == "~":
            a = str(actual).lower()
            return any(v.lower() in a for v in self.values)
        if op in ("=", "!="):
            equal = any(_equal(actual, v) for v in self.values)
            return equal if op == "=" else not equal
        a_num, v_num = as_number(actual), as_number(self.values[0])
        if a_num is not None and v_num is not None:
            left: Any = a_num
            right: Any = v_num
        else:
            left, right = str(actual), self.values[0]
        return {
            ">": left > right,
            ">=": left >= right,
            "<": left < right,
            "<=": left <= right,
        }[op]


def _equal(actual: Any, wanted: str) -> bool:
    if not isinstance(actual, str):  # text never compares as a number: skip float() on it
        a_num, w_num = as_number(actual), as_number(wanted)
        if a_num is not None and w_num is not None:
            return a_num == w_num
    if isinstance(actual, bool):
        return str(actual).lower() == wanted.lower()
    text = str(actual)
    # ids, shas and hashes match by prefix, like git
    if isinstance(actual, str) and len(wanted) >= 4 and text.startswith(wanted):
        return True
    return text == wanted


def word_text(run_id: Any, job: Any, trigger: Any, note: Any, tags: Iterable[Any] | None) -> str:
    """What a bare word of a filter is looked for in: a run's id, job, trigger, note and tags
    (lower case)."""
    parts = (run_id, job, trigger, note, *(tags or ()))
    return " ".join(str(x) for x in parts if x).lower()


@dataclass(frozen=True)
class Filter:
    text: str
    terms: tuple[Term, ...]
    words: tuple[str, ...]

    def matches(self, run: dict[str, Any]) -> bool:
        if self.words:
            hay = word_text(
                run.get("id"), run.get("job"), run.get("trigger"), run.get("note"), run.get("tags")
            )
            if not all(word in hay for word in self.words):
                return False
        return all(t.matches(run) for t in self.terms)

    def __bool__(self) -> bool:
        return bool(self.terms or self.words)


def parse_filter(text: str | None) -> Filter:
    """Parse a filter; a bad term raises CtuiError (exit 2) saying which and why."""
    text = (text or "").strip()
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise CtuiError(f"bad filter {text!r}: {exc}", hint=_HINT) from None
    terms: list[Term] = []
    words: list[str] = []
    for tok in tokens:
        number = _NUMBER.fullmatch(tok)
        if number is not None:  # `#42`: the run numbered 42
            terms.append(Term("seq", "=", (number.group(1),)))
            continue
        m = _TERM.match(tok)
        if not m:
            if any(c in tok for c in "=<>~!"):
                raise CtuiError(f"bad filter term {tok!r}", hint=_HINT)
            words.append(tok.lower())
            continue
        key, op, value = m.group("key"), m.group("op"), m.group("value")
        if not _known_key(key):
            raise CtuiError(f"unknown filter field {key!r}", hint=_HINT)
        if op in ("=", "!=", "~"):
            values = tuple(v for v in value.split(",")) if value else ("",)
        else:
            if not value:
                raise CtuiError(f"filter term {tok!r} needs a value", hint=_HINT)
            values = (value,)
        if op != "~" and _numeric(key):
            for v in values:
                if v and as_number(v) is None:
                    raise CtuiError(
                        f"cannot compare {key} with {v!r}: not a number",
                        hint=f"{key} holds numbers, e.g. {key}{op}0.9",
                    )
        terms.append(Term(key, op, values))
    return Filter(text, tuple(terms), tuple(words))


def check_filter(text: str | None) -> None:
    """Raise the CtuiError (exit 2, one line) `parse_filter` would, or nothing: for a UI
    that shows the error under its input and keeps the results it had."""
    parse_filter(text)


def _known_key(key: str) -> bool:
    if key.split(".", 1)[0] in _PREFIXES and "." in key:
        return True
    return ALIASES.get(key, key) in FIELDS or key in ALIASES or key == "tags"


def _numeric(key: str) -> bool:
    return key.startswith(("metric.", "metrics.")) or ALIASES.get(key, key) in NUMERIC


_HINT = (
    "terms look like status=failed metric.acc>0.9 job=train tag=baseline param.lr<=0.01; "
    f"fields: {', '.join(FIELDS)}, tag, metric.NAME, param.NAME"
)


def filter_runs(runs: Iterable[dict[str, Any]], text: str | Filter | None) -> list[dict[str, Any]]:
    flt = text if isinstance(text, Filter) else parse_filter(text)
    if not flt:
        return list(runs)
    return [r for r in runs if flt.matches(r)]


_SORT_HINT = f"sort keys: {', '.join(FIELDS)}, tag, metric.NAME, param.NAME (prefix - to reverse)"


def check_sort(key: str, runs: Iterable[Mapping[str, Any]] = ()) -> str:
    """The sort key without its `-`/`+`, if it names something; else a CtuiError (exit 2):
    an unknown field (the known ones listed), or a metric/param no run in `runs` has."""
    bare = key.strip().lstrip("-+")
    if not bare or not _known_key(bare):
        raise CtuiError(f"unknown sort key {key.strip()!r}", hint=_SORT_HINT)
    head, _, name = bare.partition(".")
    if head in _PREFIXES:
        field = {"metric": "metrics", "param": "params"}.get(head, head)
        items = list(runs)
        if items and not any(name in (r.get(field) or {}) for r in items):
            kind = head.rstrip("s")
            known = sorted({k for r in items[-2000:] for k in (r.get(field) or {})})
            shown = ", ".join(known[:12]) + (" …" if len(known) > 12 else "")
            raise CtuiError(
                f"no run has {kind} {name!r}",
                hint=f"{field}: {shown}" if known else f"no run has any {field}",
            )
    return bare


def missing_keys(flt: Filter, runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The metric/param names a filter's terms use that no run in `runs` has (a typo?)."""
    items = list(runs)
    out = []
    for term in flt.terms:
        head, _, name = term.key.partition(".")
        field = {"metric": "metrics", "param": "params"}.get(head.rstrip("s"))
        if field and not any(name in (r.get(field) or {}) for r in items):
            out.append(term.key)
    return list(dict.fromkeys(out))


def sort_key(key: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    """A key function putting missing values last and numbers before text."""

    get = getter(key)
    return lambda run: sort_value(get(run))


def sort_value(v: Any) -> tuple[int, Any]:
    """What a value sorts by: numbers first (as numbers), then text, a missing value last."""
    if v is None:
        return (2, 0)
    kind = type(v)
    if kind is list or kind is tuple:  # tags: by their text; none at all is missing
        return (1, ",".join(map(str, v)).lower()) if v else (2, 0)
    if kind is float or kind is int:  # the common case first (bool is neither)
        return (0, float(v))
    n = as_number(v) if kind is not str else None
    if n is not None:
        return (0, n)
    return (1, str(v).lower())


def sort_runs(
    runs: Iterable[dict[str, Any]], key: str, descending: bool = False
) -> list[dict[str, Any]]:
    """Sort by any column; runs missing the value stay at the end either way."""
    k = sort_key(key)
    keyed = [(k(r), r) for r in runs]
    present = [kr for kr in keyed if kr[0][0] != 2]
    present.sort(key=_first, reverse=descending)
    return [r for _, r in present] + [r for kk, r in keyed if kk[0] == 2]


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]
