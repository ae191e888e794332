"""The supervisor's CPU while its job prints ~50k lines/s: metrics read from the output on
(the default) against off (`output_metrics = false`: the relay and output.idx only), run
interleaved on the same job, A B A B.

Each round launches a real `ctui run` job (a dense mix: log lines, tqdm-style `\\r` bars,
`key=value` lines, HF Trainer dicts, `Epoch N: val_loss: …` lines) and reads the supervisor
process's own CPU time (user + system, psutil) over a window of the run. Target: ≤ 10 % of one
core with metrics on.

    uv run python bench/bench_output_metrics.py [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctui.jobs.launch import launch_run  # noqa: E402
from ctui.project import Project  # noqa: E402
from ctui.store import FINAL, open_store  # noqa: E402

TARGET = 0.10

JOB = r"""
import sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
block = []
for i in range(500):
    k = i % 10
    if k < 4:
        block.append(f"2024-01-02 12:30:45,{i:03d} - INFO - data: batch {i} of shard-{i % 7}\n")
    elif k < 6:
        block.append("".join(
            f"\rtrain: {j * 10:3d}%|{'#' * j}{' ' * (10 - j)}| {j * 10}/100 [00:0{j}, loss=0.{j}]"
            for j in range(1, 11)) + "\n")
    elif k < 8:
        block.append(f"step {i} loss={1 / (i + 1):.4f} acc=0.{i % 10} lr=1e-4\n")
    elif k == 8:
        block.append(f"{{'loss': 0.{i}, 'learning_rate': 4e-05, 'epoch': 1.{i}}}\n")
    else:
        block.append(f"Epoch {i}: val_loss: 0.{i} - val_acc: 0.9{i}\n")
text = "".join(block)
per, t0, n = 500 / rate, time.monotonic(), 0
while time.monotonic() - t0 < secs:
    sys.stdout.write(text); sys.stdout.flush(); n += 1
    d = t0 + n * per - time.monotonic()
    if d > 0:
        time.sleep(d)
"""


def measure(project: Project, job: str, secs: float) -> tuple[float, int, int]:
    """Supervisor CPU (fraction of a core) over the run's middle, lines written, points read."""
    store = open_store(project)
    rid = launch_run(project, job)["id"]
    while not store.get_run(rid).get("pid"):
        time.sleep(0.02)
    sup = psutil.Process(store.get_run(rid)["supervisor_pid"])
    time.sleep(1.0)
    c0, t0 = sum(sup.cpu_times()[:2]), time.monotonic()
    time.sleep(max(1.0, secs - 2.0))
    c1, t1 = sum(sup.cpu_times()[:2]), time.monotonic()
    while store.get_run(rid)["status"] not in FINAL:
        time.sleep(0.05)
    run_dir = project.run_dir(rid)
    lines = (run_dir / "output.log").read_bytes().count(b"\n")
    points = run_dir / "output_metrics.jsonl"
    return (c1 - c0) / (t1 - t0), lines, points.read_bytes().count(b"\n") if points.exists() else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rate", type=int, default=50_000)
    args = ap.parse_args()
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / "job.py").write_text(JOB)
        cmd = f"{shlex.quote(sys.executable)} job.py {args.rate} {args.seconds}"
        (root / "ctui.toml").write_text(
            f'[jobs.on]\ncommand = "{cmd}"\n\n[jobs.off]\ncommand = "{cmd}"\n'
            "output_metrics = false\n"
        )
        project = Project(root, root / ".ctui").ensure()
        for _ in range(args.rounds):
            for job in ("on", "off"):
                share, lines, points = measure(project, job, args.seconds)
                cpu[job].append(share)
                print(
                    f"  output_metrics {job:3}: supervisor {share:6.1%} of a core, "
                    f"{lines / args.seconds:,.0f} lines/s, {points} points"
                )
    for job, label in (("on", "metrics read (default)"), ("off", "relay only (peer)")):
        v = cpu[job]
        mid = statistics.median(v)
        print(f"{label:24} min {min(v):6.1%}  median {mid:6.1%}  max {max(v):6.1%}")
    on = statistics.median(cpu["on"])
    ratio = on / max(statistics.median(cpu["off"]), 1e-9)
    verdict = "met" if on <= TARGET else "MISSED"
    print(f"ratio on/off {ratio:.1f}x; target ≤ {TARGET:.0%} of a core with metrics on: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
