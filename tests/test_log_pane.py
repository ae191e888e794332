"""The log pane on real training output: tqdm bars drawn in place, search with a count and a
filter, regex and case, ranks, times and streams from output.idx, vim keys.

Each log is written by a real process: a real `tqdm` job launched by ctui, a printer whose
stdout is the followed file, two rank processes sharing a log. The assertions are on what
the pane shows (its visible lines, its subtitle, its rendered strips).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input

from ctui.project import Project
from ctui.tui.widgets.log_prompt import SearchPrompt, TimePrompt
from ctui.tui.widgets.log_search import LogQuery
from ctui.tui.widgets.log_view import LogView
from tests.tui_live_helpers import wait_for

pytestmark = pytest.mark.timeout(120)

PY = sys.executable

# A tqdm bar over 100 steps that stops half-way until a gate file appears (so the pane can be
# seen mid-update), then ends its line and prints once more. No timings in the bar: the
# snapshots stay the same from run to run.
TQDM_JOB = """
import sys, time
from pathlib import Path
from tqdm import tqdm
gate = Path(sys.argv[1])
print("loading data", flush=True)
fmt = "{l_bar}{bar}| {n_fmt}/{total_fmt}"
with tqdm(total=100, desc="epoch 0", file=sys.stdout, mininterval=0, miniters=1,
          ncols=60, bar_format=fmt) as bar:
    for i in range(100):
        if i == 50:
            sys.stdout.flush()
            while not gate.exists():
                time.sleep(0.02)
        bar.update(1)
print("epoch 0 done loss=0.25", flush=True)
"""

# stdout and stderr, then a pause, then more: two spans of output.idx a second apart
STREAMS_JOB = """
import sys, time
for i in range(20):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
    time.sleep(0.01)
time.sleep(1.3)
for i in range(60):
    print(f"later {i}", flush=True)
"""

# one rank of a 2-rank job: torchrun --tee style prefixes, lines the other rank interleaves
# (a line a write, as the launcher's relay writes them: print's text and newline can be two)
RANK = """
import os, sys, time
rank = int(sys.argv[1])
for i in range(30):
    os.write(1, f"[default{rank}]:step {i} rank {rank} loss={1 / (i + 1):.3f}\\n".encode())
    time.sleep(0.002)
"""

# a printer: a few thousand lines, a warning every 50th
PRINTER = """
import sys
for i in range(int(sys.argv[1])):
    if i % 50 == 7:
        print(f"WARN step {i}: grad norm {i * 0.5:.1f}", flush=False)
    else:
        print(f"step {i} loss=0.{i % 97:02d} lr=0.001")
