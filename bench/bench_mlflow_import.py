"""Mirroring a team's MLflow server: `ctui import mlflow --since last` against a real
`mlflow server` on 127.0.0.1 holding 10,000 runs.

Set-up: MLflow itself creates the store and one template run (params, a metric, tags); the
other runs are copies of its rows with new ids and times (10,000 runs through the client
would take ~5 min here). The server is started on that store. Then, whole processes:

- the first import (everything; it sets the mark) — once;
- interleaved, N times: `ctui import mlflow --since last` with nothing new, the peer — the
  same question asked with MLflow's own client in a fresh interpreter (`search_runs` with
  `attributes.start_time > mark`, what a user's own poller would run) — and, after 10 new
  runs were logged through MLflow's client, `ctui import mlflow --since last` again.

Target (issue 12): an incremental import with nothing new ≤ 1 s.

    uv run python bench/bench_mlflow_import.py [-n 7] [--runs 10000]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

CTUI = str(Path(sys.executable).with_name("ctui"))
MLFLOW = str(Path(sys.executable).with_name("mlflow"))
ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("MLFLOW_", "CTUI_")) and k != "PYTHONDONTWRITEBYTECODE"
}
# every child (ctui and the peer alike) caches bytecode as an install has it
ENV["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "ctui-bench-pycache")
EXPERIMENT = "team"
BASE_MS = 1_760_000_000_000


def populate(db: Path, n: int) -> None:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    cl = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = cl.create_experiment(EXPERIMENT)
    run = cl.create_run(exp, run_name="template", start_time=BASE_MS)
    rid = run.info.run_id
    cl.log_batch(
        rid,
        metrics=[Metric("loss", 0.25, BASE_MS, 0), Metric("acc", 0.9, BASE_MS, 0)],
        params=[Param("lr", "0.1"), Param("epochs", "8")],
        tags=[RunTag("team", "vision")],
    )
    cl.set_terminated(rid, "FINISHED", end_time=BASE_MS + 60_000)
    con = sqlite3.connect(db)
    with con:
        cols = [c[1] for c in con.execute("PRAGMA table_info(runs)")]
        template = con.execute("SELECT * FROM runs WHERE run_uuid=?", (rid,)).fetchone()
        row = dict(zip(cols, template, strict=True))
        copies = {
            t: con.execute(f"SELECT * FROM {t} WHERE run_uuid=?", (rid,)).fetchall()
            for t in ("params", "tags", "latest_metrics", "metrics")
        }
        names = {t: [c[1] for c in con.execute(f"PRAGMA table_info({t})")] for t in copies}
        for i in range(1, n):
            new = uuid.uuid4().hex
            start = BASE_MS + i * 1000
            values = {**row, "run_uuid": new, "name": f"run-{i}", "start_time": start}
            values["end_time"] = start + 60_000
            values["artifact_uri"] = str(row["artifact_uri"]).replace(rid, new)
            con.execute(
                f"INSERT INTO runs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                [values[c] for c in cols],
            )
            for table, rows in copies.items():
                at = names[table].index("run_uuid")
                for r in rows:
                    r = list(r)
                    r[at] = new
                    if table in ("latest_metrics", "metrics"):
                        r[names[table].index("timestamp")] = start
                    con.execute(
                        f"INSERT INTO {table} VALUES ({','.join('?' * len(r))})", r
                    )  # fmt: skip
    con.close()


def start_server(folder: Path, db: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        + ["--backend-store-uri", f"sqlite:///{db}"]
        + ["--artifacts-destination", str(folder / "artifacts")],
        cwd=folder,
        env={**ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    t = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() - t > 120:
                raise RuntimeError("mlflow server did not start") from None
            time.sleep(0.2)
    print(f"mlflow server {url} healthy after {time.monotonic() - t:.1f} s", flush=True)
    return proc, url


def timed(argv: list[str], cwd: Path) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {done.returncode}: {done.stderr[-500:]}")
    return wall, done.stdout.strip()


def peer_argv(url: str, since_ms: int) -> list[str]:
    code = (
        "from mlflow.tracking import MlflowClient\n"
        f"cl = MlflowClient(tracking_uri={url!r})\n"
        f"exp = cl.get_experiment_by_name({EXPERIMENT!r})\n"
        f"print(len(cl.search_runs([exp.experiment_id], 'attributes.start_time > {since_ms}')))\n"
    )
    return [sys.executable, "-c", code]


def log_new_runs(url: str, k: int) -> None:
    from mlflow.tracking import MlflowClient

    cl = MlflowClient(tracking_uri=url)
    exp = cl.get_experiment_by_name(EXPERIMENT).experiment_id
    for i in range(k):
        run = cl.create_run(exp, run_name=f"new-{i}")
        cl.log_metric(run.info.run_id, "loss", 0.1)
        cl.set_terminated(run.info.run_id, "FINISHED")


def stats(xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return f"{min(ms):8.0f} {statistics.median(ms):8.0f} {max(ms):8.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # our own client's runs
    with tempfile.TemporaryDirectory(prefix="ctui-bench-import-") as tmp:
        folder = Path(tmp)
        db = folder / "server.db"
        t = time.perf_counter()
        populate(db, args.runs)
        print(f"store: {args.runs} runs in {time.perf_counter() - t:.1f} s", flush=True)
        server, url = start_server(folder, db)
        try:
            project = folder / "project"
            project.mkdir()
            subprocess.run(["git", "init", "-q"], cwd=project, check=True)
            (project / "ctui.toml").write_text(f'[mlflow]\ntracking_uri = "{url}"\n')
            timed([CTUI, "init"], project)
            imp = [CTUI, "import", "mlflow", "--experiment", EXPERIMENT, "--json"]
            first, out = timed([*imp, "--since", "last"], project)
            print(f"first import (everything): {first:.1f} s {' '.join(out.split())}", flush=True)
            nothing: list[float] = []
            peer: list[float] = []
            ten: list[float] = []
            for i in range(args.n):
                wall, out = timed([*imp, "--since", "last"], project)
                assert '"imported": 0' in out, out
                nothing.append(wall)
                since = BASE_MS + args.runs * 1000 + 60_000
                wall, _ = timed(peer_argv(url, since), project)
                peer.append(wall)
                log_new_runs(url, 10)
                wall, out = timed([*imp, "--since", "last"], project)
                assert '"imported": 10' in out, out
                ten.append(wall)
                print(f"  round {i + 1}/{args.n} done", flush=True)
            print()
            print(f"{'figure (ms, whole processes)':<58} {'min':>8} {'median':>8} {'max':>8}")
            ok = statistics.median(nothing) <= 1.0
            print(
                f"{'ctui import mlflow --since last, nothing new':<58} {stats(nothing)}"
                f"   target ≤ 1000  {'met' if ok else 'MISSED'}"
            )
            print(f"{'peer: MLflow client search_runs(start_time > mark)':<58} {stats(peer)}")
            print(f"{'ctui import mlflow --since last, 10 new runs':<58} {stats(ten)}")
            ratio = statistics.median(peer) / statistics.median(nothing)
            print(f"ratio peer / ctui (nothing new): {ratio:.1f}×")
            print(f"({args.runs} runs on the server; n = {args.n}, interleaved)")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
