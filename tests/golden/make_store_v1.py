# Made by the ctui of commit 61dd211 (the last one-file store, schema 1):
#   git worktree add /tmp/old 61dd211
#   PYTHONPATH=/tmp/old python tests/golden/make_store_v1.py /tmp/store_v1.json
#   gzip -9 -c /tmp/store_v1.json > tests/golden/store_v1.json.gz
"""Make a one-file (schema 1) store with the ctui of commit 61dd211, as users had it."""

import random
import sys
import time
from pathlib import Path

from ctui.ids import new_run_id
from ctui.store import SCHEMA_VERSION, Store

assert SCHEMA_VERSION == 1
store = Store(Path(sys.argv[1]))
store.initialise()
rng = random.Random(7)
t0 = 1_764_000_000.0
docs = []
for i in range(1500):
    created = t0 + i * 60
    docs.append(
        {
            "id": new_run_id(now=created),
            "job": rng.choice(["train", "eval", "sweep"]),
            "status": rng.choice(["succeeded", "succeeded", "failed", "cancelled"]),
            "created": created,
            "started": created + 1,
            "ended": created + 50,
            "duration": 49.0,
            "params": {"lr": rng.choice([0.1, 0.01, 0.001]), "epochs": rng.randint(1, 20)},
            "metrics": {"acc": round(rng.random(), 4), "loss": round(rng.random() * 3, 4)},
            "git": "abc1234",
            "tags": ["baseline"] if i % 100 == 0 else [],
            "trigger": "manual",
        }
    )
store.put_runs(docs)
ids = [d["id"] for d in store.runs()]
store.update_run(ids[3], {"note": "the good one"})
store.update_run(ids[10], mutate=lambda d: d["tags"].append("keep"))
store.insert_run({"id": new_run_id(), "job": "train", "status": "running", "created": time.time()})
store.put_doc("triggers", "nightly", {"name": "nightly", "last_fired": t0})
store.put_doc("champions", "train", {"job": "train", "run": ids[3], "since": t0})
print(len(store.runs()), "runs")
