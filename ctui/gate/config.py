"""`[jobs.NAME.gate]` and `[notify]` in ctui.toml."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctui.config_check import known_keys, str_list, table


@dataclass
class GateConfig:
    #: rules in the filter language plus `champion.` terms; all must hold
    rules: list[str] = field(default_factory=list)
    #: argv run after a promotion (placeholders like a job command), CTUI_RUN_ID in its env
    on_promote: str | None = None
    #: register the run's model in MLflow's Model Registry under this name, alias `champion`
    register: str | None = None


@dataclass
class NotifyConfig:
    #: argv with placeholders, run on a promotion or a rejected retrain
    command: str | None = None


_GATE_KEYS = {"rules", "on_promote", "register"}


def parse_gate(raw: Any, path: Path, key: str) -> GateConfig | None:
    if raw is None:
        return None
    gkey = f"{key}.gate"
    raw = table(raw, path, gkey)
    known_keys(raw, _GATE_KEYS, path, gkey)
    return GateConfig(rules=str_list(raw.get("rules", []), path, f"{gkey}.rules"))


def parse_notify(raw: Any, path: Path) -> NotifyConfig:
    raw = table(raw, path, "notify")
    known_keys(raw, {"command"}, path, "notify")
    return NotifyConfig()
