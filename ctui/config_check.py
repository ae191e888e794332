"""Checks of `ctui.toml` values shared by every section's parser: each problem is a
ConfigError naming the file and the key."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ctui.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any, *, path: Path, key: str, positive: bool = False) -> float:
    """`90`, `"90s"`, `"10m"`, `"2h"`, `"1d"` → seconds: 0 or more (more than 0 if `positive`),
    never NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(path, key, f"expected a duration like '10m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(value)
        if not m:
            raise ConfigError(
                path, key, f"expected a duration like '30s', '10m', '2h', got {value!r}"
            )
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        what = "more than 0" if positive else "0 or more"
        raise ConfigError(path, key, f"must be a duration of {what}, got {value!r}")
    return seconds


def table(value: Any, path: Path, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(path, key, f"expected a table, got {type(value).__name__}")
    return value


def str_list(value: Any, path: Path, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(path, key, "expected a string or a list of strings")
    return list(value)


def check_type(value: Any, types: type | tuple[type, ...], path: Path, key: str, what: str) -> Any:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in as_tuple(types)):
        raise ConfigError(path, key, f"expected {what}, got {value!r}")
    return value


def opt(raw: dict[str, Any], name: str, types: Any, path: Path, key: str, what: str) -> Any:
    """`raw[name]` when set (None when absent), checked to be of `types`."""
    value = raw.get(name)
    return None if value is None else check_type(value, types, path, f"{key}.{name}", what)


def param_table(value: Any, path: Path, key: str) -> dict[str, Any]:
    params = table(value, path, f"{key}.params")
    for pk, pv in params.items():
        if not isinstance(pv, str | int | float | bool):
            raise ConfigError(
                path, f"{key}.params.{pk}", "a param must be a string, number or boolean"
            )
    return params


def known_keys(raw: dict[str, Any], known: set[str], path: Path, key: str) -> None:
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(
            path,
            key,
            f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}",
        )


def as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)
