"""The diff engine: what differs between two runs (or manifests), and a one-line verdict.

A *view* is what a diff compares::

    {"label": str, "sections": {name: section}, "params": {...}, "metrics": {...}}

where a section is a manifest section (see `ctui.manifest`), or just `{"hash": h}` for a
section not yet loaded (`run_view` builds those; `diff_runs` loads only sections whose
hashes differ, so identical sections are never walked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctui.objects import ObjectStore

#: the order sections appear in results and verdicts
ORDER = ("data", "code", "env", "compute", "params", "metrics")


def run_view(store_doc: Mapping[str, Any], objects: ObjectStore | None = None) -> dict[str, Any]:
    """A view of a run document (its `manifest` = section → hash, `params`, `metrics`).

    Sections hold only their hash; `diff_runs` loads them from `objects` where needed.
    """
    raise NotImplementedError


def diff_manifests(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    sections: Sequence[str] | None = None,
    objects: ObjectStore | None = None,
    repo: Path | None = None,
) -> dict[str, Any]:
    """Diff two manifests (as from `ctui.manifest.capture`/`load`); see `diff_runs`."""
    raise NotImplementedError


def diff_runs(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    sections: Sequence[str] | None = None,
    objects: ObjectStore | None = None,
    repo: Path | None = None,
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
    may exist, for `git diff --stat` and the patch between them.
    """
    raise NotImplementedError


def compare_many(views: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Compare more than two views: the params, metrics and section hashes that differ.

    Result: {"labels": [...], "rows": [{"kind": "param"|"metric"|"section", "key": str,
    "values": [one per view]}]} — only rows whose values are not all equal.
    """
    raise NotImplementedError
