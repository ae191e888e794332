"""`ctui manifest` (what this box/project is made of) and `ctui diff` (why two runs differ)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ctui.cli import common
from ctui.errors import CtuiError, ExitCode
from ctui.numbers import DEFAULT_REL_TOL

SECTION_HELP = "Only this section (repeatable): data, code, env, compute, params, metrics."


def register(app: typer.Typer) -> None:
    app.command("manifest")(manifest)
    app.command("diff")(diff)


# -- ctui manifest -----------------------------------------------------------------------------


def _capture_root() -> tuple[Path, Path | None, Any]:
    """(root, cache dir, project or None): the ctui project, else the git toplevel, else cwd."""
    try:
        project = common.project()
        return project.root, project.cache_dir, project
    except CtuiError:
        pass
    start = common.STATE.project_dir or Path.cwd()
    import subprocess

    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True
        )
        if top.returncode == 0 and top.stdout.strip():
            return Path(top.stdout.strip()), None, None
    except OSError:
        pass
    return Path(start), None, None


def manifest(
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    section: Annotated[
        list[str] | None,
        typer.Option(
            "--section", "-s", help="Only this section (repeatable): data, code, env, compute."
        ),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option("--job", "-j", help="Also hash the data paths this job declares."),
    ] = None,
    data: Annotated[
        list[str] | None, typer.Option("--data", help="Also hash this data path (repeatable).")
    ] = None,
    python: Annotated[
        str | None,
        typer.Option("--python", help="Record this interpreter's env (a path or a name on PATH)."),
    ] = None,
) -> None:
    """Capture and show the manifest here: data, code, env and compute, each with its hash.

    The env section describes the job's interpreter with --job (as a run of it would record
    it), the one given with --python, else the `python3` on PATH — never ctui's own.
    Works outside a ctui project too (the git top level or the current folder is the root).
    `ctui manifest --json > m.json` writes a file that `ctui diff` accepts in place of a run.
    """
    import os

    from ctui import manifest as mf
    from ctui.config import load_config
    from ctui.jobs import capture

    root, cache_dir, project = _capture_root()
    if cache_dir is not None and not cache_dir.is_dir():
        cache_dir = None  # never create .ctui/ as a side effect of looking
    config = load_config(project.root if project else root)
    data_paths = list(data or [])
    env = dict(os.environ)
    describe = None
    if job:
        spec = config.job(job)
        data_paths += spec.data
        env.update(spec.env)
        describe = capture.job_describer(
            spec, root, project.root if project else root, env, cache_dir=cache_dir
        )
    if python:
        describe = capture.interpreter_describer(python, env, Path.cwd(), cache_dir)
    doc = mf.capture(
        root,
        sections=section or mf.SECTIONS,
        data_paths=data_paths,
        cache_dir=cache_dir,
        env=env,
        python=describe,
        options=config.manifest,
    )
    if as_json:
        common.emit_json(mf.to_json(doc))
        return
    _print_manifest(doc)


def _print_manifest(doc: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    from ctui import format as fmt

    tree = Tree(f"[bold]manifest[/] of {escape(doc['root'])}")
    for name, s in doc["sections"].items():
        label = f"[bold]{name}[/]  [dim]{s['hash'][:12]}[/]"
        if s["status"] != "ok":
            tree.add(f"{label}  [yellow]absent[/]: {escape(str(s['reason']))}")
            continue
        node = tree.add(label)
        for line in _section_lines(name, s, fmt):
            node.add(escape(line) if isinstance(line, str) else line)
    common.console().print(tree)


def _section_lines(name: str, s: dict[str, Any], fmt: Any) -> list[Any]:
    if name == "data":
        return (
            [_data_table(s, fmt)]
            if s["paths"]
            else ["no tracked paths"] + [f"problem: {p}" for p in s.get("problems", [])]
        )
    if name == "code":
        lines = [f"commit {s['commit']}  branch {s['branch'] or '(detached)'}"]
        if s.get("remote"):
            lines.append(f"remote {s['remote']}")
        dirty = f"dirty: {len(s['changed_files'])} changed file(s)" if s["dirty"] else "clean"
        if s.get("patch"):
            dirty += f", patch {fmt.bytes_(s['patch']['size'])} ({s['patch']['id'][:12]})"
        lines.append(dirty)
        if s["untracked_count"]:
            lines.append(f"untracked: {s['untracked_count']} ({', '.join(s['untracked'][:5])}…)")
        return lines
    if name == "env":
        py = s["python"]
        lines = [
            f"{py['implementation']} {py['version']}  {py['executable']}",
            f"{s['os']['distro'] or s['os']['system']}  kernel {s['os']['kernel']}",
            f"{len(s['packages'])} packages",
        ]
        if s.get("container"):
            c = s["container"]
            lines.append(f"container {c['runtime']} image {c['image_id'] or '?'}")
        if s.get("cuda"):
            lines.append("  ".join(f"{k} {v}" for k, v in s["cuda"].items()))
        lines.append(f"{len(s['variables'])} environment variables (secrets redacted)")
        return lines
    if name == "compute":
        cpu = s["cpu"]
        lines = [
            f"host {s['host']}",
            f"cpu {cpu['model']}  {cpu['physical_cores']} cores / {cpu['logical_cores']} threads",
            f"ram {fmt.bytes_(s['memory_total'])}  disk {fmt.bytes_(s['disk_total'])}",
        ]
        for g in s["gpus"]:
            lines.append(
                f"gpu{g['index']} {g.get('name', '?')} {fmt.bytes_(g.get('memory_total'))}"
            )
        if not s["gpus"]:
            lines.append(f"no GPU: {s['gpu_reason']}")
        elif s.get("gpu_driver"):
            d = s["gpu_driver"]
            lines.append(f"driver {d.get('version', '?')}  CUDA {d.get('cuda', '?')}")
        return lines
    return []


def _data_table(s: dict[str, Any], fmt: Any) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
    for col in ("path", "hash", "size", "files"):
        table.add_column(col)
    for path, e in list(s["paths"].items())[:200]:
        h = e.get("hash") or ("missing" if e.get("missing") else "—")
        cells = (path, str(h)[:12], fmt.bytes_(e.get("size")), str(e.get("nfiles", "")))
        table.add_row(*(Text(c) for c in cells))  # file names are never markup
    if len(s["paths"]) > 200:
        table.add_row(Text(f"… {len(s['paths']) - 200} more"), "", "", "")
    return table


# -- ctui diff ---------------------------------------------------------------------------------


def diff(
    refs: Annotated[
        list[str],
        typer.Argument(
            help="Two or more run ids/prefixes, or manifest JSON files written by "
            "`ctui manifest --json`."
        ),
    ],
    section: Annotated[list[str] | None, typer.Option("--section", "-s", help=SECTION_HELP)] = None,
    only_changed: Annotated[
        bool, typer.Option("--only-changed", help="Leave identical sections out.")
    ] = False,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all", help="List the unchanged keys of changed sections too (default: a count)."
        ),
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            min=0.0,
            metavar="REL",
            help="Relative tolerance for float params and metrics (integers: exact).",
        ),
    ] = DEFAULT_REL_TOL,
    patch: Annotated[
        bool | None,
        typer.Option(
            "--patch/--no-patch",
            help="Print the patches: commit to commit, and each run's uncommitted changes "
            "(default: on when stdout is a terminal).",
            show_default=False,
        ),
    ] = None,
    no_pager: Annotated[
        bool, typer.Option("--no-pager", help="Never page long output (or CTUI_PAGER=cat).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when they differ (like git diff).")
    ] = False,
    tui: Annotated[
        bool, typer.Option("--tui", help="Open the diff in the terminal UI (runs only).")
    ] = False,
) -> None:
    """Show why runs differ: a one-line verdict, then data, code, env, compute, params, metrics.

    Floats within --tolerance are the same value. Unchanged keys are counted, not listed
    (--all lists them). On a terminal the patches follow, and long output is paged.
    With more than two runs: a table of the params, metrics and sections that differ.
    """
    from ctui import diff as engine
    from ctui.cli import pager

    if len(refs) < 2:
        raise CtuiError("ctui diff needs at least two runs", hint="ctui diff RUN_A RUN_B")
    if tui:
        from ctui.cli.tui_cmds import open_diff

        open_diff(refs)
        return
    views, objects, repo = _views(refs)
    if len(views) > 2:
        table = engine.compare_many(
            [engine.load_sections(v, objects) for v in views], rel_tol=tolerance
        )
        if section:
            table["rows"] = [r for r in table["rows"] if _row_section(r) in section]
        if as_json:
            common.emit_json(table)
        else:
            _print_compare(table)
        if exit_code and table["rows"]:
            raise typer.Exit(int(ExitCode.FAILED))
        return
    result = engine.diff_runs(
        views[0], views[1], sections=section, objects=objects, repo=repo, rel_tol=tolerance
    )
    if only_changed:
        result["sections"] = {n: s for n, s in result["sections"].items() if n in result["changed"]}
    if as_json:
        common.emit_json(result)
    else:
        show_patch = pager.stdout_is_terminal() if patch is None else patch
        text = _render_diff(
            result, _unchanged(result, views, objects), show_all=show_all, show_patch=show_patch
        )
        pager.show(text, page=not no_pager)
    if exit_code and not result["identical"]:
        raise typer.Exit(int(ExitCode.FAILED))


def _unchanged(
    result: dict[str, Any], views: list[dict[str, Any]], objects: Any
) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Per changed section, its unchanged keys (with their two values), for counts and --all."""
    from ctui import diff as engine

    changed = {n: s for n, s in result["sections"].items() if s["status"] == "changed"}
    loaded = [engine.load_sections(v, objects, list(changed)) for v in views]
    out = {}
    for name, s in changed.items():
        same = engine.unchanged(name, s, loaded[0], loaded[1])
        if same:
            out[name] = same
    return out


