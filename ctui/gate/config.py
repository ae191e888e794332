"""`[jobs.NAME.gate]` and `[notify]` in ctui.toml.

Every gate rule is parsed here, at config load: a rule that does not parse or names an unknown
field is a ConfigError naming the key and the rule, so no run of the job is ever launched
with a gate that could not be evaluated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctui.config_check import known_keys, opt, parse_duration, str_list, table
from ctui.errors import ConfigError

#: what `on_promote_failure` may say: the promotion stands, or the previous champion returns
ON_PROMOTE_FAILURE = ("keep", "rollback")
#: events `[notify] on` may name
NOTIFY_EVENTS = ("promoted", "rejected")


@dataclass
class GateConfig:
    #: rules in the filter language plus `champion.` terms; all must hold
    rules: list[str] = field(default_factory=list)
    #: argv run after a promotion (placeholders like a job command), CTUI_RUN_ID in its env
    on_promote: str | None = None
    #: seconds `on_promote` may run before it is stopped (and counted as failed)
    on_promote_timeout: float = 600.0
    #: what a failed `on_promote` does to the promotion: "keep" it, or "rollback"
    on_promote_failure: str = "keep"
    #: register the run's model in MLflow's Model Registry under this name, alias `champion`
    register: str | None = None
    #: the MLflow artifact path of the run's model
    register_artifact: str = "model"


@dataclass
class NotifyConfig:
    #: argv with placeholders, run on a promotion or a rejected retrain
    command: str | None = None
    #: the events that run `command`
    on: list[str] = field(default_factory=lambda: list(NOTIFY_EVENTS))
    #: seconds `command` may run before it is stopped
    timeout: float = 30.0


_GATE_KEYS = {
    "rules",
    "on_promote",
    "on_promote_timeout",
    "on_promote_failure",
    "register",
    "register_artifact",
}
_NOTIFY_KEYS = {"command", "on", "timeout"}


def parse_gate(raw: Any, path: Path, key: str) -> GateConfig | None:
    if raw is None:
        return None
    from ctui.gate.rules import parse_rule

    gkey = f"{key}.gate"
    raw = table(raw, path, gkey)
    known_keys(raw, _GATE_KEYS, path, gkey)
    rules = str_list(raw.get("rules", []), path, f"{gkey}.rules")
    for i, text in enumerate(rules):
        try:
            parse_rule(text)
        except ValueError as exc:
            raise ConfigError(path, f"{gkey}.rules", f"rule {i + 1} {text!r}: {exc}") from None
    on_promote = opt(raw, "on_promote", str, path, gkey, "a command")
    _template(on_promote, "on_promote", path, f"{gkey}.on_promote")
    failure = opt(raw, "on_promote_failure", str, path, gkey, "a string") or "keep"
    if failure not in ON_PROMOTE_FAILURE:
        raise ConfigError(
            path, f"{gkey}.on_promote_failure", f'must be "keep" or "rollback", got {failure!r}'
        )
    timeout = raw.get("on_promote_timeout", 600.0)
    register = opt(raw, "register", str, path, gkey, "a registered model name")
    if register is not None and not register.strip():
        raise ConfigError(path, f"{gkey}.register", "is empty")
    artifact = opt(raw, "register_artifact", str, path, gkey, "an artifact path") or "model"
    return GateConfig(
        rules=rules,
        on_promote=on_promote,
        on_promote_timeout=parse_duration(
            timeout, path=path, key=f"{gkey}.on_promote_timeout", positive=True
        ),
        on_promote_failure=failure,
        register=register,
        register_artifact=artifact.strip("/") or "model",
    )


def parse_notify(raw: Any, path: Path) -> NotifyConfig:
    raw = table(raw, path, "notify")
    known_keys(raw, _NOTIFY_KEYS, path, "notify")
    command = opt(raw, "command", str, path, "notify", "a command")
    _template(command, "notify", path, "notify.command")
    on = str_list(raw.get("on", list(NOTIFY_EVENTS)), path, "notify.on")
    for event in on:
        if event not in NOTIFY_EVENTS:
            raise ConfigError(
                path, "notify.on", f"unknown event {event!r}; known: {', '.join(NOTIFY_EVENTS)}"
            )
    timeout = parse_duration(
        raw.get("timeout", 30.0), path=path, key="notify.timeout", positive=True
    )
    return NotifyConfig(command=command, on=on, timeout=timeout)


def _template(value: str | None, kind: str, path: Path, key: str) -> None:
    """An argv template that splits and names only known placeholders."""
    if value is None:
        return
    from ctui.gate import actions

    known = actions.ON_PROMOTE_PLACEHOLDERS if kind == "on_promote" else actions.NOTIFY_PLACEHOLDERS
    try:
        actions.check_template(value, known)
    except ValueError as exc:
        raise ConfigError(path, key, str(exc)) from None
