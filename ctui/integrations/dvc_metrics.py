"""Final metrics from DVC metrics files (and a job's own `metrics` files).

Files come from `dvc.yaml` (`metrics:` at top level, and each stage's `metrics:` outs) and from
the job's `metrics` list. JSON or YAML; nested keys are flattened with dots
(`{"eval": {"acc": 0.9}}` → `{"eval.acc": 0.9}`); only numbers (and booleans as 0/1) are kept.
Read directly (no dvc import, which costs ~0.5 s).

Which files are *this run's*: one written since the run started, or one the final `dvc.lock`
vouches for. DVC leaves a file alone when it skips a stage ("didn't change") or restores it
from its run-cache (possibly as a link to an old cache object), so its mtime can predate the
run while its content is exactly the pipeline's current result. `vouched_by_lock` accepts a
stage out when that stage and every stage upstream of it are up to date the way `dvc status`
judges them: the lock's cmd, params, deps and outs all equal what the workspace holds now.
A run that died half way leaves a lock that disagrees with the workspace (the broken code, the
new param), so its old metrics are never taken for the run's.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
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


def load_dvc_yaml(root: Path) -> dict[str, Any] | None:
    """`root/dvc.yaml` as a mapping; None when there is none. Raises ValueError (with the
    reason in words) when it is there but broken."""
    path = Path(root) / "dvc.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"dvc.yaml is not valid YAML: {_first_line(exc)}") from None
    except OSError as exc:
        raise ValueError(f"dvc.yaml cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError("dvc.yaml is not UTF-8 text") from None
    if not isinstance(doc, dict):
        raise ValueError("dvc.yaml is not a mapping of stages")
    return doc


def stages_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stages of a dvc.yaml, each a mapping (anything else is left out)."""
    stages = doc.get("stages") or {}
    if not isinstance(stages, dict):
        return {}
    return {str(k): v for k, v in stages.items() if isinstance(v, dict)}


def in_wdir(stage: dict[str, Any], path: str) -> str:
    """A stage's path as seen from the dvc.yaml folder (stage paths are relative to `wdir`)."""
    wdir = stage.get("wdir")
    joined = f"{wdir}/{path}" if isinstance(wdir, str) and wdir not in ("", ".") else path
    return posixpath.normpath(joined)


def declared_files(root: Path) -> list[str]:
    """Metrics files declared in `root/dvc.yaml` (top-level and per-stage), in order."""
    try:
        doc = load_dvc_yaml(root)
    except ValueError:
        return []
    if doc is None:
        return []
    files: list[str] = []
    top = doc.get("metrics") or []
    for entry in top if isinstance(top, list) else []:
        files.extend(_metrics_entry(entry))
    for stage in stages_of(doc).values():
        entries = stage.get("metrics") or []
        for entry in entries if isinstance(entries, list) else []:
            files.extend(in_wdir(stage, f) for f in _metrics_entry(entry))
    return list(dict.fromkeys(files))


#: a metrics file bigger than this is not a metrics file (and is not read whole)
MAX_METRICS_FILE = 16 * 1024 * 1024


def read_file(path: Path, notes: list[str] | None = None) -> dict[str, float]:
    """One metrics file, flattened. Unreadable, not UTF-8, too big or unparsable → empty, with
    the reason appended to `notes` (else printed to stderr: a supervisor's goes to its log),
    so one bad file costs only its own metrics and the run still ends."""
    path = Path(path)

    def skip(why: str) -> dict[str, float]:
        note = f"metrics file {path} skipped: {why}"
        if notes is None:
            print(f"ctui: {note}", file=sys.stderr)
        else:
            notes.append(note)
        return {}

    try:
        if path.stat().st_size > MAX_METRICS_FILE:
            return skip(f"bigger than {MAX_METRICS_FILE // (1024 * 1024)} MiB")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return {}  # not written (yet): nothing to say
    except OSError as exc:
        return skip(f"cannot be read ({exc.strerror or exc})")
    except UnicodeDecodeError as exc:
        return skip(f"not UTF-8 text (byte {exc.start})")
    data: Any
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
        return flatten(data)
    except RecursionError:
        return skip("nested too deeply")
    except Exception as exc:  # JSON/YAML errors: the file is damaged, the run is not
        return skip(
            f"not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {_first_line(exc)}"
        )


