"""`ctui logs`: a run's log as a terminal shows it — the whole log, its last lines, or
followed; filtered by stream, rank or a pattern; with arrival times; across several runs."""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctui.cli import common
from ctui.errors import CtuiError, ExitCode
from ctui.log_grep import compile_pattern, grep_runs, line_matches
from ctui.logtext import plain, rank_of

if TYPE_CHECKING:
    from ctui.logtext import LogIndex
    from ctui.project import Project

_STREAMS = {"out": "o", "stdout": "o", "err": "e", "stderr": "e"}
#: the width of a `--timestamps` prefix: `2026-12-02 10:31:07.123 `
_TIME_WIDTH = 24


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)


def logs(
    run_refs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN...",
            help="Run id or unique prefix; several runs print each line as `<id>: line`.",
        ),
    ],
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
    lines: Annotated[
        int | None, typer.Option("--lines", "-n", help="Only the last N lines (of those shown).")
    ] = None,
    timestamps: Annotated[
        bool,
        typer.Option("--timestamps", "-t", help="Prefix each line with the time it was written."),
    ] = False,
    stream: Annotated[
        str | None,
        typer.Option(
            "--stream", metavar="out|err", help="Only the lines the job wrote to stdout or stderr."
        ),
    ] = None,
    rank: Annotated[
        int | None,
        typer.Option(
            "--rank",
            metavar="N",
            help="Only the lines of rank N, as torchrun, srun -l or mpirun tag them.",
        ),
    ] = None,
    grep: Annotated[
        str | None,
        typer.Option(
            "--grep",
            "-g",
            metavar="PATTERN",
            help="Only the lines holding PATTERN (plain text); the count goes to stderr.",
        ),
    ] = None,
    regex: Annotated[
        bool, typer.Option("--regex", "-E", help="PATTERN is a Python regular expression.")
    ] = False,
    ignore_case: Annotated[
        bool, typer.Option("--ignore-case", "-i", help="Match PATTERN in any case.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="With --grep: the matches as a list of {run, line_no, text}."),
    ] = False,
) -> None:
    """Print a run's log (stdout+stderr of the job) as a terminal shows it: a progress bar
    in its last state, colours kept.

    With -f on a terminal a progress bar updates in place; in a pipe only ended lines print.

    --timestamps and --stream read the run's output.idx (local and Docker runs have one).

    Examples:
      ctui logs RUN -f
      ctui logs RUN --rank 0 -n 50
      ctui logs RUN --stream err -t
      ctui logs --grep 'val_loss=0\\.[0-4]' --regex RUN1 RUN2 RUN3
    """
    from ctui.store import open_store

    opts = _Options(
        lines=lines,
        timestamps=timestamps,
        stream=_stream_code(stream),
        rank=rank,
        pattern=_pattern(grep, regex=regex, ignore_case=ignore_case),
        as_json=as_json,
    )
    if as_json and opts.pattern is None:
        raise CtuiError("--json needs --grep: it lists the matching lines")
    if lines is not None and lines < 0:
        raise CtuiError(f"--lines must be 0 or more, not {lines}")
    if follow_ and len(run_refs) > 1:
        raise CtuiError("--follow takes one run", hint="leave out -f to print several runs")
    if follow_ and as_json:
        raise CtuiError("--json does not go with --follow")
    project = common.project()
    store = open_store(project)
    run_ids = list(dict.fromkeys(store.resolve(ref) for ref in run_refs))
    opts.prefix_ids = len(run_ids) > 1
    logs_of = [_RunLog.open(project, run_id, opts, follow_=follow_) for run_id in run_ids]
    if follow_:  # what is there up to its last ended line; the line being written follows
        logs_of[0].size = _line_start(logs_of[0].path, logs_of[0].size)
    out = _Out(opts)
    if opts.grep_only and not follow_:
        _grep(project, logs_of, out)
        out.finish(len(logs_of))
        return
    for log in logs_of:
        out.lines(log, _existing(log, opts))
    if follow_:
        _follow(project, logs_of[0], out, offset=logs_of[0].size)
    out.finish(len(logs_of))


#: how far back from the end a line still being written is looked for its start
_LINE_BACK = 1 << 20


