"""Sync one ctui run to its MLflow run: adopt or create it, push what is new, close it.

Exactly once per metric point: the points of `metrics.jsonl` already pushed are counted per
metric in the run folder's `mlflow_synced.json`, checked against MLflow's own history, under a
lock, so a retry after a failure (server down) pushes only what is missing.
`run["mlflow"]["tried"]` is when the last attempt ended (a waiter can tell an attempt that
failed from one still under way).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes, file_lock
from ctui.integrations import mlflow_runs
from ctui.integrations.mlflow_client import (
    _artifact_location,
    _quick_http,
    client,
    get_or_create_experiment,
)
from ctui.integrations.mlflow_uri import reachable, safe_uri
from ctui.manifest.redact import redact_params, redact_text
from ctui.store import FINAL, Store

SYNCED_FILE = "mlflow_synced.json"
LOCK_FILE = "mlflow_sync.lock"

#: ctui status → MLflow run status
_MLFLOW_STATUS = {
    "succeeded": "FINISHED",
    "failed": "FAILED",
    "lost": "FAILED",
    "timeout": "FAILED",
    "cancelled": "KILLED",
}


# -- the run folder's record of what was pushed --------------------------------------------------


def _synced_path(project: Any, run_id: str) -> Path:
    return Path(project.run_dir(run_id)) / SYNCED_FILE


def read_synced(project: Any, run_id: str) -> dict[str, Any]:
    try:
        data = orjson.loads(_synced_path(project, run_id).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {"metrics": {}}
    return data if isinstance(data, dict) else {"metrics": {}}


def _write_synced(project: Any, run_id: str, data: dict[str, Any]) -> None:
    path = _synced_path(project, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def read_metric_points(run_dir: Path) -> dict[str, list[tuple[float, int, int]]]:
    """`metrics.jsonl` → {name: [(value, timestamp_ms, step), ...]} in file order.

    Only complete lines count (a job may be writing the last one right now).
    """
    path = Path(run_dir) / "metrics.jsonl"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    out: dict[str, list[tuple[float, int, int]]] = {}
    end = raw.rfind(b"\n")
    for line in raw[: end + 1].splitlines():
        try:
            rec = orjson.loads(line)
            name = str(rec["name"])
            value = float(rec["value"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        ts = rec.get("time")
        ts_ms = int(float(ts) * 1000) if isinstance(ts, int | float) else int(time.time() * 1000)
        step = rec.get("step")
        out.setdefault(name, []).append((value, ts_ms, int(step) if step is not None else 0))
    return out


def _params(run: dict[str, Any], run_dir: Path | None = None) -> dict[str, str]:
    """The run's params, plus those the job logged itself (`params.jsonl`) when given, through
    the same redaction as everything ctui writes (a secret-named param's value masked)."""
    out = {str(k): str(v)[:6000] for k, v in redact_params(run.get("params") or {}).items()}
    if run_dir is not None:
        try:
            raw = (run_dir / "params.jsonl").read_bytes()
        except FileNotFoundError:
            raw = b""
        for line in raw.splitlines():
            try:
                rec = orjson.loads(line)
                logged = redact_params({str(rec["name"]): str(rec["value"])})
                for name, value in logged.items():
                    out.setdefault(name, str(value)[:6000])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
    return out


def _log_batches(
    cl: Any,
    mlflow_run_id: str,
    *,
    metrics: Sequence[Any] = (),
    params: Sequence[Any] = (),
    tags: Sequence[Any] = (),
) -> None:
    # MLflow's limits per log_batch: 1000 metrics, 100 params, 100 tags
    for i in range(0, len(params), 100):
        cl.log_batch(mlflow_run_id, params=params[i : i + 100])
    for i in range(0, len(tags), 100):
        cl.log_batch(mlflow_run_id, tags=tags[i : i + 100])
    for i in range(0, len(metrics), 1000):
        cl.log_batch(mlflow_run_id, metrics=metrics[i : i + 1000])


def _point_key(value: float, ts: int, step: int) -> tuple[int, int, str]:
    return (int(step), int(ts), repr(float(value)))  # repr: NaN equals NaN here


def _mark(project: Any, run: dict[str, Any], fields: dict[str, Any]) -> None:
    """Merge `fields` into run["mlflow"], in the dict and in the store."""
    ml = dict(run.get("mlflow") or {})
    ml.update(fields)
    if fields.get("sync") == "ok":
        ml.pop("error", None)
    run["mlflow"] = ml

    def mutate(doc: dict[str, Any]) -> None:
        cur = dict(doc.get("mlflow") or {})
        cur.update(ml)
        if fields.get("sync") == "ok":
            cur.pop("error", None)
        doc["mlflow"] = cur

    with contextlib.suppress(Exception):  # a run not (yet) in the store keeps the dict only
        Store(project.store_file).update_run(run["id"], mutate=mutate)


def _uri_for(run: dict[str, Any], configured: str) -> str:
    """Sync where the run was created (the configured URI may carry credentials: prefer it
    when it is the same server)."""
    recorded = (run.get("mlflow") or {}).get("tracking_uri")
    if recorded and safe_uri(configured) != recorded:
        return str(recorded)
    return configured


def sync_settled(run: dict[str, Any]) -> bool:
    """True once the MLflow sync of an ended run is done or an attempt after the end failed
    (then `ctui sync` retries); False while one is still expected."""
    ml = run.get("mlflow") or {}
    if ml.get("sync") != "pending":
        return True
    return float(ml.get("tried") or 0) >= float(run.get("ended") or time.time())


def _ended_status(run: dict[str, Any]) -> str | None:
    status = run.get("status")
    if status not in FINAL and run.get("exit_code") is not None:
        status = "succeeded" if run["exit_code"] == 0 else "failed"
    return status if status in FINAL else None


def _the_mlflow_run(
    project: Any,
    cl: Any,
    run: dict[str, Any],
    ml: dict[str, Any],
    uri: str,
    *,
    create: bool,
    code: dict[str, Any] | None,
) -> tuple[Any, list[Any]]:
    """(the MLflow run of this ctui run or None, every MLflow run tagged with it).

    The recorded one, else the job's own top-level run (adopted), else — once the run has
    ended (`create`) — a new one made by ctui in ctui's experiment (`code`: the run's code
    section, for its git tags)."""
    exp_id = ml.get("experiment_id")
    if not exp_id:
        name = ml.get("experiment") or Path(project.root).resolve().name
        exp_id = get_or_create_experiment(cl, name, _artifact_location(project, uri))
        ml["experiment"] = name
    tagged = mlflow_runs.tagged_runs(cl, str(run["id"]), [str(exp_id)])
    if ml.get("run_id"):
        return cl.get_run(ml["run_id"]), tagged
    tops = mlflow_runs.top_level(tagged)
    if tops:
        mine = tops[0]
        ml["created_by"] = "job"
        if len(tops) > 1:
            ml["other_runs"] = [r.info.run_id for r in tops[1:]][:50]
    elif create:
        start = run.get("started") or run.get("created") or time.time()
        tags = {**mlflow_runs.system_tags(run, code), **mlflow_runs.ctui_tags(project, run)}
        mine = cl.create_run(
            exp_id, start_time=int(float(start) * 1000), tags=tags, run_name=str(run["id"])
        )
        ml["created_by"] = "ctui"
    else:
        return None, tagged
    ml["run_id"] = mine.info.run_id
    ml["experiment_id"] = str(mine.info.experiment_id)
    if str(mine.info.experiment_id) != str(exp_id):
        exp = cl.get_experiment(mine.info.experiment_id)
        ml["experiment"] = exp.name if exp is not None else ml.get("experiment")
    return cl.get_run(mine.info.run_id), tagged


def sync_run(
    project: Any, run: dict[str, Any], uri: str, *, experiment: str | None = None
) -> dict[str, float]:
    """Bring the MLflow run of a ctui run up to date, exactly once per metric point.

    Adopts the job's MLflow run (or, once the run has ended and the job made none, creates
    one), logs params, tags (ctui's links and section hashes; MLflow's system tags where
    missing), the metric points not pushed yet, and — when the run has ended — the manifest
    artifact, the histories the job logged only to MLflow (into the run folder, for ctui's
    plots), then terminates it (and nested runs left running) with the matching status.
    Returns the MLflow run's latest metrics. Raises on failure (the caller marks the sync
    pending); marks `sync = ok` on success. While the job runs and has not started its MLflow
    run yet, nothing is created and {} is returned.
    """
    uri = _uri_for(run, uri)
    if not reachable(uri):  # before importing mlflow (~2 s): a dead server is found fast
        raise ConnectionError(f"MLflow at {safe_uri(uri)} is not reachable")
    from mlflow.entities import Metric, Param, RunTag

    ml = dict(run.get("mlflow") or {})
    if experiment and not ml.get("experiment"):
        ml["experiment"] = experiment
    status = _ended_status(run)
    run_dir = Path(project.run_dir(run["id"]))
    run_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(run_dir / LOCK_FILE), _quick_http():
        cl = client(uri)
        code = mlflow_runs.code_section(project, run) if status is not None else None
        current, tagged = _the_mlflow_run(
            project, cl, run, ml, uri, create=status is not None, code=code
        )
        if current is None:
            return {}
        mlflow_run_id = str(current.info.run_id)
        ml["tracking_uri"] = safe_uri(uri)
        nested = [r for r in tagged if r.info.run_id != mlflow_run_id]
        if nested:
            ml["nested"] = len(nested)
        # record the MLflow run id at once: a failure below must not create a second run
        _mark(project, run, {**ml, "sync": "pending"})

        have_params = current.data.params
        params = [Param(k, v) for k, v in _params(run, run_dir).items() if k not in have_params]
        have = current.data.tags
        wanted = {
            **{k: v for k, v in mlflow_runs.system_tags(run, code).items() if not have.get(k)},
            **mlflow_runs.ctui_tags(project, run),
        }
        wanted = {k: redact_text(v) for k, v in wanted.items()}
        tags = [RunTag(k, v) for k, v in wanted.items() if have.get(k) != v]
        _log_batches(cl, mlflow_run_id, params=params, tags=tags)

        synced = read_synced(project, run["id"])
        if synced.get("mlflow_run_id") not in (None, mlflow_run_id):
            synced = {"metrics": {}}  # pushed to another MLflow run: start over
        synced["mlflow_run_id"] = mlflow_run_id
        counts: dict[str, int] = synced.setdefault("metrics", {})
        new: list[Any] = []
        local = read_metric_points(run_dir)
        for name, points in local.items():
            todo = points[counts.get(name, 0) :]
            if not todo:
                continue
            # a push that reached MLflow but not our record must not be pushed twice
            history = cl.get_metric_history(mlflow_run_id, name)
            seen = {_point_key(m.value, m.timestamp, m.step) for m in history}
            new.extend(
                Metric(name, value, ts, step)
                for value, ts, step in todo
                if _point_key(value, ts, step) not in seen
            )
            counts[name] = len(points)
        _log_batches(cl, mlflow_run_id, metrics=new)
        _write_synced(project, run["id"], synced)

        if status is not None:
            _pull_job_histories(cl, current, run_dir, set(local), counts)
            if not synced.get("manifest_logged"):
                _log_manifest(project, cl, mlflow_run_id, run)
                synced["manifest_logged"] = True
            end = int(float(run.get("ended") or time.time()) * 1000)
            ml_status = _MLFLOW_STATUS.get(status, "FAILED")
            for child in nested:  # a job that died inside `with start_run(nested=True)`
                if child.info.status in ("RUNNING", "SCHEDULED"):
                    cl.set_terminated(child.info.run_id, status=ml_status, end_time=end)
            cl.set_terminated(mlflow_run_id, status=ml_status, end_time=end)
            synced["terminated"] = True
            _write_synced(project, run["id"], synced)
        final = {k: float(v) for k, v in cl.get_run(mlflow_run_id).data.metrics.items()}
    _mark(project, run, {**ml, "sync": "ok", "tried": time.time()})
    return final


def _pull_job_histories(
    cl: Any, current: Any, run_dir: Path, local: set[str], counts: dict[str, int]
) -> None:
    """The metrics the job logged to MLflow only (its own `mlflow.log_metric`, autolog) into
    the run folder's `metrics.jsonl`, so ctui plots them too; counted as already pushed."""
    lines: list[bytes] = []
    for name in sorted(set(current.data.metrics) - local):
        history = sorted(
            cl.get_metric_history(current.info.run_id, name), key=lambda m: (m.step, m.timestamp)
        )
        for m in history:
            rec = {"name": name, "value": m.value, "step": m.step, "time": m.timestamp / 1000}
            lines.append(orjson.dumps(rec) + b"\n")
        counts[name] = len(history)
    if not lines:
        return
    path = run_dir / "metrics.jsonl"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = b""
    # the job has ended: nothing else writes the file now; keep a torn last line apart
    prefix = b"" if not raw or raw.endswith(b"\n") else b"\n"
    with open(path, "ab") as fh:
        fh.write(prefix + b"".join(lines))


def _log_manifest(project: Any, cl: Any, mlflow_run_id: str, run: dict[str, Any]) -> None:
    hashes = run.get("manifest") or {}
    if not hashes:
        return
    from ctui import manifest
    from ctui.objects import ObjectStore

    try:
        doc = manifest.load(ObjectStore(project.objects_dir), hashes)
    except Exception as exc:  # a missing object must not block the metrics
        doc = {"error": f"manifest could not be loaded: {exc}", "hashes": hashes}
    with tempfile.TemporaryDirectory(prefix="ctui-mlflow-") as tmp:
        path = Path(tmp) / "manifest.json"
        path.write_bytes(
            orjson.dumps(
                manifest.to_json(doc) if "sections" in doc else doc,
                option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
            )
        )
        cl.log_artifact(mlflow_run_id, str(path))
