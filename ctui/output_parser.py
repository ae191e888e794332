"""The parser of metrics in a job's output (`OutputParser`), fed by the supervisor's relay.

The built-in shapes, on one line of output (as a terminal shows it, `ctui.logtext`):

- `key=value` and `key: value` pairs of numbers (`loss=0.52, acc=0.9`, Keras' `- loss: 0.29`,
  a tqdm bar's `loss=0.52` postfix at the end of its line);
- dicts whose every value is a number (HF Trainer's `{'loss': 0.52, 'epoch': 1.0}`, JSON lines);
- the step: `Epoch N`, `step N`, `epoch=N`, `Step [N/M]`, `[N/M]` — for the points on its line
  and those that follow.

Conservative on purpose: a value followed by a unit, `%`, `:`, `-`, `/` or another digit group
(times, dates, versions, `file.py:42`, progress percentages) is not a number here, a key must
not follow `-`, `/` or `.` (`--lr=0.1`, URLs, paths), `key:value` needs a space after the
colon, and a few keys that are never metrics (`pid`, `port`, `rank`, `version`, …) are skipped.
A value that is not a number (`loss=nan`, a custom pattern matching text) is ignored and counted
(`output_metrics_ignored`).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import orjson

from ctui.output_metrics import OutputMetricsConfig

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NAN = r"[-+]?(?:nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)"
_STEP_WORD = r"(?i:global[_ ]step|step|iteration|iter|epoch)"
#: steps (priority: a step word beats `epoch` and `[N/M]` on the same line)
_STEP = (
    rf"(?P<stepw>(?<![\w./-]){_STEP_WORD})\b\s*[:=#]?\s*\[?\s*(?P<stepn>\d+)"
    r"(?:\s*/\s*\d+)?\s*\]?(?![\w.])"
    r"|\[\s*(?P<frac>\d+)\s*/\s*\d+\s*\](?!\w)"
)
_BUILTIN = re.compile(
    r"(?P<skip>Namespace\([^\n]*)"  # argparse's echo of the arguments: not metrics
    r"|\{(?P<dict>[^{}\n]*)\}"
    rf"|{_STEP}"
    rf"|(?<![\w./\\-])(?P<key>[A-Za-z][\w./-]*)\s*(?:=|:(?=[ \t]))[ \t]*"
    rf"(?P<val>{_NAN}|{_NUM})(?![\w.%:/-])"
)
_STEPS_ONLY = re.compile(_STEP)
_DICT_ITEM = re.compile(
    rf"""\s*(?P<q>['"]?)(?P<key>[A-Za-z_][\w./-]*)(?P=q)\s*:\s*(?P<val>{_NAN}|{_NUM})\s*"""
)
#: chunks without any of these hold no built-in shape (most lines of a plain log)
HINT = re.compile(rb"[=:{\[]|(?i:epoch|step|iter)")
#: keys that are never metrics
_NOT_METRICS = frozenset(
    ("version", "ver", "pid", "ppid", "tid", "port", "line", "lineno", "rank", "local_rank",
     "global_rank", "node_rank", "world_size", "seed", "id", "uid", "gid", "v_num", "gpu",
     "device", "cuda", "errno", "code", "exit_code", "timestamp", "ts", "date", "year", "month",
     "day", "hour", "minute", "http", "https")
)  # fmt: skip
_STEP_KEYS = frozenset(("step", "global_step", "iteration", "iter", "epoch"))
#: a job printing ever new names does not grow the histories without end
MAX_NAMES = 256
#: points written at least this often (seconds), and at the latest after this many
FLUSH_S = 1.0
FLUSH_POINTS = 2000


def _number(text: str) -> int | float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return value


class OutputParser:
    """Lines of output in (`text`), metric points out to `output_metrics.jsonl`, written in
    batches. `ignored` counts matches whose value was not a number; `last` the last value of
    each metric."""

    def __init__(self, config: OutputMetricsConfig, path: Path):
        self.path = path
        self.builtin = not config.patterns
        self.custom = [(name, re.compile(rx, re.MULTILINE)) for name, rx in config.patterns]
        self.ignored = 0
        self.last: dict[str, int | float] = {}
        self.step: int | None = None
        self._buffer: list[bytes] = []
        self._flushed = time.monotonic()

    # -- input: lines (`ctui.jobs.output.LineFeed` assembles them from the job's streams) ---
    def tick(self) -> None:
        """The points so far are written when due."""
        if time.monotonic() - self._flushed >= FLUSH_S or len(self._buffer) >= FLUSH_POINTS:
            self.flush()

    def text(self, block: str, when: float) -> None:
        """Complete lines, joined by newlines."""
        if self.builtin:
            events = _BUILTIN.finditer(block)
            self._events(block, ((m.start(), m) for m in events), when)
        else:
            merged: list[tuple[int, Any]] = [(m.start(), m) for m in _STEPS_ONLY.finditer(block)]
            for name, rx in self.custom:
                merged.extend((m.start(), (name, m)) for m in rx.finditer(block))
            merged.sort(key=lambda e: e[0])
            self._events(block, merged, when)

    def _events(self, block: str, events: Any, when: float) -> None:
        line_end = -1
        points: list[tuple[str, int | float, int | None]] = []
        step: tuple[int, int] | None = None  # (priority, step) found on the current line
        for pos, ev in events:
            if pos > line_end:
                self._line(points, step, when)
                points, step = [], None
                line_end = block.find("\n", pos)
                if line_end < 0:
                    line_end = len(block)
            if isinstance(ev, tuple):  # a pattern of the job's own
                name, m = ev
                self._custom(m, name, points)
                continue
            g = ev.groupdict()
            if g.get("stepn") is not None:
                prio = 1 if g["stepw"].lower() == "epoch" else 2
                if step is None or prio >= step[0]:
                    step = (prio, int(g["stepn"]))
            elif g.get("frac") is not None:
                if step is None:
                    step = (1, int(g["frac"]))
            elif g.get("dict") is not None:
                step = self._dict(g["dict"], points, step)
            elif g.get("key") is not None:
                key, value = g["key"], _number(g["val"])
                low = key.lower()
                if low in _NOT_METRICS:
                    continue
                if value is None:
                    self.ignored += 1
                elif low in _STEP_KEYS and isinstance(value, int):
                    if step is None or step[0] <= 2:
                        step = (1 if low == "epoch" else 3, value)
                else:
                    points.append((key, value, None))
        self._line(points, step, when)

    def _dict(
        self, body: str, points: list[Any], step: tuple[int, int] | None
    ) -> tuple[int, int] | None:
        items = body.split(",")
        parsed = []
        for item in items:
            m = _DICT_ITEM.fullmatch(item)
            if m is None:
                return step  # not a dict of numbers only (a config, a message): not metrics
            parsed.append((m.group("key"), m.group("val")))
        for key, raw in parsed:
            value = _number(raw)
            low = key.lower()
            if low in _NOT_METRICS:
                continue
            if value is None:
                self.ignored += 1
            elif low in ("step", "global_step") and isinstance(value, int):
                step = (3, value)
            else:
                points.append((key, value, None))
        return step

    def _custom(self, m: re.Match[str], name: str | None, points: list[Any]) -> None:
        groups = m.groupdict()
        value = _number((groups.get("value") or "").strip())
        metric = groups.get("name") or name
        if value is None or not metric:
            self.ignored += 1
            return
        step = None
        if groups.get("step") is not None:
            try:
                step = int(groups["step"])
            except ValueError:
                step = None
        points.append((metric, value, step))

    def _line(
        self, points: list[tuple[str, int | float, int | None]], step: Any, when: float
    ) -> None:
        if step is not None:
            self.step = step[1]
        for name, value, own_step in points:
            if name not in self.last and not self._new_name(name):
                continue
            self.last[name] = value
            rec = {
                "name": name,
                "value": value,
                "step": self.step if own_step is None else own_step,
                "time": round(when, 3),
                "src": "output",
            }
            self._buffer.append(orjson.dumps(rec))

    def _new_name(self, name: str) -> bool:
        """Whether a name not seen yet becomes a metric: not past `MAX_NAMES`, and not one
        that says its value is a credential (`pin_token=1234` stays out of the store)."""
        from ctui.manifest.redact import is_secret_param

        return len(self.last) < MAX_NAMES and not is_secret_param(name)

    # -- output -----------------------------------------------------------------------------
    def flush(self) -> None:
        """The points so far onto `output_metrics.jsonl` (one write)."""
        self._flushed = time.monotonic()
        if not self._buffer:
            return
        data = b"\n".join(self._buffer) + b"\n"
        self._buffer = []
        try:
            with open(self.path, "ab") as fh:
                fh.write(data)
        except OSError:
            pass  # a full disk: the points are lost, the job goes on

    def close(self) -> None:
        self.flush()


# -- files and the run's end -------------------------------------------------------------------
