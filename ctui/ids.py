"""Run ids: short, unique, time-sortable (Crockford base32: 8 chars of ms clock + 4 random)."""

from __future__ import annotations

import bisect
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from ctui.errors import AmbiguousRunError, CtuiError, UnknownRunError

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case, no i l o u


def _b32(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_run_id(now: float | None = None) -> str:
    """12 characters; ids made later sort after ids made earlier (ms resolution).

    8 base32 chars hold 40 bits of *centiseconds* since 2024-01-01, enough for ~348 years.
    """
    global _last
    t = time.time() if now is None else now
    centis = int((t - 1_704_067_200) * 100)
    if _last is not None and _last[0] == centis and _last[1] < 0xFFFFF:
        rand = _last[1] + 1  # same centisecond in this process: stay unique and ordered
    else:
        rand = int.from_bytes(os.urandom(3), "big") & 0x7FFFF  # leave room to count up
    _last = (centis, rand)
    return _b32(centis, 8) + _b32(rand, 4)


_last: tuple[int, int] | None = None


# -- what a run id may be -------------------------------------------------------------------
#
# Every id names a folder (`.ctui/runs/<id>/`), so an id must be one safe path component:
# ctui's own ids (12 Crockford base32 chars), MLflow's run ids (32 hex chars) and the short
# names of hand-made or older stores (`run-a`, `r1`) all are; `../x`, `a/b`, `.`, names with
# a newline, a NUL or a space are not. Checked where ids come in: `ctui import`, run references
# on the command line, and `Project.run_dir`.

MAX_RUN_ID = 64
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_run_id(value: object) -> bool:
    """Whether `value` can be a run id: 1–64 chars of letters, digits, `.`, `_`, `-`,
    starting with a letter or digit (so never `.`, `..`, `-x` or a path)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_RUN_ID
        and _RUN_ID.fullmatch(value) is not None
    )


def check_run_id(value: object, *, where: str = "") -> str:
    """`value` if it is a run id (see `is_run_id`); else a CtuiError (exit 2) that names it."""
    if is_run_id(value):
        return value  # type: ignore[return-value]
    prefix = f"{where}: " if where else ""
    raise CtuiError(
        f"{prefix}not a run id: {_shown(value)}",
        hint=f"a run id is 1-{MAX_RUN_ID} letters, digits, '.', '_' or '-', "
        "starting with a letter or digit",
    )


_SEQ_REF = re.compile(r"#\s*(\d+)")
_BARE_SEQ = re.compile(r"[1-9]\d*")


def check_run_ref(ref: str) -> str:
    """A run reference typed by a person (a full id, a prefix, `#42`, `@last`, `@last~N`):
    refuses one that could never name a run (`../x`, `a/b`) with "not a run id", before any
    lookup."""
    text = ref.strip()
    if text.startswith(("@last", "#")):
        if text.startswith("#") and not _SEQ_REF.fullmatch(text):
            raise CtuiError(f"not a run number: {_shown(text)}", hint="a run number looks like #42")
        return ref
    if text and not is_run_id(text):
        check_run_id(text)
    return ref


def resolve_ref(
    ref: str, runs: Mapping[str, Any] | list[str], *, seqs: Mapping[int, str] | None = None
) -> str:
    """The id a person's run reference names, among `runs` (the store's runs table: id →
    document; or a sorted list of ids, with `seqs`, run number → id, when it is known).

    - `#42`: the run numbered 42 (its `seq`);
    - `42` (digits, no leading zero): the run numbered 42 when there is one, else an id prefix
      (ids start with `0` for decades, so `08jd` stays a prefix);
    - `@last`, `@last~N`: the newest run, the one N before it;
    - a full id, or any unique prefix of one, like git.
    """
    ref = check_run_ref(ref).strip()
    numbers: dict[int, str]
    if isinstance(runs, Mapping):
        ids = sorted(runs)
        numbers = {d["seq"]: k for k, d in runs.items() if isinstance(d, dict) and d.get("seq")}
    else:
        ids, numbers = list(runs), dict(seqs or {})
    seqs = numbers
    seq = _SEQ_REF.fullmatch(ref)
    if seq is not None:
        found = seqs.get(int(seq.group(1)))
        if found is None:
            top = max((s for s in seqs if type(s) is int), default=None)
            last = f" (the newest is #{top})" if top is not None else " (no run has a number)"
            raise UnknownRunError(f"no run #{int(seq.group(1))}{last}", hint=_LIST_HINT)
        return found
    if _BARE_SEQ.fullmatch(ref) and int(ref) in seqs:
        return seqs[int(ref)]
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
    lo = bisect.bisect_left(ids, ref)
    matches = []
    for i in range(lo, len(ids)):
        if not ids[i].startswith(ref):
            break
        matches.append(ids[i])
    if ref in matches:
        return ref
    if not matches and _BARE_SEQ.fullmatch(ref):
        raise UnknownRunError(f"no run #{ref} and no run id starts with {ref!r}", hint=_LIST_HINT)
    if not matches:
        raise UnknownRunError(f"no run matches {ref!r}", hint=_LIST_HINT)
    if len(matches) > 1:
        raise AmbiguousRunError(ref, matches)
    return matches[0]


_LIST_HINT = "`ctui runs` lists the runs (# is the run number)"


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:80] + "…")
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"


# -- what an imported run document may hold ---------------------------------------------------
#
# `ctui import` takes documents written elsewhere (or by hand): each known field must have the
# type the rest of ctui reads it as (docs/architecture.md), so a `"tags": "x"` is refused at
# the door with the field's name instead of crashing `ctui show` later. Unknown fields pass.

_NUM = (int, float)
FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "job": ((str,), "a string"),
    "status": ((str,), "a string"),
    "created": (_NUM, "a number"),
    "started": (_NUM, "a number"),
    "ended": (_NUM, "a number"),
    "duration": (_NUM, "a number"),
    "exit_code": ((int,), "an integer"),
    "pid": ((int,), "an integer"),
    "pgid": ((int,), "an integer"),
    "supervisor_pid": ((int,), "an integer"),
    "params": ((dict,), "an object"),
    "metrics": ((dict,), "an object"),
    "manifest": ((dict,), "an object"),
    "peaks": ((dict,), "an object"),
    "starter": ((dict,), "an object"),
    "mlflow": ((dict,), "an object"),
    "dvc_exp": ((dict,), "an object"),
    "slurm": ((dict,), "an object"),
    "docker": ((dict,), "an object"),
    "sweep": ((dict,), "an object"),
    "gate": ((dict,), "an object"),
    "output_metrics_ignored": ((int,), "an integer"),
    "tags": ((list,), "a list of strings"),
    "dvc_params": ((list,), "a list of strings"),
    "command": ((list,), "a list of strings"),
    "log_tail": ((list,), "a list of strings"),
    "note": ((str,), "a string"),
    "seq": ((int,), "a positive integer"),
    **{
        k: ((str,), "a string")
        for k in (
            "trigger", "cause", "backend", "captured", "manifest_error", "git", "data_hash",
            "host", "error", "isolated", "dvc_error", "rebuild", "outcome", "metrics_from",
        )
    },
}  # fmt: skip
STR_LISTS = ("tags", "dvc_params", "command", "log_tail")
_ID_FIELDS = ("parent", "reproduces")


def check_run_doc(doc: object, *, where: str = "") -> dict[str, Any]:
    """`doc` if it is a run document ctui can hold: an object with a valid `id` (see
    `is_run_id`) and known fields of the right type (None allowed but for `id`); else a
    CtuiError (exit 2) naming `where`, the field and what it holds."""
    prefix = f"{where}: " if where else ""
    if not isinstance(doc, dict):
        raise CtuiError(f"{prefix}a run must be an object, got {_shown(doc)}")
    if "id" not in doc:
        raise CtuiError(f"{prefix}run without an id")
    check_run_id(doc["id"], where=where)

    def bad(name: str, what: str) -> CtuiError:
        return CtuiError(
            f"{prefix}run {doc['id']}: field {name!r} must be {what}, got {_shown(doc[name])}"
        )

    for name, (types, what) in FIELD_TYPES.items():
        value = doc.get(name)
        if value is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise bad(name, what)
    for name in STR_LISTS:
        if not all(isinstance(v, str) for v in doc.get(name) or ()):
            raise bad(name, "a list of strings")
    for name, value in (doc.get("metrics") or {}).items():
        if value is not None and (not isinstance(value, _NUM) or isinstance(value, bool)):
            raise CtuiError(f"{prefix}run {doc['id']}: metric {name!r} must be a number")
    for name in _ID_FIELDS:
        if doc.get(name) is not None:
            check_run_id(doc[name], where=f"{prefix}run {doc['id']}: field {name!r}".rstrip())
    return doc
