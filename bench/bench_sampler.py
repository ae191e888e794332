"""Cost of sampling a job's process tree (and GPUs, where there are any) at 1 Hz.

Target (issue 3): sampling a 16-process tree at 1 Hz costs ≤ 1% of one core.

Builds a real tree (1 root + 15 children), then measures the CPU time (of this process:
user + system) of: N samples from the cached tree, N full re-walks, and — since the supervisor
re-walks every 3 s — the cost of one second of supervision = sample + walk/3. With
`--real S` it also runs the real 1 Hz loop for S seconds and reports its measured CPU share.
Usage: python bench/bench_sampler.py [--samples 200] [--real 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctui.monitor.gpu import GpuSampler  # noqa: E402
from ctui.monitor.process import ProcessTreeSampler  # noqa: E402

ROOT = """
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(15)]
print("ready", flush=True)
time.sleep(600)
"""


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def per_call(fn, n: int) -> float:
    start = cpu()
    for _ in range(n):
        fn()
    return (cpu() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--real", type=float, default=0.0, help="also run the 1 Hz loop this long")
    args = ap.parse_args()
    root = subprocess.Popen([sys.executable, "-c", ROOT], stdout=subprocess.PIPE, text=True)
    try:
        assert root.stdout is not None and root.stdout.readline().strip() == "ready"
        cached = ProcessTreeSampler(root.pid, rewalk=1e9)
        nprocs = cached.sample()["nprocs"]
        sample_cost = per_call(cached.sample, args.samples)
        walker = ProcessTreeSampler(root.pid, rewalk=0.0)
        walker.sample()
        walk_cost = per_call(walker.sample, max(20, args.samples // 4)) - sample_cost
        gpu = GpuSampler()
        pids = cached.pids()
        gpu_cost = per_call(lambda: gpu.sample(pids), 50) if gpu.available else 0.0
        per_second = sample_cost + max(walk_cost, 0.0) / 3.0 + gpu_cost
        print(f"tree: {nprocs} processes")
        print(f"one sample of the cached tree: {sample_cost * 1e3:.3f} ms CPU")
        print(f"one full re-walk (extra):      {walk_cost * 1e3:.3f} ms CPU")
        if gpu.available:
            n_gpus = len(gpu.sample()["gpus"])
            print(f"one GPU sample ({n_gpus} GPUs):      {gpu_cost * 1e3:.3f} ms CPU")
        else:
            print(f"GPU: not sampled ({gpu.reason})")
        share = per_second * 100
        verdict = "OK" if share <= 1.0 else "OVER TARGET"
        print(f"1 Hz with a re-walk every 3 s: {share:.3f}% of one core (target ≤ 1%) {verdict}")
        if args.real > 0:
            loop = ProcessTreeSampler(root.pid)
            start_cpu, start = cpu(), time.monotonic()
            while time.monotonic() - start < args.real:
                loop.sample()
                if gpu.available:
                    gpu.sample(loop.pids())
                time.sleep(1.0)
            used = cpu() - start_cpu
            wall = time.monotonic() - start
            print(f"real 1 Hz loop for {wall:.0f} s: {used / wall * 100:.3f}% of one core")
        gpu.close()
    finally:
        import psutil

        for p in psutil.Process(root.pid).children(recursive=True):
            p.kill()
        root.kill()
        root.wait()


if __name__ == "__main__":
    main()
