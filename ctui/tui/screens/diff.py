"""The diff screen: two runs side by side, section by section; more runs as a compare table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from ctui.errors import CtuiError
from ctui.tui.widgets.diff_rows import build_rows, short
from ctui.tui.widgets.diff_view import DiffView
from ctui.tui.widgets.key_footer import KeyFooter
from ctui.tui.widgets.nav_table import NavTable

if TYPE_CHECKING:
    from ctui.project import Project

Run = dict[str, Any]


def run_label(doc: Run) -> str:
    """`<id>  <job>  <status>` — how a run is named in headings."""
    return f"{doc.get('id', '?')}  {doc.get('job') or ''}  {doc.get('status') or ''}".strip()


def reproduce_lines(docs: list[Run]) -> list[str]:
    """ "B reproduces A: reproduced" for each run that reproduces another and has a verdict."""
    lines = []
    for doc in docs:
        original = doc.get("reproduces")
        if original:
            verdict = doc.get("verdict") or "not compared yet"
            lines.append(f"{doc.get('id')} reproduces {original}: {verdict}")
    return lines


def champion_line(project: Project, store: Any, docs: list[Run]) -> str | None:
    """ "challenger vs champion: acc +0.012, gate passed" when one of two runs of a job is
    that job's champion (the other is the challenger); None otherwise."""
    from ctui.gate.champion import champions
    from ctui.tui.gate_view import challenger_gate, challenger_line, gate_rules

    if len(docs) != 2 or docs[0].get("job") != docs[1].get("job"):
        return None
    job = str(docs[0].get("job") or "")
    try:
        champion = champions(store).get(job)
    except (CtuiError, OSError):
        return None
    ids = [d.get("id") for d in docs]
    if champion not in ids or ids[0] == ids[1]:
        return None
    champ, challenger = (docs[0], docs[1]) if ids[0] == champion else (docs[1], docs[0])
    gate = challenger_gate(project, store, challenger)
    return challenger_line(champ, challenger, gate_rules(project, job), gate)


def _loaded(view: dict[str, Any], objects: Any, load: Any) -> dict[str, Any]:
    try:
        return dict(load(view, objects))
    except CtuiError:  # a missing object: the diff itself already says what it can
        return view


