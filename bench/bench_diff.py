"""How long `ctui diff A B` takes, as a whole process, on big manifests.

Two runs whose manifests each hold 500 packages and 2,000 data paths (a few of each
differ), stored in a throwaway project. Prints the median wall time of N runs of
`ctui diff A B` (human and --json), next to a bare `python -c pass` and `ctui --help`
measured the same way, so the figure can be read on a busy machine. Target: ≤ 0.3 s.

    uv run python bench/bench_diff.py [-n 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ctui.manifest import finish_section, save
from ctui.objects import ObjectStore
from ctui.project import Project
from ctui.store import Store

PACKAGES = 500
PATHS = 2000


def sections(variant: int) -> dict:
    paths = {
        f"data/shard-{i:05d}.parquet": {
            "hash": f"{(i * 7919 + (variant if i % 400 == 0 else 0)):032x}",
            "size": 1_000_000 + i,
            "sources": ["dvc.lock:prepare:out"],
        }
        for i in range(PATHS)
    }
    packages = {
        f"package-{i:03d}": f"1.{i}.{variant if i % 100 == 0 else 0}" for i in range(PACKAGES)
    }
    return {
        "data": finish_section(
            {"paths": paths, "params": {}, "sources": ["dvc.lock"], "problems": []}
        ),
        "code": finish_section(
            {"commit": "a" * 40, "branch": "main", "dirty": False, "patch": None}
        ),
        "env": finish_section(
            {"python": {"version": "3.11.7"}, "packages": packages, "variables": {}}
        ),
        "compute": finish_section({"host": "box", "cpu": {"model": "x"}, "gpus": []}),
    }


def build(root: Path) -> None:
    proj = Project(root=root, state_dir=root / ".ctui").ensure()
    store = Store(proj.store_file)
    store.initialise()
    objects = ObjectStore(proj.objects_dir)
    for run_id, variant in (("0aaaaaaaaaaa", 0), ("0bbbbbbbbbbb", 1)):
        hashes = save(objects, {"sections": sections(variant)})
        store.insert_run(
            {
                "id": run_id,
                "job": "train",
                "status": "succeeded",
                "created": time.time(),
                "params": {"lr": 0.1 * (variant + 1)},
                "metrics": {"acc": 0.9 - variant / 100},
                "manifest": hashes,
            }  # fmt: skip
        )


def bytecode_env(cache: Path) -> dict[str, str]:
    """Children cache bytecode like an ordinary install does (in a private folder), even where
    PYTHONDONTWRITEBYTECODE is set: compiling typer and rich from source is not ctui's time."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CTUI_STORE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def median_wall(argv: list[str], cwd: Path, n: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall time and median CPU time (user+sys) of the child: on a shared, busy
    machine the CPU time is the steadier figure."""
    walls, cpus = [], []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def in_process(root: Path, n: int) -> float:
    """The part ctui's diff engine owns: resolve both runs, load differing sections, diff."""
    from ctui.diff import diff_runs, run_view

    times = []
    for _ in range(n):
        t = time.perf_counter()
        store = Store(root / ".ctui" / "ctui.json")
        objects = ObjectStore(root / ".ctui" / "objects")
        a = run_view(store.get_run(store.resolve("0aaa")), objects)
        b = run_view(store.get_run(store.resolve("0bbb")), objects)
        diff_runs(a, b, objects=objects, repo=root)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=15)
    args = parser.parse_args()
    ctui = [str(Path(sys.executable).with_name("ctui"))]
    if not Path(ctui[0]).exists():
        ctui = [sys.executable, "-m", "ctui"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        build(root)
        engine_ms = in_process(root, args.n) * 1000
        env = bytecode_env(Path(tmp) / "pycache")
        for warm in (["--help"], ["diff", "0aaa", "0bbb"], ["diff", "0aaa", "0bbb", "--json"]):
            subprocess.run([*ctui, *warm], cwd=root, check=True, env=env, stdout=subprocess.DEVNULL)
        rows = [
            ("python -c pass", median_wall([sys.executable, "-c", "pass"], root, args.n, env)),
            ("ctui --help", median_wall([*ctui, "--help"], root, args.n, env)),
            ("ctui diff A B", median_wall([*ctui, "diff", "0aaa", "0bbb"], root, args.n, env)),
            ("ctui diff A B --json",
             median_wall([*ctui, "diff", "0aaa", "0bbb", "--json"], root, args.n, env)),
        ]  # fmt: skip
    print(f"\n{PACKAGES} packages and {PATHS} data paths per manifest; median of {args.n} runs")
    print(f"  diff engine in-process   {engine_ms:7.1f} ms  (store read + load + diff)")
    print(f"  {'':<24} {'wall':>7}    {'cpu':>7}")
    for label, (wall, cpu) in rows:
        print(f"  {label:<24} {wall * 1000:7.1f} ms {cpu * 1000:7.1f} ms")
    wall, cpu = rows[2][1]
    print(f"  ctui diff / ctui --help (CPU): {cpu / rows[1][1][1]:.2f}x   target ≤ 300 ms wall: "
          f"{'met' if wall <= 0.3 else 'NOT met'} (load {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
