"""The supervisor's own CPU while it supervises a 16-process job at 1 Hz, beside `top`.

A real `ctui run` (whole process) of a job whose tree is 16 processes (the job and 15
children, all sleeping: the supervisor's cost, not the job's), sampled at the default 1 Hz.
Once the run is under way (two resource samples written), the supervisor process's own CPU
time (psutil `cpu_times()` user + system of its pid, children excluded) is read at the start
and the end of a window of `--seconds`; the share of one core is their difference over the
window. Everything the supervisor does in that window counts: the sampling loop, the wait on
the job, the output relay, the writes of `resources.jsonl`, the heartbeat. The job's watchdog
(a process of its own) is measured the same way and printed apart.

The peer, interleaved (ctui, top, ctui, top, …) on the same kind of tree: `top -b -d 1 -p
<the 16 pids>` (procps, what one would run to watch those processes at 1 Hz), its own CPU time
over the same window.

Target (issue 15): the supervisor at 1 Hz on a 16-process tree ≤ 0.5 % of one core.

    uv run python bench/bench_sampler.py [--seconds 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TARGET = 0.005
TREE = 16

JOB = r"""
import subprocess, sys, time
secs = float(sys.argv[1])
kids = [subprocess.Popen(["sleep", str(secs)]) for _ in range(int(sys.argv[2]) - 1)]
print("tree up", flush=True)
time.sleep(secs)
for k in kids:
    k.wait()
"""


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system  # children excluded


def ctui_cmd() -> list[str]:
    entry = Path(sys.executable).with_name("ctui")
    return [str(entry)] if entry.exists() else [sys.executable, "-m", "ctui"]


def wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def tree_of(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def watchdog_of(sup: psutil.Process) -> psutil.Process | None:
    for child in sup.children():
        with contextlib.suppress(psutil.Error):
            if "ctui.jobs.backends.local" in " ".join(child.cmdline()):
                return child
    return None


def measure_ctui(root: Path, secs: float) -> tuple[float, float, int]:
    """The supervisor's CPU share over a window of `secs`, its watchdog's (a process of its
    own that stops the job should the supervisor die), and the processes it sampled."""
    job_secs = float(int(secs + 6.0))  # the job's param is a float in whole seconds
    out = subprocess.run(
        [*ctui_cmd(), "run", "tree", "--detach", "--json", "-p", f"secs={job_secs:g}"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    import json

    rid = json.loads(out.stdout)["id"]
    run_dir = root / ".ctui" / "runs" / rid
    resources = run_dir / "resources.jsonl"

    def doc() -> dict:  # type: ignore[type-arg]
        shown = subprocess.run(
            [*ctui_cmd(), "show", rid, "--json"], cwd=root, capture_output=True, text=True
        )
        return json.loads(shown.stdout) if shown.returncode == 0 else {}

    def two_samples() -> bool:
        try:
            lines = [ln for ln in resources.read_bytes().splitlines() if b'"nprocs"' in ln]
        except OSError:
            return False
        return len(lines) >= 2 and json.loads(lines[-1])["nprocs"] >= TREE

    wait_for(two_samples, 30, "the run's first samples of the whole tree")
    sup = psutil.Process(doc()["supervisor_pid"])
    dog = watchdog_of(sup)
    c0, t0 = cpu_seconds(sup), time.monotonic()
    d0 = cpu_seconds(dog) if dog else 0.0
    time.sleep(secs)
    c1, t1 = cpu_seconds(sup), time.monotonic()
    d1 = cpu_seconds(dog) if dog else 0.0
    last = json.loads(resources.read_bytes().splitlines()[-1])
    subprocess.run([*ctui_cmd(), "stop", rid], cwd=root, capture_output=True)
    wait_for(lambda: not sup.is_running(), 30, "the supervisor to end")
    return (c1 - c0) / (t1 - t0), (d1 - d0) / (t1 - t0), int(last.get("nprocs", 0))


def measure_top(root: Path, secs: float) -> float:
    """`top -b -d 1 -p PIDS` watching a 16-process tree: its CPU share over `secs`."""
    job = subprocess.Popen(
        [sys.executable, str(root / "tree.py"), str(secs + 6.0), str(TREE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert job.stdout is not None and job.stdout.readline().strip() == "tree up"
        pids = ",".join(str(p.pid) for p in tree_of(job.pid))
        top = subprocess.Popen(
            ["top", "-b", "-d", "1", "-p", pids], stdout=subprocess.DEVNULL, env={"TERM": "dumb"}
        )
        try:
            time.sleep(2.0)  # past its start-up, as for the supervisor
            tp = psutil.Process(top.pid)
            c0, t0 = cpu_seconds(tp), time.monotonic()
            time.sleep(secs)
            c1, t1 = cpu_seconds(tp), time.monotonic()
        finally:
            top.kill()
            top.wait()
        return (c1 - c0) / (t1 - t0)
    finally:
        for p in tree_of(job.pid)[::-1]:
            p.kill()
        job.wait()


def row(name: str, v: list[float]) -> str:
    med = statistics.median(v)
    return f"  {name:<34} {min(v):7.2%} {med:7.2%} {max(v):7.2%}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring window per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-top", action="store_true")
    args = ap.parse_args()
    with_top = not args.no_top and shutil.which("top") is not None
    sup: list[float] = []
    dog: list[float] = []
    top: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ctui-bench-sampler-") as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / "tree.py").write_text(JOB)
        cmd = f"{shlex.quote(sys.executable)} tree.py {{secs}} {TREE}"
        (root / "ctui.toml").write_text(
            f'[jobs.tree]\ncommand = "{cmd}"\nparams = {{ secs = 30.0 }}\n'
        )
        (root / ".gitignore").write_text(".ctui/\n")
        subprocess.run([*ctui_cmd(), "init"], cwd=root, capture_output=True)
        for i in range(args.rounds):
            share, dog_share, nprocs = measure_ctui(root, args.seconds)
            sup.append(share)
            dog.append(dog_share)
            line = (
                f"round {i + 1}: supervisor {share:.2%} of a core ({nprocs} processes), "
                f"its watchdog {dog_share:.2%}"
            )
            if with_top:
                top.append(measure_top(root, args.seconds))
                line += f", top {top[-1]:.2%}"
            print(line, flush=True)
    print(
        f"\nCPU time over {args.seconds:g} s windows at 1 Hz, {TREE}-process tree, "
        f"n={args.rounds} (load {psutil.getloadavg()[0]:.1f}):"
    )
    print(f"  {'':<34} {'min':>7} {'median':>7} {'max':>7}")
    print(row("ctui supervisor (whole process)", sup))
    print(row("  its watchdog (a process apart)", dog))
    med = statistics.median(sup)
    if top:
        print(row("peer: top -b -d 1 -p <16 pids>", top))
        print(f"  ratio supervisor / top: {med / max(statistics.median(top), 1e-9):.2f}×")
    verdict = "met" if med <= TARGET else "MISSED"
    print(f"  target: supervisor ≤ {TARGET:.1%} of one core: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
