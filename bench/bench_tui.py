"""TUI speed with 10,000 runs, the whole terminal in a pseudo-terminal: first frame, full
load, sort key → frame, cursor move against Textual's stock DataTable on the same rows, and
filter key → frame.

    uv run python bench/bench_tui.py [--runs 10000] [--samples 15]

The `ctui` command and a tiny stock-DataTable app (`--peer-app`, the same rows and the same
visible columns) run in ptys of the same size. A key → frame time is from the key written
to the LAST byte of the frame it caused (the output is read until it has been quiet for
`QUIET` seconds; the time of the last byte is kept). Samples are interleaved A B A B so
both see the same machine load; min / median / max, the ratio of medians and the target are
printed, and a missed target is said plainly. The sort cycles the table's columns (`>`).

Full load: a store of more than 500 runs shows its newest 500 first ("500/N runs
(reading…)") and a worker loads the rest; the time from the first frame to the bar's
"N/N runs" is printed with the RSS at that moment (no peer: the DataTable app has every row
in its first frame). Both ptys are read together meanwhile, so neither is timed late. The
bar's count is one unstyled piece of its line, so the bytes are searched for it. Before the
sorts, the bench waits for ctui's CPU time to stop growing (the sort keys are computed in a
worker after the full load, which draws nothing).

Filter (no peer: the stock DataTable has no filter): `/` opens the box (timed), then each of
`FILTERS` (a metric comparison, a status term, a bare word) is typed key by key, each key
→ frame timed, and escape cancels it (timed; it includes Textual's 100 ms wait that tells a
lone escape from an escape sequence). The filter applies live, and its work can leave a gap
after the box has echoed the key, so a typed key's frame is only over once the bar shows the
count of runs that prefix matches (computed here with `ctui.query.filter_runs` before the
clocks start), or, for a prefix that does not parse, the error under the box. Target: ≤ 100
ms median at 100,000 runs (sort and filter key → frame ≤ 100 ms).

Measured 2026-12-02 on a shared 2-CPU box (load 1-2.4, other work running; Python 3.11,
10,000 runs, 9.2 MB store), median of 15, three interleaved runs per size:
  80×24:  sort key → frame 35-45 ms (max 180; target ≤ 50 ms: met); cursor move 4.3-4.9 ms
          against the stock DataTable's 9.1-12.4 ms (ratio 0.39-0.48: met); first frame
          0.5-1.3 s with load (the DataTable app 1.6-3.5 s); RSS 83 MB (DataTable 97 MB).
  160×48: sort 43-50 ms (met, barely, with load); cursor move 4.0-6.0 ms against 6.7-9.5 ms
          (ratio 0.58-0.66: met); the 15 moves that scroll 13.5-14.1 ms against 20-29 ms;
          the preview pane complete 133-135 ms after the key (it waits 100 ms for the cursor
          to rest, then draws and reads the verdict and log).
  Before (same day): 160×48 cursor move 35.1 ms against 6.3 ms (ratio 5.6, MISSED): the
  preview pane redrew on every move, and every move repainted the whole table (the cursor
  reactive repainted the widget besides the two lines it changed); with the pane waiting for
  the cursor to rest but the table still repainted whole, 9.0 against 6.4 ms (1.4, MISSED).
  Again on the segmented store (same day, later; load 1-3): 160×48 cursor move 4.1 and
  5.7 ms against 6.9 and 11.8 ms (0.59, 0.48: met); sort 31.3 and 53.5 ms (the second
  MISSED, under load: the DataTable app's first frame took 4.8 s there); 80×24 cursor 7.1
  against 10.1 ms (0.71: met), sort 36.0 ms (met).
At 100,000 runs (`--runs 100000 --samples 5`, 96.8 MB of store files, 80×24, load 0.3-0.7,
same day, segmented store): first frame 0.58 and 0.63 s (target ≤ 1.0 s: met; the newest
500 runs come first, the rest from a worker; the DataTable app 15-17 s); sort key → frame
median 42.5 ms (target at 100k ≤ 100 ms: met; 199 ms before each run's key was computed
once for both directions); cursor move 4.1-4.3 ms against 7.2-7.5 ms (met); RSS 484 MB
(target ≤ 200 MB: MISSED, the TUI holds every run document; the DataTable app 575 MB).
Before the column orders were computed ahead (both directions, in a worker), a sort at
80×24 took 67 ms median in the same conditions.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import random
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JOBS = ("train", "train-big", "eval", "featurize")
STATUSES = ("succeeded",) * 7 + ("failed", "cancelled", "lost")
TRIGGERS = (None, None, "new-data", "nightly", "new-code")
#: the output is a finished frame once it has been quiet this long
QUIET = 0.08
#: what Textual waits after a lone escape byte before it reports the escape key (ESCDELAY)
ESCAPE_DELAY = int(os.environ.get("ESCDELAY", "100")) / 1000


def make_runs(n: int, *, seed: int = 1, start: float = 1_764_000_000.0) -> list[dict[str, Any]]:
    """n run documents with 10 params and 5 metrics each, ids sorted by time."""
    from ctui.ids import _b32

    rng = random.Random(seed)
    runs = []
    t = start
    for i in range(n):
        t += rng.uniform(30, 600)
        dur = rng.uniform(5, 3000)
        status = rng.choice(STATUSES)
        run_id = _b32(int((t - 1_704_067_200) * 100), 8) + _b32(i, 4)
        runs.append(
            {
                "id": run_id,
                "job": rng.choice(JOBS),
                "status": status,
                "created": t,
                "started": t + 1,
                "ended": t + 1 + dur,
                "duration": dur,
                "exit_code": 0 if status == "succeeded" else 1,
                "params": {
                    "lr": rng.choice((0.1, 0.03, 0.01, 0.003, 0.001)),
                    "epochs": rng.randint(1, 50),
                    "batch_size": rng.choice((16, 32, 64, 128)),
                    "optimizer": rng.choice(("adam", "sgd", "adamw")),
                    "dropout": round(rng.uniform(0, 0.5), 2),
                    "layers": rng.randint(1, 12),
                    "seed": rng.randint(0, 9999),
                    "weight_decay": rng.choice((0.0, 1e-4, 1e-3)),
                    "warmup": rng.randint(0, 1000),
                    "model": rng.choice(("resnet18", "resnet50", "vit-s")),
                },
                "metrics": {
                    "acc": rng.uniform(0.5, 0.99),
                    "loss": rng.uniform(0.01, 2.0),
                    "f1": rng.uniform(0.4, 0.98),
                    "val_loss": rng.uniform(0.02, 2.5),
                    "auc": rng.uniform(0.5, 1.0),
                },
                "tags": rng.sample(("baseline", "ablation", "prod", "sweep"), k=rng.randint(0, 2)),
                "note": "",
                "trigger": rng.choice(TRIGGERS),
                "cause": None,
                "backend": "local",
                "command": ["python", "train.py"],
                "manifest": {},
                "git": f"{rng.getrandbits(28):07x}",
                "data_hash": f"{rng.getrandbits(32):08x}",
                "host": "bench-box",
                "error": None if status == "succeeded" else "exit code 1",
            }
        )
    return runs


def make_project(root: Path, n: int) -> Path:
    """A project folder with n runs: bench/gen_store.py's shared generator when present."""
    gen = ROOT / "bench" / "gen_store.py"
    if gen.exists():
        import importlib.util

        spec = importlib.util.spec_from_file_location("gen_store", gen)
        if spec and spec.loader:
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            if hasattr(mod, "make_store"):
                mod.make_store(root, n)
                return root
    from ctui.project import Project
    from ctui.store import Store

    proj = Project(root=root, state_dir=root / ".ctui").ensure()
    (root / "ctui.toml").write_text('[jobs.train]\ncommand = "python train.py"\n')
    store = Store(proj.store_file)
    store.initialise()
    store.put_runs(make_runs(n))
    return root


