"""Store speed: `ctui runs --json` over 10k runs vs MLflow's search_runs, and a status update.

Targets (issue 2): runs --json ≤ 0.5 s median whole process and ≥ 20× faster than
mlflow.search_runs; one run-status update with 10k runs ≤ 100 ms (plain TinyDB: ~0.44 s).
Usage: python bench/bench_store.py [--runs 10000] [--mlflow-repeats 1] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_store import make_store  # noqa: E402


def whole_process(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t
    return wall, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--mlflow-repeats", type=int, default=1)
    ap.add_argument("--no-mlflow", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ctui-bench-store-"))
    project = make_store(tmp, args.runs)
    size = project.store_file.stat().st_size
    print(f"store: {args.runs} runs, {size / 1e6:.1f} MB ({size / args.runs:.0f} B per run)")

    ctui_cmd = [sys.executable, "-m", "ctui", "runs", "--json"]
    # Bytecode as an installed package has it, even where PYTHONDONTWRITEBYTECODE is set.
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CTUI_STORE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    whole_process(ctui_cmd, tmp, env)  # warm the page cache and the bytecode cache
    times = [whole_process(ctui_cmd, tmp, env)[0] for _ in range(args.repeats)]
    ctui_median = statistics.median(times)
    ctui_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # only ctui ran so far
    print(
        f"ctui runs --json (whole process): median {ctui_median * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}) — target ≤ 500 ms"
    )

    from ctui.store import Store

    store = Store(project.store_file)
    ids = [r["id"] for r in store.runs()]
    upd = []
    for i in range(20):
        t = time.perf_counter()
        store.update_run(ids[i * 37], {"status": "failed"})
        upd.append(time.perf_counter() - t)
    upd_median = statistics.median(upd)
    print(
        f"one status update, {args.runs} runs in store: median {upd_median * 1000:.0f} ms "
        f"— target ≤ 100 ms"
    )

    # Peer: plain TinyDB (json storage, no lock) updating one document of the same file.
    from tinydb import Query, TinyDB

    plain = tmp / "plain.json"
    plain.write_text(json.dumps({"runs": {str(i): r for i, r in enumerate(store.runs())}}))
    db = TinyDB(plain)
    t = time.perf_counter()
    db.table("runs").update({"status": "failed"}, Query().id == ids[5])
    print(f"peer: plain TinyDB update of one document: {(time.perf_counter() - t) * 1000:.0f} ms")

    if args.no_mlflow:
        return
    from gen_store import make_mlflow_store

    t = time.perf_counter()
    uri = make_mlflow_store(tmp / "mlflow.db", store.runs())
    print(f"(built the MLflow sqlite store in {time.perf_counter() - t:.0f} s)")
    code = (
        f"import mlflow; mlflow.set_tracking_uri({uri!r}); "
        "df = mlflow.search_runs(experiment_names=['bench'], max_results=50000); "
        "print(len(df))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n = int(out.stdout.strip().splitlines()[-1])
    assert n == args.runs, f"mlflow returned {n} runs"
    ml = [whole_process([sys.executable, "-c", code], tmp, env) for _ in range(args.mlflow_repeats)]
    ml_median = statistics.median(w for w, _ in ml)
    ml_rss = max(r for _, r in ml)
    print(
        f"peer: mlflow.search_runs over the same {n} runs (whole process): "
        f"{ml_median:.1f} s, peak RSS ≥ {ml_rss / 1024:.0f} MB"
    )
    print(f"ctui runs --json peak RSS: {ctui_rss / 1024:.0f} MB")
    print(
        f"ratio: ctui is {ml_median / ctui_median:.0f}× faster than mlflow.search_runs "
        f"— target ≥ 20×"
    )
    if os.environ.get("KEEP"):
        print(f"kept {tmp}")


if __name__ == "__main__":
    main()
