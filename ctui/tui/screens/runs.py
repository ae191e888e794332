"""The home screen: every run in a fast table; filter, sort, mark, and jump to the other screens.

The table refreshes live: a timer polls the store's cheap `stamp()` in a worker thread and
reloads the runs only when the file changed; the timer is re-armed after each poll finishes,
so polls never pile up. Reconciliation (marking runs whose supervisor vanished as `lost`)
runs only while some run is active.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, Static

from ctui.errors import CtuiError
from ctui.query import check_filter
from ctui.run_columns import RunColumns
from ctui.store import Store
from ctui.tui.data import (
    Clock,
    Column,
    Run,
    RunsView,
    any_active,
    build_columns,
    gate_rules,
    pick_extra_keys,
)
from ctui.tui.screens import PlainNotify
from ctui.tui.screens.runs_actions import RunActions
from ctui.tui.screens.runs_gate import GateActions
from ctui.tui.screens.runs_plot import PlotActions
from ctui.tui.screens.runs_sort import SortAndState
from ctui.tui.widgets.key_footer import KeyFooter
from ctui.tui.widgets.run_preview import MIN_WIDTH, RunPreview
from ctui.tui.widgets.runs_table import RunsTable
from ctui.ui_state import RunsState, load_runs_state, ui_file

if TYPE_CHECKING:
    from ctui.project import Project


class RunsScreen(SortAndState, RunActions, GateActions, PlotActions, PlainNotify, Screen[None]):
    """All runs of the project. Bindings carry ids so a user keymap can rebind them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: handled as the key arrives, so keys typed right after it reach the input
        Binding("slash", "filter", "Filter", priority=True, id="runs.filter"),
        Binding("space", "mark", "Mark", id="runs.mark"),
        Binding("d", "diff", "Diff", id="runs.diff"),
        Binding("p", "plot", "Plot", id="runs.plot"),
        Binding("n", "launch", "New run", id="runs.launch"),
        Binding("l", "live", "Log", id="runs.live"),
        Binding("s", "stop", "Stop", id="runs.stop"),
        Binding("t", "triggers", "Triggers", id="runs.triggers"),
        Binding("f", "find_logs", "Find in logs", id="runs.find_logs"),
        Binding("y", "copy_id", "Copy id", show=False, id="runs.copy_id"),
        Binding("R", "reproduce", "Reproduce", show=False, id="runs.reproduce"),
        Binding("C", "champion_diff", "Vs champion", show=False, id="runs.champion_diff"),
        Binding("P", "promote", "Promote", show=False, id="runs.promote"),
        Binding("greater_than_sign", "sort_column(1)", "Sort →", show=False, id="runs.sort_next"),
        Binding("less_than_sign", "sort_column(-1)", "Sort ←", show=False, id="runs.sort_prev"),
        Binding("r", "sort_reverse", "Reverse", show=False, id="runs.sort_reverse"),
        Binding("c", "columns", "Columns", show=False, id="runs.columns"),
        Binding("escape", "clear", "Clear", show=False, id="runs.clear"),
    ]

    HELP_SECTION = "Runs (home)"
    #: the footer's keys, most wanted first (it shows those that fit; see widgets/key_footer)
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = (
        "table.select",
        "runs.filter",
        "runs.mark",
        "runs.diff",
        "runs.plot",
        "runs.launch",
        "runs.live",
        "runs.copy_id",
        "runs.stop",
        "runs.triggers",
    )

    DEFAULT_CSS = """
    #run-preview { dock: right; }
    #runs-empty { height: 1fr; padding: 1 2; }
    """

    #: seconds between store polls
    POLL_INTERVAL = 1.0
    #: seconds between checks that a shown "3m ago" still reads right
    AGE_TICK = 1.0
    #: a bigger store shows its newest runs first (read from their segments alone); the
    #: rest follow from a worker a moment later
    FIRST_PAGE = 500

    def __init__(
        self, project: Project, *, clock: Clock | None = None, poll_interval: float | None = None
    ) -> None:
        super().__init__(id="runs-screen")
        self.project = project
        self.store = Store(project.store_file, cache=True)  # a poll reads what changed
        self.clock = clock
        self.poll_interval = poll_interval or self.POLL_INTERVAL
        self.view = RunsView()
        self.filter_text = ""
        self.sort_key = "started"
        self.sort_desc = True
        self.extra_keys: list[str] | None = None
        self.columns: list[Column] = []
        self.champions: dict[str, str] = {}
        self._stamp: tuple[object, ...] | None = None
        self._polls = 0
        #: while only the newest runs are shown: how many runs the store holds
        self._reading: int = 0
        #: the filter applied when the filter box opened (escape goes back to it)
        self._filter_before = ""
        self._ui_file = ui_file(project.store_file)
        self._rules: dict[str, list[str]] = {}
        self._pending_state: RunsState | None = None
        self._state_lock = threading.Lock()

    @property
    def all_runs(self) -> list[Run]:
        """Every run in the store, oldest first (each a `Row` of the runs' columns)."""
        return self.view.runs

    @all_runs.setter
    def all_runs(self, runs: RunColumns | list[Run]) -> None:
        if isinstance(runs, RunColumns):
            self.view.set_table(runs)
        else:
            self.view.set_runs(runs)

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="runs-bar")
        # the preview docks right, so the table and the empty-store hint are plain children
        yield RunPreview(self.project, id="run-preview", classes="hidden")
        yield RunsTable(clock=self.clock, id="runs-table")
        yield Static(id="runs-empty", classes="hidden")
        yield Static(id="filter-error", classes="hidden")
        yield Input(
            placeholder="filter: status=failed metric.acc>0.9 job=train tag=x",
            id="filter-input",
            classes="hidden",
        )
        yield KeyFooter()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    def on_mount(self) -> None:
        # The first load is synchronous, so the first frame has rows: every run of a small
        # store; the newest of a big one (the others come from the first poll, at once).
        try:
            self._stamp = self.store.stamp()
            self.all_runs, self.champions, self._reading = self.read_first(self.FIRST_PAGE)
            if self._reading:
                self._stamp = None
        except CtuiError as exc:
            self.notify(str(exc), title="cannot read the run store", severity="error")
        self._rules = gate_rules(self.project.root)
        self._restore(load_runs_state(self._ui_file))
        self._rebuild_columns()
        self.show_champions(self.champions)
        if not self._apply() and self.filter_text:
            self.notify(f"the remembered filter no longer applies: {self.filter_text}")
            self.filter_text = ""
            self._apply()
        self.table.focus()
        if self._reading:
            self._poll_store()  # the other runs, now
        else:
            self._warm_sort_keys()
            self.set_timer(self.poll_interval, self._poll)
        self.set_interval(self.AGE_TICK, self.table.retick_if_stale)

    # -- data ----------------------------------------------------------------------------
    def _rebuild_columns(self) -> None:
        if self.extra_keys is None:
            self.extra_keys = pick_extra_keys(self.view.table, rules=self._rules)
        self.columns = build_columns(self.view.table, self.extra_keys)
        self.table.set_columns(self.columns)

    def _apply(self, *, keep_error: bool = False) -> bool:
        """Filter and sort into the table; False (and a message) on a bad filter."""
        error = self.query_one("#filter-error", Static)
        try:
            check_filter(self.filter_text)
            rows = self.view.rows(self.filter_text, self.sort_key, self.sort_desc)
        except CtuiError as exc:
            message = Text("✗ ", style="bold")
            message.append(exc.message)
            if exc.hint:
                message.append(f"\n{exc.hint}", style="dim")
            error.update(message)
            error.remove_class("hidden")
            return False
        if not keep_error:
            error.add_class("hidden")
        self.table.set_sort(self.sort_key, self.sort_desc)
        self.table.set_rows(rows)
        self._show_empty(rows)
        self._update_bar()
        self._preview()
        return True

    def _show_empty(self, rows: list[Run]) -> None:
        """The empty store says how to start; a filter that matches nothing says so."""
        hint = self.query_one("#runs-empty", Static)
        if rows:
            hint.add_class("hidden")
            self.table.remove_class("hidden")
            return
        text = Text()
        if not self.view.table.n:
            text.append("No runs yet.\n\n", style="bold")
            text.append("Press n to launch one of the jobs in ctui.toml, or in a shell:\n\n")
            text.append("    ctui run JOB", style="bold")
            text.append("\n\n(ctui jobs lists the jobs; ctui import mlflow brings in old runs)")
        else:
            text.append(f"No runs match '{self.filter_text.strip()}' ", style="bold")
            text.append(f"({self.view.table.n} runs in the store).\n\n")
            text.append("Press / to change the filter, escape to clear it.")
        hint.update(text)
        hint.remove_class("hidden")
        self.table.add_class("hidden")

    def _update_bar(self) -> None:
        table = self.table
        label = next((c.label for c in self.columns if c.key == self.sort_key), self.sort_key)
        bar = Text()
        bar.append(" ctui ", style="bold reverse")
        bar.append(f" {self.project.root.name}  ", style="bold")
        if self._reading:
            bar.append(f"{len(table.rows)}/{self._reading} runs (reading…)")
        else:
            bar.append(f"{len(table.rows)}/{self.view.table.n} runs")
        bar.append(f"  sort: {label}{'▼' if self.sort_desc else '▲'}", style="dim")
        if self.filter_text.strip():
            bar.append("  filter: ", style="dim")
            bar.append(self.filter_text.strip())
        if table.marked:
            bar.append(f"  ● {len(table.marked)} marked", style="bold")
        self.query_one("#runs-bar", Static).update(bar, layout=False)  # one line, always

    @work(thread=True, exclusive=True, group="runs-warm", exit_on_error=False)
    def _warm_sort_keys(self) -> None:
        """After the first frame: every column's sort keys, so `<`/`>` only sort."""
        self.view.warm([c.key for c in self.columns])

    def _poll(self) -> None:
        self._poll_store()

    @work(thread=True, exclusive=True, group="runs-poll", exit_on_error=False)
    def _poll_store(self) -> None:
        runs: RunColumns | None = None
        champions: dict[str, str] | None = None
        error: str | None = None
        try:
            if any_active(self.view.table):
                from ctui.jobs.reconcile import refresh

                refresh(self.project)
            stamp = self.store.stamp()
            if stamp != self._stamp:
                runs, champions = self.read_runs()
                runs.rows()  # made here, not on the UI thread: 0.1 s at 100,000 runs
                runs.order(self.sort_key, self.sort_desc)
                self._stamp = stamp
        except CtuiError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot read the run store: {exc}"
        try:
            self.app.call_from_thread(self._polled, runs, error, champions)
        except RuntimeError:
            pass  # the app is shutting down

    def _polled(
        self, runs: RunColumns | None, error: str | None, champions: dict[str, str] | None = None
    ) -> None:
        self._polls += 1
        if error:
            self.notify(error, severity="error", timeout=5)
        if runs is not None:
            self._reading = 0
            self.query_one(RunPreview).forget()
            self.all_runs = runs
            if champions is not None:
                self.show_champions(champions)
            self._rebuild_columns()
            self._apply()
            self._warm_sort_keys()
        elif any_active(self.view.table):
            self.table.retick()  # running durations move on
        if self.is_attached:
            self.set_timer(self.poll_interval, self._poll)

    def reload(self) -> None:
        """Read the store now (after this screen changed something)."""
        self._stamp = None
        self._poll_store()

    # -- filter --------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter-input", Input)
        self._filter_before = self.filter_text
        box.value = self.filter_text
        box.remove_class("hidden")
        self.set_focus(box)  # now, not after a refresh: the next key must land in the box
        box.cursor_position = len(box.value)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "/" typed into the filter box is just a character
        return not (action == "filter" and isinstance(self.focused, Input))

    @on(Input.Changed, "#filter-input")
    def _filter_changed(self, event: Input.Changed) -> None:
        """Live: a good filter applies as it is typed; while the text has an error, the error
        shows under the box and the table shows the filter applied before the box opened."""
        self.filter_text = event.value
        if not self._apply():
            self.filter_text = self._filter_before
            self._apply(keep_error=True)

    @on(Input.Submitted, "#filter-input")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value
        if self._apply():
            self._close_filter()
            self._remember()
        else:  # the error stays under the box, the rows of the applied filter stay
            self.filter_text = self._filter_before
            self._apply(keep_error=True)

    def _cancel_filter(self) -> None:
        """Escape in the box: back to the filter applied before it opened."""
        self.filter_text = self._filter_before
        self._apply()
        self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#filter-input", Input).add_class("hidden")
        self.query_one("#filter-error", Static).add_class("hidden")
        self.table.focus()

    def set_filter(self, text: str) -> bool:
        """Apply a filter (palette, tests); False when it does not parse."""
        previous = self.filter_text
        self.filter_text = text
        if not self._apply():
            self.filter_text = previous
            return False
        self._remember()
        return True

    def action_clear(self) -> None:
        box = self.query_one("#filter-input", Input)
        if box.has_focus:
            self._cancel_filter()
            return
        if self.table.marked:
            self.table.clear_marks()
        elif self.filter_text:
            self.filter_text = ""
            self._apply()
            self._remember()
        self._update_bar()

    @on(RunsTable.HeaderClicked)
    def _header_clicked(self, event: RunsTable.HeaderClicked) -> None:
        self.sort_clicked(event.key)

    # -- marks and actions on runs -------------------------------------------------------
    def action_mark(self) -> None:
        self.table.toggle_mark()
        self.table.action_cursor(1)
        self._update_bar()

    def action_copy_id(self) -> None:
        """The selected run's full id to the clipboard (OSC 52: over SSH and tmux too)."""
        run = self._cursor_run()
        if run is None:
            return
        self.app.copy_to_clipboard(run["id"])
        self.notify(f"copied run id {run['id']}", timeout=3)

    # -- preview pane (≥ 160 columns) ------------------------------------------------------
    def on_resize(self) -> None:
        wide = self.size.width >= MIN_WIDTH
        self.query_one(RunPreview).set_class(not wide, "hidden")
        self._preview()

    @on(RunsTable.CursorMoved)
    def _cursor_moved(self, event: RunsTable.CursorMoved) -> None:
        self._preview(rest=True)  # drawn once the cursor rests: moving stays cheap

    def _preview(self, *, rest: bool = False) -> None:
        preview = self.query_one(RunPreview)
        if not preview.has_class("hidden"):
            preview.show(self.table.cursor_run, self.all_runs, rest=rest)

    def _cursor_run(self) -> Run | None:
        run = self.table.cursor_run
        if run is None:
            self.notify("no run selected", severity="warning")
        return run

    @on(RunsTable.Selected)
    def _open_detail(self, event: RunsTable.Selected) -> None:
        self.open_detail(event.run["id"])

    def open_detail(self, run_id: str) -> None:
        from ctui.tui.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(self.project, run_id, clock=self.clock))
