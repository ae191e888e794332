"""Store health checks and restoring the last good copy (`ctui doctor`)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from ctui.atomic import is_temp_file, temp_in_use
from ctui.errors import CtuiError, StoreCorruptError, os_error
from ctui.objects import ObjectStore
from ctui.project import Project
from ctui.store import (
    META,
    RUNS,
    SCHEMA_VERSION,
    Store,
    backup_path,
    parse_store_bytes,
    run_problem,
)
from ctui.store_runs import SegmentRuns
from ctui.store_segments import (
    COLUMNS_VERSION,
    INDEX_VERSION,
    Segments,
    in_range,
    parse_columns,
    parse_index,
)

#: a temp file younger than this is left alone by `--clean` (a writer may be about to lock it)
TEMP_MIN_AGE = 60.0


def _check(level: str, message: str, hint: str = "") -> dict[str, str]:
    return {"level": level, "message": message, "hint": hint}


def check_store(project: Project) -> dict[str, Any]:
    """Read-only: never changes anything. `healthy` is False when an error was found."""
    checks: list[dict[str, str]] = []
    path = project.store_file
    data: dict[str, Any] | None = None
    runs: dict[str, Any] | None = None
    if not path.exists():
        checks.append(_check("error", f"{path} does not exist", "run `ctui init`"))
    else:
        try:
            data = _parse(path)
            version = data.get(META, {}).get("store", {}).get("schema", SCHEMA_VERSION)
            size = path.stat().st_size
            if Store.segmented(data):
                store = Store(path)
                more: list[dict[str, str]] = []
                runs = _check_segments(store, more)
                count = f"{len(runs)} runs" if runs is not None else "its runs unread"
                where = f"{len(store.segments.names())} segment(s) in {store.segments.dir.name}/"
                checks.append(
                    _check(
                        "ok",
                        f"{path} is readable: {count} in {where}, schema {version}, {_mb(size)}",
                    )
                )
                checks.extend(more)
            else:
                runs = data.get(RUNS, {})
                checks.append(
                    _check(
                        "ok",
                        f"{path} is readable: {len(runs)} runs in the file, schema {version}, "
                        f"{_mb(size)}; the next write moves them into segments",
                    )
                )
        except CtuiError as exc:
            checks.append(_check("error", exc.message, exc.hint))
    backup = backup_path(path)
    if backup.exists():
        try:
            bdata = _parse(backup)
            checks.append(
                _check(
                    "ok",
                    f"last good copy {backup.name}: "
                    + (
                        "store file"
                        if Store.segmented(bdata)
                        else f"{len(bdata.get(RUNS, {}))} runs in the file"
                    )
                    + f", saved {time.ctime(backup.stat().st_mtime)}",
                )
            )
        except CtuiError:
            checks.append(_check("warn", f"last good copy {backup} is unreadable too"))
    if runs is not None:
        damaged = {k: p for k, d in runs.items() if (p := run_problem(k, d)) is not None}
        if damaged:
            shown = "; ".join(list(damaged.values())[:3]) + (" …" if len(damaged) > 3 else "")
            checks.append(
                _check(
                    "error",
                    f"{len(damaged)} run(s) with wrongly typed fields: {shown}",
                    "fix them by hand in the file named; the other runs read as ever",
                )
            )
        checks.extend(_check_runs(project, {k: d for k, d in runs.items() if k not in damaged}))
    checks.append(_check_temp_files(project))
    checks.append(_check_mlflow(project))
    healthy = not any(c["level"] == "error" for c in checks)
    return {"store": str(path), "healthy": healthy, "checks": checks}


def _check_segments(store: Store, checks: list[dict[str, str]]) -> dict[str, Any] | None:
    """Every segment parses and its index matches it; the runs of those that parse."""
    segs = store.segments
    names = segs.names()
    if not names:
        checks.append(
            _check(
                "error",
                f"the segments directory {segs.dir} is missing or empty",
                "restore it from a backup; nothing was changed",
            )
        )
        return None
    if store.journal_path.exists():
        checks.append(
            _check(
                "warn",
                f"{store.journal_path.name}: a write was interrupted",
                "the next write (`ctui tag`, a launch, …) finishes it",
            )
        )
    runs: dict[str, Any] = {}
    bad, stale, outside = [], [], 0
    for i, lo in enumerate(names):
        try:
            raw, _ = segs.read(lo)
        except CtuiError as exc:
            checks.append(_check("error", exc.message, exc.hint))
            bad.append(lo)
            continue
        docs = in_range(raw, lo, names[i + 1] if i + 1 < len(names) else None)
        outside += len(raw) - len(docs)
        runs.update(docs)
        problem = index_problem(segs, lo)
        if problem is not None:
            stale.append(problem)
    if not bad:
        size = sum(segs.path(lo).stat().st_size for lo in names)
        checks.append(_check("ok", f"every segment is readable ({_mb(size)})"))
    if outside:
        checks.append(
            _check(
                "ok",
                f"{outside} copies of runs outside their segment's range (left by an "
                "interrupted split; ignored, dropped by the next write of that segment)",
            )
        )
    if stale:
        level = "error" if any(p.startswith("unreadable") for p in stale) else "ok"
        checks.append(
            _check(
                level,
                f"{len(stale)} segment index(es) to make again: {'; '.join(stale[:3])}",
                "`ctui doctor --reindex` makes them from the segments (readers remake a "
                "missing or stale one themselves)",
            )
        )
    else:
        checks.append(_check("ok", "every segment index matches its segment"))
    return runs


def index_problem(segs: Segments, lo: str) -> str | None:
    """Why segment `lo`'s index or columns file cannot be used as it is (None: they can)."""
    ident = segs.identity(lo)
    for path, parse, version in (
        (segs.idx_path(lo), parse_index, INDEX_VERSION),
        (segs.cols_path(lo), parse_columns, COLUMNS_VERSION),
    ):
        try:
            entry = parse(path, path.read_bytes())
        except FileNotFoundError:
            return f"{path.name} is missing"
        except CtuiError:
            return f"unreadable {path.name}"
        except OSError as exc:
            return f"unreadable {path.name}: {exc.strerror}"
        if entry["version"] != version:
            return f"{path.name} is of version {entry['version']}"
        if entry["segment"] != (list(ident) if ident else None):
            return f"{path.name} is older than its segment"
    return None


