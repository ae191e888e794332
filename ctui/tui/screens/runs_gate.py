"""The runs screen's gate actions: the champions' ★, `C` to diff a run against its job's
champion, `P` to promote a run by hand (after a yes/no question, in a worker: promoting may
run the job's `on_promote` command)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from ctui.errors import CtuiError
from ctui.gate.champion import champions
from ctui.run_columns import RunColumns
from ctui.tui.data import Run, RunsView

if TYPE_CHECKING:
    from ctui.project import Project
    from ctui.store import Store
    from ctui.tui.widgets.runs_table import RunsTable


class GateActions:
    """Mixed into RunsScreen (which provides `project`, `store`, `table`, `all_runs`)."""

    project: Project
    store: Store
    champions: dict[str, str]

    if TYPE_CHECKING:

        @property
        def table(self) -> RunsTable: ...

        all_runs: list[Run]
        view: RunsView
        app: Any

        def notify(self, message: str, **kw: Any) -> None: ...
        def reload(self) -> None: ...
        def _cursor_run(self) -> Run | None: ...

    def read_runs(self) -> tuple[RunColumns, dict[str, str]]:
        """Every run's table fields (from the segment indexes) and job → champion run id,
        from one read of the store."""
        snapshot = self.store.snapshot()
        return snapshot.columns(), champions(snapshot)

    def read_first(self, page: int) -> tuple[RunColumns, dict[str, str], int]:
        """For the first frame: every run when there are at most `page`, else the newest
        `page` (read from their own segments) and how many runs the store holds."""
        snapshot = self.store.snapshot()
        newest, total = snapshot.newest(page)
        if total <= page:
            return snapshot.columns(), champions(snapshot), 0
        return RunColumns.from_runs(newest[::-1]), champions(snapshot), total

    def show_champions(self, champions: dict[str, str]) -> None:
        self.champions = champions
        ids = set(champions.values())
        self.table.set_champions(ids, show=bool(ids) or self.view.table.has("gate"))

    def _whole(self, run: Run) -> Run:
        """The run's whole document (the table holds only its table fields)."""
        try:
            return self.store.get_run(run["id"], checked=False)
        except (CtuiError, OSError):
            return run

    # -- C: this run against its job's champion --------------------------------------------
    def action_champion_diff(self) -> None:
        run = self._cursor_run()
        if run is None:
            return
        job = run.get("job") or ""
        champion = self.champions.get(job)
        if champion is None:
            self.notify(f"job {job} has no champion yet", severity="warning")
            return
        if champion == run["id"]:
            self.notify(f"run {run['id']} is the champion of {job}", severity="warning")
            return
        from ctui.tui.screens.diff import DiffScreen

        self.app.push_screen(DiffScreen(self.project, [champion, run["id"]]))

    # -- P: promote by hand ---------------------------------------------------------------
    def action_promote(self) -> None:
        run = self._cursor_run()
        if run is None:
            return
        job = run.get("job") or ""
        if self.champions.get(job) == run["id"]:
            self.notify(f"run {run['id']} already is the champion of {job}", severity="warning")
            return
        from ctui.tui.screens.confirm import ConfirmScreen

        current = self.champions.get(job)
        detail = f"job {job}: " + (f"replaces champion {current}" if current else "first champion")
        detail += "; the job's on_promote command runs, if it has one"
        gate = self._whole(run).get("gate")
        if isinstance(gate, dict) and gate.get("passed") is False and gate.get("verdict"):
            detail += f". The gate said: {gate['verdict']}"

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(f"promoting {run['id']}…", timeout=3)
                self._promote(run["id"])

        self.app.push_screen(ConfirmScreen(f"Promote run {run['id']}?", detail), answered)

    @work(thread=True, group="runs-actions", exit_on_error=False)
    def _promote(self, run_id: str) -> None:
        from ctui.gate.champion import promote

        try:
            record = promote(self.project, self.store, run_id, by="manual")
            msg, severity = promotion_message(record, run_id)
        except CtuiError as exc:
            msg, severity = str(exc), "error"
        except OSError as exc:
            msg, severity = f"cannot promote {run_id}: {exc}", "error"
        self.app.call_from_thread(self.notify, msg, severity=severity, timeout=8)
        self.app.call_from_thread(self.reload)


def promotion_message(record: Any, run_id: str) -> tuple[str, str]:
    """What a finished promotion says, and how loud: a failed on_promote or a rollback warns."""
    if not isinstance(record, dict):
        return f"run {run_id} promoted", "information"
    job = record.get("job") or ""
    if record.get("unchanged"):
        return f"run {run_id} already is the champion of {job}", "information"
    msg = f"run {run_id} is the champion of {job}"
    if record.get("previous"):
        msg += f" (was {record['previous']})"
    severity = "information"
    hook = record.get("on_promote")
    if isinstance(hook, dict) and hook.get("ok") is False:
        msg += f"; on_promote failed: {hook.get('error') or hook.get('exit_code')}"
        severity = "warning"
    elif isinstance(hook, dict):
        msg += "; on_promote ran"
    registered = record.get("registered")
    if isinstance(registered, dict) and registered.get("ok") is False:
        msg += f"; registering the model failed: {registered.get('error')}"
        severity = "warning"
    elif isinstance(registered, dict) and registered.get("version") is not None:
        msg += f"; registered {registered.get('name')} version {registered['version']}"
    if record.get("rolled_back"):
        msg = f"run {run_id} was promoted, then rolled back: on_promote failed"
        severity = "warning"
    return msg, severity
