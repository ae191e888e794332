"""The data section: a DVC pipeline's raw inputs and outputs with hash, size and nfiles, the
params its stages use, and the job's declared data paths.

DVC files (`dvc.yaml`, `dvc.lock`, `*.dvc`) are parsed directly as YAML (no `import dvc`,
which costs ~0.5 s), so this works where the data itself is absent (a fresh clone: the
recorded hashes are used). Where the data is present it is hashed the way DVC hashes it, with
a size+mtime cache, so a second capture of unchanged gigabytes reads only `stat`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
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
    """The data section: every path a DVC pipeline reads or writes, as DVC would judge it now.

    - `role: "input"` — raw data: a `dvc add`ed path (`*.dvc`), or a stage dep that no stage
      produces and git does not track (git-tracked deps are code: listed in `code_deps`).
      Hashed from the workspace when present (md5, DVC's own format, with a size+mtime cache),
      so new data counts even before `dvc.lock` knows it; a lock that disagrees is reported in
      `stale` ("lock is stale"), never hidden.
    - `role: "output"` — any stage's out, hashed from the workspace when present (else as
      `dvc.lock` records it). Captured again when the run ends (`ctui.jobs.capture`).
    - `role: "declared"` — the job's own `data` paths.
    - `params` — the values of every param the stages use, read from the params files.
    """
    yaml_files, lock_files, dvc_files = find_dvc_files(root)
    if not yaml_files and not lock_files and not dvc_files and not data_paths:
        raise Absent(
            f"no dvc.yaml, no dvc.lock, no *.dvc files and no declared data paths under {root}"
        )
    problems: list[str] = []
    hasher = CachedHasher(cache_dir)
    pipe = _Pipeline()
    for rel in yaml_files:
        try:
            _read_dvc_yaml(hasher.load_yaml(root / rel), rel, pipe)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            problems.append(f"{rel}: {_short(exc)}")
    for rel in lock_files:
        try:
            _read_lock(hasher.load_yaml(root / rel), rel, pipe)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            problems.append(f"{rel}: {_short(exc)}")
    for rel in dvc_files:
        try:
            _read_dvc_file(hasher.load_yaml(root / rel), rel, pipe)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            problems.append(f"{rel}: {_short(exc)}")

    paths: dict[str, dict[str, Any]] = {}
    stale: list[str] = []
    tracked = _git_tracked(root, sorted(set(pipe.deps) - set(pipe.outs) - set(pipe.added)))
    code_deps = sorted(p for p in tracked if p not in pipe.added)
    for path in sorted(set(pipe.outs)):
        paths[path] = _judge(root, path, "output", pipe.outs[path], hasher, stale)
    for path in sorted(set(pipe.added) - set(pipe.outs)):
        records = pipe.added[path] + pipe.deps.get(path, [])
        paths[path] = _judge(root, path, "input", records, hasher, stale)
    for path in sorted(set(pipe.deps) - set(pipe.outs) - set(pipe.added) - set(tracked)):
        paths[path] = _judge(root, path, "input", pipe.deps[path], hasher, stale)
    for rel in data_paths:
        key = _norm(rel)
        entry = hasher.hash_path(root / key)
        entry["role"] = "declared"
        entry["sources"] = ["declared"]
        paths[key] = entry
    params = _read_params(root, pipe, hasher, problems, stale)
    hasher.save()
    return {
        "paths": dict(sorted(paths.items())),
        "params": params,
        "code_deps": code_deps,
        "stale": stale,
        "sources": sorted(yaml_files + lock_files + dvc_files),
        "problems": problems,
    }


def inputs(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The data a run reads (raw inputs and declared paths), not what the pipeline writes."""
    return {p: e for p, e in (section.get("paths") or {}).items() if role_of(e) != "output"}


