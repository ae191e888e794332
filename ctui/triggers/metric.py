"""`on = "metric"`: a number (printed by a command, or held in a file) crosses a threshold.

Fires once per crossing: when the value goes past `threshold` in `direction` (above/below)
it fires and the trigger is "tripped"; it re-arms only when the value comes back. A value
already past the threshold at the first look counts as a crossing.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

from ctui.config import TriggerConfig, parse_duration
from ctui.triggers.base import ERROR, FIRE, IDLE, Cause, Context, Evaluation
from ctui.triggers.validate import DEFAULT_METRIC_TIMEOUT

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)", re.I)


class MetricError(Exception):
    pass


def last_number(text: str, where: str) -> float:
    found = _NUMBER.findall(text)
    if not found:
        tail = text.strip().splitlines()[-1:] or [""]
        raise MetricError(f"{where} gave no number (last line: {tail[0][:80]!r})")
    return float(found[-1])


def read_value(tc: TriggerConfig, root: Path) -> float:
    file = tc.options.get("file")
    if file is not None:
        try:
            return last_number((root / file).read_text(errors="replace"), str(file))
        except OSError as exc:
            raise MetricError(f"cannot read {file}: {exc.strerror or exc}") from None
    command = tc.options["command"]
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    timeout = parse_duration(
        tc.options.get("timeout", DEFAULT_METRIC_TIMEOUT), path=Path("ctui.toml"), key="timeout"
    )
    try:
        proc = subprocess.run(
            argv, cwd=root, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError:
        raise MetricError(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise MetricError(f"{argv[0]} took longer than {timeout:g}s") from None
    except OSError as exc:
        raise MetricError(f"cannot run {argv[0]}: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:120]
        raise MetricError(f"{argv[0]} exited {proc.returncode}: {tail}")
    return last_number(proc.stdout, argv[0])


def evaluate(tc: TriggerConfig, state: dict[str, Any], ctx: Context) -> Evaluation:
    ev = Evaluation(tc.name, tc.job, "metric", IDLE)
    try:
        value = read_value(tc, ctx.root)
    except MetricError as exc:
        ev.status = ERROR
        ev.note = str(exc)
        return ev
    threshold = float(tc.options["threshold"])
    direction = tc.options.get("direction", "above")
    past = value > threshold if direction == "above" else value < threshold
    sign = ">" if direction == "above" else "<"
    tripped = bool(state.get("tripped"))
    crossing = int(state.get("crossing", 0))
    ev.memory = {"last_value": value}
    if past and not tripped:
        ev.status = FIRE
        ev.causes.append(
            Cause(
                key=f"metric:{tc.name}:{crossing + 1}",
                text=f"value {value:g} {sign} {threshold:g} (crossing {crossing + 1})",
                context={"value": value},
                memory={"tripped": True, "crossing": crossing + 1, "last_value": value},
            )
        )
    elif past:
        ev.note = f"value {value:g} still {direction} {threshold:g}; fired for this crossing"
    else:
        ev.note = f"value {value:g}, fires {direction} {threshold:g}"
        if tripped:
            ev.memory["tripped"] = False  # back on the safe side: re-arm
    return ev
