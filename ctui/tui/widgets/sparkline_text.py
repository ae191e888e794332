"""Text-only sparklines and bars for the live panes: readable without colour, one line each."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

TICKS = "▁▂▃▄▅▆▇█"


def spark(
    values: Sequence[float], width: int, lo: float | None = None, hi: float | None = None
) -> str:
    """The last `width` values as block characters, scaled to [lo, hi] (default: their range)."""
    vals = [v for v in values if isinstance(v, int | float) and v == v][-width:]
    if not vals:
        return ""
    low = min(vals) if lo is None else lo
    high = max(vals) if hi is None else hi
    span = high - low
    if span <= 0:
        return TICKS[3] * len(vals)  # flat
    top = len(TICKS) - 1
    return "".join(TICKS[max(0, min(top, int((v - low) / span * top + 0.5)))] for v in vals)


def bar(fraction: float | None, width: int, style: str = "") -> Text:
    """`▕████░░░░▏` for a fraction in [0, 1]; `▕ n/a ▏` when unknown."""
    if fraction is None:
        return Text("▕" + "n/a".center(width) + "▏", style="dim")
    f = max(0.0, min(1.0, fraction))
    full = int(round(f * width))
    out = Text("▕")
    out.append("█" * full, style=style or _level(f))
    out.append("░" * (width - full), style="dim")
    out.append("▏")
    return out


def _level(fraction: float) -> str:
    return "green" if fraction < 0.6 else "yellow" if fraction < 0.85 else "red"