sys.stdout.flush()
"""


class PaneApp(App[None]):
    def __init__(self, path: Path, follow: bool = True) -> None:
        super().__init__()
        self.path = path
        self.follow = follow

    def compose(self) -> ComposeResult:
        log = LogView(self.path, follow=self.follow, id="log")
        log.border_title = "log"
        yield log

    def on_mount(self) -> None:
        self.query_one(LogView).styles.border = ("round", "blue")
        self.query_one(LogView).focus()


def write_jobs(root: Path) -> None:
    (root / "bar.py").write_text(TQDM_JOB)
    (root / "streams.py").write_text(STREAMS_JOB)
    (root / "ctui.toml").write_text(
        f"[jobs.bar]\ncommand = {json.dumps(f'{PY} bar.py {{gate}}')}\n"
        f'params = {{ gate = "gate" }}\n\n'
        f"[jobs.streams]\ncommand = {json.dumps(f'{PY} streams.py')}\n"
    )


def launch(project: Project, job: str, **params: object) -> Path:
    from ctui.jobs.launch import launch_run

    run = launch_run(project, job, dict(params))
    return project.run_dir(str(run["id"]))


def run_printer(path: Path, lines: int) -> None:
    with path.open("ab") as out:
        subprocess.run([PY, "-c", PRINTER, str(lines)], stdout=out, check=True)


@pytest.fixture
def bar_run(project: Project, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    write_jobs(project.root)
    gate = tmp_path / "gate"
    run_dir = launch(project, "bar", gate=str(gate))
    yield run_dir, gate
    gate.touch()  # never leave the job waiting


def bar_lines(log: LogView) -> list[str]:
    return [line for line in log.visible_lines() if line.startswith("epoch 0:")]


async def test_tqdm_bar_updates_in_place_then_shows_its_last_state(
    bar_run: tuple[Path, Path],
) -> None:
    run_dir, gate = bar_run
    app = PaneApp(run_dir / "output.log")
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        # mid-update: one line, the bar at 50/100, not fifty updates strung together
        await wait_for(pilot, lambda: any("50/100" in s for s in bar_lines(log)), timeout=30)
        assert log.line_count == 2
        (bar,) = bar_lines(log)
        assert bar.startswith("epoch 0:  50%|") and bar.endswith("| 50/100")
        assert bar.count("epoch 0") == 1 and "49/100" not in bar
        raw = (run_dir / "output.log").read_bytes()
        assert raw.count(b"\r") >= 50  # the file holds every update: the pane draws the last
        gate.touch()
        await wait_for(pilot, lambda: "epoch 0 done loss=0.25" in log.visible_lines())
        (bar,) = bar_lines(log)
        assert bar.startswith("epoch 0: 100%|") and bar.endswith("| 100/100")
        assert log.visible_lines()[-2:] == [bar, "epoch 0 done loss=0.25"]


def test_snapshot_progress_bar_mid_update(bar_run, snap_compare) -> None:  # type: ignore[no-untyped-def]
    run_dir, _gate = bar_run
    app = PaneApp(run_dir / "output.log")

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: any("50/100" in s for s in bar_lines(log)), timeout=30)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_snapshot_progress_bar_at_the_end(bar_run, snap_compare) -> None:  # type: ignore[no-untyped-def]
    run_dir, gate = bar_run
    gate.touch()
    app = PaneApp(run_dir / "output.log")

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: "epoch 0 done loss=0.25" in log.visible_lines(), 30)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


async def test_search_counts_filters_and_toggles_regex_and_case(tmp_path: Path) -> None:
    f = tmp_path / "train.log"
    run_printer(f, 3000)  # 60 warnings: steps 7, 57, 107, …
    app = PaneApp(f, follow=False)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.indexed and log.line_count == 3000)
        await pilot.press("slash")
        assert isinstance(app.screen, SearchPrompt)
        await pilot.press(*"warn", "enter")
        await wait_for(pilot, lambda: log.match_count == 60 and log.match_position == 1)
        assert "/warn/ 1/60" in str(log.border_subtitle)
        assert log.line_text(log._match_line or 0) == "WARN step 7: grad norm 3.5"
        await pilot.press("n", "n")
        await wait_for(pilot, lambda: log.match_position == 3)
        assert "/warn/ 3/60" in str(log.border_subtitle)
        await pilot.press("N")
        await wait_for(pilot, lambda: log.match_position == 2)
        # only the matching lines: every visible line is a warning, 60 rows in all
        await pilot.press("ampersand")
        await pilot.pause()
        assert log.row_count == 60 and "only matches" in str(log.border_subtitle)
        shown = log.visible_lines()
        assert len(shown) > 10 and all(line.startswith("WARN step") for line in shown)
        assert log.row_count < log.line_count == 3000
        await pilot.press("ampersand")
        await pilot.pause()
        assert log.row_count == 3000
        # exact case (ctrl+t): "warn" no longer matches "WARN"
        await pilot.press("slash", "ctrl+t", "enter")
        await wait_for(pilot, lambda: log.search_query is not None and log.search_query.exact)
        await wait_for(pilot, lambda: log.match_count == 0)
        # a regex (ctrl+r), case back to smart, only matches (ctrl+f): loss=0.0x lines
        await pilot.press("slash", "ctrl+t", "ctrl+r", "ctrl+f")
        search = app.screen.query_one(Input)
        search.value = ""
        await pilot.press(*r"loss=0\.0\d ", "enter")
        expected = sum(1 for i in range(3000) if i % 50 != 7 and i % 97 < 10)
        await wait_for(pilot, lambda: log.match_count == expected)
        assert log.row_count == expected
        assert all("loss=0.0" in line for line in log.visible_lines())
        # a bad regex: said in one line, the search stays as it was
        await pilot.press("slash")
        app.screen.query_one(Input).value = "loss=("
        await pilot.press("enter")
        await pilot.pause()
        assert log.match_count == expected and log.search_query is not None
        assert log.search_query.term == r"loss=0\.0\d"


async def test_only_matches_follows_appended_lines(tmp_path: Path) -> None:
    f = tmp_path / "grow.log"
    run_printer(f, 500)  # 10 warnings
    app = PaneApp(f)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 500)
        log.search(LogQuery("WARN"), filter=True)
        await wait_for(pilot, lambda: log.match_count == 10 and log.row_count == 10)
        run_printer(f, 500)  # another process appends: 10 more
        await wait_for(pilot, lambda: log.line_count == 1000 and log.row_count == 20)
        assert log.match_count == 20
        assert log.visible_lines()[-1] == "WARN step 457: grad norm 228.5"
        assert all(line.startswith("WARN") for line in log.visible_lines())


async def test_rank_filter_cycles_the_ranks_of_a_two_rank_job(tmp_path: Path) -> None:
    f = tmp_path / "ranks.log"
    with f.open("ab") as out:
        out.write(b"launcher: starting 2 ranks\n")
        out.flush()
        ranks = [subprocess.Popen([PY, "-c", RANK, str(r)], stdout=out) for r in (0, 1)]
        assert [p.wait(30) for p in ranks] == [0, 0]
    app = PaneApp(f, follow=False)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 61)
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: log.spec.rank == 0)
        assert log.ranks == [0, 1] and log.row_count == 30
        assert "rank 0" in str(log.border_subtitle)
        assert all(line.startswith("[default0]:") for line in log.visible_lines())
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: log.spec.rank == 1)
        assert all(line.startswith("[default1]:") for line in log.visible_lines())
        await pilot.press("g")
        assert log.visible_lines()[0] == "[default1]:step 0 rank 1 loss=1.000"
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: log.spec.rank == 0)
        await pilot.press("asterisk")
        await wait_for(pilot, lambda: log.spec.rank is None)
        assert log.row_count == 61 and "rank" not in str(log.border_subtitle)
        # a search inside one rank
        log.search(LogQuery("loss=1.000"), filter=True)
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: log.spec.rank == 0 and log.row_count == 1)
        assert log.visible_lines() == ["[default0]:step 0 rank 0 loss=1.000"]


async def test_times_column_stderr_dimmed_and_jump_to_a_time(project: Project) -> None:
    from ctui.logtext import LogIndex

    write_jobs(project.root)
    run_dir = launch(project, "streams")
    from tests.jobs_helpers import wait_final

    wait_final(project, run_dir.name, timeout=60)
    idx = LogIndex.load(run_dir)
    assert {"o", "e"} <= idx.streams
    app = PaneApp(run_dir / "output.log", follow=False)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.indexed and log.line_count >= 60)
        lines = [log.line_text(i) for i in range(log.line_count)]
        err, out = lines.index("err 3"), lines.index("out 3")

        def strip(line: int):  # type: ignore[no-untyped-def]
            log.scroll_to(y=line, animate=False, immediate=True)
            return log.render_line(line - int(log.scroll_y))

        await pilot.pause()
        assert strip(err).text.startswith("err 3")
        assert all(seg.style and seg.style.dim for seg in strip(err) if seg.text.strip())
        assert not any(seg.style and seg.style.dim for seg in strip(out) if seg.text.strip())
        await pilot.press("t")
        assert log.show_times
        first = lines.index("later 0")
        when = idx.at(log._index.span(first)[0])[0]
        assert when is not None
        clock = time.strftime("%H:%M:%S", time.localtime(when))
        assert strip(first).text == f"{clock} later 0".ljust(len(strip(first).text))
        # jump: `T`, a time of day, enter → the first line at or after it is on top
        log.scroll_to(y=0, animate=False, immediate=True)
        await pilot.press("T")
        assert isinstance(app.screen, TimePrompt)
        await pilot.press(*time.strftime("%H:%M:%S", time.localtime(int(when))), "enter")
        await wait_for(pilot, lambda: int(log.scroll_y) == first)
        assert log.visible_lines()[0] == "later 0"
        await pilot.press("T", *"25:99", "enter")  # not a time: said, nothing moves
        await pilot.pause()
        assert int(log.scroll_y) == first


async def test_lines_without_times_get_blank_padding(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log_file = run_dir / "output.log"
    run_printer(log_file, 10)
    size = log_file.stat().st_size
    run_printer(log_file, 10)
    (run_dir / "output.idx").write_text(f"{size} {1_790_000_000.5:.3f} o\n")
    app = PaneApp(log_file, follow=False)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 20 and log.times is not None)
        await wait_for(pilot, lambda: len(log.times or ()) == 1)
        await pilot.press("t")
        await pilot.pause()
        assert log.render_line(0).text.startswith(" " * 9 + "step 0 ")
        clock = time.strftime("%H:%M:%S", time.localtime(1_790_000_000.5))
        assert log.render_line(10).text.startswith(f"{clock} step 0 ")


async def test_vim_keys_move_the_view(tmp_path: Path) -> None:
    f = tmp_path / "keys.log"
    run_printer(f, 1000)
    app = PaneApp(f, follow=False)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.indexed and log.line_count == 1000)
        await pilot.press("g")
        assert int(log.scroll_y) == 0
        await pilot.press("j", "j", "j")
        assert int(log.scroll_y) == 3
        await pilot.press("k")
        assert int(log.scroll_y) == 2
        half = log.scrollable_content_region.height // 2
        await pilot.press("ctrl+d")
        assert int(log.scroll_y) == 2 + half
        await pilot.press("ctrl+u")
        assert int(log.scroll_y) == 2
        await pilot.press("G")
        await pilot.pause()
        assert log.follow and log.visible_lines()[-1] == "step 999 loss=0.29 lr=0.001"
        await pilot.press("k")
        assert not log.follow


async def test_a_long_redrawn_line_shows_its_last_state_and_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    f = tmp_path / "long.log"
    # 5000 updates of one bar with no newline (~140 kB), then a 2 MB line without any \r
    code = (
        "import sys\n"
        "for i in range(5000): sys.stdout.write(f'\\rtraining {i + 1}/5000 [{\"#\" * (i % 10)}]')\n"
        "sys.stdout.write('\\n' + 'x' * 2_000_000 + '\\n')\n"
    )
    with f.open("wb") as out:
        subprocess.run([PY, "-c", code], stdout=out, check=True)
    app = PaneApp(f, follow=False)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 2)
        assert log.line_text(0) == "training 5000/5000 [#########]"
        long = log.line_text(1)
        assert long.startswith("xxxx") and long.endswith("bytes)") and len(long) < 17_000


async def test_a_huge_line_without_newline_needs_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    f = tmp_path / "huge.log"
    # 128 MB of one bar redrawn with \r and never ended by a newline, written by a process
    code = (
        "import sys\n"
        "chunk = ''.join(f'\\rstep {i:07d}/9999999 loss=0.5' for i in range(40000)).encode()\n"
        "for _ in range(128 * 2**20 // len(chunk)): sys.stdout.buffer.write(chunk)\n"
        "sys.stdout.buffer.write(b'\\rstep 9999999/9999999 loss=0.1')\n"
    )
    with f.open("wb") as out:
        subprocess.run([PY, "-c", code], stdout=out, check=True)
    assert f.stat().st_size > 128 * 10**6
    tracemalloc.start()
    try:
        app = PaneApp(f, follow=False)
        async with app.run_test(size=(80, 24)) as pilot:
            log = app.query_one(LogView)
            await wait_for(pilot, lambda: log.indexed and log.line_count == 1, timeout=60)
            await pilot.pause()
            assert log.visible_lines() == ["step 9999999/9999999 loss=0.1"]
            log.search(LogQuery("loss=0.1"))
            await wait_for(pilot, lambda: log.match_count == 1, timeout=60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB for a 128 MB line"
