"""How long a manifest capture takes: in-process, and `ctui manifest --json` as a process.

A throwaway git project with a dvc.lock (3 stages, 300 tracked paths) and 20 `*.dvc`
files; the installed distributions are topped up to about 300 with stub `*.dist-info`
folders on the path. Prints the median of N in-process captures, the whole-process time,
and, as the peer, reading every distribution through importlib.metadata (what pip freeze
does). Target: a capture ≤ 300 ms.

    uv run python bench/bench_manifest.py [-n 15]
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

TARGET_PACKAGES = 300


def build_project(root: Path) -> None:
    root.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=root, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    stages = []
    for s in range(3):
        deps = "".join(
            f"    - path: data/s{s}/in-{i:03d}.csv\n      hash: md5\n      md5: {i:032x}\n"
            f"      size: {1000 + i}\n"
            for i in range(50)
        )
        outs = "".join(
            f"    - path: data/s{s}/out-{i:03d}\n      hash: md5\n      md5: {i + 7:032x}.dir\n"
            f"      size: {5000 + i}\n      nfiles: 3\n"
            for i in range(50)
        )
        stages.append(f"  stage{s}:\n    cmd: python s{s}.py\n    deps:\n{deps}    outs:\n{outs}")
    (root / "dvc.lock").write_text("schema: '2.0'\nstages:\n" + "".join(stages))
    (root / "raw").mkdir()
    for i in range(20):
        (root / "raw" / f"part{i}.dvc").write_text(
            f"outs:\n- md5: {i:032x}\n  size: {i * 100}\n  hash: md5\n  path: part{i}\n"
        )
    (root / "train.py").write_text("print('train')\n")
    run("add", "-A")
    run("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "x")


def stub_site(folder: Path) -> int:
    """Stub distributions so the path holds about TARGET_PACKAGES of them."""
    from ctui.manifest.env import installed_distributions

    have = len(installed_distributions())
    folder.mkdir()
    for i in range(max(0, TARGET_PACKAGES - have)):
        d = folder / f"stub_package_{i:03d}-1.{i}.0.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: stub-package-{i:03d}\nVersion: 1.{i}.0\n"
        )
    return max(have, TARGET_PACKAGES)


def median_of(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        build_project(root)
        site = Path(tmp) / "site"
        packages = stub_site(site)
        sys.path.append(str(site))

        t = time.perf_counter()
        from ctui.manifest import capture

        first = capture(root, cache_dir=Path(tmp) / "cache")
        cold = time.perf_counter() - t
        assert len(first["sections"]["env"]["packages"]) >= packages - 5
        assert len(first["sections"]["data"]["paths"]) == 320
        warm = median_of(lambda: capture(root, cache_dir=Path(tmp) / "cache"), args.n)
        per_section = {
            s: median_of(
                lambda s=s: capture(root, sections=[s], cache_dir=Path(tmp) / "cache"), args.n
            )
            for s in ("data", "code", "env", "compute")
        }
        from importlib.metadata import distributions

        peer = median_of(lambda: [(d.metadata["Name"], d.version) for d in distributions()], 3)

        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")  # bytecode as an install has
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(site)]))
        argv = [sys.executable, "-m", "ctui", "manifest", "--json"]
        subprocess.run(argv, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
        whole = median_of(
            lambda: subprocess.run(argv, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL),
            max(3, args.n // 3),
        )
        helps = median_of(
            lambda: subprocess.run(
                [*argv[:3], "--help"], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL
            ),
            max(3, args.n // 3),
        )
        python = median_of(lambda: subprocess.run([sys.executable, "-c", "pass"], env=env), 5)

    print(f"\n{packages} distributions, 320 DVC-tracked paths; medians")
    print(f"  first capture (imports included)  {cold * 1000:7.1f} ms")
    print(f"  capture, in-process (n={args.n})      {warm * 1000:7.1f} ms   target ≤ 300 ms: "
          f"{'met' if warm <= 0.3 else 'NOT met'}")  # fmt: skip
    for s, v in per_section.items():
        print(f"    {s:<8} {v * 1000:7.1f} ms")
    print(f"  peer: importlib.metadata read of every distribution  {peer * 1000:7.1f} ms "
          f"(env section is {peer / max(per_section['env'], 1e-9):.0f}x faster)")  # fmt: skip
    print(f"  `ctui manifest --json` whole process  {whole * 1000:7.1f} ms")
    print(f"  `ctui --help` (the CLI's own floor)   {helps * 1000:7.1f} ms")
    print(f"  `python -c pass`                      {python * 1000:7.1f} ms")
    print(f"  (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
