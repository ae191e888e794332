"""The store at 1k, 10k and 100k runs: whole `ctui` processes beside MLflow on the same runs.

For each size (1,000, 10,000 and 100,000 runs, up to `--runs`) a project is generated with
one `Store.put_runs` (bench/gen_store.py), and the same runs are written into an MLflow
sqlite store through MLflow's own SqlAlchemyStore. Both are cached under the temp dir, keyed
by the size and by the source of ctui's store, so a rerun is fast; the time each took to
generate is printed. Then, interleaved round by round on the same runs, whole processes (a
fresh interpreter, imports included; wall time, peak RSS):

- `ctui runs --limit 50`, `ctui runs --json`, `ctui show PREFIX`, `ctui tag PREFIX x`
  (PREFIX: the shortest unique prefix of an old run's id, so id resolution is timed too; the
  tag is taken off again after each, untimed, so every timed tag is a real write);
- the peers: a python process doing `mlflow.search_runs(experiment_ids=[...])` (all runs, as a
  DataFrame) and `mlflow runs list --experiment-id ID` (MLflow's CLI; it lists one page).

Targets (issue 15): at 100k, `show`, `tag` and `runs --limit 50` within 2× of the same
command at 1k; `runs --json` at 10k ≥ 20× faster than `search_runs` on the same runs.
The script reports; it exits 0 whatever the figures.

    uv run python bench/bench_store.py [--runs 100000] [-n 5] [--mlflow-n 3] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZES = (1_000, 10_000, 100_000)
CTUI = ("runs --limit 50", "runs --json", "show", "tag")
PEERS = ("mlflow search_runs", "mlflow runs list")


@dataclass
class Figure:
    walls: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # KiB

    def median(self) -> float | None:
        return statistics.median(self.walls) if self.walls else None


def child_env() -> dict[str, str]:
    """Children cache bytecode as an installed package does (in a private folder), even
    where PYTHONDONTWRITEBYTECODE is set; no CTUI_STORE leaking in."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CTUI_STORE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "ctui-bench-pycache")
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def whole_process(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one child process, which must succeed."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode} in {cwd}")
    return wall, usage.ru_maxrss


def ctui_cmd() -> list[str]:
    entry = Path(sys.executable).with_name("ctui")
    return [str(entry)] if entry.exists() else [sys.executable, "-m", "ctui"]


def store_key() -> str:
    """What the cached stores depend on: the generator and ctui's store code."""
    h = hashlib.sha256()
    root = HERE.parent / "ctui"
    for path in sorted([HERE / "gen_store.py", *root.glob("store*.py"), root / "ids.py"]):
        if path.exists():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