def reindex(project: Project) -> str:
    """Make every segment index again from its segment (under the store lock)."""
    store = Store(project.store_file)
    with store.locked():
        data = store.read_all()
        table = data.get(RUNS)
        if not isinstance(table, SegmentRuns):
            return f"{project.store_file} keeps its runs in the file: no index to make"
        for lo in table.names:
            docs, seen = store.segments.read(lo)  # a damaged segment: its error, named
            store.segments.write_index(lo, docs, seen)
    return f"made the index of {len(table.names)} segment(s) in {store.segments.dir} again"


def _parse(path: Any) -> dict[str, Any]:
    try:
        return parse_store_bytes(path, path.read_bytes())
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise os_error(exc, f"read {path}") from None


def temp_files(project: Project) -> list[tuple[Any, int, bool]]:
    """Temp files of interrupted atomic writes under `.ctui` (and beside a symlinked
    store's target): (path, size, in use by a live writer or too young to judge)."""
    candidates = [Path(d) / n for d, _, names in os.walk(project.state_dir) for n in names]
    real = Path(os.path.realpath(project.store_file))  # a symlinked store's target: only
    if real.parent != project.state_dir and real.parent.is_dir():  # its own temp files
        candidates += [p for p in real.parent.iterdir() if real.name in p.name]
    found = []
    now = time.time()
    for p in sorted(set(candidates)):
        if not is_temp_file(p):
            continue
        try:
            st = p.lstat()
        except OSError:
            continue
        busy = now - st.st_mtime < TEMP_MIN_AGE or temp_in_use(p)
        found.append((p, st.st_size, busy))
    return found


def _check_temp_files(project: Project) -> dict[str, str]:
    found = temp_files(project)
    if not found:
        return _check("ok", "no temp files left by interrupted writes")
    size = sum(s for _, s, _ in found)
    busy = sum(1 for *_, b in found if b)
    where = ", ".join(str(p) for p, *_ in found[:3]) + (" …" if len(found) > 3 else "")
    message = f"{len(found)} temp file(s) left by interrupted writes, {_mb(size)}: {where}"
    if busy:
        message += f" ({busy} being written or under a minute old)"
    return _check("warn", message, "`ctui doctor --clean` removes them")


