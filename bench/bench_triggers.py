"""One evaluation of 20 triggers over a repo with 2,000 DVC-tracked paths, data unchanged.

Builds a throwaway git + DVC repo with 2,000 small files tracked by real DVC: by default a
`dvc.yaml` stage that depends on all of them, locked by a real `dvc repro` (dvc.lock holds
2,000 hashed deps; ~20 s); with `--mode add`, one batch `dvc add` of the 2,000 files (2,000
`*.dvc` files; several minutes here). 10 jobs, each with a run recorded on the current data;
20 triggers (8 data, 4 code, 4 schedule, 2 after, 2 metric reading a file). Then:

- the figure that counts, whole processes interleaved A B A B on the same repo: `ctui watch
  --once --json` (one evaluation of every trigger: a fresh interpreter, imports, config and
  the store included) against `dvc status` (the peer, checking the same 2,000 paths);
  min / median / max and the ratio. Both children cache bytecode as an install does;
- in-process, for profiling only (an engine call after imports; not comparable with a whole
  `dvc status` process, and no ratio is drawn from it): `evaluate_all` as a fresh process
  would run it (hash cache on disk, nothing in memory), warm (a long-running `ctui watch`),
  a whole `run_cycle`, and with no trigger cache.

Targets: a whole `ctui watch --once` ≥ 10× faster than `dvc status`; the engine's evaluation
(in-process, fresh) ≤ 200 ms.

    uv run python bench/bench_triggers.py [-n 7] [--paths 2000] [--mode lock|add]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {
    **{k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CTUI_STORE")},
    "DVC_NO_ANALYTICS": "1",
    "GIT_CONFIG_NOSYSTEM": "1",
    # bytecode cached as an install has it (in a private folder), for ctui and dvc alike
    "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "ctui-bench-pycache"),
}


def sh(cwd: Path, *argv: str) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=ENV)


def build(root: Path, n_paths: int, mode: str) -> None:
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "config", "user.email", "bench@ctui.invalid")
    sh(root, "git", "config", "user.name", "bench")
    sh(root, "git", "config", "commit.gpgsign", "false")
    sh(root, sys.executable, "-m", "dvc", "init", "-q")
    shards = root / "data"
    shards.mkdir()
    names = []
    for i in range(n_paths):
        name = f"data/shard-{i:05d}.csv"
        (root / name).write_text(f"id,value\n{i},{i * 7 % 101}\n")
        names.append(name)
    t = time.perf_counter()
    if mode == "add":
        sh(root, sys.executable, "-m", "dvc", "add", "-q", *names)
        what = f"dvc add of {n_paths} files"
    else:
        deps = "".join(f"    - {name}\n" for name in names)
        (root / "dvc.yaml").write_text(f"stages:\n  prepare:\n    cmd: 'true'\n    deps:\n{deps}")
        sh(root, sys.executable, "-m", "dvc", "repro", "-q")
        what = f"dvc repro of a stage with {n_paths} deps"
    print(f"setup: {what} took {time.perf_counter() - t:.1f} s", flush=True)
    (root / "metric.txt").write_text("0.05\n")
    py = sys.executable
    jobs = "".join(f'[jobs.job{j}]\ncommand = "{py} -c pass"\n\n' for j in range(10))
    triggers = []
    for i in range(8):  # data: all of the job's data, or one folder of it
        extra = 'paths = ["data"]\n' if i % 2 else ""
        triggers.append(f'[triggers.data{i}]\njob = "job{i}"\non = "data"\n{extra}')
    for i in range(4):
        triggers.append(
            f'[triggers.code{i}]\njob = "job{i}"\non = "code"\nbranch = "main"\npaths = ["src"]\n'
        )
    for i in range(4):
        rule = f'every = "{i + 1}h"' if i % 2 else 'cron = "0 3 * * *"'
        triggers.append(f'[triggers.sched{i}]\njob = "job{i + 4}"\non = "schedule"\n{rule}\n')
    for i in range(2):
        triggers.append(
            f'[triggers.after{i}]\njob = "job{8 + i}"\non = "after"\nafter = "job{i}"\n'
        )
    for i in range(2):
        triggers.append(
            f'[triggers.metric{i}]\njob = "job{8 + i}"\non = "metric"\n'
            f'file = "metric.txt"\nthreshold = 0.5\n'
        )
    (root / "ctui.toml").write_text(jobs + "\n".join(triggers))
    (root / ".gitignore").write_text(".ctui/\n")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "2,000 shards")


def record_runs(root: Path) -> None:
    """One finished run per job on the current data (what `ctui run` would have left)."""
    from ctui import manifest
    from ctui.ids import new_run_id
    from ctui.objects import ObjectStore
    from ctui.project import Project
    from ctui.store import Store

    project = Project(root=root, state_dir=root / ".ctui").ensure()
    m = manifest.capture(root, sections=("data",), cache_dir=project.cache_dir)
    hashes = manifest.save(ObjectStore(project.objects_dir), m)
    now = time.time()
    docs = [
        {"id": new_run_id(now - 100 + j), "job": f"job{j}", "status": "succeeded",
         "created": now - 100 + j, "ended": now - 90 + j, "manifest": hashes, "params": {},
         "trigger": "manual", "git": None}
        for j in range(10)
    ]  # fmt: skip
    store = Store(project.store_file)
    init = getattr(store, "initialise", None)  # stores that need no set-up have none
    if init is not None:
        init()
    store.put_runs(docs)


def median_ms(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=7)
    ap.add_argument("--paths", type=int, default=2000)
    ap.add_argument("--mode", choices=("lock", "add"), default="lock")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ctui-bench-triggers-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        build(root, args.paths, args.mode)
        record_runs(root)
        os.chdir(root)

        from ctui.config import load_config
        from ctui.project import Project
        from ctui.store import Store
        from ctui.triggers import datasection
        from ctui.triggers.evaluate import evaluate_all
        from ctui.triggers.watch import run_cycle

        project = Project(root=root, state_dir=root / ".ctui")
        config = load_config(root)
        store = Store(project.store_file)
        run_cycle(project, config=config, housekeeping=False)  # baselines; fills the caches

        def fresh_process() -> None:
            datasection._MEMORY.clear()  # as `ctui watch --once`: cache read from disk
            evs = evaluate_all(project, config, store.read_all())
            assert not [e for e in evs if e.causes], [e.to_dict() for e in evs if e.causes]

        def warm() -> None:
            evaluate_all(project, config, store.read_all())

        cold_ms = median_ms(fresh_process, args.n)
        warm_ms = median_ms(warm, args.n)
        cycle_ms = median_ms(lambda: run_cycle(project, config=config, housekeeping=False), args.n)
        evs = evaluate_all(project, config, store.read_all())
        kinds = sorted({e.kind for e in evs})
        states = sorted({e.status for e in evs})

        def no_cache() -> None:
            datasection._MEMORY.clear()
            (project.cache_dir / datasection.CACHE_FILE).unlink(missing_ok=True)
            evaluate_all(project, config, store.read_all())

        uncached_ms = median_ms(no_cache, max(3, args.n // 2))

        def dvc_status() -> None:
            subprocess.run(
                [sys.executable, "-m", "dvc", "status", "-q"],
                cwd=root,
                env=ENV,
                capture_output=True,
                check=False,
            )

        watch_times: list[float] = []
        dvc_times: list[float] = []
        watch = [sys.executable, "-m", "ctui", "watch", "--once", "--json"]
        subprocess.run(watch, cwd=root, env=ENV, capture_output=True, check=True)  # warm
        dvc_status()
        for _ in range(args.n):  # whole processes, interleaved
            t = time.perf_counter()
            out = subprocess.run(watch, cwd=root, env=ENV, capture_output=True, check=True)
            watch_times.append((time.perf_counter() - t) * 1000)
            assert b'"launched": []' in out.stdout or b'"launched":[]' in out.stdout, out.stdout
            t = time.perf_counter()
            dvc_status()
            dvc_times.append((time.perf_counter() - t) * 1000)

    print(
        f"{len(evs)} triggers ({', '.join(kinds)}; all {', '.join(states)}) over "
        f"{args.paths} DVC-tracked paths, data unchanged (load {os.getloadavg()[0]:.1f})"
    )
    print(f"  in-process, profiling only (median of {args.n}; no peer, no ratio):")
    verdict = "met" if cold_ms <= 200 else "MISSED"
    print(f"    evaluate_all, as a fresh process (hash cache on disk): {cold_ms:8.1f} ms   "
          f"target ≤ 200 ms: {verdict}")  # fmt: skip
    print(f"    evaluate_all, warm (long-running ctui watch):           {warm_ms:8.1f} ms")
    print(f"    run_cycle (evaluation + state written):                 {cycle_ms:8.1f} ms")
    print(f"    evaluate_all with no trigger cache (parse all):         {uncached_ms:8.1f} ms")
    ratio = statistics.median(dvc_times) / statistics.median(watch_times)
    print(f"  whole processes, interleaved (n={args.n}):        min   median      max")
    for name, times in (("ctui watch --once", watch_times), ("dvc status", dvc_times)):
        print(f"    {name:<42} {min(times):7.0f} {statistics.median(times):8.0f} "
              f"{max(times):8.0f} ms")  # fmt: skip
    print(f"    ratio dvc status / ctui watch --once: {ratio:.1f}×   target ≥ 10×: "
          f"{'met' if ratio >= 10 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
