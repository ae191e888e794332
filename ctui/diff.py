"""The diff engine: what differs between two runs (or manifests), and a one-line verdict.

A *view* is what a diff compares::

    {"label": str, "sections": {name: section}, "params": {...}, "metrics": {...},
     "blobs": {object_id: bytes}}                      # optional: patches not in the store

where a section is a manifest section (see `ctui.manifest`), or just `{"hash": h}` for a
section not yet loaded (`run_view` builds those; `diff_runs` loads only sections whose
hashes differ, so identical sections are never walked).

Params and metrics are numbers a run measured: a float change within a relative tolerance
(`rel_tol`, default 1e-6 as for `ctui reproduce`) is float noise, not a change. Manifest
sections compare exactly.

Kept lean on purpose (stdlib + orjson): `ctui diff` must answer in well under 0.3 s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError
from ctui.numbers import DEFAULT_REL_TOL, metric_equal

if TYPE_CHECKING:
    from ctui.objects import ObjectStore

#: the order sections appear in results and verdicts
ORDER = ("data", "code", "env", "compute", "params", "metrics")
MANIFEST_SECTIONS = ORDER[:4]
#: keys of a section that describe it rather than hold content
_META = frozenset({"status", "reason", "hash"})
#: a patch between two commits longer than this is cut (the stat still tells the whole story)
MAX_PATCH_BYTES = 200_000
_VERDICT_KEYS = 4


# -- views -------------------------------------------------------------------------------------


def run_view(store_doc: Mapping[str, Any], objects: ObjectStore | None = None) -> dict[str, Any]:
    """A view of a run document (its `manifest` = section → hash, `params`, `metrics`).

    Sections hold only their hash; `diff_runs` loads them from `objects` where needed
    (or call `load_sections(view, objects)` to load them all).
    """
    manifest = store_doc.get("manifest") or {}
    why = store_doc.get("manifest_error")  # launch records why a capture failed
    sections: dict[str, Any] = {}
    for name in MANIFEST_SECTIONS:
        oid = manifest.get(name)
        sections[name] = {"hash": oid} if oid else _not_recorded(why)
    return {
        "label": str(store_doc.get("id", "?")),
        "id": store_doc.get("id"),
        "sections": sections,
        "params": dict(store_doc.get("params") or {}),
        "metrics": dict(store_doc.get("metrics") or {}),
    }


def manifest_view(manifest: Mapping[str, Any], label: str) -> dict[str, Any]:
    """A view of a manifest (as captured, loaded, or read from `ctui manifest --json`)."""
    return {
        "label": label,
        "sections": dict(manifest.get("sections") or {}),
        "blobs": dict(manifest.get("blobs") or {}),
    }


def load_sections(
    view: Mapping[str, Any], objects: ObjectStore | None, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The view with its hash-only sections (all, or those in `names`) read from `objects`."""
    out = dict(view)
    out["sections"] = {
        n: _materialize(s, objects) if names is None or n in names else s
        for n, s in view["sections"].items()
    }
    return out


def _not_recorded(why: str | None = None) -> dict[str, Any]:
    return {"status": "absent", "reason": why or "not recorded for this run", "hash": None}


def _materialize(section: Mapping[str, Any] | None, objects: ObjectStore | None) -> dict:
    if section is None:
        return _not_recorded()
    if "status" in section or not section.get("hash"):
        return dict(section)
    if objects is None:
        raise CtuiError("internal: a section given by hash needs an object store to load it")
    loaded = dict(objects.get_json(section["hash"]))
    loaded["hash"] = section["hash"]
    return loaded


# -- flattening: a section → {key: leaf value} ------------------------------------------------


