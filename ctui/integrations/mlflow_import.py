"""Bring existing MLflow runs into the store, so they are browsed and diffed beside ctui's own.

Each MLflow run becomes a ctui run with `backend: "mlflow"`, a fresh ctui id (time-sortable by
the MLflow start time) and `mlflow.run_id` recorded. What MLflow knows is kept:

- status: `running` only while MLflow says RUNNING (or SCHEDULED); ctui supervises no such run,
  so its `duration` is how long it had run when MLflow last heard from it (its latest metric,
  else the first import), never a clock that grows by itself. The next import or `ctui sync`
  (`refresh_live`) updates it.
- nested runs keep their parent: `parent` is the parent's ctui id (`mlflow.parent_run_id`
  its MLflow id), children of a ctui run's MLflow run included.
- importing again updates those runs and adds only new ones: "imported N, updated M";
  `--since last` reads only what started or ended after the last import (a team's server
  with tens of thousands of runs, mirrored every minute), and a cheap check spares even the
  mlflow import when nothing did (`mlflow_changes`).
The MLflow run of a ctui run (tagged `ctui.run_id`, or recorded on the run) is already in the
store and is skipped. A missing sqlite file or an unreachable server is bad input (exit 2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes
from ctui.errors import UnavailableError
from ctui.ids import new_run_id
from ctui.integrations import mlflow_client, mlflow_uri
from ctui.integrations.mlflow_changes import TIMES
from ctui.integrations.mlflow_runs import PARENT_TAG, RUN_TAG, all_experiments
from ctui.integrations.mlflow_sync import _uri_for
from ctui.store import RUNS, Store

#: MLflow run status → ctui status
STATUS = {
    "FINISHED": "succeeded",
    "FAILED": "failed",
    "KILLED": "cancelled",
    "RUNNING": "running",
    "SCHEDULED": "running",  # not `queued`: ctui's queue must never try to start it
}


@dataclass
class ImportResult:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    #: ids of the runs added or updated
    changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"imported": self.imported, "updated": self.updated, "unchanged": self.unchanged}

    def text(self) -> str:
        return f"imported {self.imported}, updated {self.updated} run(s) from MLflow"


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
        if exp is not None:
            return [exp]
    out = all_experiments(cl)
    if name:
        known = ", ".join(sorted(e.name for e in out)[:10]) or "none"
        raise UnavailableError(
            f"no MLflow experiment named {name!r} (known: {known})",
            hint="`ctui import mlflow` without --experiment imports every experiment",
        )
    return out


def _all_runs(cl: Any, exp_id: str, since_ms: int | None = None) -> list[Any]:
    """Every run of the experiment; with `since_ms`, only those that started or ended after
    it (two queries: MLflow's filter has no OR)."""
    filters = [""] if since_ms is None else [f"attributes.{t} > {since_ms}" for t in TIMES]
    out: dict[str, Any] = {}
    for text in filters:
        token = None
        while True:
            page = cl.search_runs([exp_id], filter_string=text, max_results=1000, page_token=token)
            out.update((run.info.run_id, run) for run in page)
            token = page.token
            if not token:
                break
    return list(out.values())


#: the store table of incremental imports: key `<tracking URI>|<experiment or *>`
IMPORTS = "imports"


def mark_key(uri: str, experiment: str | None) -> str:
    return f"{mlflow_uri.safe_uri(uri)}|{experiment or '*'}"


def mirror_due(project: Any, config: Any, experiment: str | None) -> int | bool:
    """For `ctui watch`'s `[mlflow] mirror`: False when the last import of this server and
    experiment is more recent than the mirror interval, else the mark to import after
    (0: never imported, import everything)."""
    uri = mlflow_uri.resolve(project, config).uri
    doc = Store(project.store_file).get_doc(IMPORTS, mark_key(uri, experiment)) or {}
    at = doc.get("at")
    if isinstance(at, int | float) and time.time() - at < float(config.mlflow.mirror):
        return False
    mark = doc.get("until_ms")
    return int(mark) if isinstance(mark, int | float) else 0


def last_mark(project: Any, uri: str, experiment: str | None) -> int | None:
    """The newest start or end time (ms, MLflow's clock) the last import of this server and
    experiment saw: `--since last` asks for what changed after it."""
    doc = Store(project.store_file).get_doc(IMPORTS, mark_key(uri, experiment)) or {}
    mark = doc.get("until_ms")
    return int(mark) if isinstance(mark, int | float) else None


def _histories(cl: Any, run: Any) -> list[dict[str, Any]]:
    """Every metric point, in the format ctui.track writes (`time` in seconds)."""
    out = []
    for key in sorted(run.data.metrics):
        for m in cl.get_metric_history(run.info.run_id, key):
            out.append({"name": key, "value": m.value, "step": m.step, "time": m.timestamp / 1000})
    return out


def _doc(
    run: Any,
    exp: Any,
    uri: str,
    ctui_id: str,
    *,
    parent: str | None,
    points: list[dict[str, Any]],
    old: dict[str, Any] | None,
) -> dict[str, Any]:
    info, data = run.info, run.data
    start = (info.start_time or 0) / 1000 or None
    end = (info.end_time or 0) / 1000 or None
    user_tags = {k: v for k, v in data.tags.items() if not k.startswith(("mlflow.", "ctui."))}
    status = STATUS.get(info.status, "lost")
    duration = (end - start) if start and end else None
    last_heard = max((p["time"] for p in points), default=None)
    if status == "running" and start:
        # ctui does not supervise it: how long it had run when MLflow last heard from it
        if last_heard is None:
            kept = (old or {}).get("duration") if (old or {}).get("status") == "running" else None
            last_heard = start + kept if kept is not None else time.time()
        duration = round(max(0.0, last_heard - start), 3)
        end = None
    return {
        "id": ctui_id,
        "job": exp.name,
        "status": status,
        "created": start,
        "started": start,
        "ended": end,
        "duration": duration,
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
        "parent": parent,
        "mlflow": {
            "run_id": info.run_id,
            "experiment_id": str(exp.experiment_id),
            "experiment": exp.name,
            "run_name": info.run_name,
            "status": info.status,
            "parent_run_id": data.tags.get(PARENT_TAG),
            "tracking_uri": mlflow_uri.safe_uri(uri),
            "sync": "ok",
            "imported": True,
        },
    }


def _write_histories(project: Any, ctui_id: str, points: list[dict[str, Any]]) -> None:
    """Metric histories into the run folder's metrics.jsonl, the format ctui.track writes."""
    run_dir = Path(project.run_dir(ctui_id))
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "metrics.jsonl", b"".join(orjson.dumps(p) + b"\n" for p in points))


