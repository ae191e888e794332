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