def _row_section(row: dict[str, Any]) -> str:
    return {"param": "params", "metric": "metrics"}.get(row["kind"], row["key"])


def _views(refs: list[str]) -> tuple[list[dict[str, Any]], Any, Path | None]:
    """Each ref as a view: a manifest JSON file if such a file exists, else a run id/prefix."""
    from ctui import diff as engine

    views: list[dict[str, Any]] = []
    objects = None
    repo: Path | None = None
    store: Any = None
    for ref in refs:
        path = Path(ref)
        if path.is_file():
            views.append(engine.manifest_view(_read_manifest_file(path), ref))
            continue
        if store is None:  # one read for all refs: each run's own segment, once
            from ctui.objects import ObjectStore

            project = common.project()
            store = common.store().snapshot()
            objects = ObjectStore(project.objects_dir)
            repo = project.root
        views.append(engine.run_view(store.get_run(store.resolve(ref), checked=False), objects))
    if repo is None:
        repo = Path.cwd()
    return views, objects, repo


def _read_manifest_file(path: Path) -> dict[str, Any]:
    import orjson

    from ctui.manifest import from_json

    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise CtuiError(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CtuiError(
            f"{path} is not valid JSON: {exc}",
            hint="write manifests with `ctui manifest --json > FILE`",
        ) from None
    try:
        return from_json(doc)
    except CtuiError as exc:
        raise CtuiError(f"{path}: {exc.message}", hint=exc.hint) from None


# -- human output ------------------------------------------------------------------------------

_LOOK = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow")}


def _short(value: Any, width: int = 60) -> str:
    from ctui import format as fmt

    if isinstance(value, dict) and "hash" in value:
        bits = [str(value.get("hash") or "—")[:12]]
        if value.get("size") is not None:
            bits.append(fmt.bytes_(value["size"]))
        if value.get("nfiles") is not None:
            bits.append(f"{value['nfiles']} files")
        if value.get("missing"):
            bits.append("missing")
        return " ".join(bits)
    if isinstance(value, int | float) and not isinstance(value, bool) or value is None:
        return fmt.significant(value)
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class _Output:
    """Human output gathered as text before it is shown, so that long output can be paged.

    Rich renderables are rendered by the console (colour only on a terminal); patches go in
    as they are when there is no colour, so `ctui diff A B --patch > x.patch` keeps them
    byte for byte (tabs, trailing spaces).
    """

    def __init__(self) -> None:
        self.console = common.console()
        self.colour = self.console.is_terminal and self.console.color_system is not None
        self.parts: list[str] = []

    def print(self, *renderables: Any, **options: Any) -> None:
        with self.console.capture() as captured:
            self.console.print(*renderables, **options)
        self.parts.append(captured.get())

    def patch(self, text: str) -> None:
        if not self.colour:
            self.parts.append(text if text.endswith("\n") else text + "\n")
            return
        self.print(_coloured_patch(text), soft_wrap=True)

    def text(self) -> str:
        return "".join(self.parts)


#: lines of a patch's file header (before its first @@), shown bold as git does
_PATCH_HEADERS = ("--- ", "+++ ", "index ", "new ", "deleted ", "old ", "similarity ",
                  "dissimilarity ", "rename ", "copy ", "Binary ")  # fmt: skip


def _coloured_patch(patch: str) -> Any:
    """A unified diff as rich Text (never markup): + green, - red, @@ cyan, headers bold."""
    from rich.text import Text

    out = Text()  # ends in the one newline print adds
    in_hunk = False
    for line in (patch[:-1] if patch.endswith("\n") else patch).splitlines(keepends=True):
        if line.startswith("diff "):
            in_hunk, style = False, "bold"
        elif line.startswith("@@"):
            in_hunk, style = True, "cyan"
        elif not in_hunk and line.startswith(_PATCH_HEADERS):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        else:
            style = ""
        out.append(line, style=style)
    return out


def _render_diff(
    result: dict[str, Any],
    unchanged: dict[str, dict[str, tuple[Any, Any]]],
    *,
    show_all: bool = False,
    show_patch: bool = False,
) -> str:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from ctui import diff as engine
    from ctui import format as fmt

    out = _Output()
    style = "green" if result["identical"] else "bold yellow"
    out.print(Text(result["verdict"], style=style))
    out.print(Text(f"a = {result['a']}   b = {result['b']}", style="dim"))
    for name, s in result["sections"].items():
        head = Text(f"\n{name}: ", style="bold")
        head.append(s["status"], style={"identical": "green", "changed": "yellow"}.get(
            s["status"], "magenta"))  # fmt: skip
        out.print(head)
        if s["status"] == "absent":
            for side in s.get("absent_in", []):
                out.print(Text(f"  absent in {side}: {s['reason'][side]}"))
            continue
        if s["status"] == "identical":
            continue
        same = unchanged.get(name) or {}
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        table.add_column("")
        table.add_column("key", overflow="fold")
        table.add_column(result["a"][:20], overflow="fold")
        table.add_column(result["b"][:20], overflow="fold")
        table.add_column("Δ", justify="right")
        for kind in ("changed", "added", "removed"):
            sym, colour = _LOOK[kind]
            for key, value in s[kind].items():
                if kind == "changed":
                    old, new = _short(value["old"]), _short(value["new"])
                    delta = value.get("delta")
                    d = fmt.signed(delta) if delta is not None else ""
                else:
                    old, new = ("", _short(value)) if kind == "added" else (_short(value), "")
                    d = ""
                table.add_row(Text(sym, style=colour), Text(key, style=colour), Text(old),
                              Text(new), Text(d))  # fmt: skip
        if show_all:
            for key, (old, new) in same.items():
                table.add_row(Text("="), Text(key, style="dim"), Text(_short(old), style="dim"),
                              Text(_short(new), style="dim"), Text(""))  # fmt: skip
        out.print(table)
        if same and not show_all:
            out.print(Text(f"  {engine.unchanged_line(name, list(same))}", style="dim"))
        if s.get("stat"):
            out.print(Text("  commits a..b:", style="dim"))
            out.print(Text(s["stat"]))
        elif s.get("commits_note"):
            out.print(Text(f"  {s['commits_note']}", style="dim"))
        for side, patch in (s.get("uncommitted") or {}).items():
            if isinstance(patch, str):
                lines = patch.count("\n")
                out.print(Text(f"  uncommitted patch in {side}: {lines} lines", style="dim"))
            elif patch:
                out.print(f"  uncommitted patch in {side}: [red]missing[/] {escape(patch['id'])}")
    if show_patch:
        _render_patches(out, result)
    return out.text()


def _render_patches(out: _Output, result: dict[str, Any]) -> None:
    """The code section's patches in full: commit a → commit b, then each side's uncommitted."""
    from rich.text import Text

    code = result["sections"].get("code") or {}
    if code.get("patch"):
        commit = code["changed"].get("commit") or {}
        ends = f"git diff {str(commit.get('old'))[:12]} {str(commit.get('new'))[:12]}"
        out.print(Text(f"\npatch a..b ({ends}):", style="bold"), soft_wrap=True)
        out.patch(code["patch"])
    for side, patch in (code.get("uncommitted") or {}).items():
        if isinstance(patch, str) and patch:
            heading = f"\nuncommitted changes in {side} ({result[side]}):"
            out.print(Text(heading, style="bold"), soft_wrap=True)
            out.patch(patch)


def _print_compare(table_doc: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    con = common.console()
    if not table_doc["rows"]:
        con.print(Text("identical: no params, metrics or sections differ", style="green"))
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("kind", style="dim")
    table.add_column("key")
    for label in table_doc["labels"]:
        table.add_column(label[:20], overflow="fold")
    for row in table_doc["rows"]:
        cells = [
            (str(v)[:12] if row["kind"] == "section" and v else _short(v, 24))
            for v in row["values"]
        ]
        table.add_row(Text(row["kind"]), Text(row["key"]), *(Text(c) for c in cells))
    con.print(table)
