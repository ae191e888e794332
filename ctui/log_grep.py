"""Search across runs' logs: the lines of each run's `output.log`, rendered as a terminal
shows them (a `\\r`-updated progress bar in its last state, colours dropped for matching),
that hold a pattern. One core for `ctui logs --grep` and the TUI's "Find in logs"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctui.errors import CtuiError
from ctui.logtext import plain

if TYPE_CHECKING:
    from ctui.project import Project


@dataclass(frozen=True)
class Match:
    """One matching line: its run, its number (from 1), the byte offset where it starts in
    the run's `output.log`, and its rendered text (colour codes kept)."""

    run_id: str
    line_no: int
    offset: int
    text: str


def compile_pattern(
    pattern: str, *, regex: bool, ignore_case: bool, what: str = "pattern"
) -> re.Pattern[str]:
    """The pattern to search rendered lines with; a bad regex raises one-line CtuiError
    naming `what` and the pattern."""
    try:
        return re.compile(
            pattern if regex else re.escape(pattern), re.IGNORECASE if ignore_case else 0
        )
    except re.error as exc:
        raise CtuiError(f"{what}: {pattern!r} is not a valid regular expression: {exc}") from None


def line_matches(compiled: re.Pattern[str], text: str) -> bool:
    """Whether a rendered line holds the pattern (its colour codes left out)."""
    return compiled.search(plain(text) if "\x1b" in text else text) is not None


def grep_run(project: Project, run_id: str, compiled: re.Pattern[str]) -> Iterator[Match]:
    """The matching lines of one run's log, in order (none where it has no log)."""
    from ctui.logs import read_lines

    path = project.run_dir(run_id) / "output.log"
    if not path.is_file():
        return
    for line_no, (offset, text) in enumerate(read_lines(path), 1):
        if line_matches(compiled, text):
            yield Match(run_id, line_no, offset, text)


def grep_runs(
    project: Project,
    run_ids: list[str],
    pattern: str | re.Pattern[str],
    *,
    regex: bool = False,
    ignore_case: bool = False,
    limit: int | None = None,
) -> Iterator[Match]:
    """The lines holding `pattern` in the logs of `run_ids`, run after run, at most `limit`
    of them. The pattern is compiled before anything is read: a bad regex raises at the
    call, not at the first `next`."""
    compiled = (
        pattern
        if isinstance(pattern, re.Pattern)
        else compile_pattern(pattern, regex=regex, ignore_case=ignore_case)
    )
    return _grep(project, run_ids, compiled, limit)


def _grep(
    project: Project, run_ids: list[str], compiled: re.Pattern[str], limit: int | None
) -> Iterator[Match]:
    found = 0
    for run_id in run_ids:
        for match in grep_run(project, run_id, compiled):
            if limit is not None and found >= limit:
                return
            found += 1
            yield match
