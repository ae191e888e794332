"""The current data section of a job, with a stat-keyed cache on top of `ctui.manifest`.

`ctui.manifest.capture` parses every `dvc.yaml` / `dvc.lock` / `*.dvc` (YAML) on each call;
with thousands of DVC files that is most of a trigger evaluation. Here the captured section is
reused while nothing it was built from changed: the same DVC files with the same
(size, mtime_ns, inode), and the same stats of the declared paths, the workspace data and the
params files the section was hashed from. Anything else →
the real `capture` runs, so the hash is always exactly the one a run records.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes
from ctui.objects import json_hash

CACHE_FILE = "trigger-data-sections.json"
#: in-process cache: (root, cache file) → {key: [stamp hash, section]}
_MEMORY: dict[tuple[str, str], dict[str, Any]] = {}


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _declared_stamps(root: Path, rel: str) -> list[Any]:
    path = root / rel
    if not path.is_dir():
        return [rel, _stamp(path)]
    out: list[Any] = [rel]
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for f in sorted(filenames):
            out.append([os.path.join(dirpath, f), _stamp(Path(dirpath, f))])
    return out


def _dvc_file_names(root: Path) -> list[str]:
    """The DVC files `capture` would read, possibly with a few deleted ones (stamped None).

    The same `git ls-files` query as `ctui.manifest.data`, without its per-file `is_file`
    (the stamp below stats every file anyway); outside git, its folder walk.
    """
    from ctui.manifest.data import find_dvc_files, git_ls_dvc_names

    names = git_ls_dvc_names(root)
    if names is not None:
        return sorted(names)
    yamls, locks, dvcs = find_dvc_files(root)
    return [*yamls, *locks, *dvcs]


def source_stamp(root: Path, data_paths: Sequence[str]) -> str:
    """One hash over the stats of everything the data section is built from."""
    base = str(root)
    parts: list[Any] = []
    for rel in _dvc_file_names(root):
        try:
            st = os.stat(os.path.join(base, rel))
            parts.append((rel, st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            parts.append((rel, None))
    parts.append([_declared_stamps(root, rel) for rel in data_paths])
    return json_hash(parts)


def current_data_section(
    root: Path, data_paths: Sequence[str], cache_dir: Path | None
) -> dict[str, Any]:
    """The data section `capture` would give now (with its `hash`), cached by source stats."""
    from ctui import manifest

    key = json_hash([str(root), list(data_paths)])
    stamp = source_stamp(root, data_paths)
    cache = _load(root, cache_dir)
    hit = cache.get(key)
    if hit and len(hit) == 3 and hit[0] == stamp and hit[2] == workspace_stamp(root, hit[1]):
        section: dict[str, Any] = hit[1]
        return section
    section = manifest.capture(
        root, sections=("data",), data_paths=data_paths, cache_dir=cache_dir
    )["sections"]["data"]
    # a path written during the capture would change the stamp: only cache a quiet capture
    if source_stamp(root, data_paths) == stamp:
        cache[key] = [stamp, section, workspace_stamp(root, section)]
        _save(root, cache_dir, cache)
    return section


def workspace_stamp(root: Path, section: dict[str, Any]) -> str:
    """The stats of the workspace data and params files a section was hashed from: new data
    copied over an input changes it, whatever the DVC files still say."""
    parts: list[Any] = []
    for rel in [*(section.get("paths") or {}), *(section.get("params") or {})]:
        parts.append(_declared_stamps(root, rel))
    return json_hash(parts)


def _ident(root: Path, cache_dir: Path | None) -> tuple[str, str]:
    return (str(root), str(cache_dir / CACHE_FILE) if cache_dir else "")


def _load(root: Path, cache_dir: Path | None) -> dict[str, Any]:
    ident = _ident(root, cache_dir)
    if ident in _MEMORY:
        return _MEMORY[ident]
    cache: dict[str, Any] = {}
    if cache_dir is not None:
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            loaded = orjson.loads((cache_dir / CACHE_FILE).read_bytes())
            if isinstance(loaded, dict):
                cache = loaded
    _MEMORY[ident] = cache
    return cache


def _save(root: Path, cache_dir: Path | None, cache: dict[str, Any]) -> None:
    if cache_dir is None:
        return
    with contextlib.suppress(OSError):
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache_dir / CACHE_FILE, orjson.dumps(cache))
