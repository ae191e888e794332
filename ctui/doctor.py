"""Store health checks and restoring the last good copy (`ctui doctor`)."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from ctui.errors import CtuiError, StoreCorruptError
from ctui.objects import ObjectStore
from ctui.project import Project
from ctui.store import META, RUNS, SCHEMA_VERSION, parse_store_bytes


def _check(level: str, message: str, hint: str = "") -> dict[str, str]:
    return {"level": level, "message": message, "hint": hint}


def check_store(project: Project) -> dict[str, Any]:
    """Read-only: never changes anything. `healthy` is False when an error was found."""
    checks: list[dict[str, str]] = []
    path = project.store_file
    data: dict[str, Any] | None = None
    if not path.exists():
        checks.append(_check("error", f"{path} does not exist", "run `ctui init`"))
    else:
        try:
            data = parse_store_bytes(path, path.read_bytes())
            n = len(data.get(RUNS, {}))
            version = data.get(META, {}).get("store", {}).get("schema", SCHEMA_VERSION)
            size = path.stat().st_size
            checks.append(
                _check("ok", f"{path} is readable: {n} runs, schema {version}, {size / 1e6:.1f} MB")
            )
        except CtuiError as exc:
            checks.append(_check("error", exc.message, exc.hint))
    backup = path.with_name(path.name + ".bak")
    if backup.exists():
        try:
            bdata = parse_store_bytes(backup, backup.read_bytes())
            checks.append(
                _check(
                    "ok",
                    f"last good copy {backup.name}: {len(bdata.get(RUNS, {}))} "
                    f"runs, saved {time.ctime(backup.stat().st_mtime)}",
                )
            )
        except CtuiError:
            checks.append(_check("warn", f"last good copy {backup} is unreadable too"))
    if data is not None:
        checks.extend(_check_runs(project, data.get(RUNS, {})))
    checks.append(_check_mlflow(project))
    healthy = not any(c["level"] == "error" for c in checks)
    return {"store": str(path), "healthy": healthy, "checks": checks}


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
    """Put the last good copy back; the unreadable file is kept beside it, never deleted."""
    path = project.store_file
    backup = path.with_name(path.name + ".bak")
    try:
        parse_store_bytes(path, path.read_bytes())
        return f"{path} is readable; nothing to restore"
    except FileNotFoundError:
        pass
    except StoreCorruptError:
        pass
    if not backup.exists():
        raise CtuiError(
            f"{path} is unreadable and there is no last good copy ({backup.name})",
            hint="repair the JSON by hand; nothing was changed",
        )
    parse_store_bytes(backup, backup.read_bytes())  # raises if the backup is bad too
    kept = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    if path.exists():
        os.replace(path, kept)
    shutil.copy2(backup, path)
    return f"restored {path} from {backup.name}" + (
        f"; the unreadable file is kept as {kept.name}" if kept.exists() else ""
    )
