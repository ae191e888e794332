"""The runs table's lines: the header and one strip per run, kept in a small LRU.

A strip is keyed by the run, its cursor/mark/focus state and a generation that changes when
the data, the columns or the champions do; a cursor move renders at most the two rows whose
state changed, and scrolling finds the rest in the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from ctui.tui.data import Run, cell, handle_parts
from ctui.tui.gate_view import row_mark
from ctui.tui.widgets.runs_columns import SEP, Fit

BOLD = Style(bold=True)
DIM = Style(dim=True)
REVERSE = Style(reverse=True)


@dataclass(frozen=True)
class RowState:
    """What a row looks like besides its run: under the cursor, marked, the table focused."""

    cursor: bool
    marked: bool
    focused: bool


class RowPainter:
    """`header(...)` and `row(...)` strips for a `Fit`; `clear()` when what they show changed."""

    def __init__(self, cache_size: int = 512) -> None:
        self.generation = 0
        self._cache: OrderedDict[tuple[Any, ...], Strip] = OrderedDict()
        self._size = cache_size

    def clear(self) -> None:
        self.generation += 1
        self._cache.clear()

    def _remember(self, key: tuple[Any, ...], strip: Strip) -> Strip:
        self._cache[key] = strip
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return strip

    def header(self, fit: Fit, sort_key: str, sort_desc: bool, base: Style, sort: Style) -> Strip:
        key = ("header", self.generation, sort_key, sort_desc, fit.offset)
        strip = self._cache.get(key)
        if strip is not None:
            return strip
        segments = [Segment(" " * fit.prefix, base)]
        for col in fit.drawn:
            label, style = col.label, base
            if col.key == sort_key:
                label = f"{label}{'▼' if sort_desc else '▲'}"
                style = base + sort
            segments.append(Segment(fit_text(label, col.width, col.numeric), style))
            segments.append(Segment(SEP, base))
        return self._remember(key, Strip(segments, fit.line_width))

    def row(
        self,
        run: Run,
        fit: Fit,
        state: RowState,
        *,
        base: Style,
        component: Callable[[str], Style],
        champions: frozenset[str] | None,
        now: Callable[[], float],
    ) -> Strip:
        """The strip of `run`; `component` gives the table's component styles (marked,
        cursor), `champions` is None when the gate column is not drawn."""
        key = (run.get("id", ""), self.generation, state.cursor, state.marked, state.focused)
        strip = self._cache.get(key)
        if strip is not None:
            self._cache.move_to_end(key)
            return strip
        return self._remember(key, self._paint(run, fit, state, base, component, champions, now))

    def _paint(
        self,
        run: Run,
        fit: Fit,
        state: RowState,
        base: Style,
        component: Callable[[str], Style],
        champions: frozenset[str] | None,
        now: Callable[[], float],
    ) -> Strip:
        is_cursor = state.cursor
        if state.marked:
            base = base + component("runs-table--marked")
        if is_cursor and state.focused:
            base = base + component("runs-table--cursor")
        elif is_cursor:
            base = base + REVERSE
        segments = [Segment("●" if state.marked else " ", base)]
        if champions is not None:
            symbol, style = row_mark(run, champions)
            mark_style = base + Style.parse(style) if style else base
            segments.append(Segment(symbol, mark_style + base if is_cursor else mark_style))
        segments.append(Segment(" ", base))
        handle = fit.handle
        if handle is not None:
            seq, short = handle_parts(run)
            seq_width = max(0, handle.width - len(short) - 1)
            short_style = base if is_cursor else base + DIM
            if seq_width:
                segments.append(Segment(fit_text(seq, seq_width, True) + " ", base + BOLD))
            short_width = handle.width - seq_width - (1 if seq_width else 0)
            segments.append(Segment(fit_text(short, short_width, False), short_style))
            segments.append(Segment(SEP, base))
        at = now()
        for col in fit.shown:
            text, style = cell(run, col.key, at)
            cell_style = base + Style.parse(style) if style else base
            if is_cursor:
                cell_style = cell_style + base  # the cursor colours win over the cell colours
            segments.append(Segment(fit_text(text, col.width, col.numeric), cell_style))
            segments.append(Segment(SEP, base))
        return Strip(segments, fit.line_width)


def fit_text(text: str, width: int, right: bool) -> str:
    """Pad or cut `text` to exactly `width` cells (with an ellipsis when cut)."""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - length)
    return pad + text if right else text + pad
