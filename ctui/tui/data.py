"""TUI-side helpers over the core: the runs table's columns, cell formatting, loading runs.

Nothing here imports textual, so the bench and the tests can use it on its own. The filter
language and sorting come from `ctui.query`, the same code `ctui runs --filter` uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctui.format import common_keys, duration, number, run_duration
from ctui.status import STATUS_LOOK
from ctui.store import ACTIVE

Run = dict[str, Any]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Column:
    """One column of the runs table. `key` is a query key (`status`, `metric.acc`, `param.lr`)."""

    key: str
    label: str
    width: int
    numeric: bool = False


#: the fixed columns, in priority order (the first that fit the width are shown): the run's
#: handle is drawn frozen on the left; metric columns follow `started`, params `duration`
HANDLE = Column("id", "run", 13)
HEAD_COLUMNS = (
    Column("status", "status", 11),
    Column("job", "job", 8),
    Column("started", "age", 7, numeric=True),
)
TAIL_COLUMNS = (
    Column("trigger", "trigger", 8),
    Column("git", "git", 8),
    Column("data_hash", "data", 8),
    Column("tags", "tags", 8),
    Column("note", "note", 12),
)
DURATION = Column("duration", "duration", 8, numeric=True)
#: fields the table may sort by besides metric, param and slurm keys
SORTABLE = {"id", "seq", "duration", *(c.key for c in HEAD_COLUMNS + TAIL_COLUMNS)}

MAX_TEXT_WIDTH = 16


def key_metrics(runs: list[Run], rules: dict[str, list[str]] | None = None) -> list[str]:
    """The metrics each job is judged by: those its gate rules name, else those its last run
    with metrics logged, in their order; jobs whose last run is newest come first."""
    from ctui.gate.rules import parse_rule

    newest: dict[str, float] = {}
    logged: dict[str, Run] = {}  # per job, its newest run that logged metrics
    for run in runs:  # oldest first
        job = str(run.get("job") or "")
        newest[job] = float(run.get("created") or 0)
        if run.get("metrics"):
            logged[job] = run
    names: list[str] = []
    for job in sorted(newest, key=lambda j: -newest[j]):
        run = logged.get(job, {})
        named: list[str] = []
        for text in (rules or {}).get(job, ()):
            try:
                refs = parse_rule(text).refs
            except ValueError:
                continue
            named += [r.name for r in refs if r.field == "metrics"]
        named = named or list(run.get("metrics") or ())
        names += [n for n in dict.fromkeys(named) if n not in names]
    return names


def gate_rules(root: Path) -> dict[str, list[str]]:
    """job → its gate rules, from the project's config ({} when it has none or does not load)."""
    from ctui.errors import CtuiError

    try:
        from ctui.config import load_config

        config = load_config(root)
    except (CtuiError, OSError, ValueError):
        return {}
    return {name: list(job.gate.rules) for name, job in config.jobs.items() if job.gate}


def pick_extra_keys(
    runs: list[Run], metrics: int = 6, params: int = 4, rules: dict[str, list[str]] | None = None
) -> list[str]:
    """The jobs' key metrics, then the most common other metrics and params, as keys."""
    names = key_metrics(runs, rules)
    for name in common_keys(runs, "metrics", metrics):
        if len(names) < metrics and name not in names:
            names.append(name)
    return [f"metric.{k}" for k in names] + [
        f"param.{k}" for k in common_keys(runs, "params", params)
    ]


def all_extra_keys(runs: Iterable[Run]) -> list[str]:
    """Every metric and param name seen, for the column chooser."""
    m: set[str] = set()
    p: set[str] = set()
    for run in runs:
        m.update(run.get("metrics") or ())
        p.update(run.get("params") or ())
    return [f"metric.{k}" for k in sorted(m)] + [f"param.{k}" for k in sorted(p)]