def flatten(name: str, section: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable leaves of a section, keyed by a readable path (`packages.numpy`)."""
    out: dict[str, Any] = {}
    if name == "data":
        # one leaf per tracked path (its hash/size/nfiles); where it was declared is bookkeeping
        for path, entry in (section.get("paths") or {}).items():
            if isinstance(entry, Mapping):
                out[path] = {k: v for k, v in entry.items() if k != "sources"}
            else:
                out[path] = entry
        for pfile, values in (section.get("params") or {}).items():
            _flatten_into(out, f"params {pfile}:", values, sep="")
        return out
    for key, value in section.items():
        if key not in _META:
            _flatten_into(out, key, value)
    return out


def _flatten_into(out: dict[str, Any], prefix: str, value: Any, sep: str = ".") -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten_into(out, f"{prefix}{sep}{k}" if prefix else str(k), v)
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, v in enumerate(value):
            _flatten_into(out, f"{prefix}[{i}]", v)
    else:
        out[prefix] = value


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _same(old: Any, new: Any, rel_tol: float = 0.0) -> bool:
    """Equal as recorded values: 1 == 1.0, but True != 1 and "1" != 1; NaN equals NaN.
    With `rel_tol`, floats within it are equal (ints stay exact: see `metric_equal`)."""
    if _is_number(old) and _is_number(new):
        return old == new or metric_equal(old, new, rel_tol=rel_tol)
    return type(old) is type(new) and old == new


def compare_flat(
    a: Mapping[str, Any], b: Mapping[str, Any], *, rel_tol: float = 0.0
) -> dict[str, dict[str, Any]]:
    """added (only in b), removed (only in a), changed (both, unequal; numeric delta).

    Numbers within `rel_tol` of each other (relative; ints exact) are not changed.
    """
    added = {k: b[k] for k in b.keys() - a.keys()}
    removed = {k: a[k] for k in a.keys() - b.keys()}
    changed: dict[str, Any] = {}
    for k in a.keys() & b.keys():
        old, new = a[k], b[k]
        if not _same(old, new, rel_tol):
            item: dict[str, Any] = {"old": old, "new": new}
            if _is_number(old) and _is_number(new):
                item["delta"] = new - old
            changed[k] = item
    return {
        "added": dict(sorted(added.items())),
        "removed": dict(sorted(removed.items())),
        "changed": dict(sorted(changed.items())),
    }


# -- the diff ----------------------------------------------------------------------------------


def diff_manifests(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    sections: Sequence[str] | None = None,
    objects: ObjectStore | None = None,
    repo: Path | None = None,
) -> dict[str, Any]:
    """Diff two manifests (as from `ctui.manifest.capture`/`load`); see `diff_runs`."""
    chosen = [s for s in (sections or MANIFEST_SECTIONS) if s in MANIFEST_SECTIONS]
    return diff_runs(
        manifest_view(a, "a"), manifest_view(b, "b"), sections=chosen, objects=objects, repo=repo
    )


def diff_runs(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    sections: Sequence[str] | None = None,
    objects: ObjectStore | None = None,
    repo: Path | None = None,
    rel_tol: float = DEFAULT_REL_TOL,
) -> dict[str, Any]:
    """Diff two views. Result::

        {"a": label, "b": label, "verdict": "only data changed: data/train.csv",
         "identical": bool, "changed": [section names that differ],
         "sections": {name: {"status": "identical" | "changed" | "absent",
                             "added": {key: value}, "removed": {key: value},
                             "changed": {key: {"old": v, "new": v, "delta"?: number}},
                             ...section extras (code: "stat", "patch", "uncommitted")}}}

    `sections` limits the comparison (default: all of `ORDER`). `objects` loads sections
    given only by hash and stored patches; `repo` is a git repository where the two commits
    may exist, for `git diff --stat` and the patch between them. Params and metrics that
    differ by less than `rel_tol` (relative; integers exactly) are not changes.
    """
    unknown = [s for s in sections or () if s not in ORDER]
    if unknown:
        raise CtuiError(
            f"unknown section(s): {', '.join(unknown)}", hint=f"choose from {', '.join(ORDER)}"
        )
    chosen = [s for s in ORDER if sections is None or s in sections]
    result: dict[str, Any] = {}
    for name in chosen:
        if name in MANIFEST_SECTIONS:
            result[name] = _diff_section(name, a, b, objects, repo)
        elif name in a or name in b:  # manifests have no params/metrics: nothing to say
            pa, pb = a.get(name) or {}, b.get(name) or {}
            flat = compare_flat(_flat_plain(pa), _flat_plain(pb), rel_tol=rel_tol)
            status = "changed" if any(flat.values()) else "identical"
            result[name] = {"status": status, **flat}
    differing = [n for n, s in result.items() if _differs(s)]
    return {
        "a": a.get("label", "a"),
        "b": b.get("label", "b"),
        "identical": not differing,
        "changed": differing,
        "verdict": verdict(result, a.get("label", "a"), b.get("label", "b")),
        "sections": result,
    }


def _flat_plain(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        _flatten_into(out, str(k), v)
    return out


def _differs(section_result: Mapping[str, Any]) -> bool:
    status = section_result["status"]
    if status == "absent":
        return bool(section_result.get("absent_in")) and len(section_result["absent_in"]) == 1
    return status == "changed"


def _diff_section(
    name: str,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    objects: ObjectStore | None,
    repo: Path | None,
) -> dict[str, Any]:
    sa = a["sections"].get(name) if a.get("sections") else None
    sb = b["sections"].get(name) if b.get("sections") else None
    ha, hb = (sa or {}).get("hash"), (sb or {}).get("hash")
    empty: dict[str, dict[str, Any]] = {"added": {}, "removed": {}, "changed": {}}
    if ha and ha == hb:  # equal hashes: identical without reading either side
        status_known = (sa or {}).get("status") or (sb or {}).get("status")
        if status_known == "absent":
            return {"status": "absent", "absent_in": ["a", "b"], **empty,
                    "reason": {"a": sa.get("reason"), "b": sb.get("reason")}}  # type: ignore[union-attr]  # fmt: skip
        return {"status": "identical", "hash": ha, **empty}
    sa, sb = _materialize(sa, objects), _materialize(sb, objects)
    absent_in = [side for side, s in (("a", sa), ("b", sb)) if s.get("status") != "ok"]
    if absent_in:
        return {
            "status": "absent",
            "absent_in": absent_in,
            "reason": {"a": sa.get("reason"), "b": sb.get("reason")},
            **empty,
        }
    out: dict[str, Any] = compare_flat(flatten(name, sa), flatten(name, sb))
    out = {"status": "changed" if any(out.values()) else "identical", **out}
    if name == "code":
        out.update(_code_extras(sa, sb, a, b, objects, repo))
    return out


# -- what stayed the same (the context of a diff) ----------------------------------------------

#: per section: what its keys are called, and which keys are those
_NOUNS: dict[str, tuple[str, Any]] = {
    "data": ("path", lambda k: not k.startswith("params ")),
    "env": ("package", lambda k: k.startswith("packages.")),
    "params": ("param", lambda k: True),
    "metrics": ("metric", lambda k: True),
}


def unchanged(
    name: str, section: Mapping[str, Any], a: Mapping[str, Any], b: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]] | None:
    """The keys of section `name` that did not change, each with its value in a and in b.

    `section` is the diff's result for it (so "not changed" honours the tolerance the diff
    used: a metric within it is unchanged, its two values kept). Manifest sections need the
    views loaded (`load_sections`); None where the keys are not known (hash only, absent).
    """
    if name in MANIFEST_SECTIONS:
        sa = (a.get("sections") or {}).get(name) or {}
        sb = (b.get("sections") or {}).get(name) or {}
        if sa.get("status") != "ok" or sb.get("status") != "ok":
            return None
        fa, fb = flatten(name, sa), flatten(name, sb)
    else:
        fa, fb = _flat_plain(a.get(name) or {}), _flat_plain(b.get(name) or {})
    changed = section.get("changed") or {}
    return {k: (fa[k], fb[k]) for k in sorted(fa.keys() & fb.keys()) if k not in changed}


def unchanged_line(name: str, keys: Sequence[str]) -> str:
    """`312 packages unchanged`, `2 paths and 1 other key unchanged`; "" for no keys."""
    noun, is_noun = _NOUNS.get(name, ("key", lambda k: True))
    n_noun = sum(1 for k in keys if is_noun(k))
    n_other = len(keys) - n_noun
    if n_noun and n_other:
        return f"{_plural(n_noun, noun)} and {_plural(n_other, 'other key')} unchanged"
    if n_noun:
        return f"{_plural(n_noun, noun)} unchanged"
    return f"{_plural(n_other, 'key')} unchanged" if n_other else ""


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- code: the patch between the commits and the stored uncommitted patches -----------------


def _code_extras(
    sa: Mapping[str, Any],
    sb: Mapping[str, Any],
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    objects: ObjectStore | None,
    repo: Path | None,
) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    ca, cb = sa.get("commit"), sb.get("commit")
    if ca and cb and ca != cb and repo is not None:
        extras.update(commits_diff(Path(repo), ca, cb))
    pa, pb = (sa.get("patch") or {}).get("id"), (sb.get("patch") or {}).get("id")
    if pa != pb:
        extras["uncommitted"] = {
            "a": _patch_text(pa, a, objects),
            "b": _patch_text(pb, b, objects),
        }
    return extras


def commits_diff(repo: Path, old: str, new: str) -> dict[str, Any]:
    """`git diff --stat` and the patch from `old` to `new`, or why they are not available."""
    import subprocess

    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotepath=off", "diff", "--no-color", "--no-ext-diff",
             "--patch-with-stat", old, new, "--"],
            cwd=repo, capture_output=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"stat": None, "patch": None, "commits_note": f"git diff failed: {exc}"}
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        note = err[-1] if err else "git diff failed"
        return {"stat": None, "patch": None, "commits_note": f"commits not in {repo}: {note}"}
    text = proc.stdout.decode("utf-8", errors="replace")
    cut = text.find("\ndiff --git ")
    stat, patch = (text, "") if cut < 0 else (text[:cut], text[cut + 1 :])
    if len(patch) > MAX_PATCH_BYTES:
        patch = patch[:MAX_PATCH_BYTES] + "\n… (patch cut; run git diff for all of it)\n"
    return {"stat": stat.strip("\n"), "patch": patch}


def _patch_text(oid: str | None, view: Mapping[str, Any], objects: ObjectStore | None) -> Any:
    if not oid:
        return None
    blob = (view.get("blobs") or {}).get(oid)
    if blob is None and objects is not None and objects.has(oid):
        blob = objects.get_bytes(oid)
    if blob is None:
        return {"id": oid, "missing": True}
    if not isinstance(blob, bytes):
        from ctui.manifest import blob_bytes

        blob = blob_bytes(blob)
    return blob.decode("utf-8", errors="replace")


# -- the verdict -------------------------------------------------------------------------------


def verdict(
    sections: Mapping[str, Mapping[str, Any]], a_label: str = "a", b_label: str = "b"
) -> str:
    """One line: `identical`, `only data changed: data/prepared, data/features`,
    `data, code and params changed`."""
    differing = [n for n in ORDER if n in sections and _differs(sections[n])]
    if not differing:
        return "identical"
    outputs = _changed_outputs_only(sections.get("data"))
    if outputs and set(differing) <= {"data", "metrics"}:
        # the same inputs, code, env and params gave other outputs: nondeterminism
        shown = ", ".join(outputs[:_VERDICT_KEYS])
        more = f" (+{len(outputs) - _VERDICT_KEYS} more)" if len(outputs) > _VERDICT_KEYS else ""
        tail = " and metrics" if "metrics" in differing else ""
        return f"same inputs, different outputs{tail}: {shown}{more}"
    if outputs:
        differing = ["outputs" if n == "data" else n for n in differing]
    if len(differing) == 1:
        name = differing[0]
        s = sections[name]
        if s["status"] == "absent":
            side = a_label if s["absent_in"] == ["a"] else b_label
            reason = s["reason"]["a" if s["absent_in"] == ["a"] else "b"]
            return f"only {name} differs: absent in {side} ({reason})"
        keys = sorted({*s["added"], *s["removed"], *s["changed"]})
        shown = ", ".join(keys[:_VERDICT_KEYS])
        more = f" (+{len(keys) - _VERDICT_KEYS} more)" if len(keys) > _VERDICT_KEYS else ""
        return f"only {name} changed: {shown}{more}"
    names = ", ".join(differing[:-1]) + f" and {differing[-1]}"
    return f"{names} changed"


def _changed_outputs_only(section: Mapping[str, Any] | None) -> list[str]:
    """The changed data keys when every one is a pipeline output (else [])."""
    if not section or section.get("status") != "changed":
        return []
    keys: list[str] = []
    for part in ("added", "removed", "changed"):
        for key, value in (section.get(part) or {}).items():
            entries = [value.get("old"), value.get("new")] if part == "changed" else [value]
            if not all(isinstance(e, Mapping) and e.get("role") == "output" for e in entries):
                return []
            keys.append(key)
    return sorted(keys)


# -- many runs -----------------------------------------------------------------------------


def compare_many(
    views: Sequence[Mapping[str, Any]], *, rel_tol: float = DEFAULT_REL_TOL
) -> dict[str, Any]:
    """Compare more than two views: the params, metrics and section hashes that differ.

    Result: {"labels": [...], "rows": [{"kind": "param"|"metric"|"section", "key": str,
    "values": [one per view]}]} — only rows whose values are not all equal (numbers: not
    all within `rel_tol` of the first view's).
    """
    rows: list[dict[str, Any]] = []
    for name in MANIFEST_SECTIONS:
        values = [((v.get("sections") or {}).get(name) or {}).get("hash") for v in views]
        if len(set(values)) > 1:
            rows.append({"kind": "section", "key": name, "values": values})
    for kind, field in (("param", "params"), ("metric", "metrics")):
        flats = [_flat_plain(v.get(field) or {}) for v in views]
        keys = sorted(set().union(*flats)) if flats else []
        for key in keys:
            values = [f.get(key) for f in flats]
            if any(not _same(values[0], x, rel_tol) for x in values[1:]):
                rows.append({"kind": kind, "key": key, "values": values})
    return {"labels": [v.get("label", str(i)) for i, v in enumerate(views)], "rows": rows}
