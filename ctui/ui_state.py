"""The TUI's remembered choices: `.ctui/ui.json` beside the run store, one file per project.

    {"version": 1, "runs": {"sort": "metric.acc", "descending": true,
                            "columns": ["metric.acc", "param.lr"], "filter": "job=train"}}

A missing file means defaults. A damaged one (not JSON, wrong types) is ignored with a
notice and replaced on the next save; it never stops the TUI. Writes are atomic
(`ctui.atomic`), so a crash mid-write leaves the previous file. No textual here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UI_FILE = "ui.json"
VERSION = 1


@dataclass
class RunsState:
    """What the runs screen remembers; None means "not chosen, use the default"."""

    sort: str | None = None
    descending: bool | None = None
    columns: list[str] | None = None
    filter: str = ""
    #: what was wrong with the file, when it was ignored (said once on screen)
    notice: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filter": self.filter}
        if self.sort is not None:
            out["sort"] = self.sort
        if self.descending is not None:
            out["descending"] = self.descending
        if self.columns is not None:
            out["columns"] = list(self.columns)
        return out


def ui_file(store_file: Path) -> Path:
    return Path(store_file).parent / UI_FILE


def _read(path: Path) -> tuple[dict[str, Any], str | None]:
    import orjson

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"cannot read {path.name}: {exc.strerror or exc}"
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}, f"{path.name} is not valid JSON"
    if not isinstance(doc, dict):
        return {}, f"{path.name} does not hold a JSON object"
    return doc, None


def load_runs_state(path: Path) -> RunsState:
    """The remembered runs screen state (defaults, with a notice, when the file is damaged)."""
    doc, notice = _read(path)
    section = doc.get("runs", {})
    if not isinstance(section, dict):
        return RunsState(notice=notice or f"{path.name}: 'runs' is not an object")
    state = RunsState(notice=notice)
    problems: list[str] = []
    sort, desc = section.get("sort"), section.get("descending")
    columns, text = section.get("columns"), section.get("filter", "")
    if sort is not None:
        if isinstance(sort, str) and sort.strip():
            state.sort = sort
        else:
            problems.append("sort")
    if desc is not None:
        if isinstance(desc, bool):
            state.descending = desc
        else:
            problems.append("descending")
    if columns is not None:
        if isinstance(columns, list) and all(isinstance(c, str) for c in columns):
            state.columns = list(dict.fromkeys(columns))
        else:
            problems.append("columns")
    if isinstance(text, str):
        state.filter = text
    else:
        problems.append("filter")
    if problems and state.notice is None:
        state.notice = f"{path.name}: ignored a bad {', '.join(problems)}"
    return state


def save_runs_state(path: Path, state: RunsState) -> str | None:
    """Write the runs section (other sections kept); an error message instead of raising."""
    import orjson

    from ctui.atomic import atomic_write_bytes

    doc, notice = _read(path)
    if notice is not None:
        doc = {}  # a damaged file is replaced
    doc["version"] = VERSION
    doc["runs"] = state.to_json()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as exc:
        return f"cannot save {path.name}: {exc.strerror or exc}"
    return None
