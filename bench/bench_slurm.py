"""Status refresh with many Slurm runs in flight: one `squeue` per refresh, whatever the count.

Needs a Slurm controller (`bash tests/ci/slurm.sh up`). Submits N tiny held jobs (`--hold`,
they never run), records them as ctui runs, then, interleaved round by round (whole
processes): `ctui ps --all` (it refreshes the Slurm runs: what `ctui runs` and the TUI do
too), the peer `squeue -h -u USER` (Slurm's own listing of the same jobs, one process), and the
naive alternative, one `squeue -j ID` per run. The squeue calls a refresh makes are counted by
a shim in front of the real squeue. `ctui.jobs.reconcile.refresh` in-process is printed for
profiling only. Cancels every job at the end.

Target: one squeue call per refresh, whatever the count of runs in flight.

    uv run python bench/bench_slurm.py [--runs 200] [--repeat 10]
"""

from __future__ import annotations

import argparse
import getpass
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
    from ctui.store import open_store

    tmp = Path(tempfile.mkdtemp(prefix="ctui-bench-slurm-"))
    project = Project(root=tmp, state_dir=tmp / ".ctui").ensure()
    store = open_store(project)
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

        entry = Path(sys.executable).with_name("ctui")
        ctui = [str(entry)] if entry.exists() else [sys.executable, "-m", "ctui"]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        ps = [*ctui, "-C", str(tmp), "ps", "--all"]
        user = getpass.getuser()
        subprocess.run(ps, capture_output=True, check=True, env=env)  # warm
        whole: dict[str, list[float]] = {"ctui ps --all": [], "peer: squeue -h -u USER": []}
        naive: list[float] = []
        for i in range(args.repeat):  # whole processes, interleaved
            t = time.perf_counter()
            subprocess.run(ps, capture_output=True, check=True, env=env)
            whole["ctui ps --all"].append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(["squeue", "-h", "-u", user], capture_output=True, check=True)
            whole["peer: squeue -h -u USER"].append(time.perf_counter() - t)
            if i < 3:  # slow: a process per run
                t = time.perf_counter()
                for job_id in job_ids:
                    subprocess.run(
                        ["squeue", "-h", "-j", job_id, "-o", "%T|%r"], capture_output=True
                    )
                naive.append(time.perf_counter() - t)
    finally:
        for i in range(0, len(job_ids), 100):
            subprocess.run(["scancel", *job_ids[i : i + 100]], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"Slurm runs in flight: {args.runs} (held jobs, submitted in {submit_s:.1f} s)")
    print(f"whole processes, interleaved (load {os.getloadavg()[0]:.1f}), ms:")
    print(f"  {'':<34} {'n':>3} {'min':>7} {'median':>7} {'max':>7}")
    for name, v in [*whole.items(), (f"one squeue -j per run ({args.runs})", naive)]:
        print(f"  {name:<34} {len(v):3} {min(v) * 1e3:7.0f} {statistics.median(v) * 1e3:7.0f} "
              f"{max(v) * 1e3:7.0f}")  # fmt: skip
    ctui_med = statistics.median(whole["ctui ps --all"])
    peer_med = statistics.median(whole["peer: squeue -h -u USER"])
    print(f"  ratio ctui ps / squeue: {ctui_med / peer_med:.1f}×; "
          f"one squeue per run / ctui ps: {statistics.median(naive) / ctui_med:.1f}×")  # fmt: skip
    verdict = "met" if per_refresh_calls <= 1 else "MISSED"
    print(f"squeue calls per refresh: {per_refresh_calls:.0f} (first refresh: {first_calls}); "
          f"target 1: {verdict}")  # fmt: skip
    med = statistics.median(times)
    print(f"in-process, profiling only: refresh() median {med * 1e3:.0f} ms "
          f"(min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f}); the first, "
          f"{args.runs} updates: {first_s * 1e3:.0f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
