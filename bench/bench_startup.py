"""Start-up: the fixed cost of a light `ctui` command, whole process, beside DVC's.

Target (issue 15, item 2): `ctui runs`, `runs --json`, `show`, `tag`, `logs -n` and
`ctui --help` each ≤ 150 ms whole process on an empty store (a project just made by
`ctui init`; `show`, `tag` and `logs` name a run that is not there, so they time the lookup
and the one-line error), and `ctui --help` no slower than `dvc --help`.

Every round runs each command once, ctui's and the peer's interleaved (A B A B …), in the
same folder, which is a ctui project and a tiny DVC repository at once. Bytecode is
cached as an installed package has it (PYTHONDONTWRITEBYTECODE is dropped, the cache is
kept in a temp folder) and one warm-up round is not counted. The machine is shared: read
the min and the median, not the max.

With `--baseline DIR` (a folder holding another ctui package, e.g. made by
`git archive HEAD ctui | tar -x -C DIR`) each ctui command is also timed from that code
(PYTHONPATH=DIR), in the same rounds, and the ratio new/baseline is printed.

Usage: python bench/bench_startup.py [--rounds 15] [--mlflow] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 150.0


def tool(name: str) -> list[str]:
    """The console script beside this interpreter (what a user runs), else `python -m`."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", name]


def make_project(root: Path, env: dict[str, str]) -> None:
    def sh(*cmd: str) -> None:
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)

    sh("git", "init", "-q")
    sh(*tool("ctui"), "init")
    sh(*tool("dvc"), "init", "-q")
    (root / "data.csv").write_text("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(100)))
    sh(*tool("dvc"), "add", "-q", "data.csv")


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds from spawning `cmd` to its exit, CPU seconds it and its children used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--mlflow", action="store_true", help="also time `mlflow --help` (~2 s)")
    ap.add_argument("--baseline", type=Path, help="a folder with another ctui package to compare")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ctui-bench-startup-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "CTUI_STORE") and not k.startswith("MLFLOW_")
    }
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env["COLUMNS"] = "100"
    root = tmp / "project"
    root.mkdir()
    make_project(root, env)

    ctui, dvc = tool("ctui"), tool("dvc")
    #: label → (argv, the peer it is compared with, or None)
    cases: dict[str, tuple[list[str], str | None]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "ctui --help": ([*ctui, "--help"], "dvc --help"),
        "dvc --help": ([*dvc, "--help"], None),
        "ctui runs": ([*ctui, "runs"], "dvc status"),
        "dvc status": ([*dvc, "status"], None),
        "ctui runs --json": ([*ctui, "runs", "--json"], "dvc status"),
        "ctui show X": ([*ctui, "show", "nosuchrun"], "dvc status"),
        "ctui tag X a": ([*ctui, "tag", "nosuchrun", "a"], "dvc status"),
        "ctui logs -n 5 X": ([*ctui, "logs", "-n", "5", "nosuchrun"], "dvc status"),
    }
    if args.mlflow:
        cases["mlflow --help"] = ([*tool("mlflow"), "--help"], None)
        cases["ctui --help"] = (cases["ctui --help"][0], "mlflow --help")

    envs = {label: env for label in cases}
    if args.baseline:
        base_env = {**env, "PYTHONPATH": str(args.baseline.resolve())}
        for label in [k for k in cases if k.startswith("ctui ")]:
            cases[f"base {label[5:]}"] = (cases[label][0], None)
            envs[f"base {label[5:]}"] = base_env

    times: dict[str, list[float]] = {label: [] for label in cases}
    cpu: dict[str, list[float]] = {label: [] for label in cases}
    for round_no in range(args.rounds + 1):
        for label, (cmd, _) in cases.items():
            t, c = timed(cmd, root, envs[label])
            if round_no:  # round 0 warms the bytecode and page caches
                times[label].append(t * 1000)
                cpu[label].append(c * 1000)

    print(f"whole-process wall time, ms, {args.rounds} rounds interleaved ({os.cpu_count()} CPUs)")
    print(f"empty store (`ctui init`), tiny DVC repo (one .dvc file), in {root}")
    if args.baseline:
        print(f"base …: the same command from {args.baseline} (PYTHONPATH)")
    print(f"{'command':<20}{'min':>7}{'median':>8}{'max':>7}{'cpu':>6}   target / peer")
    for label, (_, peer) in cases.items():
        ms = times[label]
        med = statistics.median(ms)
        line = f"{label:<20}{min(ms):>7.0f}{med:>8.0f}{max(ms):>7.0f}"
        line += f"{statistics.median(cpu[label]):>6.0f}"
        if label.startswith("ctui "):
            verdict = "ok" if med <= TARGET_MS else "MISSED"
            line += f"   ≤ {TARGET_MS:.0f}: {verdict}"
            if peer:
                ratio = med / statistics.median(times[peer])
                line += f"; {ratio:.2f}× {peer}"
            base = f"base {label[5:]}"
            if base in times:
                line += f"; {med / statistics.median(times[base]):.2f}× baseline"
        print(line)
    print("cpu: median user+sys CPU ms of the process (less sensitive to a busy machine)")
    print(
        f"target: each ctui command ≤ {TARGET_MS:.0f} ms (median), "
        "`ctui --help` ≤ `dvc --help` (ratio ≤ 1.00)"
    )
    help_ratio = statistics.median(times["ctui --help"]) / statistics.median(times["dvc --help"])
    print(f"ctui --help / dvc --help: {help_ratio:.2f}× — {'ok' if help_ratio <= 1 else 'MISSED'}")
    if os.environ.get("KEEP"):
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
