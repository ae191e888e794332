"""The data section: every DVC-tracked path with its hash, size and nfiles, plus job data paths.

DVC files are parsed directly as YAML (no `import dvc`, which costs ~0.5 s), so this works
where the data itself is absent (only `dvc.lock` / `*.dvc` present, e.g. a fresh clone).
Extra data paths a job declares are hashed here with a size+mtime cache, so a second capture
of unchanged gigabytes reads only `stat`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml

from ctui.atomic import atomic_write_bytes
from ctui.manifest import Absent

try:  # the C loader is ~10x faster; fall back where libyaml is missing
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

#: folders never scanned for *.dvc files
PRUNE = {".ctui", ".git", ".dvc", ".venv", "venv", "node_modules", "__pycache__", ".tox"}
CACHE_FILE = "data-hashes.json"
_HASH_KEYS = ("md5", "etag", "checksum", "sha256")


def capture_data(
    root: Path, *, data_paths: Sequence[str] = (), cache_dir: Path | None = None
) -> dict[str, Any]:
    lock_files, dvc_files = find_dvc_files(root)
    if not lock_files and not dvc_files and not data_paths:
        raise Absent(f"no dvc.lock, no *.dvc files and no declared data paths under {root}")
    paths: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {}
    problems: list[str] = []
    hasher = CachedHasher(cache_dir)
    for rel in lock_files:
        try:
            _read_lock(hasher.load_yaml(root / rel), rel, paths, params)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            problems.append(f"{rel}: {_short(exc)}")
    for rel in dvc_files:
        try:
            _read_dvc_file(hasher.load_yaml(root / rel), rel, paths)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            problems.append(f"{rel}: {_short(exc)}")
    for rel in data_paths:
        key = _norm(rel)
        entry = hasher.hash_path(root / key)
        entry["sources"] = ["declared"]
        paths[key] = entry
    hasher.save()
    return {
        "paths": dict(sorted(paths.items())),
        "params": params,
        "sources": sorted(lock_files + dvc_files),
        "problems": problems,
    }


# -- finding DVC files -------------------------------------------------------------------------


def find_dvc_files(root: Path) -> tuple[list[str], list[str]]:
    """(dvc.lock files, *.dvc files) relative to root: git ls-files in a repo, else a walk."""
    names = _git_ls_dvc(root)
    if names is None:
        names = list(_walk_dvc(root))
    locks = sorted(n for n in names if n == "dvc.lock" or n.endswith("/dvc.lock"))
    dvcs = sorted(n for n in names if n.endswith(".dvc") and not _pruned(n))
    return locks, dvcs


def git_ls_dvc_names(root: Path) -> list[str] | None:
    """DVC files git knows of (tracked or untracked, not ignored); None outside git.

    ls-files also lists files deleted from the work tree: callers check existence as needed.
    """
    if not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
             "*.dvc", "dvc.lock", "*/dvc.lock"],
            cwd=root, capture_output=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    text = proc.stdout.decode("utf-8", "surrogateescape")
    return list(dict.fromkeys(n for n in text.split("\0") if n))


def _git_ls_dvc(root: Path) -> list[str] | None:
    names = git_ls_dvc_names(root)
    return None if names is None else [n for n in names if (root / n).is_file()]


def _walk_dvc(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in PRUNE]
        rel_dir = os.path.relpath(dirpath, root)
        for f in filenames:
            if f == "dvc.lock" or f.endswith(".dvc"):
                yield f if rel_dir == "." else f"{rel_dir}/{f}".replace(os.sep, "/")


def _pruned(rel: str) -> bool:
    return any(part in PRUNE for part in rel.split("/")[:-1])


# -- parsing -----------------------------------------------------------------------------------


def _read_lock(doc: Any, rel: str, paths: dict[str, dict[str, Any]], params: dict) -> None:
    if not isinstance(doc, dict):
        raise ValueError("expected a mapping")
    base = _parent(rel)
    stages = doc.get("stages", {}) if "stages" in doc else doc  # schema 1.0 had no "stages" key
    if not isinstance(stages, dict):
        raise ValueError("'stages' is not a mapping")
    for stage, body in stages.items():
        if not isinstance(body, dict):
            continue
        where = f"{rel}:{stage}"
        for role in ("deps", "outs"):
            for item in body.get(role) or []:
                if isinstance(item, dict) and "path" in item:
                    _add(paths, _join(base, item["path"]), _entry(item), f"{where}:{role[:-1]}")
        for pfile, values in (body.get("params") or {}).items():
            if isinstance(values, dict):
                params.setdefault(_join(base, pfile), {}).update(values)


def _read_dvc_file(doc: Any, rel: str, paths: dict[str, dict[str, Any]]) -> None:
    if not isinstance(doc, dict):
        raise ValueError("expected a mapping")
    base = _parent(rel)
    for item in doc.get("outs") or []:
        if isinstance(item, dict) and "path" in item:
            entry = _entry(item)
            # an import (`dvc import-url`) records where the data came from
            deps = [d for d in doc.get("deps") or [] if isinstance(d, dict) and "path" in d]
            if deps:
                entry["imported_from"] = [str(d["path"]) for d in deps]
            _add(paths, _join(base, item["path"]), entry, rel)


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    hash_value = next((item[k] for k in _HASH_KEYS if item.get(k)), None)
    entry: dict[str, Any] = {"hash": str(hash_value) if hash_value is not None else None}
    if "size" in item:
        entry["size"] = item["size"]
    if "nfiles" in item:
        entry["nfiles"] = item["nfiles"]
    return entry


def _add(paths: dict[str, dict[str, Any]], key: str, entry: dict[str, Any], source: str) -> None:
    """One entry per path; a path that is one stage's out and another's dep is listed once."""
    have = paths.get(key)
    if have is None:
        entry["sources"] = [source]
        paths[key] = entry
        return
    have["sources"] = sorted({*have["sources"], source})
    if have.get("hash") is None and entry.get("hash") is not None:
        have.update({k: v for k, v in entry.items() if k != "sources"})
    elif entry.get("hash") not in (None, have.get("hash")):
        # two DVC files disagree (a stale dvc.lock): keep both, a diff shows it
        have.setdefault("conflicts", {})[source] = entry["hash"]


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _join(base: str, path: Any) -> str:
    return _norm(f"{base}/{path}" if base else str(path))


def _norm(rel: str) -> str:
    return os.path.normpath(rel).replace(os.sep, "/").rstrip("/")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# -- hashing declared data paths with a size+mtime cache -------------------------------------


class CachedHasher:
    """md5 of files (like DVC), reused while (size, mtime_ns, inode) is unchanged; and parsed
    DVC files, reused the same way (YAML parsing is most of a capture's time).

    A folder's hash is the md5 of its sorted `relpath md5` lines; its size and nfiles are sums.
    The cache is one JSON file; a lost update between two writers only costs a re-hash.
    """

    def __init__(self, cache_dir: Path | None):
        self.file = Path(cache_dir) / CACHE_FILE if cache_dir else None
        self.cache: dict[str, list[Any]] = {}
        self.dirty = False
        if self.file is not None:
            with contextlib.suppress(OSError, orjson.JSONDecodeError, TypeError):
                loaded = orjson.loads(self.file.read_bytes())
                if isinstance(loaded, dict):
                    self.cache = loaded

    def load_yaml(self, path: Path) -> Any:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            key = f"yaml:{path}"
            stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
            cached = self.cache.get(key)
            if cached is not None and cached[:3] == stamp:
                return cached[3]
            doc = yaml.load(fh, Loader=_Loader)  # noqa: S506 - a safe loader
        if self.file is not None:
            try:
                orjson.dumps(doc)  # dates or other non-JSON YAML: simply not cached
            except TypeError:
                return doc
            self.cache[key] = [*stamp, doc]
            self.dirty = True
        return doc

    def hash_path(self, path: Path) -> dict[str, Any]:
        try:
            st = path.stat()
        except FileNotFoundError:
            return {"hash": None, "missing": True}
        except OSError as exc:
            return {"hash": None, "error": _short(exc)}
        if path.is_dir():
            return self._hash_dir(path)
        return {"hash": self._hash_file(path, st), "size": st.st_size}

    def _hash_dir(self, path: Path) -> dict[str, Any]:
        lines: list[str] = []
        size = 0
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in PRUNE)
            for f in sorted(filenames):
                full = Path(dirpath, f)
                try:
                    st = full.stat()
                except OSError:
                    continue
                rel = full.relative_to(path).as_posix()
                lines.append(f"{rel} {self._hash_file(full, st)}\n")
                size += st.st_size
        lines.sort()
        digest = hashlib.md5("".join(lines).encode(), usedforsecurity=False).hexdigest()
        return {"hash": f"{digest}.dir", "size": size, "nfiles": len(lines)}

    def _hash_file(self, path: Path, st: os.stat_result) -> str:
        key = str(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        cached = self.cache.get(key)
        if cached is not None and cached[:3] == stamp:
            return str(cached[3])
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, lambda: hashlib.md5(usedforsecurity=False))
        self.cache[key] = [*stamp, digest.hexdigest()]
        self.dirty = True
        return digest.hexdigest()

    def save(self) -> None:
        if self.file is None or not self.dirty:
            return
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.file, orjson.dumps(self.cache))
            self.dirty = False