# -- the real binary in a pty ------------------------------------------------------------
class Pty:
    def __init__(self, argv: list[str], cwd: Path, cols: int, rows: int) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        env.pop("TEXTUAL", None)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.buf = bytearray()
        #: when the last output was read (perf_counter)
        self.last_read = self.t0

    def read_until(self, needle: bytes, timeout: float = 20.0) -> float:
        """Seconds (since spawn) when `needle` first appeared in the output."""
        return read_until_each([(self, needle)], timeout)[0]

    def _read(self) -> bytes:
        """What the pty has now (b"" once the process is gone), kept in `buf`."""
        try:
            chunk = os.read(self.master, 1 << 16)
        except OSError:
            return b""
        self.last_read = time.perf_counter()
        self.buf += chunk
        return chunk

    def drain(self, quiet: float = 0.15) -> None:
        while select.select([self.master], [], [], quiet)[0]:
            try:
                os.read(self.master, 1 << 16)
            except OSError:
                return

    def key_to_frame(
        self, key: bytes, timeout: float = 5.0, quiet: float = QUIET, until: bytes | None = None
    ) -> float:
        """Seconds from writing `key` to the last byte of the frame it caused (the output is
        over once it has been quiet for `quiet` seconds). With `until`, the frame is only over
        once `until` has come in the output after the key: a key whose work takes longer than
        `quiet` may show a first frame (the typed character in a box) before the one it is
        for, and that gap must not end the frame."""
        self.drain()
        t = time.perf_counter()
        os.write(self.master, key)
        last = None
        got = bytearray()
        seen = until is None
        end = t + timeout
        while time.perf_counter() < end:
            wait = quiet if last and seen else end - time.perf_counter()
            r, _, _ = select.select([self.master], [], [], max(0.0, wait))
            if not r:
                break
            chunk = self._read()
            if not chunk:
                break
            last = self.last_read
            if not seen:
                got += chunk
                seen = until is not None and until in got
            del self.buf[: max(0, len(self.buf) - (1 << 20))]
        if last is None or not seen:
            what = f"{until!r} " if until is not None and last is not None else ""
            raise TimeoutError(
                f"no frame {what}after {key!r}; output tail: {bytes(self.buf[-400:])!r}"
            )
        return last - t

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the ctui process has used (uv run may sit in between)."""
        total = 0.0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def settle(self, window: float = 0.5, busy: float = 0.1, timeout: float = 60.0) -> float:
        """Seconds until the process is idle: under `busy` of a CPU over `window` (work in a
        worker thread that draws nothing, which no output would show). The output is read
        meanwhile, so the process never blocks on a full pty."""
        t = time.perf_counter()
        while time.perf_counter() - t < timeout:
            before, start = self.cpu_s(), time.perf_counter()
            while (left := start + window - time.perf_counter()) > 0:
                if select.select([self.master], [], [], left)[0] and not self._read():
                    return time.perf_counter() - t
                del self.buf[: max(0, len(self.buf) - (1 << 20))]
            if self.cpu_s() - before < busy * window:
                return time.perf_counter() - t
        raise TimeoutError(f"still busy after {timeout:.0f} s")

    def _pids(self) -> list[int]:
        # the ctui process itself (uv run may sit in between)
        pids = [self.proc.pid]
        try:
            kids = subprocess.run(
                ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
            ).stdout.split()
            pids += [int(k) for k in kids]
        except OSError:
            pass
        return pids

    def rss_mb(self) -> float:
        best = 0.0
        for pid in self._pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        best = max(best, int(line.split()[1]) / 1024)
            except OSError:
                pass
        return best

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def read_until_each(
    waits: list[tuple[Pty, bytes]],
    timeout: float = 20.0,
    on_seen: Callable[[Pty], None] | None = None,
) -> list[float]:
    """For each (pty, needle), one needle per pty: seconds (since that pty's spawn) when the
    needle first came in its output. The ptys are read together, so none is timed by when it
    was got round to, and none blocks on a full pty meanwhile. The bytes are searched, not the
    screen: a text written in one piece (one style, on one line) is found even when it came
    split over reads. `on_seen(pty)` runs as each needle comes (to look at the process then)."""
    found: dict[int, float] = {}
    starts = [0] * len(waits)
    end = time.perf_counter() + timeout

    def look(i: int) -> None:
        p, needle = waits[i]
        if p.buf.find(needle, starts[i]) >= 0:
            found[i] = p.last_read - p.t0
            if on_seen:
                on_seen(p)
        else:
            starts[i] = max(0, len(p.buf) - len(needle) + 1)

    for i in range(len(waits)):
        look(i)  # already there (then: when the read that brought it came)
    while len(found) < len(waits) and time.perf_counter() < end:
        pending = [i for i in range(len(waits)) if i not in found]
        ready, _, _ = select.select([waits[i][0].master for i in pending], [], [], 0.05)
        for i in pending:
            p = waits[i][0]
            if p.master in ready:
                if not p._read():
                    raise RuntimeError(f"the process ended; output tail: {bytes(p.buf[-400:])!r}")
                look(i)
    missing = [(p, n) for i, (p, n) in enumerate(waits) if i not in found]
    if missing:
        p, needle = missing[0]
        raise TimeoutError(f"{needle!r} did not appear; output tail: {bytes(p.buf[-400:])!r}")
    return [found[i] for i in range(len(waits))]


#: typed into the filter box key by key: a metric comparison, a status term, a bare word
#: (the trigger; matches id/job/tags/trigger/note). Both generators (make_runs,
#: gen_store.make_store) have these metrics, statuses and triggers.
FILTERS = ("metric.acc>0.9", "status=failed", "nightly")


def bar_count(shown: int, total: int) -> bytes:
    """The runs bar's count, e.g. b"1234/100000 runs": one unstyled piece of the bar line,
    so it is written in one piece whenever the bar is redrawn."""
    return f"{shown}/{total} runs".encode()


def filter_frames(runs: list[dict[str, Any]], text: str) -> list[tuple[bytes, bytes]]:
    """For each prefix of `text` (each key typed): the key and a text its frame must hold —
    the bar's count of the runs the prefix matches, or, for a prefix that does not parse,
    the error shown under the box (the table keeps the filter from before the box opened)."""
    from ctui.errors import CtuiError
    from ctui.query import filter_runs

    frames = []
    for i, ch in enumerate(text, 1):
        try:
            expect = bar_count(len(filter_runs(runs, text[:i])), len(runs))
        except CtuiError as exc:
            expect = exc.message[:24].encode()
        frames.append((ch.encode(), expect))
    return frames


def ctui_argv() -> list[str]:
    exe = Path(sys.executable).with_name("ctui")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ctui"]


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} CPUs, load {load:.1f}, Python {sys.version.split()[0]}"


def stats(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"min {min(ms):.1f} / median {statistics.median(ms):.1f} / max {max(ms):.1f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def peer_app(project: Path) -> None:
    """The peer: Textual's stock DataTable with the same rows and visible columns as ctui's
    table at 80×24, row cursor, started like ctui (one read of the store)."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from ctui.query import sort_runs
    from ctui.store import Store
    from ctui.tui.data import build_columns, cell, pick_extra_keys

    runs = Store(project / ".ctui" / "ctui.json").runs()
    rows = sort_runs(runs, "started", True)
    columns = build_columns(runs, pick_extra_keys(runs))[:9]
    now = time.time()

    class Peer(App[None]):
        BINDINGS = [("q", "quit", "Quit")]

        def compose(self) -> ComposeResult:
            yield DataTable(cursor_type="row")

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns(*[c.label for c in columns])
            table.add_rows([cell(r, c.key, now)[0] for c in columns] for r in rows)
            table.focus()

    Peer().run()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--size", default="80x24")
    ap.add_argument("--peer-app", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_app:
        peer_app(args.peer_app)
        return
    cols, rows = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="ctui-bench-") as tmp:
        project = make_project(Path(tmp) / "proj", args.runs)
        from ctui.query import sort_runs
        from ctui.store import Store

        runs = Store(project / ".ctui" / "ctui.json").runs()
        newest = sort_runs(runs, "started", True)[0]["id"]
        print(f"machine: {machine()}")
        # the store may be one file or an index and its segments: every file under .ctui/
        size = sum(f.stat().st_size for f in (project / ".ctui").rglob("*") if f.is_file())
        print(
            f"runs in store: {len(runs)}  (store files {size / 1e6:.1f} MB), "
            f"terminal {cols}x{rows}, {args.samples} samples each, interleaved A B A B"
        )
        full_count = bar_count(len(runs), len(runs))
        typed_frames = {f: filter_frames(runs, f) for f in FILTERS}  # before the clocks start
        ours = Pty(ctui_argv(), project, cols, rows)
        peer = Pty([sys.executable, __file__, "--peer-app", str(project)], project, cols, rows)
        try:
            first = ours.read_until(newest[-6:].encode())
            # A big store shows its newest runs first ("500/N runs (reading…)"); a worker
            # loads the rest and the bar then reads "N/N runs". Both ptys are read together
            # while ctui loads and the DataTable app starts (both started at once).
            rss_full: list[float] = []
            full_at, peer_first = read_until_each(
                [(ours, full_count), (peer, newest[-6:].encode())],
                timeout=600,
                on_seen=lambda p: rss_full.append(p.rss_mb()) if p is ours else None,
            )
            print(
                f"first frame: ctui {first:.2f} s (target ≤ 1.0 s: {verdict(first <= 1.0)}), "
                f"stock DataTable {peer_first:.2f} s"
            )
            print(
                f"full load: {full_at - first:.2f} s from the first frame to the bar's "
                f"{full_count.decode()!r} (no peer: the DataTable app has every row in its "
                f"first frame); RSS then {rss_full[0]:.0f} MB"
            )
            # The sort keys are computed ahead in a worker after the full load, which draws
            # nothing: wait for ctui to go idle, so the sorts below time sorting, not warm-up.
            print(f"waited {ours.settle():.2f} s for ctui to go idle (the sort-key warm-up)")
            peer.drain(0.5)
            sort: list[float] = []
            down: list[float] = []
            peer_down: list[float] = []
            for _ in range(args.samples):
                sort.append(ours.key_to_frame(b">"))
            ours.key_to_frame(b"g")
            for _ in range(args.samples + rows):  # past the bottom: each move scrolls
                down.append(ours.key_to_frame(b"\x1b[B"))
                peer_down.append(peer.key_to_frame(b"\x1b[B"))
            target = 0.050
            print(
                f"sort key → frame (ctui): {stats(sort)}; target ≤ 50 ms median: "
                f"{verdict(statistics.median(sort) <= target)}"
            )
            ratio = statistics.median(down) / statistics.median(peer_down)
            print(f"cursor move → frame, ctui:            {stats(down)}")
            print(f"cursor move → frame, stock DataTable: {stats(peer_down)}")
            print(
                f"ratio ctui / DataTable (medians): {ratio:.2f}; target ≤ 1.00 "
                f"(no slower than the peer): {verdict(ratio <= 1.0)}"
            )
            # the last moves are past the first page for both: each one scrolls the table
            scroll, peer_scroll = down[-args.samples :], peer_down[-args.samples :]
            print(
                f"  of which the {args.samples} that scroll: ctui {stats(scroll)}; "
                f"DataTable {stats(peer_scroll)}; ratio "
                f"{statistics.median(scroll) / statistics.median(peer_scroll):.2f}"
            )
            if cols >= 160:
                # the preview pane is drawn once the cursor rests on a run (RunPreview.SETTLE),
                # then its verdict and log are read: the time to the last byte of all that
                rest = [ours.key_to_frame(b"\x1b[B", quiet=0.5) for _ in range(args.samples)]
                print(
                    f"cursor move → preview pane complete (it waits for the cursor to rest, "
                    f"then reads the verdict and log; no peer): {stats(rest)}"
                )
            # the filter: `/` opens the box, each typed key applies the filter live (its frame
            # is the one whose bar shows the new count), escape in the box cancels it
            opens: list[float] = []
            typed: dict[str, list[float]] = {}
            cancels: list[float] = []
            for text, frames in typed_frames.items():
                opens.append(ours.key_to_frame(b"/"))
                typed[text] = [ours.key_to_frame(k, until=expect) for k, expect in frames]
                cancels.append(ours.key_to_frame(b"\x1b", until=full_count))
            keys = [t for ts in typed.values() for t in ts]
            print(f"filter box open ('/') → frame: {stats(opens)}")
            print(
                f"filter key → frame ({len(keys)} keys typed, {len(typed)} filters, "
                f"{len(runs)} runs): {stats(keys)}; target ≤ 100 ms median at 100k (issue: "
                f"sort and filter key → frame ≤ 100 ms): "
                f"{verdict(statistics.median(keys) <= 0.100)}; no peer (the stock DataTable "
                f"has no filter)"
            )
            for text, ts in typed.items():
                print(f"  {text!r}: {stats(ts)}")
            print(
                f"escape in the box (cancel, back to all runs) → frame: {stats(cancels)} "
                f"(Textual waits {ESCAPE_DELAY * 1000:.0f} ms to tell a lone escape from a "
                f"key's escape sequence)"
            )
            print(
                f"RSS at the end: ctui {ours.rss_mb():.0f} MB, "
                f"stock DataTable {peer.rss_mb():.0f} MB"
            )
        finally:
            ours.close()
            peer.close()


if __name__ == "__main__":
    main()
