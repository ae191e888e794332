"""Metrics read from a job's output for runs that log no metrics otherwise: the job's
`output_metrics` setting, where the points are (`metrics_file`) and what the run keeps of them
(`finish_fields`). The parser is `ctui.output_parser` (the supervisor's only: no command
that loads ctui.toml compiles its patterns).

`[jobs.NAME] output_metrics`: true (the default: the built-in shapes), false (nothing is read),
a list of regexes each with a `value` group and optionally `name` and `step` groups (without a
`name` group the metric is named by the identifier the pattern starts with:
`'val_acc=(?P<value>\\S+)'` → `val_acc`), or a table of name = regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctui.errors import ConfigError


@dataclass
class OutputMetricsConfig:
    #: false: no metrics are read from the output
    enabled: bool = True
    #: the job's own patterns, (metric name or None, regex); empty: the built-in shapes
    patterns: list[tuple[str | None, str]] = field(default_factory=list)

    def to_options(self) -> dict[str, Any]:
        """What a run's `spec.json` keeps of it."""
        return {"enabled": self.enabled, "patterns": [list(p) for p in self.patterns]}

    @classmethod
    def from_options(cls, raw: Any) -> OutputMetricsConfig:
        if not isinstance(raw, dict):
            return cls()
        pats = [(p[0], p[1]) for p in raw.get("patterns") or [] if len(p) == 2]
        return cls(enabled=bool(raw.get("enabled", True)), patterns=pats)


_LEAD_NAME = re.compile(r"(?:\^|\\b)*([A-Za-z_][\w.-]*?)(?=[^\w.-]|\\|$)")


def parse_output_metrics(raw: Any, path: Path, key: str) -> OutputMetricsConfig:
    where = f"{key}.output_metrics"
    if raw is None or raw is True:
        return OutputMetricsConfig()
    if raw is False:
        return OutputMetricsConfig(enabled=False)
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list):
        items = [(None, p) for p in raw]
    elif isinstance(raw, dict):
        items = list(raw.items())
    else:
        raise ConfigError(
            path, where, "expected true, false, a list of regexes or a table of name = regex"
        )
    patterns: list[tuple[str | None, str]] = []
    for name, pattern in items:
        if not isinstance(pattern, str):
            raise ConfigError(path, where, f"expected a regex (a string), got {pattern!r}")
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(path, where, f"{pattern!r} is not a valid regex: {exc}") from None
        if "value" not in rx.groupindex:
            raise ConfigError(path, where, f"{pattern!r} has no (?P<value>...) group")
        if name is None and "name" not in rx.groupindex:
            lead = _LEAD_NAME.match(pattern)
            if not lead:
                raise ConfigError(
                    path,
                    where,
                    f"{pattern!r} names no metric: start it with the metric's name, add a "
                    "(?P<name>...) group, or use a table (name = regex)",
                )
            name = lead.group(1)
        patterns.append((None if name is None else str(name), pattern))
    return OutputMetricsConfig(patterns=patterns)


# -- the parser ---------------------------------------------------------------------------------

#: the points read from the output, beside the log (`{"name", "value", "step", "time"}`)
OUTPUT_METRICS_FILE = "output_metrics.jsonl"


def metrics_file(run_dir: Path) -> Path:
    """Where a run's metric histories are: `metrics.jsonl` (ctui.track, MLflow, imports) when
    it has any, else the points read from the job's output."""
    own = run_dir / "metrics.jsonl"
    try:
        if own.stat().st_size > 0:
            return own
    except OSError:
        pass
    parsed = run_dir / OUTPUT_METRICS_FILE
    return parsed if parsed.exists() else own


def finish_fields(run_dir: Path, metrics: dict[str, Any], ignored: int = 0) -> dict[str, Any]:
    """Run fields at the end of a run from what was read from its output: its final metrics
    when the run has none of its own (`metrics`, `metrics_from = "output"`), and how many
    matches were not numbers (`output_metrics_ignored`)."""
    out: dict[str, Any] = {}
    if ignored:
        out["output_metrics_ignored"] = int(ignored)
    if metrics:
        return out
    from ctui.jobs.finish import last_metrics

    parsed = last_metrics(run_dir / OUTPUT_METRICS_FILE)
    if parsed:
        out["metrics"] = parsed
        out["metrics_from"] = "output"
    return out