def build_columns(runs: list[Run], extra_keys: list[str]) -> list[Column]:
    """Every column in priority order after the handle, sized to recent values (the table
    shows the first that fit its width)."""
    recent = runs[-2000:]
    seqs = [r["seq"] for r in recent if isinstance(r.get("seq"), int)]
    handle = Column("id", "run", len(f"#{max(seqs)}") + 1 + SHORT_ID if seqs else SHORT_ID)
    jobs = {str(r.get("job") or "") for r in recent}
    cols = [handle, *HEAD_COLUMNS]
    cols[2] = Column("job", "job", _fit(jobs | {"job"}, 3))
    metrics = [k for k in extra_keys if k.startswith("metric.")]
    params = {k.partition(".")[2] for k in extra_keys if k.startswith("param.")}
    for key in metrics:
        name = key.partition(".")[2]
        name = key if name in params else name  # a param of that name too: keep them apart
        values = {cell(r, key, 0)[0] for r in recent}
        cols.append(Column(key, name, _fit(values | {name + " "}, 5), numeric=True))
    cols.append(DURATION)
    for key in extra_keys:
        if key.startswith("param."):
            name = key.partition(".")[2]
            name = key if f"metric.{name}" in metrics else name
            values = {_plain(r.get("params", {}).get(name)) for r in recent}
            cols.append(Column(key, name, _fit(values | {name + " "}, 4)))
    if any(r.get("slurm") for r in recent):  # Slurm job id, and why it still waits
        cols.append(Column("slurm.job_id", "slurm", 16))
    triggers = {str(r.get("trigger") or "manual") for r in recent}
    for col in TAIL_COLUMNS:
        if col.key == "trigger":
            col = Column("trigger", "trigger", _fit(triggers, 7))
        cols.append(col)
    return cols


#: characters of the id shown beside the `#seq` handle (its random, distinctive end)
SHORT_ID = 6


def handle_parts(run: Run) -> tuple[str, str]:
    """(`#42` or "", the id's last characters) — the run's handle in a table."""
    seq = run.get("seq")
    return (f"#{seq}" if isinstance(seq, int) else ""), str(run.get("id", ""))[-SHORT_ID:]


def _fit(values: Iterable[str], minimum: int) -> int:
    longest = max((len(v) for v in values), default=0)
    return max(minimum, min(longest, MAX_TEXT_WIDTH))


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return number(value)
    return str(value)


def fmt_ago(ts: Any, now: float) -> str:
    """`12s ago`-style relative time, compact enough for a table cell."""
    if not isinstance(ts, int | float):
        return ""
    d = now - ts
    if d < 0:
        return "soon"
    if d < 60:
        return f"{int(d)}s ago"
    if d < 3600:
        return f"{int(d // 60)}m ago"
    if d < 86400:
        return f"{int(d // 3600)}h ago"
    return f"{int(d // 86400)}d ago"


def fmt_time(ts: Any) -> str:
    """Absolute local time for the detail screen."""
    if not isinstance(ts, int | float):
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def status_look(status: str) -> tuple[str, str]:
    """(symbol, rich style) of a status; readable without colour thanks to the symbol."""
    return STATUS_LOOK.get(status, ("?", ""))


def cell(run: Run, key: str, now: float) -> tuple[str, str]:
    """(text, rich style) of one table cell. Text is plain: never parsed as markup."""
    if key == "id":
        seq, short = handle_parts(run)
        return f"{seq} {short}".strip(), ""
    if key == "status":
        status = str(run.get("status", ""))
        symbol, style = status_look(status)
        return f"{symbol} {status}", style
    if key == "started":
        return fmt_ago(run.get("started") or run.get("created"), now), "dim"
    if key == "duration":
        return duration(run_duration(run, now=now)), ""
    if key == "trigger":
        return str(run.get("trigger") or "manual"), "dim"
    if key in ("git", "data_hash"):
        value = run.get(key)
        return (str(value)[:8] if value else "—"), "dim" if not value else ""
    if key == "job":
        return str(run.get("job") or ""), "bold"
    kind, _, name = key.partition(".")
    if kind == "metric":
        value = (run.get("metrics") or {}).get(name)
        return ("" if value is None else number(value)), ""
    if kind == "param":
        return _plain((run.get("params") or {}).get(name)), ""
    if kind == "slurm":
        slurm = run.get("slurm") or {}
        text = str(slurm.get("job_id") or "")
        if run.get("status") == "queued" and slurm.get("reason"):
            text += f" ({slurm['reason']})"
        return text, "dim"
    if kind in ("tag", "tags"):
        return ",".join(run.get("tags") or ()), "dim"
    value = run.get(key)
    return ("" if value is None else str(value)), ""


