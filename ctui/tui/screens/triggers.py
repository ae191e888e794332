"""The Triggers screen: every trigger with its state; enable/disable (`e`) and fire (`f`).

Rows come from `ctui.triggers.listing.list_triggers` and the actions call
`set_trigger_enabled` / `fire_manually` — the same functions as `ctui triggers`. All of them
touch git, DVC files or the store, so they run in worker threads; the table re-reads the store
on a timer that is re-armed after each load, so loads never pile up.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from ctui.errors import CtuiError
from ctui.format import timestamp
from ctui.tui.widgets.key_footer import KeyFooter
from ctui.tui.widgets.nav_table import NavTable

if TYPE_CHECKING:
    from ctui.project import Project
    from ctui.tui.data import Clock

COLUMNS = ("trigger", "on", "job", "enabled", "last fired", "last cause", "next check", "state")

STATE_LOOK = {
    "fire": ("▶", "bold cyan"),
    "idle": ("·", ""),
    "wait": ("…", "yellow"),
    "cooldown": ("⌛", "yellow"),
    "disabled": ("■", "dim"),
    "error": ("✗", "bold red"),
}


class TriggersScreen(Screen[None]):
    """`TriggersScreen(project)`; `clock` freezes times (tests), `poll_interval` in seconds."""

    CSS_PATH = "triggers.tcss"
    POLL_INTERVAL = 2.0
    HELP_SECTION = "Triggers"
    #: footer priority (see ctui/tui/widgets/key_footer.py)
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = (
        "triggers.back",
        "triggers.fire",
        "triggers.toggle",
        "triggers.filter",
        "triggers.refresh",
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="triggers.back"),
        Binding("e", "toggle_enabled", "Enable/disable", id="triggers.toggle"),
        Binding("f", "fire", "Fire now", id="triggers.fire"),
        Binding("slash", "filter", "Filter", id="triggers.filter"),
        Binding("r", "refresh", "Refresh", id="triggers.refresh"),
    ]

    def __init__(
        self, project: Project, *, clock: Clock | None = None, poll_interval: float | None = None
    ) -> None:
        super().__init__()
        self.project = project
        self.clock = clock or time.time
        self.poll_interval = poll_interval or self.POLL_INTERVAL
        self.rows: list[dict[str, Any]] = []
        #: every trigger listed; `rows` are those the applied filter keeps
        self.all_rows: list[dict[str, Any]] = []
        self.filter = ""
        self.error: str | None = None
        self.loads = 0
        #: the last action's outcome (for the detail line and tests)
        self.last_event: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Triggers", style="bold"), id="triggers-title")
        yield NavTable(id="triggers-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="triggers-detail")
        yield Input(placeholder="filter by name, job or rule", id="triggers-filter")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#triggers-filter").display = False
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        table.focus()
        self._load()

    # -- loading ---------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="triggers-load", exit_on_error=False)
    def _load(self) -> None:
        from ctui.triggers.listing import list_triggers

        rows: list[dict[str, Any]] = []
        error = None
        try:
            rows = list_triggers(self.project, now=self.clock())
        except CtuiError as exc:
            error = str(exc)
        self.app.call_from_thread(self._loaded, rows, error)

    def _loaded(self, rows: list[dict[str, Any]], error: str | None) -> None:
        self.loads += 1
        self.all_rows, self.error = rows, error
        self.rows = [r for r in rows if _matches(r, self.filter)]
        self._fill()
        if self.is_attached:
            self.set_timer(self.poll_interval, self._load)

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        now = self.clock()
        for r in self.rows:
            symbol, style = STATE_LOOK.get(r.get("status") or "", ("?", "dim"))
            state = Text(f"{symbol} {r.get('status') or 'not checked yet'}", style=style)
            enabled = Text("✓ yes", style="green") if r["enabled"] else Text("✗ no", style="dim")
            table.add_row(
                Text(r["name"]),
                Text(r["rule"]),
                Text(r["job"]),
                enabled,
                timestamp(r["last_fired"], now=now),
                Text(_clip(r.get("last_cause") or "—", 48)),
                timestamp(r["next_check"], now=now),
                state,
                key=r["name"],
            )
        if self.rows:
            table.move_cursor(row=min(max(keep, 0), len(self.rows) - 1))
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#triggers-detail", Static)
        if self.error:
            detail.update(Text(self.error, style="bold red"))
            return
        if not self.rows and self.all_rows:
            detail.update(Text(f"no trigger matches {self.filter!r} (esc: clear the filter)"))
            return
        if not self.rows:
            detail.update(Text("no triggers declared — add [triggers.NAME] to ctui.toml"))
            return
        text = Text()
        row = self.current()
        if row is not None:
            text.append(f"{row['name']}: ", style="bold")
            text.append(row.get("note") or "not evaluated yet (run `ctui watch`)")
            if row.get("last_cause"):
                text.append(f"\nlast cause: {row['last_cause']}")
            if row.get("last_run"):
                text.append(f" → run {row['last_run']}")
        if self.last_event is not None:
            text.append("\n" + _event_text(self.last_event), style="italic")
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def current(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    # -- actions ---------------------------------------------------------------------------
    def action_back(self) -> None:
        box = self.query_one("#triggers-filter", Input)
        if box.display:  # escape in the filter box cancels it, keeping the applied filter
            box.display = False
            self.query_one(DataTable).focus()
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_filter(self) -> None:
        box = self.query_one("#triggers-filter", Input)
        box.display = True
        box.value = self.filter
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.filter = event.value.strip()
        event.input.display = False
        self.query_one(DataTable).focus()
        self.rows = [r for r in self.all_rows if _matches(r, self.filter)]
        self._fill()
        title = "Triggers" + (f"  (filter: {self.filter})" if self.filter else "")
        self.query_one("#triggers-title", Static).update(Text(title, style="bold"))

    def action_refresh(self) -> None:
        self._load()

    def action_toggle_enabled(self) -> None:
        row = self.current()
        if row is not None:
            self._set_enabled(row["name"], not row["enabled"])

    def action_fire(self) -> None:
        row = self.current()
        if row is not None:
            self.notify(f"firing {row['name']}…", timeout=3)
            self._fire(row["name"])

    @work(thread=True, group="triggers-actions", exit_on_error=False)
    def _set_enabled(self, name: str, enabled: bool) -> None:
        from ctui.triggers.listing import set_trigger_enabled

        try:
            set_trigger_enabled(self.project, name, enabled)
            event = {"event": "enabled" if enabled else "disabled", "trigger": name}
        except CtuiError as exc:
            event = {"event": "error", "trigger": name, "error": str(exc)}
        self.app.call_from_thread(self._acted, event)

    @work(thread=True, group="triggers-actions", exit_on_error=False)
    def _fire(self, name: str) -> None:
        from ctui.triggers.launching import fire_manually

        try:
            event = fire_manually(self.project, name)
        except CtuiError as exc:
            event = {"event": "error", "trigger": name, "error": str(exc)}
        self.app.call_from_thread(self._acted, event)

    def _acted(self, event: dict[str, Any]) -> None:
        self.last_event = event
        failed = event["event"] in ("error", "launch-failed")
        self.notify(_event_text(event), severity="error" if failed else "information", timeout=5)
        self._load()


def _event_text(event: dict[str, Any]) -> str:
    kind, name = event["event"], event.get("trigger")
    if kind == "fired":
        return f"fired {name} → run {event['run_id']} ({event.get('status')})"
    if kind in ("enabled", "disabled"):
        return f"{name} {kind}"
    if kind == "duplicate":
        return f"{name}: already acted on this cause"
    return f"{name}: {event.get('error') or kind}"


def _matches(row: dict[str, Any], needle: str) -> bool:
    if not needle:
        return True
    cells = (row.get("name"), row.get("job"), row.get("rule"), row.get("status"))
    return needle.lower() in " ".join(str(c or "") for c in cells).lower()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
