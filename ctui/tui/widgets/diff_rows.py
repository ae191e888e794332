"""A diff result (from `ctui.diff.diff_runs`) laid out as rows for the side-by-side view.

No Textual here: rows are plain data, so the layout is testable on its own and the widget
only paints them. Every changed row carries a marker (+ added, - removed, ~ changed) so
the diff reads without colour.

Two views of the same rows: *only changed* (the default: what changed, then a count such as
`312 packages unchanged`) and *everything* (the unchanged keys listed one per line instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ctui.diff import ORDER, unchanged, unchanged_line
from ctui.format import signed, significant

#: row kinds that are changes (the stops of next/previous change)
CHANGE_KINDS = frozenset({"add", "del", "chg", "patch-start"})
MARKERS = {"add": "+", "del": "-", "chg": "~", "same": " "}
#: a patch longer than this is cut, with a note saying so
MAX_PATCH_LINES = 5000


@dataclass(frozen=True)
class Row:
    """One line of the diff view.

    kind: `title` (section heading; `key` holds its status), `same`/`add`/`del`/`chg` (a key
    with its values in A and B), `info` (a full-width note), `patch-start`/`patch` (a line
    of a unified diff). `only`: "" in both views, "all" only when everything shows (an
    unchanged key), "changed" only in the only-changed view (the count of unchanged keys).
    """

    kind: str
    section: str
    key: str = ""
    left: str = ""
    right: str = ""
    text: str = ""
    only: str = ""

    @property
    def is_change(self) -> bool:
        return self.kind in CHANGE_KINDS


def short(value: Any, hash_len: int = 10) -> str:
    """A value in one short line: hashes cut, dicts as k=v, numbers as in the tables."""
    if isinstance(value, Mapping):
        return " ".join(f"{k}={short(v, hash_len)}" for k, v in value.items() if v is not None)
    if isinstance(value, list | tuple):
        shown = ", ".join(short(v, hash_len) for v in value[:8])
        return f"[{shown}{', …' if len(value) > 8 else ''}]"
    if isinstance(value, str):
        text = value.replace("\n", "⏎")
        if len(text) >= 32 and all(c in "0123456789abcdef." for c in text[:32]):
            return text[:hash_len] + "…"
        return text
    if isinstance(value, int | float) and not isinstance(value, bool):
        return significant(value)
    return "—" if value is None else str(value)


def _delta(change: Mapping[str, Any]) -> str:
    delta = change.get("delta")
    if isinstance(delta, int | float) and not isinstance(delta, bool):
        return f"  (Δ {signed(delta)})"
    return ""


def section_rows(
    name: str,
    section: Mapping[str, Any],
    same: Mapping[str, tuple[Any, Any]] | None = None,
) -> list[Row]:
    """The rows of one section: title, then keys (the unchanged ones from `same`: key →
    (value in A, value in B)), then the count of unchanged keys, then extras."""
    status = section.get("status", "identical")
    counts = []
    for label, part in (("+", "added"), ("-", "removed"), ("~", "changed")):
        n = len(section.get(part) or {})
        if n:
            counts.append(f"{label}{n}")
    title = f"{name}  {status}" + (f"  ({' '.join(counts)})" if counts else "")
    rows = [Row("title", name, key=status, text=title)]
    if status == "absent":
        rows.append(Row("info", name, text=f"absent: {_absent_reason(section)}"))
    entries: list[tuple[str, Row]] = []
    for key, (old, new) in (same or {}).items():
        entries.append((key, Row("same", name, key, short(old), short(new), only="all")))
    for key, value in (section.get("removed") or {}).items():
        entries.append((key, Row("del", name, key, short(value), "")))
    for key, value in (section.get("added") or {}).items():
        entries.append((key, Row("add", name, key, "", short(value))))
    for key, change in (section.get("changed") or {}).items():
        old, new = change.get("old"), change.get("new")
        entries.append((key, Row("chg", name, key, short(old), short(new) + _delta(change))))
    entries.sort(key=lambda e: e[0])
    rows.extend(row for _, row in entries)
    if same:
        rows.append(Row("info", name, text=unchanged_line(name, list(same)), only="changed"))
    if status == "identical" and not entries:
        rows.append(Row("info", name, text="identical (same hash)", only="all"))
    if name == "code":
        rows.extend(code_rows(section))
    return rows


def _absent_reason(section: Mapping[str, Any]) -> str:
    reason = section.get("reason")
    if isinstance(reason, Mapping):
        sides = section.get("absent_in") or list(reason)
        return "; ".join(f"in {s.upper()}: {reason.get(s) or 'not recorded'}" for s in sides)
    return str(reason or "not recorded for one of the runs")


def code_rows(section: Mapping[str, Any]) -> list[Row]:
    """`git diff --stat` and the patches of the code section."""
    rows: list[Row] = []
    note = section.get("commits_note")
    if note:
        rows.append(Row("info", "code", text=str(note)))
    stat = section.get("stat")
    if stat:
        rows.append(Row("info", "code", text="git diff --stat"))
        rows.extend(Row("info", "code", text=line) for line in str(stat).splitlines())
    patch = section.get("patch")
    if patch:
        rows.extend(patch_rows(str(patch), "commit-to-commit patch"))
    uncommitted = section.get("uncommitted")
    if isinstance(uncommitted, Mapping):
        for side, text in uncommitted.items():
            if isinstance(text, Mapping) and text.get("missing"):
                rows.append(Row("info", "code", text=f"uncommitted patch of {side} is missing"))
            elif isinstance(text, str) and text:
                rows.extend(patch_rows(str(text), f"uncommitted changes of {side}"))
    elif uncommitted:
        rows.extend(patch_rows(str(uncommitted), "uncommitted changes"))
    return rows


def patch_rows(patch: str, label: str) -> list[Row]:
    lines = patch.splitlines()
    rows = [Row("patch-start", "code", text=f"{label} ({len(lines)} lines)")]
    rows.extend(Row("patch", "code", text=line) for line in lines[:MAX_PATCH_LINES])
    if len(lines) > MAX_PATCH_LINES:
        rows.append(Row("info", "code", text=f"… {len(lines) - MAX_PATCH_LINES} more lines"))
    return rows


def build_rows(
    result: Mapping[str, Any],
    view_a: Mapping[str, Any] | None = None,
    view_b: Mapping[str, Any] | None = None,
) -> list[Row]:
    """All rows of a diff result, sections in the engine's order.

    The engine reports only what differs; the unchanged keys come from the two views
    (`ctui.diff.unchanged`), counted in the only-changed view and listed in the full one:
    params and metrics always, a changed manifest section's keys when the views hold it
    loaded (`load_sections`). An identical section stays its title: equal hashes say all.
    """
    sections: Mapping[str, Any] = result.get("sections") or {}
    rows: list[Row] = []
    names = [n for n in ORDER if n in sections] + [n for n in sections if n not in ORDER]
    for name in names:
        section = sections[name]
        same = None
        wanted = name in ("params", "metrics") or section.get("status") == "changed"
        if wanted and view_a is not None and view_b is not None:
            same = unchanged(name, section, view_a, view_b)
        rows.extend(section_rows(name, section, same))
    return rows


def only_changed(rows: list[Row]) -> list[Row]:
    """The default view: what changed, unchanged keys as one count per section."""
    return [r for r in rows if r.only != "all"]


def everything(rows: list[Row]) -> list[Row]:
    """The full view: unchanged keys listed one per line."""
    return [r for r in rows if r.only != "changed"]
