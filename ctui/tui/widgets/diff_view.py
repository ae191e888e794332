"""Side-by-side diff of two runs: one line per key, run A on the left, run B on the right.

Paints the rows of `diff_rows` with the line API (only visible lines are rendered), so an
env section with hundreds of packages or a long patch scrolls without cost. Changed lines
carry colour *and* a +/-/~ marker; the code patch is highlighted with rich's `diff` lexer.
By default only what changed shows (unchanged keys as a count per section); `only_changed`
off lists every key.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ctui.tui.widgets.diff_rows import MARKERS, Row, everything, only_changed

KEY_SHARE = 0.45  # of each column, at most, for the key


class DiffView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    DiffView {
        background: $surface;
        scrollbar-gutter: stable;
        overflow-x: hidden;  /* lines are cut to the width, never scrolled sideways */
    }
    DiffView > .diff-view--title { color: $text-primary; text-style: bold underline; }
    DiffView > .diff-view--add { color: $text-success; background: $success 15%; }
    DiffView > .diff-view--del { color: $text-error; background: $error 15%; }
    DiffView > .diff-view--chg { color: $text-warning; background: $warning 15%; }
    DiffView > .diff-view--same { color: $text-muted; }
    DiffView > .diff-view--info { color: $text-muted; text-style: italic; }
    DiffView > .diff-view--cursor { background: $accent 50%; text-style: bold; }
    DiffView > .diff-view--rule { color: $panel-lighten-2; }
    """
    COMPONENT_CLASSES = {
        "diff-view--title",
        "diff-view--add",
        "diff-view--del",
        "diff-view--chg",
        "diff-view--same",
        "diff-view--info",
        "diff-view--cursor",
        "diff-view--rule",
    }
    BINDINGS = [
        Binding("up,k", "scroll_up", "Up", show=False, id="diff.up"),
        Binding("down,j", "scroll_down", "Down", show=False, id="diff.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="diff.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="diff.page_down"),
        Binding("ctrl+u", "half_page(-1)", "Half page up", show=False, id="diff.half_up"),
        Binding("ctrl+d", "half_page(1)", "Half page down", show=False, id="diff.half_down"),
        Binding("home,g", "scroll_home", "Top", show=False, id="diff.top"),
        Binding("end,G", "scroll_end", "Bottom", show=False, id="diff.bottom"),
    ]

    #: list only what changed (unchanged keys as a count); off: every key, one per line
    only_changed: reactive[bool] = reactive(True)
    #: index (into `rows`) of the change the cursor is on, or -1
    cursor: reactive[int] = reactive(-1)

    class CursorMoved(Message):
        def __init__(self, diff_view: DiffView, row: Row | None) -> None:
            super().__init__()
            self.diff_view = diff_view
            self.row = row

    def __init__(
        self,
        rows: list[Row] | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._all: list[Row] = list(rows or [])
        self.rows: list[Row] = only_changed(self._all)
        self._patch_text: dict[int, Text] = {}
        self._cache: dict[tuple[int, int], Strip] = {}
        self._key_len = 4

    # -- data ------------------------------------------------------------------------------
    def set_rows(self, rows: list[Row]) -> None:
        self._all = list(rows)
        self._apply_filter()

    def _apply_filter(self) -> None:
        current = self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None
        self.rows = only_changed(self._all) if self.only_changed else everything(self._all)
        self._key_len = max((cell_len(r.key) for r in self.rows), default=4)
        self._highlight_patches()
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self.rows))
        self.set_reactive(DiffView.cursor, self.rows.index(current) if current in self.rows else -1)
        self.refresh()

    def watch_only_changed(self) -> None:
        self._apply_filter()

    @property
    def change_indices(self) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r.is_change]

    @property
    def current_row(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def _highlight_patches(self) -> None:
        # Highlight each patch block in one go (the lexer needs the context of the lines).
        self._patch_text.clear()
        block: list[int] = []
        for i, row in enumerate([*self.rows, Row("end", "")]):
            if row.kind == "patch":
                block.append(i)
                continue
            if block:
                code = "\n".join(self.rows[j].text for j in block)
                lines = Syntax(code, "diff", theme="ansi_dark").highlight(code).split("\n")
                for j, line in zip(block, lines, strict=False):
                    self._patch_text[j] = line
                block = []

    def action_half_page(self, direction: int) -> None:
        step = max(1, self.scrollable_content_region.height // 2)
        self.scroll_relative(y=direction * step, animate=False)

    # -- search ----------------------------------------------------------------------------
    def find(self, needle: str, *, forward: bool = True) -> bool:
        """Move the cursor to the next (previous) row whose key, values or text hold
        `needle` (case-insensitive), wrapping around; False when no row does."""
        needle = needle.lower()
        if not needle or not self.rows:
            return False
        n = len(self.rows)
        start = self.cursor if self.cursor >= 0 else (int(self.scroll_y) - 1 if forward else n)
        for step in range(1, n + 1):
            i = (start + step) % n if forward else (start - step) % n
            row = self.rows[i]
            if needle in " ".join((row.key, row.left, row.right, row.text)).lower():
                self.cursor = i
                return True
        return False

    # -- moving between changes ------------------------------------------------------------
    def next_change(self) -> bool:
        later = [i for i in self.change_indices if i > self.cursor]
        if not later:
            return False
        self.cursor = later[0]
        return True

    def previous_change(self) -> bool:
        earlier = [i for i in self.change_indices if i < self.cursor]
        if not earlier:
            return False
        self.cursor = earlier[-1]
        return True

    def watch_cursor(self, cursor: int) -> None:
        self._cache.clear()
        if cursor >= 0:
            height = self.scrollable_content_region.height
            top, bottom = self.scroll_y, self.scroll_y + height - 1
            if not top <= cursor <= bottom:
                self.scroll_to(y=max(0, cursor - height // 3), animate=False, force=True)
        self.refresh()
        self.post_message(self.CursorMoved(self, self.current_row))

    def on_resize(self) -> None:
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self.rows))

    # -- painting --------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if index >= len(self.rows) or width <= 0:
            return Strip.blank(width, self.rich_style)
        key = (index, width)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(index, width)
            if len(self._cache) > 4000:
                self._cache.clear()
            self._cache[key] = strip
        return strip

    def _style(self, name: str) -> Style:
        # partial=False: translucent backgrounds are blended over the widget's own
        return self.get_component_rich_style(f"diff-view--{name}", partial=False)

    def _render_row(self, index: int, width: int) -> Strip:
        row = self.rows[index]
        base = self.rich_style
        if row.kind == "title":
            text = Text(f" {row.text} ".ljust(width), style=self._style("title"))
        elif row.kind in ("info", "patch-start"):
            text = Text(f"  {row.text}", style=self._style("info"))
            if row.kind == "patch-start":
                text = Text(f"~ {row.text}", style=self._style("chg"))
        elif row.kind == "patch":
            text = Text("  ") + self._patch_text.get(index, Text(row.text))
        else:
            text = self._two_columns(row, width)
        if index == self.cursor:
            text.stylize(self._style("cursor"))
        text.truncate(width, overflow="ellipsis", pad=True)
        segments = [s for s in text.render(self.app.console) if s.text != "\n"]
        return Strip(segments).crop_extend(0, width, base).apply_style(base)

    def _two_columns(self, row: Row, width: int) -> Text:
        style = self._style(row.kind)
        marker = MARKERS.get(row.kind, " ")
        col = max(10, (width - 5) // 2)
        key_w = max(4, min(self._key_len, int(col * KEY_SHARE)))

        def cell(value: str, present: bool) -> Text:
            if not present:
                return Text(" " * col)
            key = row.key if cell_len(row.key) <= key_w else row.key[: key_w - 1] + "…"
            out = Text(key.ljust(key_w) + " ")
            out.append(value)
            out.truncate(col, overflow="ellipsis", pad=True)
            return out

        text = Text(f"{marker} ")
        text.append_text(cell(row.left, row.kind != "add"))
        text.append(" │ ", style=self._style("rule"))
        text.append_text(cell(row.right, row.kind != "del"))
        text.stylize(style)
        return text
