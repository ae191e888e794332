"""The runs screen's sort, and the choices it remembers per project (`.ctui/ui.json`: sort,
columns, filter), saved off the UI thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work

from ctui.errors import CtuiError
from ctui.query import check_sort
from ctui.tui.data import Column, Run, RunsView
from ctui.ui_state import RunsState, save_runs_state


class SortAndState:
    """Mixed into RunsScreen (which provides the columns, the runs and `_apply`)."""

    sort_key: str
    sort_desc: bool
    filter_text: str
    extra_keys: list[str] | None
    columns: list[Column]
    _ui_file: Path
    _state_lock: threading.Lock
    _pending_state: RunsState | None

    if TYPE_CHECKING:
        app: Any
        all_runs: list[Run]
        view: RunsView

        def notify(self, message: str, **kw: Any) -> None: ...
        def _apply(self, *, keep_error: bool = False) -> bool: ...
        def _rebuild_columns(self) -> None: ...
        def _warm_sort_keys(self) -> Any: ...

    # -- remembered state (.ctui/ui.json) ------------------------------------------------------
    def _restore(self, state: RunsState) -> None:
        if state.notice:
            self.notify(f"{state.notice}; using defaults", severity="warning", timeout=6)
        if state.columns is not None:
            self.extra_keys = state.columns
        if state.sort and self._sortable(state.sort):
            self.sort_key = state.sort
            if state.descending is not None:
                self.sort_desc = state.descending
        self.filter_text = state.filter

    def _remember(self) -> None:
        """Save the choices off the UI thread (a save fsyncs); the newest one wins."""
        self._pending_state = RunsState(
            self.sort_key, self.sort_desc, self.extra_keys, self.filter_text.strip()
        )
        self._save_state()

    @work(thread=True, group="ui-state", exit_on_error=False)
    def _save_state(self) -> None:
        error = self._flush_state()
        if error:
            try:
                self.app.call_from_thread(self.notify, error, severity="warning", timeout=5)
            except RuntimeError:
                pass  # the app is closing

    def _flush_state(self) -> str | None:
        with self._state_lock:
            state, self._pending_state = self._pending_state, None
            return None if state is None else save_runs_state(self._ui_file, state)

    def on_unmount(self) -> None:
        self._flush_state()  # a choice made just before quitting is kept

    # -- sort ----------------------------------------------------------------------------
    def _sortable(self, key: str) -> bool:
        """A column of the table or a field a run has (`ctui.query.check_sort`)."""
        if key in [c.key for c in self.columns]:
            return True
        try:
            bare = check_sort(key)
        except CtuiError:
            return False
        table = self.view.table  # a metric or param some run has (any, in an empty store)
        return bare == key and ("." not in key or not table.n or table.has(key))

    def sort_by(self, key: str, descending: bool | None = None) -> bool:
        """Sort by a column (None: keep the direction, or the column's natural one); an
        unknown key is refused with a message and changes nothing."""
        if not self._sortable(key):
            self.notify(f"cannot sort by {key!r}: no such column", severity="warning")
            return False
        if descending is None:
            descending = self.sort_desc if key == self.sort_key else self._natural_desc(key)
        self.sort_key, self.sort_desc = key, descending
        self._apply()
        self._remember()
        return True

    def _natural_desc(self, key: str) -> bool:
        """Numbers and times largest/newest first, text A→Z."""
        return next((c.numeric for c in self.columns if c.key == key), key == "started")

    def sort_clicked(self, key: str) -> None:
        """A click on a column's header: sort by it; again, the other way."""
        if key == self.sort_key:
            self.sort_by(key, not self.sort_desc)
        else:
            self.sort_by(key, self._natural_desc(key))

    def action_sort_column(self, step: int) -> None:
        keys = [c.key for c in self.columns]
        i = keys.index(self.sort_key) if self.sort_key in keys else 0
        key = keys[(i + step) % len(keys)]
        self.sort_by(key, self._natural_desc(key))  # numbers largest first, text A→Z

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_key, not self.sort_desc)

    def action_columns(self) -> None:
        from ctui.tui.data import all_extra_keys
        from ctui.tui.screens.columns import ColumnsScreen

        def chosen(keys: list[str] | None) -> None:
            if keys is not None:
                self.extra_keys = keys
                self._rebuild_columns()
                if not self._sortable(self.sort_key):
                    self.sort_key, self.sort_desc = "started", True
                self._apply()
                self._warm_sort_keys()
                self._remember()

        self.app.push_screen(
            ColumnsScreen(all_extra_keys(self.view.table), self.extra_keys or []), chosen
        )
