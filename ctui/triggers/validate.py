"""Kind-specific checks of `[triggers.NAME]` tables; each problem names the file and key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ctui.config import JobConfig, TriggerConfig, parse_duration
from ctui.errors import ConfigError
from ctui.store import FINAL_STATUSES

#: the options each kind accepts (besides job, on, enabled, cooldown, params)
KIND_OPTIONS: dict[str, set[str]] = {
    "data": {"paths", "debounce", "outs"},
    "code": {"branch", "paths"},
    "schedule": {"every", "cron"},
    "metric": {"command", "file", "threshold", "direction", "timeout"},
    "after": {"after", "status"},
    "promoted": {"after"},
}

#: placeholders a trigger's params may use, per kind (plus COMMON)
COMMON_PLACEHOLDERS = {"trigger", "cause", "cause_key", "time"}
KIND_PLACEHOLDERS: dict[str, set[str]] = {
    "data": {"data_hash"},
    "code": {"commit"},
    "schedule": {"slot"},
    "metric": {"value"},
    "after": {"upstream_run"},
    "promoted": {"upstream_run", "promotion", "previous"},
}
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_DEBOUNCE = 5.0
DEFAULT_METRIC_TIMEOUT = 60.0


def validate_trigger(tc: TriggerConfig, path: Path | str, jobs: dict[str, JobConfig]) -> None:
    """Raise ConfigError (file + key + problem) for anything the kind cannot work with."""
    key = f"triggers.{tc.name}"
    opts = tc.options
    unknown = set(opts) - KIND_OPTIONS[tc.on]
    if unknown:
        known = ", ".join(sorted(KIND_OPTIONS[tc.on]))
        raise ConfigError(
            path,
            key,
            f"unknown key(s) {', '.join(sorted(unknown))} for on = {tc.on!r}; "
            f"known: job, on, enabled, cooldown, params, {known}",
        )
    _check_params(tc, path, key, jobs.get(tc.job))
    check = _CHECKS[tc.on]
    check(tc, Path(path), key, jobs)


def _check_params(tc: TriggerConfig, path: Path | str, key: str, job: JobConfig | None) -> None:
    allowed = COMMON_PLACEHOLDERS | KIND_PLACEHOLDERS[tc.on]
    for name, value in tc.params.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(path, f"{key}.params.{name}", "must be a string, number or boolean")
        if job is not None and name not in job.params:
            known = ", ".join(sorted(job.params)) or "none"
            raise ConfigError(
                path,
                f"{key}.params.{name}",
                f"job {job.name!r} has no param {name!r} (declared: {known})",
            )
        if isinstance(value, str):
            for ph in PLACEHOLDER.findall(value):
                if ph not in allowed:
                    raise ConfigError(
                        path,
                        f"{key}.params.{name}",
                        f"unknown placeholder {{{ph}}} for on = {tc.on!r}; "
                        f"known: {', '.join('{' + p + '}' for p in sorted(allowed))}",
                    )


def _str_list(value: Any, path: Path, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(path, key, "expected a path or a list of paths")
    return list(value)


def _check_data(tc: TriggerConfig, path: Path, key: str, jobs: dict[str, JobConfig]) -> None:
    if "paths" in tc.options:
        _str_list(tc.options["paths"], path, f"{key}.paths")
    if "debounce" in tc.options:
        parse_duration(tc.options["debounce"], path=path, key=f"{key}.debounce")
    if not isinstance(tc.options.get("outs", False), bool):
        raise ConfigError(path, f"{key}.outs", "expected true or false")


def _check_code(tc: TriggerConfig, path: Path, key: str, jobs: dict[str, JobConfig]) -> None:
    branch = tc.options.get("branch", "HEAD")
    if not isinstance(branch, str) or not branch.strip() or branch.startswith("-"):
        raise ConfigError(path, f"{key}.branch", f"expected a branch name, got {branch!r}")
    if "paths" in tc.options:
        _str_list(tc.options["paths"], path, f"{key}.paths")


def _check_schedule(tc: TriggerConfig, path: Path, key: str, jobs: dict[str, JobConfig]) -> None:
    every, cron = tc.options.get("every"), tc.options.get("cron")
    if (every is None) == (cron is None):
        raise ConfigError(
            path, key, 'a schedule needs exactly one of every = "1h" or cron = "0 3 * * *"'
        )
    if every is not None:
        seconds = parse_duration(every, path=path, key=f"{key}.every")
        if seconds <= 0:
            raise ConfigError(path, f"{key}.every", "must be more than zero")
    else:
        from croniter import croniter

        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise ConfigError(path, f"{key}.cron", f"not a valid cron expression: {cron!r}")


def _check_metric(tc: TriggerConfig, path: Path, key: str, jobs: dict[str, JobConfig]) -> None:
    command, file = tc.options.get("command"), tc.options.get("file")
    if (command is None) == (file is None):
        raise ConfigError(
            path,
            key,
            'a metric trigger needs exactly one of command = "..." '
            '(prints a number) or file = "path" (holds a number)',
        )
    if command is not None and not (
        (isinstance(command, str) and command.strip())
        or (isinstance(command, list) and command and all(isinstance(c, str) for c in command))
    ):
        raise ConfigError(path, f"{key}.command", "expected a command string or argv list")
    if file is not None and (not isinstance(file, str) or not file):
        raise ConfigError(path, f"{key}.file", "expected a path")
    threshold = tc.options.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ConfigError(path, f"{key}.threshold", f"expected a number, got {threshold!r}")
    direction = tc.options.get("direction", "above")
    if direction not in ("above", "below"):
        raise ConfigError(path, f"{key}.direction", f"must be above or below, got {direction!r}")
    if "timeout" in tc.options:
        parse_duration(tc.options["timeout"], path=path, key=f"{key}.timeout")


def _upstream(
    tc: TriggerConfig, path: Path, key: str, jobs: dict[str, JobConfig], what: str
) -> None:
    upstream = tc.options.get("after")
    if not isinstance(upstream, str) or upstream not in jobs:
        known = ", ".join(sorted(jobs)) or "none"
        raise ConfigError(
            path, f"{key}.after", f"name the {what} (known: {known}), got {upstream!r}"
        )


def _check_after(tc: TriggerConfig, path: Path, key: str, jobs: dict[str, JobConfig]) -> None:
    _upstream(tc, path, key, jobs, "upstream job whose runs start this one")
    status = tc.options.get("status", "succeeded")
    statuses = [status] if isinstance(status, str) else status
    if (
        not isinstance(statuses, list)
        or not statuses
        or any(s not in FINAL_STATUSES for s in statuses)
    ):
        raise ConfigError(
            path,
            f"{key}.status",
            f"expected one or more of {', '.join(FINAL_STATUSES)}, got {status!r}",
        )


def _check_promoted(tc: TriggerConfig, path: Path, key: str, jobs: dict[str, JobConfig]) -> None:
    _upstream(tc, path, key, jobs, "job whose promotions start this one")


_CHECKS = {
    "data": _check_data,
    "code": _check_code,
    "schedule": _check_schedule,
    "metric": _check_metric,
    "after": _check_after,
    "promoted": _check_promoted,
}


def validate_all(config: Any) -> None:
    """Validate every trigger of a loaded `ctui.config.Config`."""
    for tc in config.triggers.values():
        validate_trigger(tc, config.path or "ctui.toml", config.jobs)
