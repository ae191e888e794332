"""Params → the job's argv and environment. Values never pass through a shell string.

`command = "python train.py --lr {lr}"` is split with `shlex.split` first; then each token has
its `{name}` placeholders replaced, so a value with spaces or `;` stays inside one argv token.
`shell = true` (explicit opt-in) runs the command with `/bin/sh -c`, every value shell-quoted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import stat
import string
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError

if TYPE_CHECKING:
    from ctui.config import JobConfig
    from ctui.jobs.backends.base import LaunchSpec

#: placeholders every command may use besides its params
BUILTINS = ("run_id", "run_dir", "python")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _known(job: JobConfig) -> str:
    return ", ".join(sorted(job.params)) or "none"


def coerce_param(job: JobConfig, name: str, value: Any) -> Any:
    """`value` converted to the type of the job's default for `name` (str from `-p k=v`)."""
    if name not in job.params:
        raise CtuiError(
            f"job {job.name!r} has no param {name!r} (known: {_known(job)})",
            hint="declare it under params in ctui.toml, or fix the name",
        )
    from ctui.manifest.redact import REDACTED, is_secret_param

    if value == REDACTED and is_secret_param(name):
        # a recorded run's params (reproduce, rerun): ctui never kept the secret's value
        raise CtuiError(
            f"param {name}: the run's value is a secret ctui never recorded",
            hint=f"give it again with -p {name}=...",
        )
    default = job.params[name]
    kind = type(default)
    bad = CtuiError(
        f"param {name}={value!r}: expected {kind.__name__} like the default {default!r}"
    )
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise bad
        try:
            return int(text) if kind is int else float(text)
        except ValueError:
            raise bad from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str:
        return str(value)
    raise bad


def validate_params(job: JobConfig, params: dict[str, Any] | None) -> dict[str, Any]:
    """The job's defaults overridden by `params`, each checked and coerced. Unknown → error."""
    merged = dict(job.params)
    for name, value in (params or {}).items():
        merged[name] = coerce_param(job, name, value)
    return merged


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`["lr=0.1", "name=a b"]` → `{"lr": "0.1", "name": "a b"}` (raw strings)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CtuiError(f"bad param {item!r}", hint="write params as -p name=value")
        out[name.strip()] = value
    return out


def format_value(value: Any) -> str:
    return str(value)


def _substitute(token: str, values: dict[str, Any], job: JobConfig, quote: bool) -> str:
    out: list[str] = []
    try:
        parsed = list(string.Formatter().parse(token))
    except ValueError as exc:
        raise CtuiError(
            f"job {job.name!r}: bad placeholder in command token {token!r}: {exc}",
            hint="write a literal brace as {{ or }}",
        ) from None
    for literal, field, spec, conv in parsed:
        out.append(literal)
        if field is None:
            continue
        if field not in values:
            raise CtuiError(
                f"job {job.name!r}: command uses {{{field}}} but there is no such param "
                f"(known: {_known(job)}; built-in: {', '.join(BUILTINS)})",
                hint="add it to the job's params in ctui.toml",
            )
        if spec or conv:
            raise CtuiError(f"job {job.name!r}: placeholder {{{field}}} may not have a format spec")
        text = format_value(values[field])
        out.append(shlex.quote(text) if quote else text)
    return "".join(out)


def build_argv(
    job: JobConfig,
    params: dict[str, Any],
    *,
    run_id: str = "",
    run_dir: str | Path = "",
    python: str | None = None,
) -> list[str]:
    """The argv to execute. Placeholders are filled per token after `shlex.split`.

    `{python}` is the job's `python` setting (`python`, resolved by the caller) when it has
    one, else the interpreter ctui itself runs in."""
    py = python or job.python or sys.executable
    values = {"run_id": run_id, "run_dir": str(run_dir), "python": py, **params}
    if job.shell:
        return ["/bin/sh", "-c", _substitute(job.command, values, job, quote=True)]
    try:
        tokens = shlex.split(job.command)
    except ValueError as exc:
        raise CtuiError(f"job {job.name!r}: command cannot be split: {exc}") from None
    return [_substitute(t, values, job, quote=False) for t in tokens]


_ENV_NAME = re.compile(r"[^A-Za-z0-9_]")


def param_env_name(name: str) -> str:
    return "CTUI_PARAM_" + _ENV_NAME.sub("_", name).upper()


def build_env(job: JobConfig, params: dict[str, Any], run_dir: str | Path) -> dict[str, str]:
    """What ctui adds to the job's environment (layered over the supervisor's own).

    CTUI_RUN_DIR / CTUI_RUN_ID / CTUI_JOB, CTUI_PARAM_<NAME> for each param (unless
    `params_env = false`), PYTHONUNBUFFERED=1 so Python jobs' logs are live, then the job's env.
    """
    run_dir = Path(run_dir)
    env = {
        "CTUI_RUN_DIR": str(run_dir),
        "CTUI_RUN_ID": run_dir.name,
        "CTUI_JOB": job.name,
        "PYTHONUNBUFFERED": "1",
    }
    if job.params_env:
        for name, value in params.items():
            env[param_env_name(name)] = format_value(value)
    env.update(job.env)
    return env


# -- secrets: never written to disk, handed to the supervisor through memory -------------------


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
    return folder / f"{_ENV_NAME.sub('_', run_id)}.json"


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
