"""Metrics read from a job's output (`key=value`, HF Trainer dicts, `Epoch N`): for runs that
log no metrics otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class OutputMetricsConfig:
    #: false: no metrics are read from the output
    enabled: bool = True
    #: the job's own patterns (regexes with a `value` group); empty: the built-in shapes
    patterns: list[str] = field(default_factory=list)


def parse_output_metrics(raw: Any, path: Path, key: str) -> OutputMetricsConfig:
    return OutputMetricsConfig()


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


def finish_fields(run_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """Run fields at the end of a run from what was read from its output: its final metrics
    when the run has none of its own (`metrics`, `metrics_from = "output"`), and how many
    matches were not numbers (`output_metrics_ignored`)."""
    return {}