class DiffScreen(Screen[None]):
    """`DiffScreen(project, run_ids)`: 2 runs → side-by-side diff; more → compare table."""

    CSS_PATH = "diff.tcss"
    HELP_SECTION = "Diff"
    #: footer priority (see ctui/tui/widgets/key_footer.py)
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = (
        "diff.back",
        "diff.next",
        "diff.previous",
        "diff.search",
        "diff.only_changed",
        "diff.reload",
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="diff.back"),
        Binding("o", "toggle_only_changed", "Only changed", id="diff.only_changed"),
        Binding("right_square_bracket,n", "next_change", "Next change", id="diff.next"),
        Binding("left_square_bracket,N", "previous_change", "Prev change", id="diff.previous"),
        Binding("slash", "search", "Search", id="diff.search"),
        Binding("r", "reload", "Reload", id="diff.reload"),
    ]

    def __init__(self, project: Project, run_ids: list[str]) -> None:
        super().__init__()
        self.project = project
        self.run_ids = list(run_ids)
        self.docs: list[Run] = []
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        #: "challenger vs champion: …" when one side is its job's champion
        self.champion_line: str | None = None
        #: the applied search (pair: rows searched with n/N) or filter (compare table)
        self.search = ""

    @property
    def is_pair(self) -> bool:
        return len(self.run_ids) == 2

    def compose(self) -> ComposeResult:
        yield Static("", id="diff-title")
        yield Static(Text("comparing…"), id="diff-verdict")
        yield Static("", id="diff-repro")
        yield Static("", id="diff-champion")
        if self.is_pair:
            yield Static("", id="diff-columns")
            yield DiffView(id="diff-view")
        else:
            yield NavTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        placeholder = "search the rows" if self.is_pair else "filter the rows by key or value"
        yield Input(placeholder=placeholder, id="diff-search")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#diff-search").display = False
        self.query_one("#diff-repro").display = False
        self.query_one("#diff-champion").display = False
        self._body().loading = True
        self.load()

    def _body(self) -> DiffView | DataTable[Any]:
        if self.is_pair:
            return self.query_one(DiffView)
        return self.query_one(DataTable)

    # -- loading ---------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="diff-load")
    def load(self) -> None:
        """Read the runs and diff them off the UI thread (git and object reads are slow)."""
        from ctui.diff import compare_many, diff_runs, load_sections, run_view
        from ctui.objects import ObjectStore
        from ctui.store import Store

        try:
            if len(self.run_ids) < 2:
                raise CtuiError("pick at least two runs to compare", hint="mark runs with space")
            store = Store(self.project.store_file).snapshot()  # one read for every run
            objects = ObjectStore(self.project.objects_dir)
            docs = [store.get_run(store.resolve(r)) for r in self.run_ids]
            views = [run_view(d, objects) for d in docs]
            if len(views) == 2:
                result = diff_runs(views[0], views[1], objects=objects, repo=self.project.root)
                # loaded sections give the unchanged keys of changed sections, for context
                loaded = [_loaded(v, objects, load_sections) for v in views]
                line = champion_line(self.project, store, docs)
                payload: tuple[Any, ...] = (docs, result, loaded, line)
            else:
                payload = (docs, compare_many(views), views, None)
        except CtuiError as exc:
            self.app.call_from_thread(self._show_error, exc.message, exc.hint)
            return
        except Exception as exc:  # noqa: BLE001 - shown in the screen, never a crash
            self.app.call_from_thread(self._show_error, f"{type(exc).__name__}: {exc}", None)
            return
        self.app.call_from_thread(self._show, *payload)

    def _show_error(self, message: str, hint: str | None) -> None:
        self.error = message
        text = Text("✗ ", style="bold red")
        text.append(message)
        if hint:
            text.append(f"  ({hint})", style="dim")
        self.query_one("#diff-verdict", Static).update(text)
        self._body().loading = False

    def _show(
        self, docs: list[Run], result: dict[str, Any], views: list[Any], line: str | None
    ) -> None:
        self.docs = docs
        self.result = result
        self.error = None
        self.champion_line = line
        gate_widget = self.query_one("#diff-champion", Static)
        gate_widget.display = bool(line)
        gate_widget.update(Text(f"★ {line}" if line else ""))
        body = self._body()
        body.loading = False
        if len(docs) == 2:
            title = "  vs  ".join(run_label(d) for d in docs)
        else:  # the table's columns name the runs; the title must fit at 80 columns
            title = f"compare {len(docs)} runs: " + "  ".join(
                f"{d.get('id', '?')} {d.get('status') or ''}".strip() for d in docs
            )
        self.query_one("#diff-title", Static).update(Text(title, style="bold"))
        repro = reproduce_lines(docs)
        repro_widget = self.query_one("#diff-repro", Static)
        repro_widget.display = bool(repro)
        repro_widget.update(Text("\n".join(f"repro: {line}" for line in repro)))
        if isinstance(body, DiffView):
            verdict = result.get("verdict") or ("identical" if result.get("identical") else "")
            marker = "=" if result.get("identical") else "≠"
            self.query_one("#diff-verdict", Static).update(Text(f"{marker} {verdict}"))
            self.query_one("#diff-columns", Static).update(self._columns_heading(docs))
            body.set_rows(build_rows(result, views[0], views[1]))
            body.focus()
        else:
            self._fill_table(body, docs, result)

    def _columns_heading(self, docs: list[Run]) -> Text:
        width = max(20, self.query_one(DiffView).scrollable_content_region.width or self.size.width)
        col = max(10, (width - 5) // 2)
        a = Text(f"  A  {run_label(docs[0])}")
        a.truncate(col + 2, overflow="ellipsis", pad=True)
        a.append(" │ ")
        a.append(f"B  {run_label(docs[1])}")
        a.stylize("bold")
        return a

    def _fill_table(self, table: DataTable[Any], docs: list[Run], result: dict[str, Any]) -> None:
        rows = result.get("rows") or []
        shown = [r for r in rows if _row_matches(r, self.search)]
        table.clear(columns=True)
        table.add_column("", key="kind")
        table.add_column("key", key="key")
        for i, doc in enumerate(docs):
            table.add_column(str(doc.get("id", i)), key=f"run{i}")
        for row in shown:
            values = [Text(short(v)) for v in row.get("values", [])]
            table.add_row(Text(row.get("kind", "")), Text(str(row.get("key", ""))), *values)
        verdict = f"{len(rows)} params/metrics/sections differ across {len(docs)} runs"
        if not rows:
            verdict = f"no params, metrics or sections differ across {len(docs)} runs"
        if self.search:
            verdict += f" · {len(shown)} match {self.search!r}"
        self.query_one("#diff-verdict", Static).update(Text(verdict))
        table.focus()

    # -- actions ---------------------------------------------------------------------------
    def action_back(self) -> None:
        box = self.query_one("#diff-search", Input)
        if box.display:  # escape in the search box cancels it, keeping what was applied
            box.value = self.search
            self._close_search()
            return
        self.dismiss(None)

    def action_search(self) -> None:
        box = self.query_one("#diff-search", Input)
        box.display = True
        box.value = self.search
        box.focus()

    def _close_search(self) -> None:
        self.query_one("#diff-search", Input).display = False
        if self.result is not None or self.error is not None:
            self._body().focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "diff-search":
            return
        event.stop()
        self.search = event.value.strip()
        self._close_search()
        if not self.is_pair:
            if self.result is not None:
                self._fill_table(self.query_one(DataTable), self.docs, self.result)
        elif self.search and not self.query_one(DiffView).find(self.search):
            self.notify(f"no row holds {self.search!r}", severity="warning", timeout=3)

    def action_reload(self) -> None:
        self._body().loading = True
        self.load()

    def action_toggle_only_changed(self) -> None:
        if self.is_pair:
            view = self.query_one(DiffView)
            view.only_changed = not view.only_changed

    def action_next_change(self) -> None:
        self._step(forward=True)

    def action_previous_change(self) -> None:
        self._step(forward=False)

    def _step(self, *, forward: bool) -> None:
        """`n`/`N` (and `]`/`[`): the next search match while a search is applied, else the
        next change."""
        if not self.is_pair:
            return
        view = self.query_one(DiffView)
        if self.search:
            if not view.find(self.search, forward=forward):
                self.notify(f"no row holds {self.search!r}", timeout=1.5)
        elif not (view.next_change() if forward else view.previous_change()):
            self.notify("no later change" if forward else "no earlier change", timeout=1.5)


def _row_matches(row: dict[str, Any], needle: str) -> bool:
    if not needle:
        return True
    cells = [str(row.get("kind", "")), str(row.get("key", ""))]
    cells += [short(v) for v in row.get("values", [])]
    return needle.lower() in " ".join(cells).lower()
