"""The runs screen's actions on the selected runs: diff, launch, live view, triggers, stop
and reproduce (the last two after a yes/no question, in a worker)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from ctui.errors import CtuiError

if TYPE_CHECKING:
    from ctui.project import Project
    from ctui.tui.data import Clock, Run


class RunActions:
    """Mixed into RunsScreen (which provides `project`, `clock`, `diff_ids`, `_cursor_run`,
    `reload` and the Screen's `app` / `notify`)."""

    project: Project
    clock: Clock | None

    if TYPE_CHECKING:
        app: Any

        def notify(self, message: str, **kw: Any) -> None: ...

        table: Any
        all_runs: list[Run]

        def _cursor_run(self) -> Run | None: ...
        def reload(self) -> None: ...

    def diff_ids(self) -> list[str]:
        """Marked runs, or the cursor run and the run of the same job before it."""
        marked = self.table.marked_runs()
        if len(marked) >= 2:
            return [r["id"] for r in sorted(marked, key=lambda r: r["id"])]
        run = self.table.cursor_run
        if run is None:
            return []
        older = [r for r in self.all_runs if r["id"] < run["id"]]
        same_job = [r for r in older if r.get("job") == run.get("job")]
        before = (same_job or older)[-1:]
        return [before[0]["id"], run["id"]] if before else []

    def action_diff(self) -> None:
        ids = self.diff_ids()
        if len(ids) < 2:
            self.notify(
                "mark two runs with space (or pick a run that has an earlier one)",
                severity="warning",
            )
            return
        from ctui.tui.screens.diff import DiffScreen

        self.app.push_screen(DiffScreen(self.project, ids))

    def action_find_logs(self) -> None:
        """`f`: search the logs of the marked runs (none marked: the cursor run)."""
        runs = sorted(self.table.marked_runs(), key=lambda r: r["id"])
        if not runs:
            run = self._cursor_run()
            if run is None:
                return
            runs = [run]
        from ctui.tui.screens.log_grep import LogGrepScreen

        self.app.push_screen(LogGrepScreen(self.project, runs, clock=self.clock))

    def action_launch(self) -> None:
        from ctui.tui.screens.launch import LaunchScreen

        self.app.push_screen(LaunchScreen(self.project))

    def action_live(self) -> None:
        run = self._cursor_run()
        if run is None:
            return
        from ctui.tui.screens.live_run import LiveRunScreen

        self.app.push_screen(LiveRunScreen(self.project, run["id"], clock=self.clock))

    def action_triggers(self) -> None:
        from ctui.tui.screens.triggers import TriggersScreen

        self.app.push_screen(TriggersScreen(self.project, clock=self.clock))

    def action_stop(self) -> None:
        run = self._cursor_run()
        if run is None:
            return
        if run.get("status") not in ("queued", "running"):
            self.notify(f"run {run['id']} is {run.get('status')}, not running", severity="warning")
            return
        from ctui.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._stop(run["id"])

        self.app.push_screen(
            ConfirmScreen(
                f"Stop run {run['id']}?",
                f"job {run.get('job')}: the process group "
                "gets SIGTERM, then SIGKILL after a grace period",
            ),
            answered,
        )

    @work(thread=True, group="runs-actions", exit_on_error=False)
    def _stop(self, run_id: str) -> None:
        from ctui.jobs.stop import stop_run

        try:
            doc = stop_run(self.project, run_id)
            msg, severity = f"run {run_id}: {doc.get('status', 'stopped')}", "information"
        except CtuiError as exc:
            msg, severity = str(exc), "error"
        self.app.call_from_thread(self.notify, msg, severity=severity)
        self.app.call_from_thread(self.reload)

    def action_reproduce(self) -> None:
        run = self._cursor_run()
        if run is None:
            return
        from ctui.reproduce import reproduce_run as reproduce
        from ctui.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(f"reproducing {run['id']}…")
                self._reproduce(reproduce, run["id"])

        self.app.push_screen(
            ConfirmScreen(
                f"Reproduce run {run['id']}?",
                "rebuilds its code, data and environment and runs it again",
            ),
            answered,
        )

    @work(thread=True, group="runs-actions", exit_on_error=False)
    def _reproduce(self, reproduce: Any, run_id: str) -> None:
        try:

            def progress(message: str) -> None:
                self.app.call_from_thread(self.notify, message, timeout=4)

            result = reproduce(self.project, run_id, progress=progress)
            verdict = result.get("verdict") if isinstance(result, dict) else result
            msg, severity = f"reproduce {run_id}: {verdict}", "information"
        except CtuiError as exc:
            msg, severity = str(exc), "error"
        self.app.call_from_thread(self.notify, msg, severity=severity, timeout=10)
