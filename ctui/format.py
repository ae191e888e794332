"""Human formatting shared by the CLI tables and the TUI (no rich/textual imports)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def timestamp(t: float | None, *, now: float | None = None) -> str:
    """`14:03:22` today, `11-26 14:03` this year, `2025-11-26` before."""
    if not t:
        return "—"
    now = time.time() if now is None else now
    lt, ln = time.localtime(t), time.localtime(now)
    if lt.tm_year == ln.tm_year and lt.tm_yday == ln.tm_yday:
        return time.strftime("%H:%M:%S", lt)
    if lt.tm_year == ln.tm_year:
        return time.strftime("%m-%d %H:%M", lt)
    return time.strftime("%Y-%m-%d", lt)


def iso(t: float | None) -> str | None:
    if not t:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def number(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(v)


#: significant digits of a float in a diff: close to the default tolerance (1e-6 relative), so
#: values a diff calls different mostly look different, and float noise reads as what it is
DIGITS = 6


def significant(v: Any, digits: int = DIGITS) -> str:
    """A recorded value as a diff shows it: floats to `digits` significant digits
    (0.32750000000000001 → `0.3275`, 1.5e-14 → `1.5e-14`), integers as they are."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def signed(v: Any, digits: int = DIGITS) -> str:
    """A difference with its sign: `+0.0012`, `-5.89e-14`, `+3`."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return significant(v, digits)
    return f"{v:+.{digits}g}" if isinstance(v, float) else f"{v:+d}"


def run_duration(run: Mapping[str, Any], *, now: float | None = None) -> float | None:
    """Final duration, or the time so far for a running run."""
    if run.get("duration") is not None:
        return float(run["duration"])
    if run.get("status") == "running" and run.get("started"):
        return (time.time() if now is None else now) - float(run["started"])
    return None


def bytes_(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TiB"


def common_keys(runs: list[dict[str, Any]], field: str, limit: int) -> list[str]:
    """The most frequent keys of `metrics`/`params` across runs, for default columns."""
    counts: dict[str, int] = {}
    for r in runs[-2000:]:  # recent runs decide; bounded work at 10k runs
        for k in r.get(field) or ():
            counts[k] = counts.get(k, 0) + 1
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def seq(run: Mapping[str, Any]) -> str:
    """A run's short handle, `#42` (its `seq`), or "" for a run not numbered yet."""
    n = run.get("seq")
    return f"#{n}" if type(n) is int else ""


def short_id(run_id: str, width: int = 6) -> str:
    """The random end of a run id (its first characters are the clock, shared by runs made
    close together); beside `#42`, enough to tell runs apart at a glance. Not a ref."""
    return run_id[-width:]


def fit_columns(columns: list[tuple[str, int, int]], width: int, gap: int = 1) -> set[str]:
    """Which columns fit in `width`: (name, width, priority; lower = kept first). Columns
    are taken by priority while they fit; priority 0 columns are always kept (so a table
    can be wider than the terminal only by the columns a person asked for)."""
    kept: set[str] = set()
    used = 0
    for name, w, prio in sorted(columns, key=lambda c: c[2]):
        need = w + (gap if kept else 0)
        if prio == 0 or used + need <= width:
            kept.add(name)
            used += need
    return kept
