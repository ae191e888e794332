"""Params → the job's argv and environment. Values never pass through a shell string.

`command = "python train.py --lr {lr}"` is split with `shlex.split` first; then each token has
its `{name}` placeholders replaced, so a value with spaces or `;` stays inside one argv token.
`shell = true` (explicit opt-in) runs the command with `/bin/sh -c`, every value shell-quoted.
"""

from __future__ import annotations

import re
import shlex
import string
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError

if TYPE_CHECKING:
    from ctui.config import JobConfig

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


class PlaceholderError(ValueError):
    """A token's placeholders cannot be filled: `kind` is "syntax" (a stray brace), "unknown"
    (no such value) or "spec" (a format spec or conversion, never allowed)."""

    def __init__(self, kind: str, token: str, name: str | None = None, detail: str = ""):
        super().__init__(detail or f"{kind} placeholder {name!r} in {token!r}")
        self.kind, self.token, self.name = kind, token, name


def fill_token(token: str, values: Mapping[str, Any], render: Callable[[Any], str] = str) -> str:
    """One argv token with its `{name}` placeholders replaced by `render(values[name])`."""
    out: list[str] = []
    try:
        parsed = list(string.Formatter().parse(token))
    except ValueError as exc:
        raise PlaceholderError("syntax", token, detail=str(exc)) from None
    for literal, field, spec, conv in parsed:
        out.append(literal)
        if field is None:
            continue
        if field not in values:
            raise PlaceholderError("unknown", token, field)
        if spec or conv:
            raise PlaceholderError("spec", token, field)
        out.append(render(values[field]))
    return "".join(out)


def _substitute(token: str, values: dict[str, Any], job: JobConfig, quote: bool) -> str:
    def render(value: Any) -> str:
        text = format_value(value)
        return shlex.quote(text) if quote else text

    try:
        return fill_token(token, values, render)
    except PlaceholderError as exc:
        if exc.kind == "syntax":
            raise CtuiError(
                f"job {job.name!r}: bad placeholder in command token {token!r}: {exc}",
                hint="write a literal brace as {{ or }}",
            ) from None
        if exc.kind == "unknown":
            raise CtuiError(
                f"job {job.name!r}: command uses {{{exc.name}}} but there is no such param "
                f"(known: {_known(job)}; built-in: {', '.join(BUILTINS)})",
                hint="add it to the job's params in ctui.toml",
            ) from None
        raise CtuiError(
            f"job {job.name!r}: placeholder {{{exc.name}}} may not have a format spec"
        ) from None


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
