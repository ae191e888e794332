"""Final metrics from DVC metrics files (and a job's own `metrics` files).

Files come from `dvc.yaml` (`metrics:` at top level, and each stage's `metrics:` outs) and from
the job's `metrics` list. JSON or YAML; nested keys are flattened with dots
(`{"eval": {"acc": 0.9}}` → `{"eval.acc": 0.9}`); only numbers (and booleans as 0/1) are kept.
Read directly (no dvc import, which costs ~0.5 s).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """Nested dicts → dotted keys; lists → `key.0`, `key.1`; non-numbers dropped."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        items: Iterable[tuple[Any, Any]] = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        if isinstance(data, bool):
            out[prefix] = int(data)
        elif isinstance(data, int | float):
            out[prefix] = data
        return out
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, name))
    return out


def _metrics_entry(entry: Any) -> list[str]:
    # `metrics: [a.json, {b.json: {cache: false}}]`
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, dict):
        return [str(k) for k in entry]
    return []


def declared_files(root: Path) -> list[str]:
    """Metrics files declared in `root/dvc.yaml` (top-level and per-stage), in order."""
    path = Path(root) / "dvc.yaml"
    if not path.is_file():
        return []
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, OSError):
        return []
    if not isinstance(doc, dict):
        return []
    files: list[str] = []
    for entry in doc.get("metrics") or []:
        files.extend(_metrics_entry(entry))
    for stage in (doc.get("stages") or {}).values():
        if isinstance(stage, dict):
            for entry in stage.get("metrics") or []:
                files.extend(_metrics_entry(entry))
    return list(dict.fromkeys(files))


def read_file(path: Path) -> dict[str, float]:
    """One metrics file, flattened. Unreadable or unparsable → empty (the run still ends)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    data: Any
    if Path(path).suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            return {}
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return {}
    return flatten(data)


def read_metrics(
    root: Path, extra: Iterable[str] = (), *, since: float | None = None
) -> dict[str, float]:
    """All final metrics from `dvc.yaml`'s metrics files and `extra` (the job's `metrics`).

    Later files win on equal keys; the job's own files come last. With `since`, files not
    written since then are left out: a run that died before writing its metrics must not
    inherit the previous run's file.
    """
    root = Path(root)
    out: dict[str, float] = {}
    for name in [*declared_files(root), *extra]:
        path = root / name
        if since is not None:
            try:
                if path.stat().st_mtime < since:
                    continue
            except OSError:
                continue
        out.update(read_file(path))
    return out
