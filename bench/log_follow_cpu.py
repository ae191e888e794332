"""The CPU part of bench_log_view.py: the real `ctui` TUI in a pty following a real job's log
that grows at `rate` lines/s (progress bars in the mix), against `tail -f` on the same log.

Only the processes measured run the work: the TUI (`python -m ctui`, the live view), the
job's supervisor (relay, output.idx, metrics read from the output) and `tail -f`. Their CPU
time (user + system, psutil, children included for tail) is read at the start and the end of
each window; the bench itself only drains the ptys.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil

#: the job: `rate` lines/s for `seconds`; every 500th line is a bar redrawn 20 times with \r
JOB = r"""
import sys, time
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
out = sys.stdout.buffer
tick, n, epoch, start = 0.02, 0, 0, time.monotonic()
per_tick = max(1, int(rate * tick))
while time.monotonic() - start < seconds:
    parts = []
    for k in range(n, n + per_tick):
        if k % 500 == 0:
            bar = "".join(
                f"\repoch {epoch}: {p * 5:3d}%|{'#' * p}{' ' * (20 - p)}| {p * 5}/100"
                for p in range(21)
            )
            parts.append(bar + "\n")
            epoch += 1
        else:
            parts.append(f"step {k} loss=0.{k % 997:03d} lr=0.001 some progress text\n")
    out.write("".join(parts).encode())
    out.flush()
    n += per_tick
    delay = start + n / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(f"wrote {n} lines", flush=True)
"""

COLS, ROWS = 120, 40


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTUI_", "MLFLOW_"))}
    env.update(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
    env["TEXTUAL_ANIMATIONS"] = "none"
    return env


class Pty:
    """A process with a pty for its terminal; a thread drains what it draws."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=_env(),
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.seen = bytearray()  # the last 256 kB drawn
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.seen += data
            del self.seen[:-262144]

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                tail = bytes(self.seen[-2000:]).decode("utf-8", "replace")
                raise SystemExit(f"never saw {text!r} on the screen; last output:\n{tail}")
            time.sleep(0.05)

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        os.close(self.master)


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def make_project(root: Path, rate: int, seconds: float) -> None:
    root.mkdir(parents=True)
    (root / "job.py").write_text(JOB)
    run = lambda *a: subprocess.run(a, cwd=root, check=True, capture_output=True)  # noqa: E731
    run("git", "init", "-q")
    run(sys.executable, "-m", "ctui", "init")
    (root / "ctui.toml").write_text(
        f'[jobs.flood]\ncommand = "{sys.executable} job.py {rate} {seconds}"\n'
    )
    (root / ".gitignore").write_text(".ctui/\n")
    run("git", "add", "-A")
    run("git", "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "bench")


def launch(root: Path) -> tuple[str, Path]:
    out = subprocess.run(
        [sys.executable, "-m", "ctui", "run", "flood"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
    )
    run_id = out.stdout.split()[-1]
    return run_id, root / ".ctui" / "runs" / run_id


def supervisor(root: Path, run_id: str, timeout: float = 30.0) -> psutil.Process | None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ctui.store import Store

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = Store(root / ".ctui" / "ctui.json").get_run(run_id).get("supervisor_pid")
        if pid:
            try:
                return psutil.Process(pid)
            except psutil.NoSuchProcess:
                return None
        time.sleep(0.1)
    return None


def lines_in(path: Path, start: int, end: int) -> int:
    with path.open("rb") as fh:
        fh.seek(start)
        return fh.read(end - start).count(b"\n")


def spread(values: list[float]) -> str:
    return (
        f"min {min(values):5.1f} %  median {statistics.median(values):5.1f} %  "
        f"max {max(values):5.1f} %"
    )


def follow_cpu(tmp: Path, rate: int, window: float, rounds: int) -> None:
    root = tmp / "project"
    seconds = 6.0 + rounds * 2 * (window + 0.5) + 3.0
    make_project(root, rate, seconds)
    tui = Pty([sys.executable, "-m", "ctui"], root)
    tails: list[Pty] = []
    run_id = ""
    try:
        tui.wait_for("Quit")  # the runs screen is up
        run_id, run_dir = launch(root)
        log = run_dir / "output.log"
        sup = supervisor(root, run_id)
        tui.wait_for(run_id[:6])
        tui.send("l")  # the live view of the newest run
        tui.wait_for("following")
        time.sleep(2.0)  # in full flow
        me = psutil.Process(tui.proc.pid)
        a: list[float] = []
        s: list[float] = []
        b: list[float] = []
        rates: list[float] = []
        for _ in range(rounds):
            size0, t0 = log.stat().st_size, time.monotonic()
            c0 = cpu_seconds(me)
            s0 = cpu_seconds(sup) if sup is not None else 0.0
            time.sleep(window)
            c1, t1 = cpu_seconds(me), time.monotonic()
            s1 = cpu_seconds(sup) if sup is not None else 0.0
            size1 = log.stat().st_size
            a.append(100 * (c1 - c0) / (t1 - t0))
            s.append(100 * (s1 - s0) / (t1 - t0))
            rates.append(lines_in(log, size0, size1) / (t1 - t0))
            tail = Pty(["tail", "-f", str(log)], root)
            tails.append(tail)
            time.sleep(0.5)  # its start (the last 10 lines) is not counted
            tp = psutil.Process(tail.proc.pid)
            c0, t0 = cpu_seconds(tp), time.monotonic()
            time.sleep(window)
            c1, t1 = cpu_seconds(tp), time.monotonic()
            b.append(100 * (c1 - c0) / (t1 - t0))
            tail.close()
        if tui.proc.poll() is not None:
            raise SystemExit("the TUI exited during the bench")
        print(
            f"log growth during the TUI windows: {statistics.median(rates):,.0f} lines/s "
            f"(asked {rate:,}; bars: one line in 500, redrawn 20 times with \\r)"
        )
        print(f"ctui TUI (live view, following), CPU of one core: {spread(a)}")
        print(f"tail -f on the same log,          CPU of one core: {spread(b)}")
        if sup is not None:
            print(f"the job's supervisor (relay, output.idx, output metrics): {spread(s)}")
        ratio = statistics.median(a) / max(statistics.median(b), 0.05)
        verdict = "met" if statistics.median(a) <= 10.0 else "MISSED"
        print(
            f"ratio TUI / tail -f (medians): {ratio:.1f}x; "
            f"target ≤ 10 % of a core for the TUI: {verdict}"
        )
        metrics = run_dir / "output_metrics.jsonl"
        if metrics.exists():
            print(f"output_metrics.jsonl: {metrics.stat().st_size / 2**20:.1f} MiB of points")
    finally:
        for tail in tails:
            if tail.proc.poll() is None:
                tail.close()
        tui.close()
        if run_id:
            subprocess.run(
                [sys.executable, "-m", "ctui", "stop", run_id, "--grace", "1"],
                cwd=root,
                capture_output=True,
            )