def _merge(
    store: Store, docs: list[dict[str, Any]], mark: tuple[str, dict[str, Any]] | None = None
) -> ImportResult:
    """Add new runs, update changed ones; a person's tags and note added in ctui are kept.
    `mark` (key, doc) lands in the `imports` table in the same write."""

    def merge(data: dict[str, Any]) -> ImportResult:
        if mark is not None:
            data.setdefault(IMPORTS, {})[mark[0]] = mark[1]
        runs = data.setdefault(RUNS, {})
        result = ImportResult()
        for doc in docs:
            old = runs.get(doc["id"])
            if old is None:
                result.imported += 1
                result.changed.append(doc["id"])
                runs[doc["id"]] = doc
                continue
            keep = {k: old[k] for k in ("note",) if old.get(k)}
            keep["tags"] = sorted(set(old.get("tags") or []) | set(doc["tags"]))
            new = {**old, **doc, **keep}
            if new == old:
                result.unchanged += 1
            else:
                result.updated += 1
                result.changed.append(doc["id"])
                old.clear()
                old.update(new)
        return result

    out: ImportResult = store.transact(merge)
    return out


def import_runs(
    project: Any,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    *,
    since_ms: int | None = None,
) -> ImportResult:
    """Import the runs of one MLflow experiment (all experiments when None). Idempotent: runs
    already imported are updated, not added. `tracking_uri` overrides the URI in force.

    With `since_ms` (MLflow's milliseconds; `last_mark` for "since the last import") only runs
    that started or ended after it are read, and imported runs MLflow said were running are
    asked again; when a cheap check (the server's REST API, or the sqlite file) finds none,
    mlflow is not even imported. Every import records how far it saw (`last_mark`).
    """
    from ctui.config import load_config
    from ctui.integrations.mlflow_changes import anything_since

    tracking = mlflow_uri.resolve(project, load_config(Path(project.root)), cli=tracking_uri)
    mlflow_uri.check_readable(tracking)
    uri = tracking.uri
    store = Store(project.store_file)
    existing = store.runs()
    live = live_imported(project, existing)
    if since_ms is not None and not live and anything_since(uri, experiment, since_ms) is False:
        return ImportResult()
    by_mlflow = {
        (r.get("mlflow") or {}).get("run_id"): r for r in existing if (r.get("mlflow") or {})
    }
    ours = {r["id"] for r in existing if not (r.get("mlflow") or {}).get("imported")}
    found: list[tuple[Any, Any, str, list[dict[str, Any]]]] = []
    ids: dict[str, str] = {k: v["id"] for k, v in by_mlflow.items() if k}
    until = since_ms or 0
    try:
        with mlflow_client._quick_http():
            cl = mlflow_client.client(uri)
            for exp in _experiments(cl, experiment):
                for run in _all_runs(cl, exp.experiment_id, since_ms):
                    until = max(until, run.info.start_time or 0, run.info.end_time or 0)
                    known = by_mlflow.get(run.info.run_id)
                    if known is not None and not (known.get("mlflow") or {}).get("imported"):
                        continue  # the MLflow run of a ctui run: already here
                    tag = run.data.tags.get(RUN_TAG)
                    if tag in ours and not run.data.tags.get(PARENT_TAG):
                        continue  # a ctui run's own MLflow run, not linked on it yet
                    ctui_id = ids.get(run.info.run_id) or new_run_id(
                        (run.info.start_time or 0) / 1000 or None
                    )
                    ids[run.info.run_id] = ctui_id
                    found.append((run, exp, ctui_id, _histories(cl, run)))
    except UnavailableError:
        raise
    except Exception as exc:
        raise UnavailableError(
            f"could not read from MLflow at {tracking.safe}: {mlflow_client._short(exc)}",
            hint="check the tracking URI and MLflow's credentials (MLFLOW_TRACKING_* variables)",
        ) from None
    olds = {r["id"]: r for r in existing}
    docs = []
    for run, exp, ctui_id, points in found:
        parent = ids.get(run.data.tags.get(PARENT_TAG) or "")
        docs.append(
            _doc(run, exp, uri, ctui_id, parent=parent, points=points, old=olds.get(ctui_id))
        )
        _write_histories(project, ctui_id, points)
    mark = (mark_key(uri, experiment), {"until_ms": until, "at": time.time()})
    result = _merge(store, docs, mark)
    if since_ms is not None:  # live runs that started before the mark: asked by id
        seen = {doc["id"] for doc in docs}
        updated, _ = refresh_live(project, [r for r in live if r["id"] not in seen], uri)
        result.updated += len(updated)
        result.changed.extend(updated)
    return result


