"""Secrets: never written to disk, handed to the supervisor through memory.

`seal` masks a launch's secret values in what `spec.json` holds; `keep_sealed` holds the real
ones in a private folder on a memory file system until the run's supervisor takes them back
(`unseal_spec`); `drop_sealed` forgets them for a run that will never start.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.jobs.command import format_value

if TYPE_CHECKING:
    from ctui.jobs.backends.base import LaunchSpec

#: what a run id may not keep in a file name
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def seal(
    argv: list[str], env: dict[str, str], params: dict[str, Any]
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """(argv, env) safe to write to `spec.json`, and the real values they mask (empty when
    nothing is secret): `{"argv": {index: token}, "env": {name: value}}`.

    Masked: every value of a param named like a secret (`password`, `hf_token`, …) wherever
    argv or env repeats it, env variables named like secrets (`DB_PASSWORD`) or holding a
    credential (`https://u:pw@…`), argv tokens holding a token shape. `keep_sealed` holds the
    real values in memory until the run's supervisor takes them back (`unseal_spec`).
    """
    from ctui.manifest.redact import REDACTED, is_secret_name, is_secret_param, redact_argv

    secrets = [
        format_value(v)
        for k, v in params.items()
        if is_secret_param(k) and v not in (None, "") and not isinstance(v, bool)
    ]
    safe_argv = redact_argv(argv, secrets)
    sealed_argv = {
        str(i): real
        for i, (real, safe) in enumerate(zip(argv, safe_argv, strict=True))
        if real != safe
    }
    safe_env: dict[str, str] = {}
    sealed_vars: dict[str, str] = {}
    for name, value in env.items():
        # CTUI_PARAM_MAX_TOKENS is a param's value, judged by the param's name
        by_name = bool(value) and is_secret_name(name) and not name.startswith("CTUI_")
        if by_name or (name.startswith("CTUI_PARAM_") and value in secrets):
            safe = REDACTED
        else:
            safe = redact_argv([value], secrets)[0]
        safe_env[name] = safe
        if safe != value:
            sealed_vars[name] = value
    entry: dict[str, Any] = {}
    if sealed_argv:
        entry["argv"] = sealed_argv
    if sealed_vars:
        entry["env"] = sealed_vars
    return safe_argv, safe_env, entry


def sealed_dir() -> Path | None:
    """Where sealed values wait for their supervisor: a private folder on a memory file system
    (`/dev/shm/ctui-<uid>`, else `$XDG_RUNTIME_DIR/ctui-sealed`), never on disk; None when
    this machine has neither (or the folder is not this user's alone)."""
    return next(iter(_sealed_dirs()), None)


def _sealed_dirs() -> list[Path]:
    """Every usable such folder (a queued run may be started by a process whose environment
    has no XDG_RUNTIME_DIR: a cron job, a service)."""
    candidates = []
    if os.path.isdir("/dev/shm"):  # first: every process of this user on this machine sees it
        candidates.append(Path("/dev/shm") / f"ctui-{os.getuid()}")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        candidates.append(Path(runtime) / "ctui-sealed")
    usable = []
    for folder in candidates:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            st = os.lstat(folder)
        except OSError:
            continue
        # /dev/shm is shared by every user: only a real folder of ours, closed to others
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            usable.append(folder)
    return usable


def _sealed_file(folder: Path, run_id: str) -> Path:
    return folder / f"{_UNSAFE.sub('_', run_id)}.json"


def keep_sealed(run_id: str, entry: dict[str, Any]) -> bool:
    """Hold a run's sealed values in memory (`sealed_dir`, mode 0600) for its supervisor,
    which takes them back and deletes them before the job starts; False when there is no
    such place (the caller then writes the spec as it is)."""
    folder = sealed_dir()
    if folder is None:
        return False
    path = _sealed_file(folder, run_id)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(entry, fh)
    except OSError:
        return False
    return True


def drop_sealed(run_id: str) -> None:
    """Forget a run's sealed values (a queued run removed or cancelled before it started)."""
    for folder in _sealed_dirs():
        _sealed_file(folder, run_id).unlink(missing_ok=True)


def unseal_spec(spec: LaunchSpec) -> LaunchSpec:
    """In the supervisor, before anything else uses `spec`: the real values `seal` masked put
    back (from `keep_sealed`'s file, deleted at once). A spec that masked something whose
    values are gone (the machine rebooted while the run was queued, another host) raises
    StartError: ctui never wrote them anywhere, so the run cannot start with them."""
    from ctui.jobs.backends.base import StartError

    masked = spec.options.get("sealed") or {}
    if not masked:
        return spec
    entry: Any = None
    for folder in _sealed_dirs():
        path = _sealed_file(folder, spec.run_id)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        finally:
            path.unlink(missing_ok=True)
        break
    if not isinstance(entry, dict):
        names = ", ".join(masked.get("params") or masked.get("env") or []) or "secret values"
        raise StartError(
            f"the secret values of this run ({names}) are gone: ctui keeps them in memory only, "
            "until the run starts (was the machine restarted?)",
            hint="launch the run again, giving them with -p",
        )
    argv = list(spec.argv)
    for index, token in (entry.get("argv") or {}).items():
        if 0 <= int(index) < len(argv):
            argv[int(index)] = str(token)
    env_vars = {**spec.env, **{str(k): str(v) for k, v in (entry.get("env") or {}).items()}}
    return dataclasses.replace(spec, argv=argv, env=env_vars)