def any_active(runs: Iterable[Run]) -> bool:
    return any(r.get("status") in ACTIVE for r in runs)


def filter_and_sort(runs: list[Run], text: str, key: str, descending: bool) -> list[Run]:
    """Apply the query language filter (raises CtuiError on bad syntax), then sort."""
    view = RunsView()
    view.set_runs(runs)
    return view.rows(text, key, descending)


def _first(pair: tuple[Any, Run]) -> Any:
    return pair[0]


class RunsView:
    """Filtered and sorted runs, with caches so a key press costs no sort at all.

    The filter result is kept per filter text. Each column's order (by `ctui.query.sort_key`,
    so the order is the CLI's) is computed once per load of the runs, both directions, ahead
    in a worker (`warm`); a sort then only picks the filtered runs out of that order.
    """

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self._filtered: tuple[str, list[Run]] | None = None
        #: (key, descending) → every run in that order, runs missing the value last
        self._orders: dict[tuple[str, bool], list[Run]] = {}
        # guards `runs`/`_orders` against `warm` storing orders of runs that were replaced
        self._lock = threading.Lock()

    def set_runs(self, runs: list[Run]) -> None:
        with self._lock:
            self.runs = runs
            self._filtered = None
            self._orders = {}

    def warm(self, keys: Iterable[str]) -> None:
        """Compute the orders of these columns ahead (from a worker thread)."""
        runs = self.runs
        for key in keys:
            decorated = None  # each run's key, computed once for both directions
            for descending in (True, False):
                if self.runs is not runs:
                    return
                if (key, descending) not in self._orders:
                    decorated = decorated or self._decorate(runs, key)
                    self._order(runs, key, descending, decorated)

    @staticmethod
    def _decorate(runs: list[Run], key: str) -> list[tuple[Any, Run]]:
        from ctui.query import sort_key

        k = sort_key(key)
        return [(k(r), r) for r in runs]

    def _order(
        self,
        runs: list[Run],
        key: str,
        descending: bool,
        decorated: list[tuple[Any, Run]] | None = None,
    ) -> list[Run]:
        decorated = decorated or self._decorate(runs, key)
        present = [kr for kr in decorated if kr[0][0] != 2]
        present.sort(key=_first, reverse=descending)  # stable: ties keep the store's order
        order = [r for _, r in present] + [r for kk, r in decorated if kk[0] == 2]
        with self._lock:
            if self.runs is runs:
                order = self._orders.setdefault((key, descending), order)
        return order

    def filtered(self, text: str) -> list[Run]:
        from ctui.query import filter_runs

        text = text.strip()
        if self._filtered is None or self._filtered[0] != text:
            self._filtered = (text, filter_runs(self.runs, text) if text else self.runs)
        return self._filtered[1]

    def sort_keys(self, key: str) -> dict[str, Any]:
        """run id → its sort key for `key` (what the orders are sorted by)."""
        from ctui.query import sort_key

        k = sort_key(key)
        return {r["id"]: k(r) for r in self.runs}

    def rows(self, text: str, key: str, descending: bool) -> list[Run]:
        """Runs matching `text`, sorted by `key`; runs missing the value stay last."""
        rows = self.filtered(text)
        order = self._orders.get((key, descending))
        if order is None:
            order = self._order(self.runs, key, descending)
        if rows is self.runs:
            return list(order)
        chosen = {id(r) for r in rows}
        return [r for r in order if id(r) in chosen]