def role_of(entry: Any) -> str:
    """An entry's role; sections recorded before roles existed are judged by their sources."""
    if not isinstance(entry, dict):
        return "input"
    if entry.get("role"):
        return str(entry["role"])
    sources = entry.get("sources") or []
    if sources == ["declared"]:
        return "declared"
    return "output" if sources and all(str(s).endswith(":out") for s in sources) else "input"


class _Pipeline:
    """What the DVC files say: path → [(source, recorded entry)] per kind."""

    def __init__(self) -> None:
        self.outs: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self.deps: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self.added: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        #: params file → keys (None = the whole file); from dvc.yaml, else dvc.lock
        self.param_keys: dict[str, set[str] | None] = {}
        #: params file → {key: value} as dvc.lock recorded them
        self.lock_params: dict[str, dict[str, Any]] = {}

    @staticmethod
    def add(table: dict[str, list[tuple[str, dict[str, Any]]]], path: str, source: str,
            item: dict[str, Any]) -> None:  # fmt: skip
        table.setdefault(path, []).append((source, item))

    def want_params(self, pfile: str, keys: set[str] | None) -> None:
        have = self.param_keys.get(pfile, set())
        if keys is None or have is None:
            self.param_keys[pfile] = None
        else:
            self.param_keys[pfile] = have | keys


def _judge(
    root: Path,
    path: str,
    role: str,
    recorded: list[tuple[str, dict[str, Any]]],
    hasher: CachedHasher,
    stale: list[str],
) -> dict[str, Any]:
    """One path's entry: the workspace state when the data is here, what DVC files say else;
    a DVC file that disagrees with the workspace (or with another DVC file) is reported."""
    entries = [(src, _entry(item)) for src, item in recorded]
    with_hash = [(src, e) for src, e in entries if e.get("hash")]
    # the truth for a `dvc add`ed path is its .dvc file; for others, the lock's last word
    dvc_file = next(((s, e) for s, e in with_hash if s.endswith(".dvc")), None)
    best = dvc_file or (with_hash[0] if with_hash else (entries[0] if entries else ("", {})))
    entry: dict[str, Any] = dict(best[1])
    legacy = any(item.get("hash") != "md5" and "md5" in item for _s, item in recorded)
    here = hasher.hash_path(root / path) if (root / path).exists() and not legacy else None
    if here is not None and here.get("hash"):
        if entry.get("hash") and here["hash"] != entry["hash"]:
            said = "its .dvc file" if dvc_file else best[0].split(":", 1)[0]
            stale.append(f"{path}: the workspace has {here['hash'][:8]}, {said} records "
                         f"{str(entry['hash'])[:8]}")  # fmt: skip
            entry["recorded"] = entry["hash"]
        entry.update({k: v for k, v in here.items() if k in ("hash", "size", "nfiles")})
    # dvc.lock deps that still name an older version of this input: the lock is stale
    for src, item in [(s, e) for s, e in with_hash if s.endswith(":dep")]:
        if item["hash"] != entry.get("hash"):
            stale.append(f"{path}: lock is stale ({src} has {str(item['hash'])[:8]}, "
                         f"the input is {str(entry.get('hash'))[:8]})")  # fmt: skip
            entry.setdefault("lock", item["hash"])
    entry["role"] = role
    entry["sources"] = sorted({src for src, _e in recorded})
    return entry