def _line_start(path: Path, size: int) -> int:
    """The offset just after the last newline before `size` (at most `_LINE_BACK` back: a
    longer line being written is followed from there)."""
    if size == 0:
        return 0
    start = max(0, size - _LINE_BACK)
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(size - start)
    nl = data.rfind(b"\n")
    if nl >= 0:
        return start + nl + 1
    return start


@dataclass
class _Options:
    lines: int | None
    timestamps: bool
    stream: str | None
    rank: int | None
    pattern: re.Pattern[str] | None
    as_json: bool
    prefix_ids: bool = False

    @property
    def filtering(self) -> bool:
        return self.stream is not None or self.rank is not None or self.pattern is not None

    @property
    def grep_only(self) -> bool:
        """Only a pattern: the search across runs (`ctui.log_grep`) answers."""
        return (
            self.pattern is not None
            and self.stream is None
            and self.rank is None
            and self.lines is None
            and not self.timestamps
        )

    @property
    def by_line(self) -> bool:
        """Lines must be looked at one by one (else the log is printed in blocks)."""
        return self.filtering or self.timestamps or self.prefix_ids


def _stream_code(stream: str | None) -> str | None:
    if stream is None:
        return None
    try:
        return _STREAMS[stream.lower()]
    except KeyError:
        raise CtuiError(f"--stream must be out or err, not {stream!r}") from None


def _pattern(grep: str | None, *, regex: bool, ignore_case: bool) -> re.Pattern[str] | None:
    if grep is None:
        if regex or ignore_case:
            raise CtuiError("--regex and --ignore-case go with --grep PATTERN")
        return None
    return compile_pattern(grep, regex=regex, ignore_case=ignore_case, what="--grep")


def _grep(project: Project, logs_of: list[_RunLog], out: _Out) -> None:
    """The matching lines of the runs' logs, run after run."""
    assert out.opts.pattern is not None
    by_id = {log.run_id: log for log in logs_of}
    write = sys.stdout.write
    for match in grep_runs(project, list(by_id), out.opts.pattern):
        out._one(by_id[match.run_id], match.line_no, match.offset, match.text, write)
    sys.stdout.flush()


@dataclass
class _RunLog:
    run_id: str
    path: Path
    size: int
    index: LogIndex | None
    _refreshed: float = 0.0

    @classmethod
    def open(cls, project: Project, run_id: str, opts: _Options, *, follow_: bool) -> _RunLog:
        run_dir = project.run_dir(run_id)
        path = run_dir / "output.log"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            if not follow_:
                raise CtuiError(f"run {run_id} has no log file ({path})") from None
            size = 0
        index = None
        if opts.stream is not None or opts.timestamps:
            from ctui.logtext import LogIndex

            index = LogIndex.load(run_dir)
            if opts.stream is not None and not len(index) and not follow_:
                raise CtuiError(
                    f"run {run_id} has no record of its streams (output.idx)",
                    hint="local and Docker runs started by this version of ctui have one",
                )
        return cls(run_id, path, size, index)

    def at(self, offset: int) -> tuple[float | None, str | None]:
        index = self.index
        if index is None:
            return None, None
        if (not index.offsets or offset > index.offsets[-1]) and (
            time.monotonic() - self._refreshed > 0.05
        ):
            index.refresh()  # following: the records of new bytes come as they are written
            self._refreshed = time.monotonic()
        return index.at(offset)


def _existing(log: _RunLog, opts: _Options) -> Iterable[tuple[int, int, str]]:
    """`(line_no, offset, text)` of the log's lines to show before following (line_no 0
    where it is not known: `-n` alone reads only the end)."""
    from ctui.logs import read_lines, rendered_lines, stream_lines, tail_lines

    if opts.lines is not None and not opts.filtering:
        return ((0, off, text) for off, text in tail_lines(log.path, opts.lines, end=log.size))
    numbered: Iterable[tuple[int, int, str]]
    if log.index is None:  # offsets are only needed to look times and streams up
        numbered = (
            (no, 0, text) for no, text in enumerate(rendered_lines(log.path, 0, log.size), 1)
        )
    else:
        lines = (
            stream_lines(log.path, log.index, opts.stream, log.size)
            if opts.stream is not None
            else read_lines(log.path, 0, log.size)
        )
        numbered = ((no, off, text) for no, (off, text) in enumerate(lines, 1))
    if opts.lines is None:
        return numbered
    return deque(
        (line for line in numbered if _wanted(log, opts, line[1], line[2])), maxlen=opts.lines
    )


