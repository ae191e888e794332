"""How long `ctui manifest --job train --json` takes as a whole process, with the job's own venv.

A throwaway git project with a dvc.lock (3 stages, 300 tracked paths) and 20 `*.dvc` files,
and a job venv (`python -m venv`, with pip) topped up to 300 distributions with `*.dist-info`
folders in its site-packages. The job names that venv (`python = "venv/bin/python"`), so the
env section is that venv's, asked by ctui's probe:

- cold: the interpreter cache removed first (the probe runs);
- warm: the cache kept (a few `stat` calls);
- peer: `venv/bin/python -m pip freeze`, the same venv's own listing.

The three are interleaved (A B C A B C …) in one run; min / median / max and the ratios are
printed. Targets: warm ≤ 300 ms, cold ≤ 1 s.

    uv run python bench/bench_manifest.py [-n 10]
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


def build_venv(path: Path) -> Path:
    """A real venv with pip, topped up to TARGET_PACKAGES distributions."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    python = path / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    have = sum(1 for e in site.iterdir() if e.name.endswith(".dist-info"))
    for i in range(max(0, TARGET_PACKAGES - have)):
        d = site / f"stub_package_{i:03d}-1.{i}.0.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: stub-package-{i:03d}\nVersion: 1.{i}.0\n"
        )
        (d / "RECORD").write_text("")
    return python


def stats(times: list[float]) -> tuple[float, float, float]:
    return min(times), statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        build_project(root)
        python = build_venv(root / "venv")
        (root / "ctui.toml").write_text(
            '[jobs.train]\ncommand = "python train.py"\npython = "venv/bin/python"\n'
        )
        (root / ".ctui" / "cache").mkdir(parents=True)
        cache = root / ".ctui" / "cache"

        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")  # bytecode as an install has
        ctui = [sys.executable, "-m", "ctui", "manifest", "--job", "train", "--json"]
        freeze = [str(python), "-m", "pip", "freeze", "--all"]
        out = subprocess.run(ctui, cwd=root, env=env, check=True, capture_output=True)
        doc = __import__("orjson").loads(out.stdout)
        packages = len(doc["sections"]["env"]["packages"])
        assert doc["sections"]["env"]["python"]["prefix"] == str(root / "venv"), doc
        frozen = subprocess.run(freeze, cwd=root, check=True, capture_output=True, text=True)
        subprocess.run([sys.executable, "-c", "pass"], env=env)

        def whole(argv: list[str], clear: bool = False) -> float:
            if clear:
                shutil.rmtree(cache, ignore_errors=True)
                cache.mkdir()
            t = time.perf_counter()
            subprocess.run(argv, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - t

        cold: list[float] = []
        warm: list[float] = []
        peer: list[float] = []
        for _ in range(args.n):  # interleaved: cold, warm, peer
            cold.append(whole(ctui, clear=True))
            warm.append(whole(ctui))
            peer.append(whole(freeze))

    def line(name: str, times: list[float], target: float | None = None) -> str:
        lo, med, hi = stats(times)
        text = f"  {name:<34} {lo * 1000:6.0f} {med * 1000:6.0f} {hi * 1000:6.0f} ms"
        if target is not None:
            verdict = "met" if med <= target else "MISSED"
            text += f"   target ≤ {target * 1000:.0f} ms: {verdict}"
        return text

    print(
        f"\njob venv: {packages} distributions recorded (pip freeze lists "
        f"{len(frozen.stdout.splitlines())}); 320 DVC-tracked paths; n={args.n}, interleaved"
    )
    print(f"  {'':<34} {'min':>6} {'median':>6} {'max':>6}")
    print(line("ctui manifest --job --json, cold", cold, 1.0))
    print(line("ctui manifest --job --json, warm", warm, 0.3))
    print(line("peer: venv/bin/python -m pip freeze", peer))
    ratio_warm = statistics.median(peer) / statistics.median(warm)
    ratio_cold = statistics.median(peer) / statistics.median(cold)
    print(f"  ratio pip freeze / ctui: {ratio_warm:.1f}x warm, {ratio_cold:.1f}x cold")
    print(f"  (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
