"""The `ctui runs` table: columns chosen by priority to fit the terminal (or a pipe's 80).

Always: `#` (the run number) and status, and every column asked for with `-c`. Then, while
they fit: id, job, started, the first default metric columns (the most common metrics of the
listed runs), duration, trigger, git, data, more metrics, the most common params, tags.
"""

from __future__ import annotations

import time
from typing import Any

from ctui import format as fmt
from ctui.cli import common
from ctui.query import value_of

#: (name, header, priority) of the fixed columns; lower priority = kept first
_FIXED = (
    ("#", "#", 0),
    ("id", "id", 2),
    ("job", "job", 3),
    ("status", "status", 0),
    ("started", "started", 4),
    ("duration", "duration", 6),
    ("trigger", "trigger", 7),
    ("git", "git", 8),
    ("data", "data", 9),
)
#: default metric columns: the first `_FIRST_METRICS` come before duration, more after data
_FIRST_METRICS = 3
_MAX_METRICS = 8
_MAX_PARAMS = 4
_JOB_WIDTH = 16


def print_runs_table(docs: list[dict[str, Any]], columns: str | None) -> None:
    """The table of `docs` (already filtered, sorted and limited), fitted to the console."""
    from rich.table import Table
    from rich.text import Text

    con = common.console()
    now = time.time()
    asked = [c.strip() for c in (columns or "").split(",") if c.strip()]
    cells: dict[str, list[Any]] = {
        "#": [Text(fmt.seq(r)) for r in docs],
        "id": [Text(r["id"]) for r in docs],
        "job": [Text(str(r.get("job", ""))) for r in docs],
        "status": [common.status_text(r.get("status", "?")) for r in docs],
        "started": [
            Text(fmt.timestamp(r.get("started") or r.get("created"), now=now)) for r in docs
        ],
        "duration": [Text(fmt.duration(fmt.run_duration(r, now=now))) for r in docs],
        "trigger": [Text(str(r.get("trigger") or "")) for r in docs],
        "git": [Text(str(r.get("git") or "")[:7]) for r in docs],
        "data": [Text(str(r.get("data_hash") or "")[:8]) for r in docs],
    }
    plan: list[tuple[str, str, int]] = list(_FIXED)
    numbers: list[str] = []  # value columns, right-aligned

    def add_values(key: str, priority: int) -> None:
        if key in cells:
            return
        cells[key] = [Text(fmt.number(value_of(r, key))) for r in docs]
        plan.append((key, key.split(".", 1)[-1], priority))
        numbers.append(key)

    for key in asked:
        if key in dict((n, n) for n, _, _ in _FIXED):
            continue  # a fixed column asked for by name: shown anyway
        add_values(key, 0)
    if not asked:
        metrics = fmt.common_keys(docs, "metrics", _MAX_METRICS)
        for i, name in enumerate(metrics):
            add_values("metric." + name, 5 if i < _FIRST_METRICS else 10 + i)
        for i, name in enumerate(fmt.common_keys(docs, "params", _MAX_PARAMS)):
            add_values("param." + name, 20 + i)
        if any(r.get("tags") for r in docs):
            cells["tags"] = [Text(", ".join(r.get("tags") or [])) for r in docs]
            plan.append(("tags", "tags", 30))
    shorts = [header for _, header, _ in plan]
    # a param and a metric of one name (`acc`) keep their prefixes: the headers must differ
    plan = [(n, n if shorts.count(h) > 1 else h, p) for n, h, p in plan]
    asked_fixed = {k for k in asked if k in cells and k not in numbers}
    widths = []
    for name, header, priority in plan:
        w = max([len(header), *(c.cell_len for c in cells[name])])
        if name == "job":
            w = min(w, _JOB_WIDTH)
        widths.append((name, w, 0 if name in asked_fixed else priority))
    kept = fmt.fit_columns(widths, con.width)
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    shown = [(name, header) for name, header, _ in plan if name in kept]
    for name, header in shown:
        table.add_column(
            Text(header),  # metric and param names come from the jobs: never markup
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if name in numbers or name == "#" else "left",
            max_width=_JOB_WIDTH if name == "job" else None,
        )
    for i in range(len(docs)):
        table.add_row(*(cells[name][i] for name, _ in shown))
    con.print(table)


def _when(run: dict[str, Any]) -> Any:
    return run.get("started") or run.get("created")