def _wanted(log: _RunLog, opts: _Options, offset: int, text: str) -> bool:
    if opts.rank is not None and rank_of(text) != opts.rank:
        return False
    if opts.stream is not None and log.at(offset)[1] != opts.stream:
        return False
    if opts.pattern is not None:
        return line_matches(opts.pattern, text)
    return True


@dataclass
class _Out:
    opts: _Options
    matches: int = 0
    found: list[dict[str, Any]] = field(default_factory=list)
    partial_shown: bool = False  # a `\r`-updated line is on the terminal, not ended

    def lines(self, log: _RunLog, lines: Iterable[tuple[int, int, str]]) -> None:
        if not self.opts.by_line and self.opts.lines is None:
            self._blocks(log)
            return
        write = sys.stdout.write
        for line_no, offset, text in lines:
            if self.opts.filtering and not _wanted(log, self.opts, offset, text):
                continue
            self._one(log, line_no, offset, text, write)
        sys.stdout.flush()

    def _one(self, log: _RunLog, line_no: int, offset: int, text: str, write: Any) -> None:
        self.matches += 1
        if self.opts.as_json:
            self.found.append({"run": log.run_id, "line_no": line_no, "text": text})
            return
        write(self._prefix(log, offset) + text + "\n")

    def _prefix(self, log: _RunLog, offset: int) -> str:
        prefix = f"{log.run_id}: " if self.opts.prefix_ids else ""
        if self.opts.timestamps:
            when = log.at(offset)[0]
            prefix += _stamp(when) if when is not None else " " * _TIME_WIDTH
        return prefix

    def _blocks(self, log: _RunLog) -> None:
        from ctui.logs import render_text

        write = sys.stdout.write
        for block in render_text(log.path, 0, log.size):
            write(block)
        sys.stdout.flush()

    def follow(self, log: _RunLog, events: Iterator[tuple[int, str, bool]], tty: bool) -> None:
        """Lines as they come; on a terminal (and not filtering) the line being written too,
        rewritten in place."""
        write = sys.stdout.write
        width = shutil.get_terminal_size().columns - 1
        for offset, text, complete in events:
            if not complete:
                if tty and not self.opts.filtering:
                    shown = _fit(self._prefix(log, offset) + text, width)
                    write("\r" + shown + "\x1b[K")
                    sys.stdout.flush()
                    self.partial_shown = True
                continue
            if self.opts.filtering and not _wanted(log, self.opts, offset, text):
                continue
            if self.partial_shown:
                write("\r\x1b[K")
                self.partial_shown = False
            self._one(log, 0, offset, text, write)
            sys.stdout.flush()

    def finish(self, runs: int) -> None:
        if self.opts.as_json:
            common.emit_json(self.found)
        if self.opts.pattern is not None:
            where = f" in {runs} runs" if runs > 1 else ""
            noun = "line" if self.matches == 1 else "lines"
            common.err_console().print(f"{self.matches} matching {noun}{where}", soft_wrap=True)


def _stamp(when: float) -> str:
    t = time.localtime(when)
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + f".{int(when * 1000) % 1000:03d} "


def _fit(text: str, width: int) -> str:
    """A partial line cut to the terminal's width (a wrapped line could not be rewritten
    in place); colours dropped when it must be cut."""
    if len(text) <= width:
        return text
    bare = plain(text)
    return bare if len(bare) <= width else bare[: max(width - 1, 1)] + "…"


def _follow(project: Project, log: _RunLog, out: _Out, *, offset: int) -> None:
    """Follow the run's log until the run is complete (as `ctui run -f` does)."""
    from ctui.cli.job_cmds import _is_over, _wait_for_mlflow
    from ctui.logs import follow_lines

    tty = sys.stdout.isatty()
    try:
        out.follow(log, follow_lines(log.path, _is_over(project, log.run_id), offset=offset), tty)
        final = _wait_for_mlflow(project, log.run_id)
    except KeyboardInterrupt:
        if out.partial_shown:  # end the line a bar was being drawn on
            sys.stdout.write("\n")
        sys.stdout.flush()
        common.err_console().print(
            f"stopped following; the run keeps going (ctui stop {log.run_id} stops it)"
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if (final.get("mlflow") or {}).get("sync") == "pending":
        common.err_console().print("MLflow sync pending: ctui sync retries")
