"""TUI-side helpers over the core: the runs table's columns, cell formatting, loading runs.

Nothing here imports textual, so the bench and the tests can use it on its own. The filter
language and sorting come from `ctui.query`, the same code `ctui runs --filter` uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ctui.format import duration, number, run_duration
from ctui.run_columns import Row, RunColumns
from ctui.status import STATUS_LOOK
from ctui.store import ACTIVE

Run = Mapping[str, Any]  # a run document, or a `Row` of the runs' columns
#: runs as documents or as columns
Runs = RunColumns | Sequence[Run]
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


def key_metrics(runs: Runs, rules: dict[str, list[str]] | None = None) -> list[str]:
    """The metrics each job is judged by: those its gate rules name, else those its last run
    with metrics logged, in their order; jobs whose last run is newest come first."""
    from ctui.gate.rules import parse_rule

    t = as_columns(runs)
    jobs = [str(j or "") for j in t.column("job")]
    newest = {j: float(c or 0) for j, c in zip(jobs, t.column("created"), strict=True)}
    metric_cols = [(n, t.cols[f"metric.{n}"]) for n in t.names["metric"]]
    logged: dict[str, list[str]] = {}  # per job, the metrics of its newest run that has some
    pending = set(newest)
    for i in range(t.n - 1, -1, -1):
        if not pending:
            break
        if jobs[i] in pending:
            names = [n for n, col in metric_cols if col[i] is not None]
            if names:
                logged[jobs[i]] = names
                pending.discard(jobs[i])
    out: list[str] = []
    for job in sorted(newest, key=lambda j: -newest[j]):
        named: list[str] = []
        for text in (rules or {}).get(job, ()):
            try:
                refs = parse_rule(text).refs
            except ValueError:
                continue
            named += [r.name for r in refs if r.field == "metrics"]
        named = named or logged.get(job, [])
        out += [n for n in dict.fromkeys(named) if n not in out]
    return out


def as_columns(runs: Runs) -> RunColumns:
    return runs if isinstance(runs, RunColumns) else RunColumns.from_runs(runs)


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
    runs: Runs, metrics: int = 6, params: int = 4, rules: dict[str, list[str]] | None = None
) -> list[str]:
    """The jobs' key metrics, then the most common other metrics and params, as keys."""
    t = as_columns(runs)
    names = key_metrics(t, rules)
    for name in _common(t, "metric", metrics):
        if len(names) < metrics and name not in names:
            names.append(name)
    return [f"metric.{k}" for k in names] + [f"param.{k}" for k in _common(t, "param", params)]


def _common(t: RunColumns, prefix: str, limit: int) -> list[str]:
    """The names of `prefix` the most recent runs have most often (`ctui.format.common_keys`)."""
    counts = {n: t.count(f"{prefix}.{n}", last=RECENT) for n in t.names[prefix]}
    counts = {n: c for n, c in counts.items() if c}
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def all_extra_keys(runs: Runs) -> list[str]:
    """Every metric and param name seen, for the column chooser."""
    t = as_columns(runs)
    return [f"metric.{k}" for k in sorted(t.names["metric"])] + [
        f"param.{k}" for k in sorted(t.names["param"])
    ]


#: the most recent runs decide the default columns and their widths (bounded work)
RECENT = 2000


def build_columns(runs: Runs, extra_keys: list[str]) -> list[Column]:
    """Every column in priority order after the handle, sized to recent values (the table
    shows the first that fit its width)."""
    t = as_columns(runs)

    def recent(key: str) -> list[Any]:
        return t.column(key)[-RECENT:]

    seqs = [s for s in recent("seq") if isinstance(s, int)]
    handle = Column("id", "run", len(f"#{max(seqs)}") + 1 + SHORT_ID if seqs else SHORT_ID)
    jobs = {str(j or "") for j in recent("job")}
    cols = [handle, *HEAD_COLUMNS]
    cols[2] = Column("job", "job", _fit(jobs | {"job"}, 3))
    metrics = [k for k in extra_keys if k.startswith("metric.")]
    params = {k.partition(".")[2] for k in extra_keys if k.startswith("param.")}
    for key in metrics:
        name = key.partition(".")[2]
        name = key if name in params else name  # a param of that name too: keep them apart
        values = {"" if v is None else number(v) for v in recent(key)}
        cols.append(Column(key, name, _fit(values | {name + " "}, 5), numeric=True))
    cols.append(DURATION)
    for key in extra_keys:
        if key.startswith("param."):
            name = key.partition(".")[2]
            name = key if f"metric.{name}" in metrics else name
            values = {_plain(v) for v in recent(key)}
            cols.append(Column(key, name, _fit(values | {name + " "}, 4)))
    slurm = [f"slurm.{n}" for n in t.names["slurm"]]
    if any(v is not None for key in slurm for v in recent(key)):  # its job id, why it waits
        cols.append(Column("slurm.job_id", "slurm", 16))
    triggers = {str(v or "manual") for v in recent("trigger")}
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
        value = _value(run, key)
        return ("" if value is None else number(value)), ""
    if kind == "param":
        return _plain(_value(run, key)), ""
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


def _value(run: Run, key: str) -> Any:
    from ctui.query import value_of

    return run.value(key) if run.__class__ is Row else value_of(run, key)


def any_active(runs: Runs) -> bool:
    if isinstance(runs, RunColumns):
        return not ACTIVE.isdisjoint(runs.column("status"))
    return any(r.get("status") in ACTIVE for r in runs)


class RunsView:
    """The runs as columns (`ctui.run_columns.RunColumns`), filtered and sorted, with caches
    so a key press costs no sort at all.

    The filter's rows are kept per filter text. Each column's order (the CLI's, by
    `ctui.query.sort_value`) is computed once per load of the runs, both directions, ahead
    in a worker (`warm`); a sort then only picks the filtered rows out of that order.
    """

    def __init__(self) -> None:
        self.table = RunColumns({}, 0)
        self._filtered: tuple[str, list[int] | None] | None = None

    @property
    def runs(self) -> list[Run]:
        """Every run, oldest first."""
        return cast(list[Run], self.table.rows())

    def set_table(self, table: RunColumns) -> None:
        self.table = table
        self._filtered = None

    def set_runs(self, runs: list[Run]) -> None:
        self.set_table(RunColumns.from_runs(runs))

    def warm(self, keys: Iterable[str]) -> None:
        """Compute the orders of these columns and the filter's word texts ahead (from a
        worker thread); stops when the runs were replaced."""
        table = self.table
        for key in keys:
            for descending in (True, False):
                if self.table is not table:
                    return
                table.order(key, descending)
        table.words()

    def filtered(self, text: str) -> list[int] | None:
        """The rows matching `text` (None: every row)."""
        from ctui.query import parse_filter

        text = text.strip()
        if self._filtered is None or self._filtered[0] != text:
            self._filtered = (text, self.table.select(parse_filter(text)) if text else None)
        return self._filtered[1]

    def rows(self, text: str, key: str, descending: bool) -> list[Run]:
        """Runs matching `text`, sorted by `key`; runs missing the value stay last."""
        chosen = self.filtered(text)
        order = self.table.order(key, descending)
        rows = self.runs
        if chosen is None:
            return [rows[i] for i in order]
        mask = bytearray(self.table.n)
        for i in chosen:
            mask[i] = 1
        return [rows[i] for i in order if mask[i]]
