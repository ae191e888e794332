"""Log pane at volume: a 1 GB log's last page, key presses and the CPU of following.

    uv run python bench/bench_log_view.py [--part all|first-page|keys|cpu]
        [--size-mb 1024] [--rate 50000] [--presses 60] [--window 3] [--rounds 3]

Prints:
- first-page: time from app start to the first frame showing the last line of a 1 GB log
  (target ≤ 1 s), to the full line index, and to the match count of a search over all of it;
- keys: key-press latency (press → handled and repainted; median / p95 / max; target
  ≤ 100 ms) while a separate writer process appends `rate` lines/s to the followed log, and
  whether any line was lost;
- cpu: the whole thing as a user has it. A real job launched with `ctui run` prints `rate`
  lines/s with tqdm-style bars in the mix (`\r` updates) and `step N loss=…` lines (metrics
  read from the output); the real `ctui` TUI runs in a pty and follows it in the live view
  (`l`); its process's CPU time is measured with psutil over windows interleaved with `tail
  -f` on the same growing log (A B A B …): min / median / max, the ratio, and the target
  (≤ 10 % of a core), saying "missed" when it is missed. The job's supervisor (relay into
  output.log, output.idx, metrics parsed from the output) is measured in the same windows.
first-page and keys are in-process figures (a Pilot app, no pty, no peer): they say how the pane
scales, not what a user's terminal sees; cpu is the whole-process figure beside its peer.
The files live in a temporary folder that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textual.app import App, ComposeResult

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctui.tui.widgets.log_search import LogQuery  # noqa: E402
from ctui.tui.widgets.log_view import LogView  # noqa: E402

WRITER = r"""
import os, sys, time
path, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
tick, n, start = 0.02, 0, time.monotonic()
per_tick = max(1, int(rate * tick))
while time.monotonic() - start < seconds:
    batch = "".join(f"step {n + i} loss=0.{(n + i) % 997:03d} lr=0.001 some progress text\n"
                    for i in range(per_tick))
    os.write(fd, batch.encode())
    n += per_tick
    delay = start + (n / rate) - time.monotonic()
    if delay > 0:
        time.sleep(delay)
os.close(fd)
print(n)
"""


def make_big_log(path: Path, size_mb: int) -> tuple[int, str]:
    """Write `size_mb` MiB of log lines with large writes (one 4 MiB block, repeated)."""
    lines: list[str] = []
    size = 0
    while size < 4 * 2**20:
        line = f"2026-11-27 04:00:00 INFO batch {len(lines):06d} loss=0.1234 acc=0.9876\n"
        lines.append(line)
        size += len(line)
    block = "".join(lines).encode()
    count = 0
    with path.open("wb", buffering=0) as fh:
        for _ in range(max(1, size_mb * 2**20 // len(block))):
            fh.write(block)
            count += len(lines)
        last = f"the very last line {count}\n"
        fh.write(last.encode())
    return count + 1, last.strip()


class LogApp(App[None]):
    """The log pane alone, plus a key that stamps when it was handled and then painted."""

    BINDINGS = [("x", "stamp", "stamp")]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.handled: float | None = None
        self.painted: float | None = None

    def compose(self) -> ComposeResult:
        yield LogView(self.path, id="log")

    def action_stamp(self) -> None:
        self.handled = time.perf_counter()
        self.query_one(LogView).refresh()
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        self.painted = time.perf_counter()


async def first_page(path: Path, last: str, lines: int) -> tuple[float, float, int, float, int]:
    t0 = time.perf_counter()
    app = LogApp(path)
    first = full = 0.0
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one(LogView)
        while True:
            await asyncio.sleep(0.005)
            if log.line_count and log.visible_lines() and log.visible_lines()[-1] == last:
                app.painted = None
                app.call_after_refresh(app._painted)  # the frame with it is on screen
                while app.painted is None:
                    await asyncio.sleep(0.001)
                first = app.painted - t0
                break
        while not log.indexed:
            await asyncio.sleep(0.01)
        full = time.perf_counter() - t0
        count = log.line_count
        log.follow = False
        log.scroll_to(y=count // 2, animate=False, immediate=True)
        await pilot.pause()
        middle = log.visible_lines()[0]
        assert "INFO batch" in middle, middle
        # a search over all of it, only its matches shown (scanned in the reader thread)
        t1 = time.perf_counter()
        log.search(LogQuery("batch 012345 "), filter=True)
        while log.match_count is None:
            await asyncio.sleep(0.01)
        search = time.perf_counter() - t1
        matches = log.match_count
    return first, full, count, search, matches


async def presses_while_following(path: Path, rate: int, presses: int) -> None:
    path.write_text("")
    seconds = presses * 0.1 + 3.0
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(rate), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    app = LogApp(path)
    latencies: list[float] = []
    async with app.run_test(size=(120, 40)):
        log = app.query_one(LogView)
        log.focus()
        await asyncio.sleep(1.0)  # the writer is in full flow
        for _ in range(presses):
            app.handled = app.painted = None
            t0 = time.perf_counter()
            app.simulate_key("x")  # as the terminal driver would deliver it
            while app.painted is None:
                await asyncio.sleep(0.001)
            latencies.append(app.painted - t0)
            await asyncio.sleep(0.05)
        written = int(writer.communicate()[0].strip() or 0)
        deadline = time.monotonic() + 10
        while log.line_count < written and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        shown = log.line_count
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(
        f"in process (Pilot, no pty): key press → handled and repainted while following "
        f"{rate:,} lines/s: "
        f"median {statistics.median(ms):.1f} ms, "
        f"p95 {p95:.1f} ms, max {ms[-1]:.1f} ms  (target ≤ 100 ms)"
    )
    print(
        f"lines written {written:,}, lines in the pane {shown:,} "
        f"({'none lost' if shown == written else 'MISSING ' + str(written - shown)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["all", "first-page", "keys", "cpu"], default="all")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--presses", type=int, default=60)
    ap.add_argument("--window", type=float, default=3.0, help="seconds a CPU window lasts")
    ap.add_argument("--rounds", type=int, default=3, help="A B rounds of CPU windows")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ctui-bench-log-"))
    try:
        if args.part in ("all", "first-page"):
            big_log(tmp, args.size_mb)
        if args.part in ("all", "keys"):
            asyncio.run(presses_while_following(tmp / "follow.log", args.rate, args.presses))
        if args.part in ("all", "cpu"):
            from bench.log_follow_cpu import follow_cpu

            follow_cpu(tmp, args.rate, args.window, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def big_log(tmp: Path, size_mb: int) -> None:
    big = tmp / "big.log"
    t0 = time.perf_counter()
    lines, last = make_big_log(big, size_mb)
    size = big.stat().st_size
    print(f"wrote {size / 2**30:.2f} GiB, {lines:,} lines in {time.perf_counter() - t0:.1f} s")
    first, full, count, search, matches = asyncio.run(first_page(big, last, lines))
    print("in process (Pilot, no pty, no peer):")
    print(f"first painted last page (App() → frame): {first:.3f} s (target ≤ 1.0 s)")
    print(f"full line index: {full:.2f} s, {count:,} lines (expected {lines:,})")
    print(f"search of all of it, only matches: {search:.2f} s, {matches:,} matching lines")
    big.unlink()


if __name__ == "__main__":
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    main()
