"""The runs screen's `p`: the marked runs' metric histories overlaid on one chart (the cursor
run alone when none is marked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctui.project import Project
    from ctui.tui.widgets.runs_table import RunsTable


class PlotActions:
    """Mixed into RunsScreen (which provides `project` and `table`)."""

    project: Project

    if TYPE_CHECKING:

        @property
        def table(self) -> RunsTable: ...

        app: Any

        def notify(self, message: str, **kw: Any) -> None: ...

    def plot_ids(self) -> list[str]:
        """The marked runs in id (time) order, else the cursor run."""
        marked = self.table.marked_runs()
        if marked:
            return sorted(r["id"] for r in marked)
        run = self.table.cursor_run
        return [run["id"]] if run is not None else []

    def action_plot(self) -> None:
        ids = self.plot_ids()
        if not ids:
            self.notify("no run to plot: mark runs with space", severity="warning")
            return
        from ctui.tui.screens.compare_plot import ComparePlotScreen

        self.app.push_screen(ComparePlotScreen(self.project, ids))
