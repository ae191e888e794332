"""Sample a real NVIDIA GPU with ctui's samplers for ~5 s and print what they recorded.

    python bench/gpu_check.py [--seconds 5] [--supervise] [--out FILE]

1. Starts a small GPU-using child (a torch matmul loop; cupy if no torch; else none → the idle
   GPU is sampled) and samples it twice a second with `GpuSampler` (utilisation, memory,
   temperature, power, the child's own GPU memory) and `ProcessTreeSampler` (CPU, RSS).
2. With `--supervise`, also launches the same workload as a real ctui run in a temporary project
   (detached supervisor, 1 Hz sampling into resources.jsonl) and prints the run's peaks.

Prints JSON lines, and the cost of one GPU sample. No GPU → says so (that is a result too).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctui.monitor.gpu import GpuSampler, visible_from_env  # noqa: E402
from ctui.monitor.process import ProcessTreeSampler  # noqa: E402

WORKLOAD = """
import sys, time
secs = float(sys.argv[1])
try:
    import torch
    x = torch.randn(4096, 4096, device="cuda")
    end = time.time() + secs
    n = 0
    while time.time() < end:
        y = x @ x
        n += 1
        if n % 50 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    print("torch matmuls:", n, flush=True)
except ImportError:
    try:
        import cupy as cp
        x = cp.random.rand(4096, 4096, dtype=cp.float32)
        end = time.time() + secs
        while time.time() < end:
            y = x @ x
            cp.cuda.Device().synchronize()
        print("cupy done", flush=True)
    except ImportError:
        print("no torch or cupy: idle GPU only", flush=True)
        time.sleep(secs)
"""


def emit(record: dict, sink) -> None:
    line = json.dumps(record, default=str)
    print(line, flush=True)
    if sink:
        sink.write(line + "\n")


def sample_child(seconds: float, sink) -> None:
    gpu = GpuSampler(visible_from_env())
    emit({"phase": "idle", "gpu": gpu.sample()}, sink)
    if not gpu.available:
        return
    t0 = time.perf_counter()
    for _ in range(20):
        gpu.sample()
    emit(
        {"phase": "cost", "ms_per_gpu_sample": round((time.perf_counter() - t0) / 20 * 1000, 3)},
        sink,
    )
    child = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(seconds)])
    procs = ProcessTreeSampler(child.pid, rewalk=2.0)
    end = time.time() + seconds + 10
    while child.poll() is None and time.time() < end:
        p = procs.sample()
        g = gpu.sample(p["pids"])
        emit({"phase": "busy", "proc": {k: v for k, v in p.items() if k != "pids"}, "gpu": g}, sink)
        time.sleep(0.5)
    child.wait()
    emit({"phase": "after", "gpu": gpu.sample()}, sink)
    gpu.close()


def supervise(seconds: float, sink) -> None:
    """The same workload as a real ctui run: the supervisor's own samples and peaks."""
    try:
        from ctui.jobs.launch import launch_run
        from ctui.project import Project
        from ctui.store import FINAL, open_store
    except ImportError as exc:
        emit({"phase": "supervise", "skipped": f"ctui's dependencies missing: {exc}"}, sink)
        return
    root = Path(tempfile.mkdtemp(prefix="ctui-gpu-"))
    (root / "work.py").write_text(WORKLOAD)
    cmd = f"{shlex.quote(sys.executable)} work.py {seconds}"
    (root / "ctui.toml").write_text(f"[jobs.gpu]\ncommand = {json.dumps(cmd)}\n")
    project = Project(root, root / ".ctui").ensure()
    run = launch_run(project, "gpu")
    store = open_store(project)
    deadline = time.time() + seconds + 60
    while time.time() < deadline:
        run = store.get_run(run["id"])
        if run["status"] in FINAL:
            break
        time.sleep(0.2)
    emit(
        {
            "phase": "supervise",
            "status": run["status"],
            "exit_code": run["exit_code"],
            "peaks": run.get("peaks"),
            "error": run.get("error"),
        },
        sink,
    )
    res = project.run_dir(run["id"]) / "resources.jsonl"
    if not res.exists():
        sup_log = project.run_dir(run["id"]) / "supervisor.log"
        emit({"phase": "supervise", "supervisor.log": sup_log.read_text()[-2000:]}, sink)
        return
    for line in res.read_text().splitlines()[:8]:
        emit({"phase": "supervise-sample", "sample": json.loads(line)}, sink)
    log = (project.run_dir(run["id"]) / "output.log").read_text()
    emit({"phase": "supervise-log", "log": log[-500:]}, sink)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--supervise", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sink = open(args.out, "w") if args.out else None  # noqa: SIM115
    try:
        emit({"phase": "env", "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}, sink)
        sample_child(args.seconds, sink)
        if args.supervise:
            supervise(args.seconds, sink)
    finally:
        if sink:
            sink.close()


if __name__ == "__main__":
    main()
