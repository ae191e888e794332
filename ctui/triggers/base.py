"""What one look at a trigger yields, and the per-cycle context the kinds share."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.store import RUNS

if TYPE_CHECKING:
    from ctui.config import Config, TriggerConfig
    from ctui.project import Project

#: what an evaluation found
FIRE = "fire"  # one or more causes to launch
IDLE = "idle"  # nothing new
WAIT = "wait"  # something new but not ready (data still being written)
COOLDOWN = "cooldown"  # something new, but the trigger fired too recently
DISABLED = "disabled"
ERROR = "error"  # the trigger could not be evaluated (bad branch, metric command failed…)


@dataclass
class Cause:
    """One reason to launch: exactly one run per `key`, ever."""

    key: str
    text: str
    #: values for `{placeholders}` in the trigger's params
    context: dict[str, Any] = field(default_factory=dict)
    #: the kind's memory to store with the intent (the commit seen, the schedule slot…)
    memory: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    trigger: str
    job: str
    kind: str
    status: str
    note: str = ""
    causes: list[Cause] = field(default_factory=list)
    #: memory to store even when nothing fires (a first baseline, a re-armed metric)
    memory: dict[str, Any] = field(default_factory=dict)
    next_check: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "job": self.job,
            "kind": self.kind,
            "status": self.status,
            "note": self.note,
            "causes": [{"cause_key": c.key, "cause": c.text} for c in self.causes],
            "next_check": self.next_check,
        }


@dataclass
class Context:
    """One evaluation cycle: a snapshot of the store, the clock, and caches shared by triggers."""

    project: Project
    config: Config
    data: dict[str, Any]
    now: float
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.project.root

    def runs_of(self, job: str) -> list[dict[str, Any]]:
        """Runs of one job, oldest first (ids sort by time)."""
        key = ("runs_of", job)
        if key not in self.cache:
            runs = self.data.get(RUNS, {})
            self.cache[key] = [runs[k] for k in sorted(runs) if runs[k].get("job") == job]
        result: list[dict[str, Any]] = self.cache[key]
        return result


def short(value: str | None, n: int = 8) -> str:
    if not value:
        return "∅"
    return value[:n] + "…" if len(value) > n else value


def iso(ts: float) -> str:
    """A local time stamp for cause texts and keys (second precision)."""
    return _dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_params(params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Replace known `{name}` placeholders in string params; other braces stay as they are."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        return str(context[name]) if name in context else m.group(0)

    return {k: _PLACEHOLDER.sub(sub, v) if isinstance(v, str) else v for k, v in params.items()}


def kind_option(tc: TriggerConfig, name: str, default: Any = None) -> Any:
    return tc.options.get(name, default)
