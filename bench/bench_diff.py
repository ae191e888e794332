"""How long `ctui diff A B` takes, as a whole process, on big manifests.

Two runs whose manifests each hold 500 packages and 2,000 data paths (a few of each
differ), stored in a throwaway project. Whole processes, interleaved round by round
(A B C D E, A B C D E, …): `ctui diff A B` (human and --json), the peer `diff -u` of the same
two manifests written out as indented JSON (a generic diff of the same data; it says what
lines differ, not what changed), a bare `python -c pass` and `ctui --help`, so the figure can
be read on a busy machine. Wall and CPU min / median / max and the ratio to the peer are
printed; the diff engine in-process is printed for profiling only. Target: `ctui diff` ≤ 0.3 s
wall.

    uv run python bench/bench_diff.py [-n 15]
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

from ctui.manifest import finish_section, save
from ctui.objects import ObjectStore
from ctui.project import Project
from ctui.store import open_store

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
    store = open_store(proj)
    init = getattr(store, "initialise", None)
    if init is not None:
        init()
    objects = ObjectStore(proj.objects_dir)
    docs = []
    for run_id, variant in (("0aaaaaaaaaaa", 0), ("0bbbbbbbbbbb", 1)):
        hashes = save(objects, {"sections": sections(variant)})
        docs.append(
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
    store.put_runs(docs)


def bytecode_env(cache: Path) -> dict[str, str]:
    """Children cache bytecode like an ordinary install does (in a private folder), even where
    PYTHONDONTWRITEBYTECODE is set: compiling typer and rich from source is not ctui's time."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CTUI_STORE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user+sys) of one child: on a shared, busy machine the CPU
    time is the steadier figure. `diff` exits 1 when the files differ: that is success."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    code = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, env=env).returncode
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code not in ((0, 1) if argv[0] == "diff" else (0,)):
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def write_peer_files(root: Path) -> None:
    for name, variant in (("a.json", 0), ("b.json", 1)):
        (root / name).write_text(json.dumps(sections(variant), indent=1, sort_keys=True))


def in_process(root: Path, n: int) -> float:
    """The part ctui's diff engine owns: resolve both runs, load differing sections, diff."""
    from ctui.diff import diff_runs, run_view

    times = []
    for _ in range(n):
        t = time.perf_counter()
        store = open_store(Project(root=root, state_dir=root / ".ctui"))
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
        write_peer_files(root)
        env = bytecode_env(Path(tmp) / "pycache")
        cmds = {
            "ctui diff A B": [*ctui, "diff", "0aaa", "0bbb"],
            "ctui diff A B --json": [*ctui, "diff", "0aaa", "0bbb", "--json"],
            "peer: diff -u a.json b.json": ["diff", "-u", "a.json", "b.json"],
            "python -c pass": [sys.executable, "-c", "pass"],
            "ctui --help": [*ctui, "--help"],
        }
        for argv in cmds.values():  # warm the page and bytecode caches
            timed(argv, root, env)
        got: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
        for _ in range(args.n):  # interleaved
            for name, argv in cmds.items():
                got[name].append(timed(argv, root, env))
    print(f"\n{PACKAGES} packages and {PATHS} data paths per manifest; whole processes, "
          f"n={args.n}, interleaved (load {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"  {'ms':<28} {'wall min':>8} {'median':>7} {'max':>7}   {'cpu median':>10}")
    for name, vals in got.items():
        walls = [w for w, _ in vals]
        cpu = statistics.median(c for _, c in vals)
        print(f"  {name:<28} {min(walls) * 1e3:8.0f} {statistics.median(walls) * 1e3:7.0f} "
              f"{max(walls) * 1e3:7.0f}   {cpu * 1e3:10.0f}")  # fmt: skip
    wall = statistics.median(w for w, _ in got["ctui diff A B"])
    peer = statistics.median(w for w, _ in got["peer: diff -u a.json b.json"])
    print(f"  ratio ctui diff / diff -u (wall): {wall / peer:.0f}×")
    print(f"  target ctui diff ≤ 300 ms wall: {'met' if wall <= 0.3 else 'MISSED'}")
    print(
        f"  in-process, profiling only: diff engine {engine_ms:.1f} ms (store read + load + diff)"
    )


if __name__ == "__main__":
    main()
