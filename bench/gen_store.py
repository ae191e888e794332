"""Generate a realistic ctui store (and the same runs in an MLflow sqlite store) for benches.

10 params, 5 metrics per run; manifests that share most sections (a few environments and
machines, a few dozen dataset versions and commits), as a real project accumulates them.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctui.ids import new_run_id  # noqa: E402
from ctui.project import Project  # noqa: E402
from ctui.store import Store  # noqa: E402

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
    project = Project(root=root, state_dir=root / ".ctui").ensure()
    rng = random.Random(seed)
    store = Store(project.store_file)
    store.initialise()
    store.put_runs(make_run(i, rng) for i in range(n))
    return project


def make_mlflow_store(db: Path, runs: list[dict[str, Any]]) -> str:
    """The same runs in an MLflow sqlite store: one run through MLflow's API (schema and
    experiment), the rest bulk-copied into MLflow's own tables with sqlite3 (the API would
    take minutes for 10k runs)."""
    import mlflow

    uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    exp_id = mlflow.create_experiment("bench")
    first = runs[0]
    with mlflow.start_run(experiment_id=exp_id) as active:
        mlflow.log_params(first["params"])
        mlflow.log_metrics(first["metrics"])
        mlflow.set_tag("job", first["job"])
    template = active.info.run_id
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute("pragma table_info(runs)")]
    row = dict(
        zip(
            cols,
            con.execute("select * from runs where run_uuid=?", (template,)).fetchone(),
            strict=True,
        )
    )
    ts = int(BASE_TIME * 1000)
    for r in runs[1:]:
        rid = uuid.uuid4().hex
        new = dict(
            row,
            run_uuid=rid,
            name=r["id"],
            start_time=int(r["started"] * 1000),
            end_time=int(r["ended"] * 1000),
        )
        con.execute(
            f"insert into runs ({','.join(cols)}) values ({','.join('?' * len(cols))})",
            [new[c] for c in cols],
        )
        con.executemany(
            "insert into params (key, value, run_uuid) values (?, ?, ?)",
            [(k, str(v), rid) for k, v in r["params"].items()],
        )
        con.executemany(
            "insert into metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "values (?, ?, ?, ?, 0, 0)",
            [(k, v, ts, rid) for k, v in r["metrics"].items()],
        )
        con.executemany(
            "insert into latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "values (?, ?, ?, 0, 0, ?)",
            [(k, v, ts, rid) for k, v in r["metrics"].items()],
        )
        con.execute("insert into tags (key, value, run_uuid) values ('job', ?, ?)", (r["job"], rid))
    con.commit()
    con.close()
    return uri


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-store")
    target.mkdir(parents=True, exist_ok=True)
    make_store(target, int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
    print(f"wrote {target / '.ctui' / 'ctui.json'}")
