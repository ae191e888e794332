"""Find in logs (`f` on the runs list): a pattern searched across the logs of the marked runs,
the matching lines listed as they are found; enter opens a match's run on its log tab at
that line. The search is `ctui.log_grep.grep_runs`, in a worker thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ctui.errors import CtuiError
from ctui.format import seq, short_id
from ctui.logtext import plain
from ctui.tui.widgets.key_footer import KeyFooter
from ctui.tui.widgets.log_search import LogQuery
from ctui.tui.widgets.log_view import LogView

if TYPE_CHECKING:
    from ctui.log_grep import Match
    from ctui.project import Project
    from ctui.tui.data import Clock, Run

#: matches listed at most (the count goes on past it)
SHOWN = 5000
#: matches handed to the UI thread at once
BATCH = 200


class LogGrepScreen(Screen[None]):
    """`LogGrepScreen(project, runs)`: search the logs of `runs`."""

    HELP_SECTION = "Find in logs"
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = (
        "log_grep.back",
        "log_grep.regex",
        "log_grep.case",
        "log_grep.pattern",
    )
    DEFAULT_CSS = """
    LogGrepScreen #grep-input, LogGrepScreen #grep-input:focus {
        border: none;
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    LogGrepScreen #grep-hint, LogGrepScreen #grep-status {
        padding: 0 1;
        color: $text-muted;
    }
    LogGrepScreen #grep-results {
        height: 1fr;
        border: none;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="log_grep.back"),
        Binding("ctrl+r", "flip('regex')", "Regex", id="log_grep.regex"),
        Binding("ctrl+t", "flip('match_case')", "Case", id="log_grep.case"),
        Binding("slash", "pattern", "Pattern", id="log_grep.pattern"),
        Binding("j", "move('cursor_down')", "Down", show=False, id="log_grep.down"),
        Binding("k", "move('cursor_up')", "Up", show=False, id="log_grep.up"),
        Binding("g", "move('first')", "Top", show=False, id="log_grep.top"),
        Binding("G", "move('last')", "Bottom", show=False, id="log_grep.bottom"),
    ]

    def __init__(
        self, project: Project, runs: list[Run], *, clock: Clock | None = None, term: str = ""
    ) -> None:
        super().__init__()
        self.project = project
        self.runs = list(runs)
        self.clock = clock
        self.term = term
        self.regex = False
        self.match_case = False
        #: the search the list shows (what enter hands to the log tab)
        self.search_query: LogQuery | None = None
        self.matches: list[Match] = []
        self.count = 0
        self.runs_matched: set[str] = set()
        self.done = False

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="grep-title")
        yield Input(self.term, placeholder="find in logs (lower case: any case)", id="grep-input")
        yield Static(self._hint(), id="grep-hint")
        yield Static("", id="grep-status")
        yield OptionList(id="grep-results")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _title(self) -> Text:
        n = len(self.runs)
        names = ", ".join(seq(r) or short_id(r["id"]) for r in self.runs[:6])
        more = " …" if n > 6 else ""
        runs = f" of {n} run{'s' * (n != 1)}: "
        return Text.assemble(("Find in logs", "bold"), runs, names + more)

    def _hint(self) -> Text:
        def flag(key: str, name: str, on: bool) -> Text:
            state = ("on", "bold") if on else ("off", "dim")
            return Text.assemble((key, "bold"), f" {name} ", state)

        return Text("  ").join(
            [flag("ctrl+r", "regex", self.regex), flag("ctrl+t", "exact case", self.match_case)]
        )

    # -- actions ---------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss()

    def action_flip(self, name: str) -> None:
        setattr(self, name, not getattr(self, name))
        self.query_one("#grep-hint", Static).update(self._hint())
        if self.search_query is not None:  # the shown search again, with the new toggle
            self._start(self.query_one(Input).value)

    def action_pattern(self) -> None:
        self.query_one(Input).focus()

    def action_move(self, where: str) -> None:
        results = self.query_one(OptionList)
        results.focus()
        getattr(results, f"action_{where}")()

    @on(Input.Submitted, "#grep-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._start(event.value):
            self.query_one(OptionList).focus()

    def _start(self, value: str) -> bool:
        term = value.strip()
        if not term:
            return False
        query = LogQuery(term, self.regex, self.match_case)
        from ctui.log_grep import compile_pattern

        try:
            compiled = compile_pattern(
                term, regex=query.regex, ignore_case=not query.exact, what="find in logs"
            )
        except CtuiError as exc:
            self.notify(str(exc), severity="error", timeout=4)
            return False
        self.search_query = query
        self.matches, self.count, self.runs_matched, self.done = [], 0, set(), False
        self.query_one(OptionList).clear_options()
        self._status(0)
        self._search(compiled, [r["id"] for r in self.runs])
        return True

    # -- the search, in a thread -----------------------------------------------------------
    @work(thread=True, exclusive=True, group="log-grep")
    def _search(self, compiled: Any, run_ids: list[str]) -> None:
        from textual.worker import get_current_worker

        from ctui.log_grep import grep_run

        worker = get_current_worker()
        for i, run_id in enumerate(run_ids):
            batch: list[Match] = []
            for match in grep_run(self.project, run_id, compiled):
                if worker.is_cancelled:
                    return
                batch.append(match)
                if len(batch) >= BATCH:
                    self.app.call_from_thread(self._add, worker, batch, i)
                    batch = []
            self.app.call_from_thread(self._add, worker, batch, i + 1)
        self.app.call_from_thread(self._finish, worker)

    def _add(self, worker: Any, batch: list[Match], runs_done: int) -> None:
        if worker.is_cancelled:
            return
        self.count += len(batch)
        self.runs_matched.update(m.run_id for m in batch)
        room = SHOWN - len(self.matches)
        shown = batch[: max(room, 0)]
        self.matches.extend(shown)
        if shown:
            results = self.query_one(OptionList)
            results.add_options([Option(self._line(m)) for m in shown])
            if results.highlighted is None:
                results.highlighted = 0
        self._status(runs_done)

    def _finish(self, worker: Any) -> None:
        if worker.is_cancelled:
            return
        self.done = True
        self._status(len(self.runs))

    def _line(self, match: Match) -> Text:
        run = next((r for r in self.runs if r["id"] == match.run_id), {"id": match.run_id})
        handle = f"{seq(run)} {short_id(match.run_id)}".strip()
        where = (f":{match.line_no}", "dim")
        return Text.assemble((handle, "bold"), where, ": ", plain(match.text))

    def status_text(self) -> str:
        """`12 matches in 3 runs` (and how far the search is while it runs)."""
        noun = "match" if self.count == 1 else "matches"
        n = len(self.runs_matched)
        text = f"{self.count} {noun} in {n} run{'s' * (n != 1)}"
        if self.count > len(self.matches):
            text += f" (first {len(self.matches)} listed)"
        return text

    def _status(self, runs_done: int) -> None:
        text = self.status_text()
        if not self.done:
            text += f" · searching {runs_done}/{len(self.runs)} logs …"
        self.query_one("#grep-status", Static).update(Text(text))

    # -- opening a match -------------------------------------------------------------------
    @on(OptionList.OptionSelected, "#grep-results")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self.matches) and self.search_query is not None:
            self.open_match(self.matches[event.option_index], self.search_query)

    def open_match(self, match: Match, query: LogQuery) -> None:
        """The run's detail on its log tab, the search set and the view at the match."""
        from ctui.tui.screens.run_detail import RunDetailScreen

        detail = RunDetailScreen(self.project, match.run_id, clock=self.clock)
        self.app.push_screen(detail)
        detail.call_after_refresh(_show_line, detail, query, match.line_no - 1)


def _show_line(detail: Any, query: LogQuery, line: int) -> None:
    """On the detail's log tab: search `query`, go to its match on (0-based) `line`."""
    detail.action_tab("log")
    detail.query_one("#detail-log", LogView).find_at(query, line)
