"""Reproduce, step 5: compare a reproduction with its original → verdict, differences, notes.

Code (commit + patch), data inputs (per-path hashes), env, params, status, metrics (integers
exactly, floats within `rel_tol`) and the pipeline's outputs (DVC's hashes: bit-identical or
not). Paths and host-specific details are not compared; compute differences are notes only
(another box may reproduce a run exactly). The reproduction's log tells whether DVC really
ran every stage: one it skipped or restored from a cache makes the outputs "not verified".

This is the one place the verdict is decided; the CLI and the TUI print it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctui.manifest.data import role_of
from ctui.numbers import metric_equal

if TYPE_CHECKING:
    from ctui.objects import ObjectStore

#: sections whose differences make a reproduction diverge (compute is only a note)
COMPARED = ("code", "data", "env", "params", "status", "metrics", "outputs")
#: how many items of one section the verdict names before "+N more"
SHOWN = 3


def env_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], *, image: bool = True
) -> list[str]:
    """What differs between two env sections, in words: `numpy 2.3→2.4`, `+torch 2.1`.

    Compares Python version, packages, container image, CUDA and the recorded variables —
    not paths (the executable of a worktree or another box may differ harmlessly).
    """
    if old.get("status") != "ok" or new.get("status") != "ok":
        if old.get("status") == new.get("status"):
            return []
        return [f"env section {old.get('status', 'absent')}→{new.get('status', 'absent')}"]
    out: list[str] = []
    py_old = (old.get("python") or {}).get("version")
    py_new = (new.get("python") or {}).get("version")
    if py_old != py_new:
        out.append(f"python {py_old}→{py_new}")
    out += _dict_changes(old.get("packages") or {}, new.get("packages") or {})
    if image:
        c_old = old.get("container") or {}
        c_new = new.get("container") or {}
        for key in ("image_id", "image_digest"):
            if c_old.get(key) != c_new.get(key):
                out.append(f"{key.replace('_', ' ')} {_short_id(c_old.get(key))}→"
                           f"{_short_id(c_new.get(key))}")  # fmt: skip
    out += [f"cuda {c}" for c in _dict_changes(old.get("cuda") or {}, new.get("cuda") or {})]
    out += [f"${c}" for c in _dict_changes(old.get("variables") or {}, new.get("variables") or {})]
    return out


def _dict_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if a is None:
            out.append(f"+{key} {b}")
        elif b is None:
            out.append(f"-{key} {a}")
        else:
            out.append(f"{key} {a}→{b}")
    return out


def _short_id(value: Any) -> str:
    if not value:
        return "none"
    text = str(value)
    if "sha256:" in text:
        head, _, digest = text.partition("sha256:")
        return f"{head}{digest[:12]}"
    return text


def _count(items: list[str], word: str) -> str:
    return f"{len(items)} {word}{'' if len(items) == 1 else 's'}"


def compare_runs(
    original: Mapping[str, Any],
    new: Mapping[str, Any],
    objects: ObjectStore,
    *,
    rel_tol: float = 1e-6,
    log: str | Iterable[str] | None = None,
    order: Sequence[str] = (),
) -> dict[str, Any]:
    """Compare a reproduction with its original → verdict, outcome, differences, unverified,
    notes, outputs (`[{path, old, new, identical}]`, in `order` first) and stages (what the
    reproduction's `log` shows DVC did: `{"ran": [...], "skipped": [{stage, why}]}`)."""
    from ctui import manifest as mf

    a = mf.load(objects, original.get("manifest") or {})["sections"]
    b = mf.load(objects, new.get("manifest") or {})["sections"]
    outputs = output_comparison(a.get("data") or {}, b.get("data") or {}, order)
    found: dict[str, list[str]] = {
        "code": code_differences(a.get("code") or {}, b.get("code") or {}),
        "data": data_differences(a.get("data") or {}, b.get("data") or {}),
        "env": env_differences(a.get("env") or {}, b.get("env") or {}),
        "params": _dict_changes(original.get("params") or {}, new.get("params") or {}),
        "status": []
        if original.get("status") == new.get("status")
        else [f"{original.get('status')}→{new.get('status')}"],  # fmt: skip
        "metrics": metric_differences(
            original.get("metrics") or {}, new.get("metrics") or {}, rel_tol=rel_tol
        ),
        "outputs": [
            f"{o['path']} {_short_hash(o['old'])}→{_short_hash(o['new'])}"
            for o in outputs
            if not o["identical"] and (o["old"] or o["new"])
        ],
    }
    differences = [{"section": name, "items": items} for name in COMPARED if (items := found[name])]
    notes = [f"compute {c}" for c in compute_differences(a.get("compute"), b.get("compute"))]
    stages = dvc_stages(log.splitlines() if isinstance(log, str) else log or [])
    unverified = unverified_checks(a, b, original, new)
    unverified += stage_checks(stages)
    unrecorded = [o["path"] for o in outputs if not o["old"] and not o["new"]]
    if unrecorded:
        unverified.append({"section": "outputs", "reason": f"{_named(unrecorded)} recorded "
                           "by neither run"})  # fmt: skip
    return {
        "verdict": verdict(differences, unverified, outputs),
        "outcome": "diverged" if differences else "not verified" if unverified else "reproduced",
        "reproduced": not differences and not unverified,
        "differences": differences,
        "unverified": unverified,
        "notes": notes,
        "outputs": outputs,
        "stages": stages,
    }


def unverified_checks(
    a: Mapping[str, Any], b: Mapping[str, Any], original: Mapping[str, Any], new: Mapping[str, Any]
) -> list[dict[str, str]]:
    """Ingredients that could not be checked, each with why: equal because neither side could
    be recorded is not "reproduced"."""
    out: list[dict[str, str]] = []

    def why(section: str, reason: str) -> None:
        out.append({"section": section, "reason": reason})

    for name in ("env",):
        for side, sec in (("original", a.get(name) or {}), ("reproduction", b.get(name) or {})):
            if sec.get("status") != "ok":
                why(name, f"not recorded for the {side}: {sec.get('reason') or 'no section'}")
                break
    data = a.get("data") or {}
    if data.get("status") == "ok" and data.get("problems"):
        why("data", "the original's DVC files could not all be read: " + data["problems"][0])
    code = a.get("code") or {}
    if code.get("status") == "ok":
        captured = set((code.get("untracked_files") or {}).keys())
        lost = [p for p in code.get("untracked") or [] if p not in captured]
        if lost:
            shown = ", ".join(lost[:SHOWN]) + (" …" if len(lost) > SHOWN else "")
            why("code", f"{len(lost)} untracked file(s) of the original were not captured: {shown}")
        if (code.get("patch") or {}).get("redactions"):
            why("code", "secrets were redacted from the recorded patch")
    for doc, side in ((original, "original"), (new, "reproduction")):
        if doc.get("manifest_error"):
            why("manifest", f"{side}: {doc['manifest_error']}")
    if (new.get("mlflow") or {}).get("sync") == "pending":
        why("metrics", "the reproduction's MLflow metrics have not arrived (sync pending)")
    if not original.get("metrics") and not new.get("metrics"):
        why("results", "neither run recorded metrics, so results were not compared")
    return out


def verdict(
    differences: list[dict[str, Any]],
    unverified: list[dict[str, str]] | None = None,
    outputs: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The verdict in the words a user needs:

    - `reproduced`, or with the outputs it proved: `reproduced (model.pkl bit-identical)`,
      `reproduced (5 outputs bit-identical: model.pkl, data/features, data/prepared, +2 more)`;
    - `metrics match, model.pkl differs` when only outputs differ (the metrics were compared);
    - `diverged in: env (numpy 2.3→2.4), metrics (acc 0.91→0.89), outputs (model.pkl …)`;
    - `not verified: env (not recorded for the original: …)` when nothing differs but an
      ingredient could not be checked (a stage DVC did not run among them)."""
    unverified = unverified or []
    outputs = list(outputs or [])
    if not differences:
        if unverified:
            said = (f"{u['section']} ({u['reason']})" for u in unverified)
            return "not verified: " + ", ".join(said)
        same = [str(o["path"]) for o in outputs if o.get("identical")]
        if not same:
            return "reproduced"
        if len(same) == 1:
            return f"reproduced ({same[0]} bit-identical)"
        return f"reproduced ({len(same)} outputs bit-identical: {_named(same)})"
    metrics_compared = not any(u["section"] in ("results", "metrics") for u in unverified)
    if [d["section"] for d in differences] == ["outputs"] and metrics_compared:
        differ = [
            str(o["path"]) for o in outputs if not o["identical"] and (o["old"] or o["new"])
        ] or [str(item).split(" ", 1)[0] for item in differences[0]["items"]]
        return f"metrics match, {_named(differ)} {'differs' if len(differ) == 1 else 'differ'}"
    parts = []
    for d in differences:
        items = d["items"]
        shown = ", ".join(items[:SHOWN])
        if len(items) > SHOWN:
            shown += f", +{len(items) - SHOWN} more"
        parts.append(f"{d['section']} ({shown})")
    return "diverged in: " + ", ".join(parts)


def _named(items: Sequence[str]) -> str:
    """`a, b, c, +2 more`."""
    shown = ", ".join(items[:SHOWN])
    return shown + (f", +{len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _short_hash(value: Any) -> str:
    return str(value)[:8] if value else "missing"


# -- what DVC did -------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: lines DVC writes when a stage's command did not run, → why, in the verdict's words
_NOT_RUN = (
    (re.compile(r"^Stage '(.+)' is cached - skipping run"), "came from DVC's cache"),
    (re.compile(r"^Restored stage '(.+?)'"), "came from DVC's cache"),
    (re.compile(r"^Stage '(.+)' didn't change, skipping"), "was skipped as unchanged"),
    (re.compile(r"^Verifying outputs in frozen stage: '(.+)'"), "is frozen, never run"),
    (re.compile(r"^Pulling data for stage: '(.+)'"), "was pulled from a DVC remote"),
)
_RAN = re.compile(r"^Running stage '(.+)':")


def dvc_stages(lines: Iterable[str]) -> dict[str, Any]:
    """What a DVC log shows: `{"ran": [stage…], "skipped": [{"stage", "why"}]}`. A stage that
    ran after all (a failed pull, then the command) counts as run."""
    ran: list[str] = []
    skipped: dict[str, str] = {}
    for raw in lines:
        line = _ANSI.sub("", raw).strip()
        if not line:
            continue
        hit = _RAN.match(line)
        if hit:
            ran.append(hit.group(1))
            continue
        for pattern, why in _NOT_RUN:
            hit = pattern.match(line)
            if hit:
                skipped.setdefault(hit.group(1), why)
                break
    return {
        "ran": list(dict.fromkeys(ran)),
        "skipped": [{"stage": s, "why": w} for s, w in skipped.items() if s not in ran],
    }


def stage_checks(stages: Mapping[str, Any]) -> list[dict[str, str]]:
    """One `outputs` entry per reason a stage did not run: `stage 'train' came from DVC's
    cache`, `stages 'prepare', 'featurize' were skipped as unchanged`."""
    by_why: dict[str, list[str]] = {why: [] for _pattern, why in _NOT_RUN}  # cache first
    for item in stages.get("skipped") or []:
        by_why.setdefault(str(item["why"]), []).append(f"'{item['stage']}'")
    out = []
    for why, names in by_why.items():
        if not names:
            continue
        if len(names) > 1:
            why = why.replace("was ", "were ", 1).replace("is frozen", "are frozen", 1)
        said = f"stage{'s' if len(names) > 1 else ''} {_named(names)} {why}"
        out.append({"section": "outputs", "reason": said})
    return out


def output_comparison(
    old: Mapping[str, Any], new: Mapping[str, Any], order: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Each pipeline output of either run: `{path, old, new, identical}` (DVC's hashes), the
    paths in `order` first, then the rest by name."""
    if old.get("status") != "ok" or new.get("status") != "ok":
        return []
    h_old = _hashes(old, outputs=True)
    h_new = _hashes(new, outputs=True)
    paths = set(h_old) | set(h_new)
    rank = {p: i for i, p in enumerate(order)}
    out = []
    for path in sorted(paths, key=lambda p: (rank.get(p, len(rank)), p)):
        a, b = h_old.get(path), h_new.get(path)
        out.append({"path": path, "old": a, "new": b, "identical": bool(a) and a == b})
    return out


def _hashes(section: Mapping[str, Any], *, outputs: bool) -> dict[str, Any]:
    return {
        p: e.get("hash") if isinstance(e, Mapping) else None
        for p, e in (section.get("paths") or {}).items()
        if (role_of(e) == "output") == outputs
    }


def code_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The meaningful code: commit, uncommitted patch, each submodule's commit and patch, and
    the captured untracked files (not branch, root path, remote or the untracked listing)."""
    if old.get("status") != "ok" or new.get("status") != "ok":
        return [] if old.get("status") == new.get("status") else ["code section missing"]

    def short(value: Any, n: int = 8) -> str:
        return _short_id(value)[:n]

    def pid(section: Any) -> Any:
        return ((section or {}).get("patch") or {}).get("id")

    out = []
    if old.get("commit") != new.get("commit"):
        out.append(f"commit {short(old.get('commit'), 7)}→{short(new.get('commit'), 7)}")
    if pid(old) != pid(new):
        out.append(f"patch {short(pid(old))}→{short(pid(new))}")
    s_old, s_new = old.get("submodules") or {}, new.get("submodules") or {}
    for path in sorted(set(s_old) | set(s_new)):
        a, b = s_old.get(path), s_new.get(path)
        if a is None or b is None:
            out.append(f"{'-' if b is None else '+'}submodule {path}")
            continue
        if a.get("initialised") != b.get("initialised"):
            said = {True: "checked out", False: "not checked out"}
            out.append(f"submodule {path} {said[bool(a.get('initialised'))]}→"
                       f"{said[bool(b.get('initialised'))]}")  # fmt: skip
        elif a.get("commit") != b.get("commit"):
            out.append(f"submodule {path} {short(a.get('commit'), 7)}→{short(b.get('commit'), 7)}")
        if pid(a) != pid(b):
            out.append(f"submodule {path} patch {short(pid(a))}→{short(pid(b))}")

    def ids(section: Mapping[str, Any]) -> dict[str, Any]:
        files = section.get("untracked_files") or {}
        return {p: e["id"] for p, e in files.items() if (e or {}).get("id")}

    return out + _keyed_changes(ids(old), ids(new), "untracked ", short)


def data_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Data the runs read (raw inputs, declared paths) whose recorded hash differs, or that
    appears on one side only. Pipeline outputs are compared apart (`output_comparison`)."""
    if old.get("status") != "ok" or new.get("status") != "ok":
        return [] if old.get("status") == new.get("status") else ["data section missing"]
    return _keyed_changes(
        _hashes(old, outputs=False), _hashes(new, outputs=False), "", lambda h: str(h)[:8]
    )


def _keyed_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], label: str, short: Callable[[Any], str]
) -> list[str]:
    """`-{label}path`, `+{label}path` or `{label}path old→new` for each key that differs."""
    out = []
    for path in sorted(set(old) | set(new)):
        if path not in new:
            out.append(f"-{label}{path}")
        elif path not in old:
            out.append(f"+{label}{path}")
        elif old[path] != new[path]:
            out.append(f"{label}{path} {short(old[path])}→{short(new[path])}")
    return out


def compute_differences(old: Any, new: Any) -> list[str]:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return []
    if old.get("hash") and old.get("hash") == new.get("hash"):
        return []
    skip = {"hash", "status", "reason", "disk", "captured_at"}
    out = []
    for key in sorted((set(old) | set(new)) - skip):
        if old.get(key) != new.get(key):
            out.append(f"{key} differs")
    return out


def metric_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], *, rel_tol: float = 1e-6
) -> list[str]:
    """`acc 0.91→0.89` for each metric that differs: integers exactly, floats within rel_tol."""
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(f"{name} {_num(old[name])}→missing")
        elif name not in old:
            out.append(f"{name} missing→{_num(new[name])}")
        elif not metric_equal(old[name], new[name], rel_tol=rel_tol):
            out.append(f"{name} {_num(old[name])}→{_num(new[name])}")
    return out


def _num(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