def written_since(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since
    except OSError:
        return False


def read_metrics(
    root: Path,
    extra: Iterable[str] = (),
    *,
    since: float | None = None,
    cache_dir: Path | None = None,
    vouch: bool = True,
    notes: list[str] | None = None,
) -> dict[str, float]:
    """All final metrics from `dvc.yaml`'s metrics files and `extra` (the job's `metrics`).

    Later files win on equal keys; the job's own files come last. With `since` (the run's
    start), a file counts only when written since then — or, for a file `dvc.yaml` declares,
    when the final `dvc.lock` vouches for it (`vouched_by_lock`: DVC skipped or restored the
    stage). A run that died before writing its metrics never inherits the previous run's.
    `cache_dir` keeps the size+mtime hash cache the manifest capture shares. `vouch=False`
    (a job that does not run DVC: the lock says nothing of what it did) keeps the mtime rule.
    A file that cannot be read is skipped alone (see `read_file`; its reason goes to `notes`).
    """
    root = Path(root)
    declared = declared_files(root)
    names = [*declared, *extra]
    if since is None:
        take = set(names)
    else:
        take = {n for n in names if written_since(root / n, since)}
        older = [n for n in declared if n not in take]
        if older and vouch:
            take |= vouched_by_lock(root, older, cache_dir=cache_dir)
    out: dict[str, float] = {}
    for name in names:
        if name in take:
            out.update(read_file(root / name, notes))
    return out


# -- what the final dvc.lock vouches for ---------------------------------------------------


def vouched_by_lock(root: Path, paths: Iterable[str], *, cache_dir: Path | None = None) -> set[str]:
    """Which of `paths` (relative to `root`) hold what the pipeline's final state says.

    A path counts when it is (or lies inside) an out of a stage in `root/dvc.lock` and that
    stage and all stages upstream of it are up to date: the lock's cmd equals dvc.yaml's,
    every param it records has that value in the params file now, every dep and out hashes
    (md5, DVC's own format) to the lock's hash, and nothing dvc.yaml declares is missing from
    the lock. Stages DVC always runs (`always_changed`, or a cmd with no deps) never count.
    Anything that cannot be checked (no lock, an old lock format, a remote dep, a templated
    value ctui cannot resolve) is not vouched for: the mtime rule then decides alone.
    """
    wanted = [posixpath.normpath(p) for p in paths]
    if not wanted:
        return set()
    try:
        pipe = _LockCheck(Path(root), cache_dir)
    except (OSError, ValueError):
        return set()
    try:
        return {p for p in wanted if pipe.vouches(p)}
    finally:
        pipe.hasher.save()


class _LockCheck:
    """dvc.yaml + dvc.lock of one folder, and which stages are up to date (memoised)."""

    def __init__(self, root: Path, cache_dir: Path | None) -> None:
        import yaml

        from ctui.manifest.data import CachedHasher

        self.root = root
        self.hasher = CachedHasher(cache_dir)
        doc = load_dvc_yaml(root)
        if doc is None:
            raise ValueError("no dvc.yaml")
        try:
            lock = yaml.safe_load((root / "dvc.lock").read_text())
        except yaml.YAMLError as exc:
            raise ValueError(f"dvc.lock is not valid YAML: {_first_line(exc)}") from None
        if not isinstance(lock, dict) or str(lock.get("schema")) != "2.0":
            raise ValueError("dvc.lock is not in DVC 2+ format")
        self.declared = stages_of(doc)
        self.vars = _vars(doc)
        self.lock = stages_of(lock)
        self.params: dict[str, Any] = {}
        #: out path (from the root) → the stage that makes it
        self.producer: dict[str, str] = {}
        for name, body in self.lock.items():
            for item in _items(body, "outs"):
                self.producer[self._path(name, item["path"])] = name
        self.fresh: dict[str, bool] = {}

    def _path(self, stage: str, path: str) -> str:
        return in_wdir(self.declared.get(stage) or {}, str(path))

    def _producer_of(self, path: str) -> str | None:
        for out, stage in self.producer.items():
            if path == out or path.startswith(out + "/"):
                return stage
        return None

    def vouches(self, path: str) -> bool:
        stage = self._producer_of(path)
        return stage is not None and self.up_to_date(stage, set())

    def up_to_date(self, stage: str, seen: set[str]) -> bool:
        if stage in self.fresh:
            return self.fresh[stage]
        if stage in seen:  # a cycle: DVC itself refuses such a pipeline
            return False
        seen.add(stage)
        ok = self._own(stage) and all(self.up_to_date(up, seen) for up in self._upstream(stage))
        self.fresh[stage] = ok
        return ok

    def _upstream(self, stage: str) -> set[str]:
        ups: set[str] = set()
        for item in _items(self.lock[stage], "deps"):
            dep = self._path(stage, item["path"])
            for out, producer in self.producer.items():
                related = dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")
                if related and producer != stage:
                    ups.add(producer)
        return ups

    def _own(self, stage: str) -> bool:
        """This stage alone: declared as locked, same cmd and params, deps and outs as hashed."""
        body, decl = self.lock[stage], self.declared.get(stage)
        if decl is None or decl.get("always_changed") or "foreach" in decl or "matrix" in decl:
            return False
        deps, outs = _items(body, "deps"), _items(body, "outs")
        if not deps or not outs:
            return False  # no deps: DVC runs it every time; no outs: nothing to vouch for
        cmd = decl.get("cmd")
        if _render(cmd, self._context() if "${" in str(cmd) else {}) != body.get("cmd"):
            return False
        locked_deps = {posixpath.normpath(str(i["path"])) for i in deps}
        locked_outs = {posixpath.normpath(str(i["path"])) for i in outs}
        for kind, locked in (("deps", locked_deps), ("outs", locked_outs),
                             ("metrics", locked_outs), ("plots", locked_outs)):  # fmt: skip
            entries = decl.get(kind) or []
            for entry in entries if isinstance(entries, list) else []:
                for name in _metrics_entry(entry):
                    if _templated(name):
                        return False
                    if posixpath.normpath(name) not in locked:
                        return False  # declared since the lock was written
        if not self._params_match(stage, decl, body):
            return False
        return all(self._hash_matches(stage, item) for item in [*deps, *outs])

    def _context(self) -> dict[str, Any]:
        """What `${…}` in dvc.yaml may name: params.yaml (DVC's default) and inline vars."""
        try:
            params = self._params_file("params.yaml")
        except ValueError:
            params = {}
        return {**params, **self.vars}

    def _params_file(self, rel: str) -> dict[str, Any]:
        """A params file as a mapping (parsed once); ValueError when missing or unreadable."""
        if rel not in self.params:
            import yaml

            from ctui.manifest.data import load_params_file

            try:
                self.params[rel] = load_params_file(self.root / rel, self.hasher)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                self.params[rel] = ValueError(f"{rel}: {_first_line(exc)}")
        value = self.params[rel]
        if isinstance(value, ValueError):
            raise value
        return dict(value)

    def _params_match(self, stage: str, decl: dict[str, Any], body: dict[str, Any]) -> bool:
        locked = body.get("params") or {}
        if not isinstance(locked, dict):
            return False
        from ctui.manifest.data import lookup_param

        try:
            for pfile, values in locked.items():
                if not isinstance(values, dict):
                    return False
                doc = self._params_file(self._path(stage, str(pfile)))
                for key, old in values.items():
                    found, now = lookup_param(doc, str(key))
                    if not found or now != old:
                        return False
        except ValueError:
            return False
        declared = decl.get("params") or []
        default = locked.get("params.yaml") or {}
        for item in declared if isinstance(declared, list) else []:
            if isinstance(item, str) and not _templated(item) and item not in default:
                return False  # a param declared since the lock was written
        return True

    def _hash_matches(self, stage: str, item: dict[str, Any]) -> bool:
        if item.get("hash") != "md5" or not item.get("md5"):
            return False  # a DVC 2 (dos2unix) hash, or a remote dep (etag, checksum)
        path = self.root / self._path(stage, str(item["path"]))
        if not path.exists():
            return False
        return bool(self.hasher.hash_path(path).get("hash") == item["md5"])


def _items(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    entries = body.get(kind) or []
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)]


def _vars(doc: dict[str, Any]) -> dict[str, Any]:
    """dvc.yaml's inline `vars:` mappings (files named there are not read)."""
    out: dict[str, Any] = {}
    entries = doc.get("vars") or []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            out.update(entry)
    return out


_TEMPLATE = re.compile(r"\$\{\s*([A-Za-z0-9_.\-]+)\s*\}")


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _render(cmd: Any, context: dict[str, Any]) -> Any:
    """dvc.yaml's cmd with `${key}` filled from params.yaml and `vars` the way DVC writes it
    into the lock; None when a key cannot be resolved (then the stage is not vouched for)."""
    if isinstance(cmd, list):
        parts = [_render(c, context) for c in cmd]
        return None if any(p is None for p in parts) else parts
    if not isinstance(cmd, str) or "${" not in cmd:
        return cmd
    from ctui.manifest.data import lookup_param

    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        found, value = lookup_param(context, match.group(1))
        if not found or isinstance(value, dict | list):
            missing = True
            return ""
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    rendered = _TEMPLATE.sub(fill, cmd)
    return None if missing or "${" in rendered else rendered


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
