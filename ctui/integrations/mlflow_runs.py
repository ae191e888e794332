"""The one MLflow run of a ctui run: the tags that link them, and finding or creating it.

How a job's own MLflow calls land in the right run, unchanged (MLflow 3.x source):

- ctui does not hand the job a pre-made run (`MLFLOW_RUN_ID`): `mlflow.start_run()` resumes
  `MLFLOW_RUN_ID` and raises "Cannot start run with ID … because active experiment ID does
  not match environment run ID" when the job called `mlflow.set_experiment` with another
  experiment first (`mlflow/tracking/fluent.py`, start_run), which MLflow's quickstart does.
- Instead the job gets `MLFLOW_EXPERIMENT_NAME`/`_ID` (used by start_run when the job sets
  none, `fluent._get_experiment_id_from_env`) and `MLFLOW_RUN_CONTEXT`, a JSON object of
  tags that MLflow adds to every run the job starts (`tracking/context/
  system_environment_context.py`, applied by `context_registry.resolve_tags` in start_run,
  autolog's runs and nested runs included). So every run the job makes carries
  `ctui.run_id`; MLflow's own providers add `mlflow.user`, `mlflow.source.*` and the git tags.
- After the job (or during it, from `ctui sync`), ctui adopts the job's top-level run — the
  one without `mlflow.parentRunId`, the earliest if the job made several — and records its id
  and experiment. A job that made none gets one made by ctui, with the same system tags.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RUN_TAG = "ctui.run_id"
REPRODUCES_TAG = "ctui.reproduces"
REPRODUCES_MLFLOW_TAG = "ctui.reproduces.mlflow_run_id"
PARENT_TAG = "mlflow.parentRunId"
#: MLflow's own environment variable for extra run tags (developer-stable in MLflow)
RUN_CONTEXT_ENV = "MLFLOW_RUN_CONTEXT"


# -- tags ---------------------------------------------------------------------------------------


def _original_mlflow_run(project: Any, original: str) -> str | None:
    from ctui.store import Store

    try:
        doc = Store(project.store_file).get_run(original)
    except Exception:
        return None
    return (doc.get("mlflow") or {}).get("run_id")


def link_tags(project: Any, run: dict[str, Any]) -> dict[str, str]:
    """The tags known before the job starts: the ctui run, its job, what it reproduces."""
    tags = {RUN_TAG: str(run["id"]), "ctui.job": str(run.get("job", ""))}
    if run.get("reproduces"):
        tags[REPRODUCES_TAG] = str(run["reproduces"])
        original = _original_mlflow_run(project, str(run["reproduces"]))
        if original:
            tags[REPRODUCES_MLFLOW_TAG] = original
    return tags


def ctui_tags(project: Any, run: dict[str, Any]) -> dict[str, str]:
    """Every `ctui.*` tag of the MLflow run (ctui's; always set to ctui's values)."""
    tags = link_tags(project, run)
    if run.get("trigger"):
        tags["ctui.trigger"] = str(run["trigger"])
    if run.get("backend"):
        tags["ctui.backend"] = str(run["backend"])
    for section, oid in (run.get("manifest") or {}).items():
        tags[f"ctui.manifest.{section}"] = str(oid)
    if run.get("git"):
        tags["ctui.git"] = str(run["git"])
    return tags


def run_context(project: Any, run: dict[str, Any], environ: Mapping[str, str]) -> str:
    """`MLFLOW_RUN_CONTEXT` for the job: the user's own (if any) plus ctui's link tags."""
    tags: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        theirs = json.loads(environ.get(RUN_CONTEXT_ENV) or "{}")
        if isinstance(theirs, dict):
            tags.update(theirs)
    tags.update(link_tags(project, run))
    return json.dumps(tags, sort_keys=True)


def _source_name(run: dict[str, Any]) -> str | None:
    """What MLflow would record as `mlflow.source.name`: the script a Python job runs."""
    argv = [str(a) for a in (run.get("command") or [])]
    for arg in argv:
        if arg.endswith(".py"):
            return arg
    return argv[0] if argv else None


def system_tags(run: dict[str, Any], code: Mapping[str, Any] | None) -> dict[str, str]:
    """MLflow's standard tags, as its DefaultRunContext and GitRunContext set them, from what
    ctui recorded (set only where the MLflow run lacks them)."""
    from ctui.manifest.redact import redact_text, strip_url_credentials

    tags = {"mlflow.source.type": "LOCAL"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    with contextlib.suppress(Exception):
        user = user or getpass.getuser()
    if user:
        tags["mlflow.user"] = user
    source = _source_name(run)
    if source:
        tags["mlflow.source.name"] = redact_text(source)
    if code and code.get("commit"):
        tags["mlflow.source.git.commit"] = str(code["commit"])
        if code.get("branch"):
            tags["mlflow.source.git.branch"] = str(code["branch"])
        if code.get("remote"):
            tags["mlflow.source.git.repoURL"] = strip_url_credentials(str(code["remote"]))
    return tags


def code_section(project: Any, run: dict[str, Any]) -> dict[str, Any] | None:
    oid = (run.get("manifest") or {}).get("code")
    if not oid:
        return None
    from ctui.objects import ObjectStore

    try:
        section = ObjectStore(Path(project.objects_dir)).get_json(oid)
    except Exception:
        return None
    return section if isinstance(section, dict) else None


# -- finding the run ------------------------------------------------------------------------------


def all_experiments(cl: Any) -> list[Any]:
    """Every experiment of the tracking server, page by page."""
    out: list[Any] = []
    token = None
    while True:
        page = cl.search_experiments(max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def tagged_runs(cl: Any, ctui_id: str, first: list[str]) -> list[Any]:
    """The MLflow runs tagged with this ctui run: looked for in `first` (ctui's experiment),
    then, when none is there, in every experiment (a job may `set_experiment` its own)."""
    flt = f"tags.`{RUN_TAG}` = '{ctui_id}'"
    found = cl.search_runs(first, filter_string=flt, max_results=1000) if first else []
    if found:
        return list(found)
    rest = [i for i in (str(e.experiment_id) for e in all_experiments(cl)) if i not in first]
    out: list[Any] = []
    for i in range(0, len(rest), 100):
        out.extend(cl.search_runs(rest[i : i + 100], filter_string=flt, max_results=1000))
    return out


def top_level(runs: list[Any]) -> list[Any]:
    """The runs whose parent is not one of `runs`, earliest first."""
    ids = {r.info.run_id for r in runs}
    tops = [r for r in runs if r.data.tags.get(PARENT_TAG) not in ids]
    return sorted(tops, key=lambda r: (r.info.start_time or 0, r.info.run_id))
