"""MLflow bridge: create the MLflow run before launch, read metrics back, sync, import.

mlflow is imported only inside these functions (its import costs ~2 s).
The job launcher calls `before_launch` and the supervisor calls `after_run`; both are
no-ops unless the project enables MLflow (`[mlflow]` in ctui.toml).

Nothing is lost and nothing is duplicated when the tracking server is down:
- every failure leaves `run["mlflow"]["sync"] = "pending"`; `sync_pending` (from `ctui sync`
  and `ctui watch`) does the whole sync again later;
- a sync finds the MLflow run by its `ctui.run_id` tag before creating one, and pushes only
  the metric points of `metrics.jsonl` not already pushed (counts per metric in the run
  folder's `mlflow_synced.json`, checked against MLflow's own history), under a lock.

Credentials come only from MLflow's own environment variables (MLFLOW_TRACKING_USERNAME,
MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN); a URI is stored without its user:password.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes, file_lock
from ctui.store import FINAL, Store

SYNCED_FILE = "mlflow_synced.json"
LOCK_FILE = "mlflow_sync.lock"
RUN_TAG = "ctui.run_id"

#: ctui status → MLflow run status
_MLFLOW_STATUS = {
    "succeeded": "FINISHED",
    "failed": "FAILED",
    "lost": "FAILED",
    "timeout": "FAILED",
    "cancelled": "KILLED",
}

# MLflow retries an unreachable server for minutes by default; ctui would rather mark the
# sync pending and try again later. The user's own settings win.
_QUICK_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


# -- configuration ----------------------------------------------------------------------------


def _ml(config: Any) -> Any:
    """The MlflowConfig of a Config (or the MlflowConfig itself)."""
    return getattr(config, "mlflow", config)


def enabled(config: Any) -> bool:
    return bool(config is not None and getattr(_ml(config), "enabled", False))


def tracking_uri(project: Any, config: Any = None) -> str:
    """The configured tracking URI; default `sqlite:///<state_dir>/mlflow.db`.

    A relative sqlite/file path is taken relative to the project root, not the cwd.
    """
    uri = getattr(_ml(config), "tracking_uri", None) if config is not None else None
    if not uri:
        return f"sqlite:///{Path(project.state_dir).resolve() / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        rel = uri[len("sqlite:///") :]
        return f"sqlite:///{(Path(project.root) / rel).resolve()}"
    if "://" not in uri:
        return str((Path(project.root) / uri).resolve())
    return str(uri)


def experiment_name(project: Any, config: Any = None) -> str:
    name = getattr(_ml(config), "experiment", None) if config is not None else None
    return str(name or Path(project.root).resolve().name)


def safe_uri(uri: str) -> str:
    """The URI without `user:password@` (what ctui may write to its own files)."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return uri
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def reachable(uri: str, timeout: float = 3.0) -> bool:
    """A cheap check before the (slow to fail) MLflow client: GET /health on a server."""
    if not _is_http(uri):
        return True
    try:
        import urllib.request  # ~15 ms: only when a server is asked

        with urllib.request.urlopen(safe_uri(uri).rstrip("/") + "/health", timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    """Fail fast on a dead server; keep MLflow's chatter ("View run at …") off stdout, where
    `--json` output goes."""
    saved = {k: os.environ.get(k) for k in _QUICK_HTTP}
    for k, v in _QUICK_HTTP.items():
        os.environ.setdefault(k, v)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    # MLflow's own INFO lines ("Creating initial MLflow database tables…") are noise in
    # ctui's output; its warnings and errors still show.
    for name in ("mlflow", "alembic"):
        if logging.getLogger(name).level < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


def _artifact_location(project: Any, uri: str) -> str | None:
    # A local store keeps artifacts beside it (MLflow's default is ./mlruns in the cwd).
    if uri.startswith("sqlite:") or not uri.split("://")[0].startswith("http"):
        return (Path(project.state_dir).resolve() / "mlartifacts").as_uri()
    return None


def get_or_create_experiment(cl: Any, name: str, artifact_location: str | None) -> str:
    exp = cl.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            cl.restore_experiment(exp.experiment_id)
        return str(exp.experiment_id)
    try:
        return str(cl.create_experiment(name, artifact_location=artifact_location))
    except Exception:
        exp = cl.get_experiment_by_name(name)  # created meanwhile by another process
        if exp is None:
            raise
        return str(exp.experiment_id)


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


# -- launch and end of a run ---------------------------------------------------------------------


def _tags(run: dict[str, Any]) -> dict[str, str]:
    tags = {RUN_TAG: str(run["id"]), "ctui.job": str(run.get("job", ""))}
    if run.get("trigger"):
        tags["ctui.trigger"] = str(run["trigger"])
    if run.get("backend"):
        tags["ctui.backend"] = str(run["backend"])
    for section, oid in (run.get("manifest") or {}).items():
        tags[f"ctui.manifest.{section}"] = str(oid)
    if run.get("git"):
        tags["ctui.git"] = str(run["git"])
    return tags


def _params(run: dict[str, Any], run_dir: Path | None = None) -> dict[str, str]:
    """The run's params, plus those the job logged itself (`params.jsonl`) when given."""
    out = {str(k): str(v)[:6000] for k, v in (run.get("params") or {}).items()}
    if run_dir is not None:
        try:
            raw = (run_dir / "params.jsonl").read_bytes()
        except FileNotFoundError:
            raw = b""
        for line in raw.splitlines():
            try:
                rec = orjson.loads(line)
                out.setdefault(str(rec["name"]), str(rec["value"])[:6000])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
    return out


def _find_or_create_run(cl: Any, exp_id: str, run: dict[str, Any], known: str | None) -> str:
    """The MLflow run of this ctui run: the recorded one, one tagged with its id, or a new one."""
    if known:
        return known
    found = cl.search_runs(
        [exp_id], filter_string=f"tags.`{RUN_TAG}` = '{run['id']}'", max_results=1
    )
    if found:
        return str(found[0].info.run_id)
    start = run.get("started") or run.get("created") or time.time()
    created = cl.create_run(
        exp_id, start_time=int(float(start) * 1000), tags=_tags(run), run_name=str(run["id"])
    )
    return str(created.info.run_id)


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


def before_launch(project: Any, config: Any, run: dict[str, Any]) -> dict[str, str]:
    """Create the MLflow run; return env vars for the job (MLFLOW_TRACKING_URI, MLFLOW_RUN_ID,
    MLFLOW_EXPERIMENT_NAME) and set `run["mlflow"]`. Never raises: unreachable → sync pending."""
    if not enabled(config):
        return {}
    uri = tracking_uri(project, config)
    name = experiment_name(project, config)
    run["mlflow"] = {
        "run_id": None,
        "experiment_id": None,
        "experiment": name,
        "tracking_uri": safe_uri(uri),
        "sync": "pending",
    }
    env = {"MLFLOW_TRACKING_URI": safe_uri(uri), "MLFLOW_EXPERIMENT_NAME": name}
    if not reachable(uri):
        run["mlflow"]["error"] = f"MLflow at {safe_uri(uri)} is not reachable"
        return env
    try:
        from mlflow.entities import Param

        with _quick_http():
            cl = client(uri)
            exp_id = get_or_create_experiment(cl, name, _artifact_location(project, uri))
            run["mlflow"]["experiment_id"] = exp_id
            mlflow_run_id = _find_or_create_run(cl, exp_id, run, None)
            run["mlflow"]["run_id"] = mlflow_run_id
            params = [Param(k, v) for k, v in _params(run).items()]
            _log_batches(cl, mlflow_run_id, params=params)
    except Exception as exc:  # an unreachable or broken server must not stop the job
        run["mlflow"]["error"] = _short(exc)
        if run["mlflow"]["run_id"]:
            env["MLFLOW_RUN_ID"] = run["mlflow"]["run_id"]
        return env
    run["mlflow"]["sync"] = "ok"
    run["mlflow"].pop("error", None)
    env["MLFLOW_RUN_ID"] = mlflow_run_id
    return env


def after_run(project: Any, config: Any, run: dict[str, Any]) -> dict[str, float]:
    """Log the manifest/section hashes, close the MLflow run, return the job's final MLflow
    metrics to fold into the run summary. Never raises: failures leave `sync = pending`."""
    if not enabled(config) and not run.get("mlflow"):
        return {}
    uri = tracking_uri(project, config)
    try:
        metrics = sync_run(project, run, uri, experiment=experiment_name(project, config))
    except Exception as exc:
        _mark(project, run, {"sync": "pending", "error": _short(exc)})
        return {}
    return metrics


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _short(exc: BaseException) -> str:
    """One line for the run doc, without any `user:password@` an error message quoted."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return _USERINFO.sub("", f"{type(exc).__name__}: {first}")[:300]


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


def sync_run(
    project: Any, run: dict[str, Any], uri: str, *, experiment: str | None = None
) -> dict[str, float]:
    """Bring the MLflow run of a ctui run up to date, exactly once per metric point.

    Creates the MLflow run if it never was, logs params, tags (section hashes), the metric
    points not pushed yet, the manifest artifact, and — when the run has ended — terminates
    it with the matching status. Returns the MLflow run's latest metrics. Raises on failure
    (the caller marks the sync pending); marks `sync = ok` on success.
    """
    uri = _uri_for(run, uri)
    if not reachable(uri):  # before importing mlflow (~2 s): a dead server is found fast
        raise ConnectionError(f"MLflow at {safe_uri(uri)} is not reachable")
    from mlflow.entities import Metric, Param, RunTag

    ml = dict(run.get("mlflow") or {})
    run_dir = Path(project.run_dir(run["id"]))
    run_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(run_dir / LOCK_FILE), _quick_http():
        cl = client(uri)
        exp_id = ml.get("experiment_id")
        if not exp_id:
            name = ml.get("experiment") or experiment or Path(project.root).resolve().name
            exp_id = get_or_create_experiment(cl, name, _artifact_location(project, uri))
            ml["experiment"] = name
        mlflow_run_id = _find_or_create_run(cl, exp_id, run, ml.get("run_id"))
        ml.update(run_id=mlflow_run_id, experiment_id=exp_id, tracking_uri=safe_uri(uri))
        # record the MLflow run id at once: a failure below must not create a second run
        _mark(project, run, {**ml, "sync": "pending"})

        current = cl.get_run(mlflow_run_id)
        have_params = current.data.params
        params = [Param(k, v) for k, v in _params(run, run_dir).items() if k not in have_params]
        tags = [RunTag(k, v) for k, v in _tags(run).items() if current.data.tags.get(k) != v]
        _log_batches(cl, mlflow_run_id, params=params, tags=tags)

        synced = read_synced(project, run["id"])
        if synced.get("mlflow_run_id") not in (None, mlflow_run_id):
            synced = {"metrics": {}}  # pushed to another MLflow run: start over
        synced["mlflow_run_id"] = mlflow_run_id
        counts: dict[str, int] = synced.setdefault("metrics", {})
        new: list[Any] = []
        for name, points in read_metric_points(run_dir).items():
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

        status = run.get("status")
        if status not in FINAL and run.get("exit_code") is not None:
            status = "succeeded" if run["exit_code"] == 0 else "failed"
        if status in FINAL:
            _log_manifest(project, cl, mlflow_run_id, run)
            end = run.get("ended") or time.time()
            cl.set_terminated(
                mlflow_run_id,
                status=_MLFLOW_STATUS.get(status, "FAILED"),
                end_time=int(float(end) * 1000),
            )
            synced["terminated"] = True
            _write_synced(project, run["id"], synced)
        final = {k: float(v) for k, v in cl.get_run(mlflow_run_id).data.metrics.items()}
    _mark(project, run, {**ml, "sync": "ok"})
    return final


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


# -- retry ---------------------------------------------------------------------------------------


def pending_runs(project: Any) -> list[dict[str, Any]]:
    """Ended runs whose MLflow sync is pending (cheap: no mlflow import)."""
    return [
        r
        for r in Store(project.store_file).runs()
        if (r.get("mlflow") or {}).get("sync") == "pending" and r.get("status") in FINAL
    ]


def sync_pending(project: Any, config: Any = None) -> dict[str, Any]:
    """Retry every pending MLflow sync of an ended run.

    Returns {"synced": [run ids], "pending": [run ids still pending], "errors": {id: why}}.
    Imports mlflow only when something is pending.
    """
    todo = pending_runs(project)
    result: dict[str, Any] = {"synced": [], "pending": [], "errors": {}}
    if not todo:
        return result
    if config is None:
        from ctui.config import load_config

        config = load_config(Path(project.root))
    uri = tracking_uri(project, config)
    down: set[str] = set()
    for run in todo:
        target = _uri_for(run, uri)
        if target not in down and not reachable(target):
            down.add(target)
        if target in down:  # one unreachable server is tried once per call, not per run
            result["pending"].append(run["id"])
            result["errors"][run["id"]] = f"MLflow at {safe_uri(target)} is not reachable"
            continue
        try:
            sync_run(project, run, uri, experiment=experiment_name(project, config))
        except Exception as exc:
            _mark(project, run, {"sync": "pending", "error": _short(exc)})
            result["pending"].append(run["id"])
            result["errors"][run["id"]] = _short(exc)
        else:
            result["synced"].append(run["id"])
    return result
