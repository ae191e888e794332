"""Plots a DVC pipeline declares, read after the run into `.ctui/runs/<id>/plots.json`.

Declared in `dvc.yaml` the ways DVC accepts them:

- top-level `plots:` as a list (DVC 3) or a mapping of plot ids: `eval/roc.json` alone,
  `{eval/roc.json: {x: fpr, y: tpr}}`, or a plot id whose `y` (and `x`) map files to fields
  (`{roc: {x: fpr, y: {eval/roc.json: tpr}}}`);
- a stage's `plots:` outs, with `x`/`y` among their props.

Plot files: JSON or YAML (a list of records, or `{"key": [records]}`: the list is taken),
CSV or TSV with a header. A folder stands for the data files in it; images are not charted.
Without `x` the record index is the x (DVC's `step`); without `y` the last numeric field.
Like metrics, a file counts only when this run wrote it or the final `dvc.lock` vouches for
it (`dvc_metrics.vouched_by_lock`): a run that died never shows the previous run's curve.

`plots.json` holds `[{"name", "file", "x", "y", "points": [[x, y], …]}]`, each curve thinned
to `MAX_POINTS`. Bad input (a broken dvc.yaml, a plot file that is not data) is reported in
words, never raised: `record_end` is what the supervisor calls when a run ends.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes
from ctui.config import runs_dvc
from ctui.integrations.dvc_metrics import (
    in_wdir,
    load_dvc_yaml,
    stages_of,
    vouched_by_lock,
    written_since,
)
from ctui.numbers import as_number

PLOTS_FILE = "plots.json"
#: points kept per curve (first and last always among them)
MAX_POINTS = 2000
DATA_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".tsv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


@dataclass(frozen=True)
class PlotDef:
    """One declared plot of one file: which fields make x and y (None: DVC's defaults)."""

    name: str
    file: str
    x: str | None = None
    y: tuple[str, ...] = ()
    title: str | None = None


def declared_plots(root: Path) -> list[PlotDef]:
    """The plots `root/dvc.yaml` declares, in order, each (file, x, y) once. Raises
    ValueError (the reason in words) when dvc.yaml is broken."""
    doc = load_dvc_yaml(root)
    if doc is None:
        return []
    defs: list[PlotDef] = []
    top = doc.get("plots") or []
    if isinstance(top, dict):
        top = [{k: v} for k, v in top.items()]
    for entry in top if isinstance(top, list) else []:
        if isinstance(entry, str):
            defs.append(_from_props(entry, None, None))
        elif isinstance(entry, dict):
            for key, props in entry.items():
                defs.extend(_top_level(str(key), props))
    for stage in stages_of(doc).values():
        outs = stage.get("plots") or []
        for entry in outs if isinstance(outs, list) else []:
            if isinstance(entry, str):
                defs.append(_from_props(in_wdir(stage, entry), None, None))
            elif isinstance(entry, dict):
                for key, props in entry.items():
                    defs.append(_from_props(in_wdir(stage, str(key)), props, None))
    seen: set[tuple[str, str | None, tuple[str, ...]]] = set()
    unique = []
    for d in defs:
        if (d.file, d.x, d.y) not in seen:
            seen.add((d.file, d.x, d.y))
            unique.append(d)
    return unique


def _fields(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def _from_props(file: str, props: Any, name: str | None) -> PlotDef:
    props = props if isinstance(props, dict) else {}
    x = props.get("x")
    return PlotDef(
        name=name or posixpath.splitext(posixpath.basename(file))[0] or file,
        file=posixpath.normpath(file),
        x=str(x) if isinstance(x, str | int) else None,
        y=_fields(props.get("y")),
        title=str(props["title"]) if props.get("title") else None,
    )


def _top_level(key: str, props: Any) -> list[PlotDef]:
    """`{id: {y: {file: field}}}` names a plot over files; otherwise the key is the file."""
    props = props if isinstance(props, dict) else {}
    y = props.get("y")
    if not isinstance(y, dict):
        return [_from_props(key, props, None)]
    x = props.get("x")
    defs = []
    for file, fields in y.items():
        xs = x.get(file) if isinstance(x, dict) else x  # an x from another file: the index
        defs.append(
            PlotDef(
                name=key,
                file=posixpath.normpath(str(file)),
                x=str(xs) if isinstance(xs, str | int) else None,
                y=_fields(fields),
                title=str(props["title"]) if props.get("title") else None,
            )
        )
    return defs


# -- reading plot files ----------------------------------------------------------------------


def records_of(path: Path) -> list[dict[str, Any]]:
    """A plot file's records. Raises ValueError with the reason in words."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError("not text (JSON, YAML, CSV or TSV)") from None
    if suffix in (".csv", ".tsv"):
        kind = suffix[1:].upper()
        try:
            reader = csv.DictReader(io.StringIO(text), delimiter="\t" if kind == "TSV" else ",")
            rows = [dict(r) for r in reader]
        except csv.Error as exc:
            raise ValueError(f"not valid {kind}: {exc}") from None
        if not rows:
            raise ValueError(f"no rows under a header in this {kind} file")
        return rows
    data: Any
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            lines = str(exc).strip().splitlines()
            raise ValueError(f"not valid YAML: {lines[0] if lines else exc}") from None
    else:
        raise ValueError("not a JSON, YAML, CSV or TSV file")
    if isinstance(data, dict):  # `{"roc": [records]}`: DVC takes the list
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data) or not data:
        raise ValueError("no list of records in it (expected [{...}, …] or {key: [{...}, …]})")
    return data


def thin(points: list[list[float]], limit: int = MAX_POINTS) -> list[list[float]]:
    """At most `limit` points, evenly spread, the first and the last kept."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def curves_of(plot: PlotDef, file: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The curves of one declared plot over one file's records (one per y field)."""
    keys = list(records[0])
    x = plot.x if plot.x is not None and any(plot.x in r for r in records) else None
    ys = list(plot.y)
    if not ys:  # DVC's default: the last field
        numeric = [k for k in keys if k != x and as_number(records[0].get(k)) is not None]
        ys = numeric[-1:]
    out = []
    for y in ys:
        points: list[list[float]] = []
        for i, rec in enumerate(records):
            yv = as_number(rec.get(y))
            xv = as_number(rec.get(x)) if x is not None else float(i)
            if yv is not None and xv is not None:
                points.append([xv, yv])
        if not points:
            continue
        name = plot.name if file == plot.file else posixpath.splitext(posixpath.basename(file))[0]
        curve: dict[str, Any] = {
            "name": name,
            "file": file,
            "x": x or "step",
            "y": y,
            "points": thin(points),
        }
        if plot.title:
            curve["title"] = plot.title
        out.append(curve)
    return out


def _data_files(root: Path, rel: str) -> list[str]:
    path = root / rel
    if not path.is_dir():
        return [rel]
    found = []
    for child in sorted(path.rglob("*")):
        if child.is_file() and child.suffix.lower() in DATA_SUFFIXES:
            found.append(child.relative_to(root).as_posix())
    return found


def read_plots(
    root: Path, *, since: float | None = None, cache_dir: Path | None = None, vouch: bool = True
) -> tuple[list[dict[str, Any]], list[str]]:
    """(curves, problems): every declared plot this run's files hold, and what could not be
    read, in words."""
    root = Path(root)
    problems: list[str] = []
    try:
        plots = declared_plots(root)
    except ValueError as exc:
        return [], [str(exc)]
    jobs = [(p, f) for p in plots for f in _data_files(root, p.file)]
    files = list(dict.fromkeys(f for _p, f in jobs if (root / f).is_file()))
    if since is not None:
        fresh = {f for f in files if written_since(root / f, since)}
        older = [f for f in files if f not in fresh]
        ok = vouched_by_lock(root, older, cache_dir=cache_dir) if vouch else set()
        files = [f for f in files if f in fresh or f in ok]
    cache: dict[str, list[dict[str, Any]] | None] = {}
    curves: list[dict[str, Any]] = []
    for plot, file in jobs:
        if file not in files or file.lower().endswith(IMAGE_SUFFIXES):
            continue
        if file not in cache:
            try:
                cache[file] = records_of(root / file)
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                problems.append(f"plot {file}: {reason}")
                cache[file] = None
        records = cache[file]
        if records:
            curves.extend(curves_of(plot, file, records))
    return curves, problems


def record_plots(
    cwd: Path,
    run_dir: Path,
    *,
    since: float | None = None,
    cache_dir: Path | None = None,
    vouch: bool = True,
) -> list[str]:
    """Read the declared plots and write them to `run_dir/plots.json`; the problems, in words."""
    curves, problems = read_plots(Path(cwd), since=since, cache_dir=cache_dir, vouch=vouch)
    if curves:
        atomic_write_bytes(Path(run_dir) / PLOTS_FILE, orjson.dumps(curves))
    return problems


def load_plots(run_dir: Path) -> list[dict[str, Any]]:
    """The curves recorded for a run (`plots.json`); empty when none or unreadable."""
    try:
        data = orjson.loads((Path(run_dir) / PLOTS_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    if not isinstance(data, list):
        return []
    return [c for c in data if isinstance(c, dict) and isinstance(c.get("points"), list)]


def record_end(
    cwd: Path,
    run_dir: Path,
    argv: Iterable[str] = (),
    *,
    since: float | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """What a DVC run leaves besides its metrics, when it ends: its plots (into the run
    folder) and, for `dvc exp run`, the experiment it made. Returns run fields: `dvc_exp`,
    and `dvc_error` with what could not be read. Never raises: the run ends either way."""
    from ctui.integrations.dvc_exp import experiment

    fields: dict[str, Any] = {}
    problems: list[str] = []
    try:
        vouch = runs_dvc(shlex.join(list(argv)), Path(cwd))  # the lock speaks for DVC jobs only
        problems += record_plots(cwd, run_dir, since=since, cache_dir=cache_dir, vouch=vouch)
    except Exception as exc:
        problems.append(f"plots not recorded: {type(exc).__name__}: {exc}")
    try:
        exp = experiment(Path(cwd), Path(run_dir) / "output.log", list(argv), since=since)
        if exp:
            fields["dvc_exp"] = exp
    except Exception as exc:
        problems.append(f"experiment not recorded: {type(exc).__name__}: {exc}")
    if problems:
        fields["dvc_error"] = "; ".join(problems)
        print(f"ctui: {fields['dvc_error']}", file=sys.stderr)
    return fields
