"""What `ctui triggers` and the TUI's Triggers screen show, and enable/disable by name."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ctui.errors import ConfigError
from ctui.store import TRIGGERS, open_store
from ctui.triggers.state import effective_enabled, set_enabled

if TYPE_CHECKING:
    from ctui.config import Config, TriggerConfig
    from ctui.project import Project


def _paths(value: Any) -> str:
    return ", ".join([value] if isinstance(value, str) else value or [])


def rule_text(tc: TriggerConfig) -> str:
    """The trigger's condition in a few words."""
    o = tc.options
    if tc.on == "data":
        return f"data of {tc.job}" + (f" under {_paths(o['paths'])}" if o.get("paths") else "")
    if tc.on == "code":
        where = f" touching {_paths(o['paths'])}" if o.get("paths") else ""
        return f"new commit on {o.get('branch', 'HEAD')}{where}"
    if tc.on == "schedule":
        return f"every {o['every']}" if "every" in o else f"cron {o.get('cron')}"
    if tc.on == "metric":
        src = o.get("file") or o.get("command")
        src = " ".join(src) if isinstance(src, list) else str(src)
        sign = ">" if o.get("direction", "above") == "above" else "<"
        return f"{src} {sign} {o.get('threshold')}"
    if tc.on == "after":
        status = o.get("status", "succeeded")
        return f"after {o.get('after')} {status if isinstance(status, str) else '/'.join(status)}"
    if tc.on == "promoted":
        return f"after {o.get('after')} promoted"
    return tc.on


def _next_check(
    tc: TriggerConfig, state: dict[str, Any], enabled: bool, now: float
) -> float | None:
    if not enabled:
        return None
    if tc.on == "schedule":
        from ctui.triggers.schedule import slots

        return slots(tc, now)[1]
    value = state.get("next_check")
    return float(value) if value is not None else None


def list_triggers(
    project: Project, config: Config | None = None, *, now: float | None = None
) -> list[dict[str, Any]]:
    """One row per declared trigger: config + state (nothing is evaluated or written)."""
    from ctui.config import load_config
    from ctui.triggers.validate import validate_all

    config = config or load_config(project.root)
    validate_all(config)
    states = open_store(project).docs(TRIGGERS) if project.store_file.exists() else {}
    now = time.time() if now is None else now
    rows = []
    for name, tc in config.triggers.items():
        state = states.get(name) or {}
        enabled = effective_enabled(tc.enabled, state)
        rows.append({
            "name": name,
            "kind": tc.on,
            "job": tc.job,
            "rule": rule_text(tc),
            "enabled": enabled,
            "enabled_in_config": tc.enabled,
            "overridden": state.get("enabled") is not None,
            "cooldown": tc.cooldown,
            "last_fired": state.get("last_fired"),
            "last_cause": state.get("last_cause"),
            "last_cause_key": state.get("last_cause_key"),
            "last_run": state.get("last_run"),
            "last_check": state.get("last_check"),
            "status": state.get("status") if enabled else "disabled",
            "note": state.get("note") if enabled else "disabled",
            "next_check": _next_check(tc, state, enabled, now),
        })  # fmt: skip
    return rows


def set_trigger_enabled(
    project: Project, name: str, enabled: bool, config: Config | None = None
) -> dict[str, Any]:
    """`ctui triggers enable/disable NAME`: stored in the store, it overrides ctui.toml."""
    from ctui.config import load_config

    config = config or load_config(project.root)
    if name not in config.triggers:
        known = ", ".join(sorted(config.triggers)) or "none declared"
        raise ConfigError(
            config.path or "ctui.toml", f"triggers.{name}", f"no such trigger (known: {known})"
        )
    store = open_store(project)
    store.initialise()
    # matching the config → drop the override, so editing ctui.toml works again
    set_enabled(store, name, None if enabled == config.triggers[name].enabled else enabled)
    return next(r for r in list_triggers(project, config) if r["name"] == name)