# -- imported runs MLflow said were running --------------------------------------------------


def live_imported(project: Any, runs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Imported runs still running in MLflow when last seen (cheap: no mlflow import)."""
    return [
        r
        for r in (Store(project.store_file).runs() if runs is None else runs)
        if r.get("backend") == "mlflow"
        and r.get("status") == "running"
        and (r.get("mlflow") or {}).get("run_id")
    ]


def refresh_live(
    project: Any, live: list[dict[str, Any]], uri: str
) -> tuple[list[str], dict[str, str]]:
    """Ask MLflow again about imported running runs: ([ids that changed], {id: why not})."""
    store = Store(project.store_file)
    updated: list[str] = []
    errors: dict[str, str] = {}
    by_uri: dict[str, list[dict[str, Any]]] = {}
    for doc in live:
        by_uri.setdefault(_uri_for(doc, uri), []).append(doc)
    for target, docs in by_uri.items():
        if not mlflow_uri.reachable(target):
            for doc in docs:
                errors[doc["id"]] = f"MLflow at {mlflow_uri.safe_uri(target)} is not reachable"
            continue
        try:
            with mlflow_client._quick_http():
                cl = mlflow_client.client(target)
                fresh = []
                for doc in docs:
                    run = cl.get_run(doc["mlflow"]["run_id"])
                    exp = cl.get_experiment(run.info.experiment_id)
                    points = _histories(cl, run)
                    new = _doc(
                        run, exp, target, doc["id"], parent=doc.get("parent"), points=points,
                        old=doc,
                    )  # fmt: skip
                    _write_histories(project, doc["id"], points)
                    fresh.append(new)
        except Exception as exc:
            for doc in docs:
                errors[doc["id"]] = mlflow_client._short(exc)
            continue
        updated.extend(_merge(store, fresh).changed)
    return updated, errors