def _git_tracked(root: Path, paths: list[str]) -> set[str]:
    """Which of `paths` git tracks (files, or folders holding tracked files): code, not data."""
    if not paths or not any((d / ".git").exists() for d in (root, *root.parents)):
        return set()
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--", *paths], cwd=root, capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if proc.returncode != 0:
        return set()
    listed = [n for n in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    return {p for p in paths if any(n == p or n.startswith(p.rstrip("/") + "/") for n in listed)}


# -- params --------------------------------------------------------------------------------------


def _read_params(
    root: Path, pipe: _Pipeline, hasher: CachedHasher, problems: list[str], stale: list[str]
) -> dict[str, dict[str, Any]]:
    """{params file: {dotted key: value}} for every key the stages use, from the files."""
    out: dict[str, dict[str, Any]] = {}
    for pfile, keys in sorted(pipe.param_keys.items()):
        path = root / pfile
        try:
            doc = load_params_file(path, hasher)
        except FileNotFoundError:
            if pfile in pipe.lock_params:  # as the pipeline last ran with them
                problems.append(f"{pfile}: params file missing; values from dvc.lock")
                out[pfile] = dict(sorted(pipe.lock_params[pfile].items()))
            else:
                problems.append(f"{pfile}: params file missing")
            continue
        except (OSError, ValueError, yaml.YAMLError) as exc:
            problems.append(f"{pfile}: not readable as params: {_short(exc)}")
            continue
        values: dict[str, Any] = {}
        if keys is None:
            values = _flatten_params(doc)
        else:
            for key in sorted(keys):
                found, value = lookup_param(doc, key)
                if found:
                    if isinstance(value, dict):
                        values.update(_flatten_params(value, key))
                    else:
                        values[key] = value
        out[pfile] = values
        for key, old in (pipe.lock_params.get(pfile) or {}).items():
            if key in values and values[key] != old:
                stale.append(f"{pfile}:{key}: lock is stale (dvc.lock has {old!r}, "
                             f"the file {values[key]!r})")  # fmt: skip
    return out


def load_params_file(path: Path, hasher: CachedHasher) -> Any:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        doc = hasher.load_yaml(path)
    elif suffix == ".json":
        doc = orjson.loads(path.read_bytes())
    elif suffix == ".toml":
        import tomllib

        doc = tomllib.loads(path.read_text())
    elif suffix == ".py":
        raise ValueError("Python params files are not read (only YAML, JSON, TOML)")
    else:
        doc = hasher.load_yaml(path)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError("expected a mapping at the top")
    return doc


def lookup_param(doc: Any, key: str) -> tuple[bool, Any]:
    cur = doc
    for part in key.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return True, cur


def _flatten_params(doc: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            name = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                out.update(_flatten_params(v, name))
            else:
                out[name] = v
    return out


# -- finding DVC files -------------------------------------------------------------------------


def find_dvc_files(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(dvc.yaml, dvc.lock, *.dvc files) relative to root: git ls-files in a repo, else a walk."""
    names = _git_ls_dvc(root)
    if names is None:
        names = list(_walk_dvc(root))
    yamls = sorted(n for n in names if n == "dvc.yaml" or n.endswith("/dvc.yaml"))
    locks = sorted(n for n in names if n == "dvc.lock" or n.endswith("/dvc.lock"))
    dvcs = sorted(n for n in names if n.endswith(".dvc") and not _pruned(n))
    return yamls, locks, dvcs


def git_ls_dvc_names(root: Path) -> list[str] | None:
    """DVC files git knows of (tracked or untracked, not ignored); None outside git.

    ls-files also lists files deleted from the work tree: callers check existence as needed.
    """
    if not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
             "*.dvc", "dvc.lock", "*/dvc.lock", "dvc.yaml", "*/dvc.yaml"],
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
            if f in ("dvc.lock", "dvc.yaml") or f.endswith(".dvc"):
                yield f if rel_dir == "." else f"{rel_dir}/{f}".replace(os.sep, "/")


def _pruned(rel: str) -> bool:
    return any(part in PRUNE for part in rel.split("/")[:-1])


# -- parsing -----------------------------------------------------------------------------------


def _stages(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ValueError("expected a mapping")
    stages = doc.get("stages", {}) if "stages" in doc else doc  # lock schema 1.0: no "stages"
    if not isinstance(stages, dict):
        raise ValueError("'stages' is not a mapping")
    return stages


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _read_dvc_yaml(doc: Any, rel: str, pipe: _Pipeline) -> None:
    """Stage deps, outs (also metrics and plots outs) and params as declared. Stages made by
    `foreach`/`matrix` or templated paths are left to dvc.lock, which has them expanded."""
    base = _parent(rel)
    for stage, body in _stages(doc).items():
        if not isinstance(body, dict) or "foreach" in body or "matrix" in body:
            continue
        where = f"{rel}:{stage}"
        for item in body.get("deps") or []:
            if isinstance(item, str) and not _templated(item):
                pipe.add(pipe.deps, _join(base, item), f"{where}:dep", {})
        for kind in ("outs", "metrics", "plots"):
            for item in body.get(kind) or []:
                name = next(iter(item), None) if isinstance(item, dict) else item
                if isinstance(name, str) and not _templated(name):
                    pipe.add(pipe.outs, _join(base, name), f"{where}:out", {})
        for item in body.get("params") or []:
            if isinstance(item, str) and not _templated(item):
                pipe.want_params(_join(base, "params.yaml"), {item})
            elif isinstance(item, dict):
                for pfile, keys in item.items():
                    if _templated(pfile):
                        continue
                    wanted = {str(k) for k in keys} if isinstance(keys, list) and keys else None
                    pipe.want_params(_join(base, str(pfile)), wanted)


def _read_lock(doc: Any, rel: str, pipe: _Pipeline) -> None:
    base = _parent(rel)
    yaml_known = bool(pipe.param_keys)
    for stage, body in _stages(doc).items():
        if not isinstance(body, dict):
            continue
        where = f"{rel}:{stage}"
        for role, table in (("deps", pipe.deps), ("outs", pipe.outs)):
            for item in body.get(role) or []:
                if isinstance(item, dict) and "path" in item:
                    pipe.add(table, _join(base, item["path"]), f"{where}:{role[:-1]}", item)
        for pfile, values in (body.get("params") or {}).items():
            if isinstance(values, dict):
                key = _join(base, pfile)
                pipe.lock_params.setdefault(key, {}).update(_flatten_params(values))
                if not yaml_known or key not in pipe.param_keys:
                    pipe.want_params(key, set(values))


def _read_dvc_file(doc: Any, rel: str, pipe: _Pipeline) -> None:
    if not isinstance(doc, dict):
        raise ValueError("expected a mapping")
    base = _parent(rel)
    for item in doc.get("outs") or []:
        if isinstance(item, dict) and "path" in item:
            item = dict(item)
            # an import (`dvc import-url`) records where the data came from
            deps = [d for d in doc.get("deps") or [] if isinstance(d, dict) and "path" in d]
            if deps:
                item["imported_from"] = [str(d["path"]) for d in deps]
            pipe.add(pipe.added, _join(base, item["path"]), rel, item)


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    hash_value = next((item[k] for k in _HASH_KEYS if item.get(k)), None)
    entry: dict[str, Any] = {"hash": str(hash_value) if hash_value is not None else None}
    if "size" in item:
        entry["size"] = item["size"]
    if "nfiles" in item:
        entry["nfiles"] = item["nfiles"]
    if "imported_from" in item:
        entry["imported_from"] = item["imported_from"]
    return entry


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
        """DVC's own folder hash (a `.dir` object): md5 of the JSON list of `{md5, relpath}`
        sorted by path, so a folder's hash here equals the one in `dvc.lock`."""
        items: list[dict[str, str]] = []
        size = 0
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".dvc"))
            for f in sorted(filenames):
                full = Path(dirpath, f)
                try:
                    st = full.stat()
                except OSError:
                    continue
                rel = full.relative_to(path).as_posix()
                items.append({"md5": self._hash_file(full, st), "relpath": rel})
                size += st.st_size
        items.sort(key=lambda i: i["relpath"])
        raw = json.dumps(items, sort_keys=True).encode("utf-8")
        digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        return {"hash": f"{digest}.dir", "size": size, "nfiles": len(items)}

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
