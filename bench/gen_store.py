"""Generate a realistic ctui store (and the same runs in an MLflow sqlite store) for benches.

Both through their own public writers: ctui's `Store.put_runs`, MLflow's SqlAlchemyStore.

10 params, 5 metrics per run; manifests that share most sections (a few environments and
machines, a few dozen dataset versions and commits), as a real project accumulates them.
"""

from __future__ import annotations

import hashlib
import random
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctui.ids import new_run_id  # noqa: E402
from ctui.project import Project  # noqa: E402
from ctui.store import open_store  # noqa: E402

BASE_TIME = 1_780_000_000.0
STATUSES = ["succeeded"] * 8 + ["failed", "cancelled"]


def _h(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def make_run(i: int, rng: random.Random) -> dict[str, Any]:
    started = BASE_TIME + i * 60
    duration = rng.uniform(5, 900)
    data_v, code_v = i // 250, i // 100
    return {
        "id": new_run_id(now=started),
        "job": rng.choice(["train", "train", "train", "evaluate", "prepare"]),
        "status": rng.choice(STATUSES),
        "created": started,
        "started": started,
        "ended": started + duration,
        "duration": duration,
        "exit_code": 0,
        "params": {
            "lr": rng.choice([0.1, 0.03, 0.01, 0.003, 0.001]),
            "epochs": rng.randint(1, 50),
            "batch_size": rng.choice([32, 64, 128, 256]),
            "optimizer": rng.choice(["adam", "sgd", "adamw"]),
            "dropout": round(rng.uniform(0, 0.5), 2),
            "seed": rng.randint(0, 10_000),
            "layers": rng.randint(2, 12),
            "hidden": rng.choice([128, 256, 512]),
            "weight_decay": rng.choice([0.0, 1e-4, 1e-3]),
            "warmup": rng.randint(0, 1000),
        },
        "metrics": {
            "acc": round(rng.uniform(0.5, 0.99), 4),
            "loss": round(rng.uniform(0.01, 2.0), 4),
            "f1": round(rng.uniform(0.4, 0.98), 4),
            "auc": round(rng.uniform(0.5, 0.999), 4),
            "val_loss": round(rng.uniform(0.02, 2.5), 4),
        },
        "tags": ["baseline"] if i % 97 == 0 else [],
        "note": "",
        "trigger": rng.choice(["manual", "new-data", "nightly", "new-code"]),
        "cause": None,
        "backend": "local",
        "command": ["python", "train.py", "--lr", "0.01"],
        "manifest": {
            "data": _h("data", data_v),
            "code": _h("code", code_v),
            "env": _h("env", i // 2000),
            "compute": _h("compute", i % 3),
        },
        "git": _h("sha", code_v)[:7],
        "data_hash": _h("data", data_v)[:8],
        "host": f"gpu-box-{i % 3}",
    }


def make_store(root: Path, n: int = 10_000, seed: int = 7) -> Project:
    """A project at `root` with `n` runs, written with one `Store.put_runs` (the public API,
    whatever the store's layout on disk)."""
    project = Project(root=root, state_dir=root / ".ctui").ensure()
    rng = random.Random(seed)
    store = open_store(project)
    init = getattr(store, "initialise", None)
    if init is not None:
        init()
    store.put_runs(make_run(i, rng) for i in range(n))
    return project


def make_mlflow_store(db: Path, runs: list[dict[str, Any]], batch: int = 5_000) -> tuple[str, str]:
    """The same runs in an MLflow sqlite store, written through MLflow's own SqlAlchemyStore:
    it creates the schema and the experiment, and its table models take the rows, inserted
    in batches (one run at a time through the client would take an hour for 100k runs).
    Each run has its params, its final metrics (history and latest), a `job` tag and its
    name. Returns the tracking URI and the experiment's id."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    uri = f"sqlite:///{db}"
    store = SqlAlchemyStore(uri, str(db.parent / "mlartifacts"))
    exp_id = store.create_experiment("bench")
    for start in range(0, len(runs), batch):
        rows: dict[Any, list[dict[str, Any]]] = {
            t: [] for t in (SqlRun, SqlParam, SqlMetric, SqlLatestMetric, SqlTag)
        }
        for r in runs[start : start + batch]:
            rid = uuid.uuid4().hex
            ts = int(r["ended"] * 1000)
            status = {"succeeded": "FINISHED", "failed": "FAILED"}.get(r["status"], "KILLED")
            rows[SqlRun].append(
                {
                    "run_uuid": rid,
                    "name": r["id"],
                    "source_type": "LOCAL",
                    "source_name": "train.py",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": status,
                    "start_time": int(r["started"] * 1000),
                    "end_time": ts,
                    "deleted_time": None,
                    "source_version": r["git"],
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{db.parent}/mlartifacts/{rid}",
                    "experiment_id": int(exp_id),
                }
            )
            rows[SqlParam] += [
                {"key": k, "value": str(v), "run_uuid": rid} for k, v in r["params"].items()
            ]
            metrics = [
                {"key": k, "value": v, "timestamp": ts, "step": 0, "is_nan": False, "run_uuid": rid}
                for k, v in r["metrics"].items()
            ]
            rows[SqlMetric] += metrics
            rows[SqlLatestMetric] += metrics
            rows[SqlTag] += [
                {"key": "job", "value": r["job"], "run_uuid": rid},
                {"key": "mlflow.runName", "value": r["id"], "run_uuid": rid},
            ]
        with store.ManagedSessionMaker() as session:
            for model, values in rows.items():
                session.execute(insert(model.__table__), values)
    return uri, exp_id


def shortest_prefix(ids: list[str], target: str) -> str:
    """The shortest prefix (4 characters at least) that names `target` alone among `ids`."""
    others = [i for i in ids if i != target]
    for n in range(4, len(target) + 1):
        if not any(o.startswith(target[:n]) for o in others):
            return target[:n]
    return target


def main() -> None:
    """`gen_store.py DIR [N]`: a project of N runs at DIR; `--mlflow [--db DB]`: the same runs
    (of the store already at DIR) in DB (DIR/mlflow.db). Prints what it did as one JSON line."""
    import argparse
    import json
    import time

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("dir", type=Path)
    ap.add_argument("n", type=int, nargs="?", default=10_000)
    ap.add_argument("--mlflow", action="store_true")
    ap.add_argument("--db", type=Path, default=None, help="with --mlflow (default DIR/mlflow.db)")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    if not args.mlflow:
        project = make_store(args.dir, args.n)
        took = time.perf_counter() - t
        ids = sorted(r["id"] for r in open_store(project).runs())
        old = ids[len(ids) // 10]  # an old run: not in the newest segment, nor the first page
        print(json.dumps({"ctui_s": took, "prefix": shortest_prefix(ids, old), "n": len(ids)}))
        return
    project = Project(root=args.dir, state_dir=args.dir / ".ctui")
    runs = open_store(project).runs()
    db = args.db or args.dir / "mlflow.db"
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    _, exp_id = make_mlflow_store(db, runs)
    print(json.dumps({"mlflow_s": time.perf_counter() - t, "exp_id": exp_id}))


if __name__ == "__main__":
    main()
