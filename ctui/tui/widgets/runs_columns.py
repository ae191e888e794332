"""Which of the runs table's columns fit its width, and where each is drawn (no Textual here).

The run's handle is frozen on the left, after the mark (and gate) cells; the other columns
come in priority order from an offset (`left`/`right` slide it), as many as fit. When the
table is sorted by a column that does not fit, the offset moves until it does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctui.tui.data import Column

SEP = " "
MARK_WIDTH = 2  # "● " in front of marked rows, so marks read without colour
#: one more cell when the project uses a gate: ★ the job's champion, a dim ✗ a rejected run
GATE_WIDTH = 1


def prefix_width(show_gate: bool) -> int:
    """Cells in front of the handle: the mark, and the gate's symbol when drawn."""
    return MARK_WIDTH + (GATE_WIDTH if show_gate else 0)


@dataclass(frozen=True)
class Fit:
    """The columns drawn: the handle, then `shown` (from `offset` in the rest)."""

    handle: Column | None
    shown: tuple[Column, ...]
    offset: int
    prefix: int

    @property
    def drawn(self) -> list[Column]:
        return ([self.handle] if self.handle else []) + list(self.shown)

    @property
    def line_width(self) -> int:
        return self.prefix + sum(c.width + len(SEP) for c in self.drawn)

    def column_at(self, x: int) -> Column | None:
        """The column drawn at content column `x` (the handle included)."""
        pos = self.prefix
        for col in self.drawn:
            if pos <= x < pos + col.width + len(SEP):
                return col
            pos += col.width + len(SEP)
        return None


NO_FIT = Fit(None, (), 0, MARK_WIDTH)


def window(columns: list[Column], start: int, room: int) -> list[Column]:
    """The columns from `start` that fit in `room` cells (at least one, cut when drawn)."""
    shown = []
    for col in columns[start:]:
        if col.width + len(SEP) > room:
            break
        shown.append(col)
        room -= col.width + len(SEP)
    return shown or columns[start : start + 1]


def fit_columns(
    columns: list[Column],
    width: int,
    offset: int,
    *,
    show_gate: bool,
    sort_key: str | None = None,
) -> Fit:
    """`columns` (the handle first) fitted to `width` from `offset`; with `sort_key`, the
    offset moves (back, or on as little as needed) so the sorted column is in view."""
    prefix = prefix_width(show_gate)
    handle = columns[0] if columns else None
    rest = columns[1:]
    room = width - prefix - (handle.width + len(SEP) if handle else 0)
    offset = max(0, min(offset, len(rest) - 1))
    shown = window(rest, offset, room)
    keys = [c.key for c in rest]
    if sort_key in keys and sort_key not in [c.key for c in shown]:
        index = keys.index(sort_key)
        if index < offset:
            offset = index
        else:
            while offset < index and sort_key not in [c.key for c in window(rest, offset, room)]:
                offset += 1
        shown = window(rest, offset, room)
    return Fit(handle, tuple(shown), offset, prefix)
