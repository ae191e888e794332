"""Logs at volume (issue 3).

1. A job printing 1,000,000 lines as fast as it can, run bare (stdout to a file) and as a ctui
   run (detached supervisor): nothing lost, and the supervisor adds ≤ 10% to the job's wall
   time. Both runs get the same environment (ctui's, incl. PYTHONUNBUFFERED=1), so the ratio
   measures the supervisor only; interleaved, bare / supervised. Printed: the job's wall time
   bare vs under the supervisor (`duration` = job start → exit), and launch-to-final end to
   end (the launch itself is an in-process `launch_run` call; the job and supervisor are real
   processes).
2. `ctui logs RUN -n 100` on a 1 GB log: ≤ 0.2 s as a whole process. Interleaved: the whole
   `ctui logs` process, the peer `tail -n 100` on the same file, and `ctui --version` (the
   interpreter + CLI start), min / median / max and the ratio; `ctui.logs.tail` in-process is
   printed for profiling only.
Usage: python bench/bench_logs.py [--lines 1000000] [--gb 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctui.jobs.command import build_env  # noqa: E402
from ctui.jobs.launch import launch_run  # noqa: E402
from ctui.logs import tail  # noqa: E402
from ctui.project import Project  # noqa: E402
from ctui.store import FINAL, open_store  # noqa: E402

PRINTER = """
import sys
n = int(sys.argv[1])
for i in range(n):
    print("line", i, "of the job's output, as fast as it can")
"""


def spread(v: list[float], scale: float = 1.0, unit: str = "s", fmt: str = ".3f") -> str:
    """min / median / max of `v`."""
    lo, mid, hi = (x * scale for x in (min(v), statistics.median(v), max(v)))
    return f"min {lo:{fmt}}  median {mid:{fmt}}  max {hi:{fmt}} {unit}"


def child_env() -> dict[str, str]:
    """A child caches bytecode as an installed package does, even where
    PYTHONDONTWRITEBYTECODE is set."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "ctui-bench-pycache")
    return env


def wait_final(project: Project, run_id: str) -> dict:
    store = open_store(project)
    while True:
        doc = store.get_run(run_id)
        if doc["status"] in FINAL:
            return doc
        time.sleep(0.01)


def check_log(path: Path, n: int) -> str:
    with open(path, "rb") as fh:
        count = sum(1 for _ in fh)
    last = tail(path, 1)
    ok = count == n and last == [f"line {n - 1} of the job's output, as fast as it can"]
    return f"{count} lines, {'complete' if ok else 'LINES LOST'}"


def bench_lines(root: Path, n: int, repeats: int) -> None:
    (root / "printer.py").write_text(PRINTER)
    cmd = f"{shlex.quote(sys.executable)} printer.py {n}"
    (root / "ctui.toml").write_text(f'[jobs.printer]\ncommand = "{cmd}"\n')
    project = Project(root, root / ".ctui").ensure()
    from ctui.config import load_config

    job = load_config(root).job("printer")
    bare_env = {**os.environ, **build_env(job, {}, root / "bare")}
    bare, sup, e2e = [], [], []
    launch_run(project, "printer")  # warm-up: first manifest capture fills caches
    for _ in range(repeats):
        out = root / "bare.log"
        with open(out, "wb") as fh:
            t = time.perf_counter()
            subprocess.run(
                shlex.split(cmd),
                cwd=root,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=bare_env,
                check=True,
            )
            bare.append(time.perf_counter() - t)
        bare_check = check_log(out, n)
        t = time.perf_counter()
        run = launch_run(project, "printer")
        doc = wait_final(project, run["id"])
        e2e.append(time.perf_counter() - t)
        sup.append(doc["duration"])
        sup_check = check_log(project.run_dir(run["id"]) / "output.log", n)
        assert doc["status"] == "succeeded", doc
    b, s = statistics.median(bare), statistics.median(sup)
    print(f"{n:,} lines, n={repeats}, interleaved (load {os.getloadavg()[0]:.1f}):")
    print(f"  bare (stdout to a file):         {spread(bare)}   [{bare_check}]")
    print(f"  under the supervisor (duration): {spread(sup)}   [{sup_check}]")
    print(f"  launch → final status:           {spread(e2e)}   (manifest capture + start)")
    ratio = s / b
    verdict = "met" if ratio <= 1.10 else "MISSED"
    print(f"  ratio supervised/bare: {ratio:.3f} (target ≤ 1.10) {verdict}")


def make_big_log(path: Path, gb: float) -> int:
    block = b"".join(
        f"{i:08d} a log line of a long training run, epoch 3\n".encode() for i in range(16384)
    )
    target = int(gb * 2**30)
    written = 0
    with open(path, "wb") as fh:
        while written < target:
            fh.write(block)
            written += len(block)
    return written


def bench_tail(root: Path, gb: float, repeats: int) -> None:
    project = Project(root, root / ".ctui").ensure()
    store = open_store(project)
    init = getattr(store, "initialise", None)
    if init is not None:
        init()
    from ctui.ids import new_run_id

    run_id = new_run_id()
    run_dir = project.run_dir(run_id)
    run_dir.mkdir(parents=True)
    store.put_runs([{"id": run_id, "job": "big", "status": "succeeded", "created": time.time()}])
    log = run_dir / "output.log"
    t = time.perf_counter()
    size = make_big_log(log, gb)
    print(f"\n{size / 2**30:.2f} GiB log written in {time.perf_counter() - t:.1f} s")
    try:
        inproc = []
        for _ in range(repeats * 3):
            t = time.perf_counter()
            lines = tail(log, 100)
            inproc.append(time.perf_counter() - t)
        assert len(lines) == 100
        whole, peer, startup = [], [], []
        env = child_env()
        ctui = [sys.executable, "-m", "ctui", "-C", str(root), "logs", run_id, "-n", "100"]
        version = [sys.executable, "-m", "ctui", "--version"]
        for argv in (ctui, version):  # warm the bytecode cache
            subprocess.run(argv, capture_output=True, check=True, env=env)
        for _ in range(repeats):  # whole processes, interleaved
            t = time.perf_counter()
            out = subprocess.run(ctui, capture_output=True, check=True, env=env).stdout
            whole.append(time.perf_counter() - t)
            assert out.count(b"\n") == 100
            t = time.perf_counter()
            subprocess.run(["tail", "-n", "100", str(log)], capture_output=True, check=True)
            peer.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(version, capture_output=True, check=True, env=env)
            startup.append(time.perf_counter() - t)
        w = statistics.median(whole)
        print(f"  whole processes, n={repeats}, interleaved (load {os.getloadavg()[0]:.1f}):")
        print(f"    `ctui logs RUN -n 100`:  {spread(whole, 1e3, 'ms', '.0f')}")
        print(f"    peer `tail -n 100`:      {spread(peer, 1e3, 'ms', '.1f')}")
        print(f"    `ctui --version` (start): {spread(startup, 1e3, 'ms', '.0f')}")
        print(f"    ratio ctui logs / tail: {w / statistics.median(peer):.0f}×")
        print(f"    target `ctui logs` ≤ 200 ms: {'met' if w <= 0.2 else 'MISSED'}")
        inproc_ms = statistics.median(inproc) * 1e3
        print(f"  in-process, profiling only: ctui.logs.tail(log, 100) {inproc_ms:.2f} ms")
    finally:
        log.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ctui-bench-logs-"))
    try:
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        bench_lines(tmp / "a", args.lines, args.repeats)
        bench_tail(tmp / "b", args.gb, args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