def clean_temp_files(project: Project) -> str:
    """Remove the temp files no live process is writing; says what it did."""
    removed, freed, kept = 0, 0, 0
    for p, size, busy in temp_files(project):
        if busy:
            kept += 1
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise os_error(exc, f"remove {p}") from None
        removed, freed = removed + 1, freed + size
    said = f"removed {removed} temp file(s) left by interrupted writes ({_mb(freed)})"
    return said + (f"; kept {kept} being written or under a minute old" if kept else "")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _check_runs(project: Project, runs: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    objects = ObjectStore(project.objects_dir)
    missing = sorted(
        rid
        for rid, doc in runs.items()
        for oid in (doc.get("manifest") or {}).values()
        if isinstance(oid, str) and not objects.has(oid)
    )
    if missing:
        out.append(
            _check(
                "error",
                f"{len(set(missing))} run(s) refer to missing manifest objects: "
                f"{', '.join(sorted(set(missing))[:5])}",
                "their diffs will be incomplete; `ctui rm` them or restore .ctui/objects",
            )
        )
    else:
        out.append(_check("ok", "every manifest object is present"))
    folders = {p.name for p in project.runs_dir.iterdir()} if project.runs_dir.is_dir() else set()
    orphans = sorted(folders - set(runs))
    if orphans:
        out.append(
            _check(
                "warn",
                f"{len(orphans)} run folder(s) without a run: {', '.join(orphans[:5])}",
                f"safe to delete from {project.runs_dir}",
            )
        )
    active = [rid for rid, d in runs.items() if d.get("status") in ("running", "queued")]
    if active:
        out.append(
            _check("ok", f"{len(active)} active run(s); `ctui ps` re-checks their supervisors")
        )
    return out


def _check_mlflow(project: Project) -> dict[str, str]:
    """Where MLflow runs go and why (no mlflow import; a server is asked for /health)."""
    from ctui.config import load_config
    from ctui.integrations.mlflow_uri import describe

    try:
        config = load_config(project.root)
    except CtuiError as exc:
        return _check("warn", f"MLflow: the config could not be read: {exc.message}", exc.hint)
    level, message = describe(project, config)
    hint = "`ctui sync` retries pending syncs" if level == "warn" else ""
    return _check(level, message, hint)


def restore_backup(project: Project) -> str:
    """Put the last good copy back of the store file and of every unreadable segment; an
    unreadable file is kept beside it, never deleted."""
    path = Path(os.path.realpath(project.store_file))  # a symlinked store: its target
    said = [_restore(path, parse_store_bytes)]
    store = Store(project.store_file)
    try:
        segmented = Store.segmented(_parse(path))
    except (CtuiError, FileNotFoundError):
        segmented = False
    if segmented:
        for lo in store.segments.names():
            seg = store.segments.path(lo)
            message = _restore(seg, lambda p, raw: parse_store_bytes(p, raw, segment=True))
            if not message.endswith("nothing to restore"):
                said.append(message)
    restored = [m for m in said if not m.endswith("nothing to restore")]
    return "\n".join(restored or said)


def _restore(path: Path, parse: Any) -> str:
    backup = backup_path(path)
    try:
        parse(path, path.read_bytes())
        return f"{path} is readable; nothing to restore"
    except FileNotFoundError:
        pass
    except StoreCorruptError:
        pass
    except OSError as exc:
        raise os_error(exc, f"read {path}") from None
    if not backup.exists():
        raise CtuiError(
            f"{path} is unreadable and there is no last good copy ({backup.name})",
            hint="repair the JSON by hand; nothing was changed",
        )
    parse(backup, backup.read_bytes())  # raises if the backup is bad too
    kept = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        if path.exists():
            os.replace(path, kept)
        shutil.copy2(backup, path)
    except OSError as exc:
        raise os_error(exc, f"restore {path} from {backup.name}") from None
    return f"restored {path} from {backup.name}" + (
        f"; the unreadable file is kept as {kept.name}" if kept.exists() else ""
    )