def generate(folder: Path, *extra: str) -> dict[str, Any]:
    """bench/gen_store.py in its own process (this one stays small: a child's peak RSS
    would otherwise start at this process's), its one JSON line."""
    out = subprocess.run(
        [sys.executable, str(HERE / "gen_store.py"), str(folder), *extra],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def prepare(cache: Path, n: int, with_mlflow: bool) -> tuple[Path, str, str | None, str]:
    """The project folder of `n` runs (made, or reused from the cache), a prefix of an old
    run, the MLflow tracking URI and the experiment id. The MLflow store depends on the
    generator only, so it outlives a change of ctui's store code."""
    folder = cache / f"runs-{n}-{store_key()}"
    meta_file = folder / "bench.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if "prefix" not in meta:
        shutil.rmtree(folder, ignore_errors=True)
        meta = generate(folder, str(n))
        meta_file.write_text(json.dumps(meta))
        print(f"  {n} runs: ctui store written in {meta['ctui_s']:.1f} s", flush=True)
    else:
        print(f"  {n} runs: ctui store reused from {folder}", flush=True)
    if not with_mlflow:
        return folder, meta["prefix"], None, ""
    ml_folder = (
        cache
        / f"mlflow-{n}-{hashlib.sha256((HERE / 'gen_store.py').read_bytes()).hexdigest()[:12]}"
    )
    ml_meta_file = ml_folder / "bench.json"
    ml_meta = json.loads(ml_meta_file.read_text()) if ml_meta_file.exists() else {}
    if "mlflow_s" not in ml_meta:
        shutil.rmtree(ml_folder, ignore_errors=True)
        ml_folder.mkdir(parents=True)
        ml_meta = generate(folder, "--mlflow", "--db", str(ml_folder / "mlflow.db"))
        ml_meta_file.write_text(json.dumps(ml_meta))
        print(f"  {n} runs: MLflow sqlite store written in {ml_meta['mlflow_s']:.1f} s", flush=True)
    else:
        print(f"  {n} runs: MLflow store reused from {ml_folder}", flush=True)
    uri = f"sqlite:///{ml_folder / 'mlflow.db'}"
    return folder, meta["prefix"], uri, str(ml_meta["exp_id"])


def peer_search_runs(uri: str, exp_id: str, n: int, page: bool = False) -> list[str]:
    """All `n` runs as a DataFrame (or, with `page`, the first `n`)."""
    limit = n if page else max(n, 1000)
    code = (
        f"import mlflow; mlflow.set_tracking_uri({uri!r}); "
        f"df = mlflow.search_runs(experiment_ids=[{exp_id!r}], max_results={limit}); "
        f"assert len(df) == {n}, len(df)"
    )
    return [sys.executable, "-c", code]


def peer_runs_list(uri: str, exp_id: str) -> list[str]:
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    head = [str(mlflow_cli)] if mlflow_cli.exists() else [sys.executable, "-m", "mlflow"]
    return [*head, "runs", "list", "--experiment-id", exp_id]


def measure(
    folder: Path, prefix: str, uri: str | None, exp_id: str, n: int, args: argparse.Namespace
) -> dict[str, Figure]:
    env = child_env()
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    ctui = ctui_cmd()
    argvs = {
        "runs --limit 50": [*ctui, "runs", "--limit", "50"],
        "runs --json": [*ctui, "runs", "--json"],
        "show": [*ctui, "show", prefix],
        "tag": [*ctui, "tag", prefix, "x"],
    }
    if uri:
        argvs["mlflow search_runs"] = peer_search_runs(uri, exp_id, n)
        argvs["mlflow runs list"] = peer_runs_list(uri, exp_id)
    # each timed `tag` adds a tag the run does not have (a real write): it is taken off
    # again after each, untimed
    untag = [*ctui, "tag", "--remove", prefix, "x"]
    warm = dict(argvs)
    if uri:  # search_runs warmed on one page: the whole of 100k runs takes minutes
        warm["mlflow search_runs"] = peer_search_runs(uri, exp_id, min(n, 1000), page=True)
    for name, argv in warm.items():  # warm the page cache, the bytecode cache, a migration
        whole_process(argv, folder, env)
        if name == "tag":
            whole_process(untag, folder, env)
    figs = {name: Figure() for name in argvs}
    rounds = max(args.n, args.mlflow_n if uri else 0)
    for i in range(rounds):
        for name, argv in argvs.items():
            if i >= (args.mlflow_n if name in PEERS else args.n):
                continue
            wall, rss = whole_process(argv, folder, env)
            figs[name].walls.append(wall)
            figs[name].rss.append(rss)
            if name == "tag":
                whole_process(untag, folder, env)
    return figs


def ms(s: float | None) -> str:
    return "—" if s is None else f"{s * 1000:.0f}"


def report(results: dict[int, dict[str, Figure]]) -> None:
    print(f"\nwhole processes, wall ms (load {os.getloadavg()[0]:.1f}):")
    print(
        f"  {'runs':>7}  {'command':<22} {'n':>2} {'min':>7} {'median':>7} {'max':>7} {'RSS MB':>7}"
    )
    for n, figs in results.items():
        for name, f in figs.items():
            print(
                f"  {n:>7}  {name:<22} {len(f.walls):>2} {ms(min(f.walls)):>7} "
                f"{ms(f.median()):>7} {ms(max(f.walls)):>7} {max(f.rss) / 1024:7.0f}"
            )
        if "mlflow search_runs" in figs:
            ratio = figs["mlflow search_runs"].median() / figs["runs --json"].median()  # type: ignore[operator]
            print(f"  {n:>7}  ratio search_runs / ctui runs --json: {ratio:.1f}×")
    print("\ntargets:")
    small, big = results.get(1_000), results.get(100_000)
    for name in ("show", "tag", "runs --limit 50"):
        if small is None or big is None:
            print(f"  {name} at 100k ≤ 2× at 1k: not measured (needs --runs 100000)")
            continue
        a, b = small[name].median(), big[name].median()
        assert a is not None and b is not None
        verdict = "met" if b <= 2 * a else "MISSED"
        print(f"  {name} at 100k ≤ 2× at 1k: {ms(b)} vs {ms(a)} ms = {b / a:.2f}×: {verdict}")
    mid = results.get(10_000)
    if mid is None or "mlflow search_runs" not in mid:
        print("  runs --json at 10k ≥ 20× faster than search_runs: not measured")
    else:
        ratio = mid["mlflow search_runs"].median() / mid["runs --json"].median()  # type: ignore[operator]
        verdict = "met" if ratio >= 20 else "MISSED"
        print(f"  runs --json at 10k ≥ 20× faster than search_runs: {ratio:.1f}×: {verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000, help="the largest size (1k, 10k, 100k)")
    ap.add_argument("-n", type=int, default=5, help="rounds of the ctui commands")
    ap.add_argument("--mlflow-n", type=int, default=3, help="rounds of the MLflow peers")
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ctui-bench-store",
        help="where the generated stores are kept between runs",
    )
    args = ap.parse_args()
    sizes = [s for s in SIZES if s <= args.runs] or [args.runs]
    if args.runs not in sizes and args.runs > sizes[-1]:
        sizes.append(args.runs)
    print(f"stores (cache {args.cache}):", flush=True)
    results: dict[int, dict[str, Figure]] = {}
    for n in sizes:
        folder, prefix, uri, exp_id = prepare(args.cache, n, not args.no_mlflow)
        print(f"  {n} runs: measuring (show/tag {prefix}) …", flush=True)
        results[n] = measure(folder, prefix, uri, exp_id, n, args)
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
