"""Status refresh with many Slurm runs in flight: one `squeue` per refresh, whatever the count.

Needs a Slurm controller (`bash tests/ci/slurm.sh up`). Submits N tiny held jobs (`--hold`,
they never run), records them as ctui runs, then times `ctui.jobs.reconcile.refresh` (what
`ctui runs`, `ctui ps` and the TUI call), counts the squeue calls it makes (a counting shim
in front of the real squeue), and compares with asking squeue once per run. Cancels every
job at the end.

    uv run python bench/bench_slurm.py [--runs 200] [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CI_CONF = Path("/tmp/ctui-slurm/slurm.conf")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    if "SLURM_CONF" not in os.environ and CI_CONF.exists():
        os.environ["SLURM_CONF"] = str(CI_CONF)
    if shutil.which("sbatch") is None or subprocess.run(["sinfo"], capture_output=True).returncode:
        print("no Slurm controller answers: run `bash tests/ci/slurm.sh up` first")
        return 2

    from ctui.ids import new_run_id
    from ctui.jobs.reconcile import refresh
    from ctui.project import Project
    from ctui.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="ctui-bench-slurm-"))
    project = Project(root=tmp, state_dir=tmp / ".ctui").ensure()
    store = Store(project.store_file)
    init = getattr(store, "initialise", None)  # stores that need no set-up have none
    if init is not None:
        init()

    t0 = time.perf_counter()
    job_ids = []
    for _ in range(args.runs):
        done = subprocess.run(
            [
                "sbatch",
                "--parsable",
                "--hold",
                "--job-name=ctui-bench",
                "-o",
                "/dev/null",
                "--wrap",
                "true",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        job_ids.append(done.stdout.strip().split(";")[0])
    submit_s = time.perf_counter() - t0
    docs = []
    for job_id in job_ids:
        run_id = new_run_id()
        project.run_dir(run_id).mkdir(parents=True)
        docs.append(
            {
                "id": run_id,
                "job": "bench",
                "status": "queued",
                "backend": "slurm",
                "created": time.time(),
                "slurm": {"job_id": job_id, "state": "PENDING"},
            }
        )
    store.put_runs(docs)

    # count the squeue calls through a shim that runs the real one
    shim = tmp / "bin"
    shim.mkdir()
    calls = tmp / "squeue-calls"
    (shim / "squeue").write_text(
        f'#!/bin/sh\necho x >> {calls}\nexec {shutil.which("squeue")} "$@"\n'
    )
    (shim / "squeue").chmod(0o755)
    os.environ["PATH"] = f"{shim}{os.pathsep}{os.environ['PATH']}"

    try:
        t = time.perf_counter()
        refresh(project)  # first refresh records the held reason for every run (store writes)
        first_s = time.perf_counter() - t
        first_calls = len(calls.read_text().splitlines())
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            refresh(project)
            times.append(time.perf_counter() - t)
        total_calls = len(calls.read_text().splitlines())
        per_refresh_calls = (total_calls - first_calls) / args.repeat

        t = time.perf_counter()
        for job_id in job_ids:
            subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"], capture_output=True)
        naive_s = time.perf_counter() - t
    finally:
        for i in range(0, len(job_ids), 100):
            subprocess.run(["scancel", *job_ids[i : i + 100]], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median(times)
    print(f"Slurm runs in flight         : {args.runs} (held jobs, submitted in {submit_s:.1f} s)")
    print(
        f"first refresh ({args.runs} updates)  : {first_s * 1000:.0f} ms, "
        f"squeue calls: {first_calls}"
    )
    print(f"squeue calls per refresh     : {per_refresh_calls:.0f}")
    print(
        f"refresh, median of {args.repeat:<3}      : {med * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
    )
    print(f"one squeue per run instead   : {naive_s * 1000:.0f} ms ({naive_s / med:.0f}x slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
