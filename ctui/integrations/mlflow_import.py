"""Bring existing MLflow runs into the store, so they are browsed and diffed beside ctui's own.

Each MLflow run becomes a ctui run with `backend: "mlflow"`, a fresh ctui id (time-sortable by
the MLflow start time) and `mlflow.run_id` recorded. Importing again updates those runs (a
run that was still running may have ended) and adds only new ones. Runs that ctui itself
created in MLflow (tagged `ctui.run_id`) are already in the store and are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes
from ctui.errors import UnavailableError
from ctui.ids import new_run_id
from ctui.integrations import mlflow_bridge as bridge
from ctui.store import RUNS, Store

#: MLflow run status → ctui status
STATUS = {
    "FINISHED": "succeeded",
    "FAILED": "failed",
    "KILLED": "cancelled",
    "RUNNING": "running",
    "SCHEDULED": "running",  # not `queued`: ctui's queue must never try to start it
}


def _param_value(text: str) -> Any:
    """MLflow keeps params as strings; numbers come back as numbers so filters compare them."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _experiments(cl: Any, name: str | None) -> list[Any]:
    if name:
        exp = cl.get_experiment_by_name(name)
        if exp is None:
            raise UnavailableError(
                f"no MLflow experiment named {name!r}",
                hint="`ctui import-mlflow` without --experiment imports every experiment",
            )
        return [exp]
    out: list[Any] = []
    token = None
    while True:
        page = cl.search_experiments(max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _all_runs(cl: Any, exp_id: str) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = cl.search_runs([exp_id], max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _doc(run: Any, exp: Any, uri: str, ctui_id: str) -> dict[str, Any]:
    info, data = run.info, run.data
    start = (info.start_time or 0) / 1000 or None
    end = (info.end_time or 0) / 1000 or None
    user_tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
    status = STATUS.get(info.status, "lost")
    return {
        "id": ctui_id,
        "job": exp.name,
        "status": status,
        "created": start,
        "started": start,
        "ended": end,
        "duration": (end - start) if start and end else None,
        "exit_code": None,
        "params": {k: _param_value(v) for k, v in data.params.items()},
        "metrics": {k: float(v) for k, v in data.metrics.items()},
        "tags": sorted(f"{k}={v}" if v else k for k, v in user_tags.items()),
        "note": data.tags.get("mlflow.note.content", ""),
        "trigger": None,
        "cause": "imported from MLflow",
        "backend": "mlflow",
        "command": [],
        "manifest": {},
        "git": (data.tags.get("mlflow.source.git.commit") or "")[:8] or None,
        "data_hash": None,
        "host": None,
        "error": None,
        "mlflow": {
            "run_id": info.run_id,
            "experiment_id": str(exp.experiment_id),
            "experiment": exp.name,
            "run_name": info.run_name,
            "tracking_uri": bridge.safe_uri(uri),
            "sync": "ok",
            "imported": True,
        },
    }


def _write_histories(project: Any, cl: Any, run: Any, ctui_id: str) -> None:
    """Metric histories into the run folder's metrics.jsonl, the format ctui.track writes."""
    run_dir = Path(project.run_dir(ctui_id))
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for key in sorted(run.data.metrics):
        for m in cl.get_metric_history(run.info.run_id, key):
            rec = {"name": key, "value": m.value, "step": m.step, "time": m.timestamp / 1000}
            lines.append(orjson.dumps(rec))
    atomic_write_bytes(run_dir / "metrics.jsonl", b"".join(line + b"\n" for line in lines))


def import_runs(
    project: Any, experiment: str | None = None, tracking_uri: str | None = None
) -> int:
    """Import the runs of one MLflow experiment (all experiments when None); returns how many
    new ctui runs were created. Idempotent: runs already imported are updated, not added."""
    from ctui.config import load_config

    config = load_config(Path(project.root))
    uri = tracking_uri or bridge.tracking_uri(project, config)
    if tracking_uri and "://" not in uri:
        uri = str(Path(uri).resolve())
    if not bridge.reachable(uri):
        raise UnavailableError(
            f"MLflow at {bridge.safe_uri(uri)} is not reachable",
            hint="start the tracking server, or pass --tracking-uri",
        )
    store = Store(project.store_file)
    existing = store.runs()
    by_mlflow = {
        (r.get("mlflow") or {}).get("run_id"): r["id"] for r in existing if r.get("mlflow")
    }
    ours = {r["id"] for r in existing}
    docs: list[dict[str, Any]] = []
    try:
        with bridge._quick_http():
            cl = bridge.client(uri)
            for exp in _experiments(cl, experiment):
                for run in _all_runs(cl, exp.experiment_id):
                    if run.data.tags.get(bridge.RUN_TAG) in ours:
                        continue  # a ctui run logged to MLflow: already here
                    ctui_id = by_mlflow.get(run.info.run_id) or new_run_id(
                        (run.info.start_time or 0) / 1000 or None
                    )
                    docs.append(_doc(run, exp, uri, ctui_id))
                    _write_histories(project, cl, run, ctui_id)
    except UnavailableError:
        raise
    except Exception as exc:
        raise UnavailableError(
            f"could not read from MLflow at {bridge.safe_uri(uri)}: {bridge._short(exc)}",
            hint="check the tracking URI and MLflow's credentials (MLFLOW_TRACKING_* variables)",
        ) from None

    def merge(data: dict[str, Any]) -> int:
        runs = data.setdefault(RUNS, {})
        added = 0
        for doc in docs:
            old = runs.get(doc["id"])
            if old is None:
                added += 1
                runs[doc["id"]] = doc
            else:  # keep what a person added in ctui (tags, note)
                keep = {k: old[k] for k in ("note",) if old.get(k)}
                keep["tags"] = sorted(set(old.get("tags") or []) | set(doc["tags"]))
                old.update({**doc, **keep})
        return added

    added: int = store.transact(merge)
    return added
