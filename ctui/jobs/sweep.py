"""Parameter sweeps: `--sweep lr=0.1,0.01 --sweep epochs=3,5` → one run per combination.

Every run of a sweep carries `sweep: {id, index, size}`. On Slurm the whole sweep becomes one
job array (submitted with its last run; see `ctui.jobs.backends.slurm`); other backends launch
them in bulk (`launch_many`: one store write; queued by `max_concurrent` like any run).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError
from ctui.ids import new_run_id

if TYPE_CHECKING:
    from ctui.project import Project


def parse_sweep(items: list[str]) -> dict[str, list[str]]:
    """`["lr=0.1,0.01", "epochs=3,5"]` → `{"lr": ["0.1", "0.01"], "epochs": ["3", "5"]}`."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not choices:
            raise CtuiError(f"bad sweep {item!r}", hint="write --sweep name=value1,value2,...")
        grid[name.strip()] = choices
    return grid


def combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def launch_sweep(
    project: Project,
    job_name: str,
    grid: dict[str, list[Any]],
    params: dict[str, Any] | None = None,
    **launch_kwargs: Any,
) -> list[dict[str, Any]]:
    """Launch one run per combination of `grid` (over the fixed `params`); their documents.

    Params are validated for every combination before anything is launched.
    """
    from ctui.config import load_config
    from ctui.jobs.launch import launch_many

    config = launch_kwargs.pop("config", None) or load_config(project.root)
    combos = [{**(params or {}), **c} for c in combinations(grid)]
    if not combos:
        raise CtuiError("the sweep is empty", hint="give at least one value per --sweep")
    sweep_id = new_run_id()
    extra = dict(launch_kwargs.pop("extra", None) or {})
    extras = [
        {**extra, "sweep": {"id": sweep_id, "index": i, "size": len(combos)}}
        for i in range(len(combos))
    ]
    runs = launch_many(project, job_name, combos, extras=extras, config=config, **launch_kwargs)
    if runs and runs[-1].get("backend") == "slurm":
        from ctui.store import open_store

        # the array id reached the earlier runs afterwards: one read of the store for all
        by_id = {r["id"]: r for r in open_store(project).runs()}
        runs = [by_id.get(r["id"], r) for r in runs]
    return runs
