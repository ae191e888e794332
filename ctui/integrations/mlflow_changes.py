"""Has anything changed on an MLflow store since a time? Answered without importing mlflow.

`ctui import mlflow --since last` (a team's server mirrored every minute) usually finds
nothing new; importing mlflow alone costs ~2 s, so that answer comes from the tracking
server's REST API (`runs/search`, one result is enough) or straight from a sqlite file.
None means "cannot tell cheaply": the caller does the real import, which says what is wrong.
"""

from __future__ import annotations

from typing import Any

from ctui.integrations.mlflow_rest import call, experiment_by_name
from ctui.integrations.mlflow_uri import is_http, sqlite_path, sqlite_rows

TIMEOUT = 5.0
#: the run times a change shows in (MLflow's filter has no OR: one query each)
TIMES = ("start_time", "end_time")


def anything_since(uri: str, experiment: str | None, since_ms: int) -> bool | None:
    """Whether a run of `experiment` (every experiment when None) started or ended after
    `since_ms` (MLflow's milliseconds)."""
    try:
        if is_http(uri):
            return _rest(uri, experiment, since_ms)
        if sqlite_path(uri) is not None:
            return _sqlite(uri, experiment, since_ms)
    except Exception:  # the import itself will meet the problem and say it in words
        return None
    return None


def _rest(uri: str, experiment: str | None, since_ms: int) -> bool | None:
    ids = _experiment_ids(uri, experiment)
    if ids is None:
        return None
    if not ids:
        return False
    for column in TIMES:
        body = {
            "experiment_ids": ids,
            "filter": f"attributes.{column} > {int(since_ms)}",
            "max_results": 1,
        }
        if call(uri, "runs/search", body, timeout=TIMEOUT).get("runs"):
            return True
    return False


def _experiment_ids(uri: str, experiment: str | None) -> list[str] | None:
    if experiment:
        exp = experiment_by_name(uri, experiment, timeout=TIMEOUT).get("experiment")
        return [str(exp["experiment_id"])] if exp else None
    ids: list[str] = []
    token = None
    while True:
        body: dict[str, Any] = {"max_results": 1000, **({"page_token": token} if token else {})}
        page = call(uri, "experiments/search", body, timeout=TIMEOUT)
        ids.extend(str(e["experiment_id"]) for e in page.get("experiments", []))
        token = page.get("next_page_token")
        if not token:
            return ids


def _sqlite(uri: str, experiment: str | None, since_ms: int) -> bool | None:
    sql = (
        "SELECT 1 FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id"
        " WHERE (r.start_time > ? OR r.end_time > ?)"
    )
    args: list[Any] = [int(since_ms), int(since_ms)]
    if experiment:
        sql += " AND e.name = ?"
        args.append(experiment)
    rows = sqlite_rows(uri, sql + " LIMIT 1", args, timeout=5.0)
    return None if rows is None else bool(rows)
