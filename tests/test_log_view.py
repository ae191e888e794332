"""LogView: last page of a big file first, full index later, follows appends, search."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from ctui.tui.widgets.line_index import LineIndex, read_tail_index, scan
from ctui.tui.widgets.log_view import LogView

pytestmark = pytest.mark.timeout(60)


class LogApp(App[None]):
    def __init__(self, path: Path, follow: bool = True) -> None:
        super().__init__()
        self.path = path
        self.follow = follow

    def compose(self) -> ComposeResult:
        yield LogView(self.path, follow=self.follow, id="log")


async def wait_for(pilot, cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def write_lines(path: Path, start: int, stop: int) -> None:
    with path.open("a") as fh:
        fh.writelines(f"line {i:07d} some log text\n" for i in range(start, stop))


def test_index_counts_lines_and_partial_last_line(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"one\ntwo\nthr")
    import os

    fd = os.open(f, os.O_RDONLY)
    try:
        idx = LineIndex()
        idx.extend(scan(fd, 0, 11, chunk=3), 11)
        assert idx.line_count == 3
        assert [os.pread(fd, e - s, s) for s, e in map(idx.span, range(3))] == [
            b"one",
            b"two",
            b"thr",
        ]
        tail = read_tail_index(fd, 11, tail_bytes=6)
        assert not tail.complete
        assert tail.line_count == 1 and tail.span(0) == (8, 11)
    finally:
        os.close(fd)


async def test_shows_last_page_of_big_file_then_indexes_all(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    write_lines(f, 0, 200_000)  # ~6 MB: larger than the tail read, so indexing happens
    app = LogApp(f)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.indexed and log.line_count == 200_000)
        await pilot.pause()
        visible = log.visible_lines()
        assert visible[-1] == "line 0199999 some log text"
        assert log.line_text(0) == "line 0000000 some log text"
        log.follow = False
        log.scroll_to(y=100_000, animate=False, immediate=True)
        await pilot.pause()
        assert log.visible_lines()[0] == "line 0100000 some log text"


async def test_follows_appends_and_pause(tmp_path: Path) -> None:
    f = tmp_path / "grow.log"
    write_lines(f, 0, 10)
    app = LogApp(f)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 10)
        write_lines(f, 10, 500)
        await wait_for(pilot, lambda: log.line_count == 500)
        await pilot.pause()
        assert log.visible_lines()[-1] == "line 0000499 some log text"
        log.focus()
        await pilot.press("up")
        assert log.follow is False
        top = log.scroll_y
        write_lines(f, 500, 600)
        await wait_for(pilot, lambda: log.line_count == 600)
        assert log.scroll_y == top  # paused: the view stays put
        await pilot.press("end")
        assert log.follow is True
        await pilot.pause()
        assert log.visible_lines()[-1] == "line 0000599 some log text"


async def test_log_text_is_not_markup_and_ansi_is_rendered(tmp_path: Path) -> None:
    f = tmp_path / "odd.log"
    f.write_text("[bold]not markup[/bold] [link=x]\n\x1b[31mred\x1b[0m text\n")
    app = LogApp(f)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 2)
        assert log.line_text(0) == "[bold]not markup[/bold] [link=x]"
        assert log.line_text(1) == "red text"


async def test_search_finds_next_and_previous(tmp_path: Path) -> None:
    f = tmp_path / "s.log"
    write_lines(f, 0, 1000)
    with f.open("a") as fh:
        fh.write("ERROR first\n")
    write_lines(f, 1001, 2000)
    with f.open("a") as fh:
        fh.write("error second\n")
    write_lines(f, 2001, 3000)
    app = LogApp(f, follow=False)
    results: list[int | None] = []

    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        app.on_log_view_search_result = lambda m: results.append(m.line)  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: log.indexed and log.line_count == 3000)
        log.scroll_to(y=0, animate=False, immediate=True)
        log.find("error")
        await wait_for(pilot, lambda: log._match_line == 1000)
        log.find("error")
        await wait_for(pilot, lambda: log._match_line == 2000)
        log.find("error", backwards=True)
        await wait_for(pilot, lambda: log._match_line == 1000)
        log.find("ERROR")  # upper case: exact case only, no later match
        await pilot.pause(0.3)
        assert log._match_line == 1000


def test_newline_scan_without_numpy_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctui.tui.widgets.line_index as li

    buf = b"a\nbb\n\nccc\nd"
    with_numpy = list(li.newline_starts(buf, 100))
    monkeypatch.setattr(li, "_np", None)
    assert list(li.newline_starts(buf, 100)) == with_numpy == [102, 105, 106, 110]


async def test_waits_for_a_log_that_does_not_exist_yet(tmp_path: Path) -> None:
    f = tmp_path / "later.log"
    app = LogApp(f)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await pilot.pause(0.3)
        assert log.line_count == 0
        write_lines(f, 0, 3)
        await wait_for(pilot, lambda: log.line_count == 3)
        assert log.line_text(2) == "line 0000002 some log text"


async def test_truncated_file_is_read_again_and_long_lines_are_cut(tmp_path: Path) -> None:
    f = tmp_path / "t.log"
    write_lines(f, 0, 3000)
    app = LogApp(f)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 3000)
        f.write_text("fresh start\n" + "x" * 50_000 + "\n")  # truncated, then shorter
        await wait_for(pilot, lambda: log.line_count == 2)
        assert log.line_text(0) == "fresh start"
        long = log.line_text(1)
        assert long.startswith("xxxx") and long.endswith("bytes)") and len(long) < 17_000
        rotated = tmp_path / "new.log"
        write_lines(rotated, 0, 5000)  # a longer file moved into place (log rotation)
        os.replace(rotated, f)
        await wait_for(pilot, lambda: log.line_count == 5000)
        assert log.line_text(4999) == "line 0004999 some log text"
